"""The atb-bert encoder (torch): a BERT whose Q/K/V width may differ from the hidden size.

Read top to bottom: leaf modules, then the models. Parameter names match 🤗
``transformers.BertModel`` one-to-one, so when ``dqkv == dm`` a state dict of this model is a
plain BERT checkpoint. The only generalisation over BERT is ``qkv_size`` (``dqkv``): the width
of the Q/K/V projections may differ from the hidden size, and the attention output projection
maps ``qkv_size -> hidden_size``.

Self-contained on purpose: it imports only torch, transformers and (relatively) its config
module, never atb. ``save_pretrained`` copies both files verbatim into the model directory and
writes an ``auto_map`` naming them, so ``AutoModel.from_pretrained(dir, trust_remote_code=True)``
loads the model where atb is not installed. Inside atb, import it as :mod:`atb.modeling`.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPooling, SequenceClassifierOutput

from .configuration_atb_bert import AtbBertConfig

# What a saved directory tells 🤗's Auto classes (module file stem . class name), and the files
# that must lie next to config.json for it to hold.
AUTO_MAP = {
    "AutoConfig": "configuration_atb_bert.AtbBertConfig",
    "AutoModel": "modeling_atb_bert.AtbBertModel",
    "AutoModelForSequenceClassification": "modeling_atb_bert.AtbBertForSequenceClassification",
}
CODE_FILES = ("configuration_atb_bert.py", "modeling_atb_bert.py")


class BertEmbeddings(nn.Module):
    def __init__(self, config: AtbBertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        seq_len = input_ids.shape[1]
        positions = torch.arange(seq_len, device=input_ids.device).unsqueeze(0)  # (1, s)
        x = (
            self.word_embeddings(input_ids)
            + self.token_type_embeddings(token_type_ids)
            + self.position_embeddings(positions)
        )  # (b, s, dm)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    def __init__(self, config: AtbBertConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_size = config.qkv_size // config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.qkv_size)
        self.key = nn.Linear(config.hidden_size, config.qkv_size)
        self.value = nn.Linear(config.hidden_size, config.qkv_size)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        return x.view(b, s, self.num_heads, self.head_size).transpose(1, 2)  # (b, h, s, hs)

    def forward(self, hidden: torch.Tensor, additive_mask: torch.Tensor) -> torch.Tensor:
        q = self.split_heads(self.query(hidden))
        k = self.split_heads(self.key(hidden))
        v = self.split_heads(self.value(hidden))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_size)  # (b, h, s, s)
        probs = self.dropout(torch.softmax(scores + additive_mask, dim=-1))
        context = probs @ v  # (b, h, s, hs)
        b, _, s, _ = context.shape
        return context.transpose(1, 2).reshape(b, s, self.num_heads * self.head_size)  # (b, s, dqkv)


class BertProjection(nn.Module):
    """dense -> dropout -> + residual -> LayerNorm, back to the hidden size: the end of the
    attention block (from dqkv, 🤗's ``attention.output``) and of the FFN (from df, ``output``)."""

    def __init__(self, in_size: int, config: AtbBertConfig):
        super().__init__()
        self.dense = nn.Linear(in_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, inner: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(inner)) + residual)


class BertAttention(nn.Module):
    def __init__(self, config: AtbBertConfig):
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertProjection(config.qkv_size, config)  # dqkv -> dm

    def forward(self, hidden: torch.Tensor, additive_mask: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(hidden, additive_mask), hidden)


class BertIntermediate(nn.Module):
    def __init__(self, config: AtbBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return nn.functional.gelu(self.dense(hidden))  # exact erf GELU, as BERT


class BertLayer(nn.Module):
    def __init__(self, config: AtbBertConfig):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertProjection(config.intermediate_size, config)  # df -> dm

    def forward(self, hidden: torch.Tensor, additive_mask: torch.Tensor) -> torch.Tensor:
        attended = self.attention(hidden, additive_mask)
        return self.output(self.intermediate(attended), attended)


class BertEncoder(nn.Module):
    def __init__(self, config: AtbBertConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, hidden: torch.Tensor, additive_mask: torch.Tensor) -> torch.Tensor:
        for layer in self.layer:
            hidden = layer(hidden, additive_mask)
        return hidden


class BertPooler(nn.Module):
    def __init__(self, config: AtbBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))  # first ([CLS]) token


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """(b, s, dm) hidden states -> (b, dm): their mean over the tokens the mask attends."""
    weights = attention_mask.to(hidden.dtype).unsqueeze(-1)  # (b, s, 1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def additive_attention_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(b, s) 1/0 mask -> (b, 1, 1, s) additive mask: 0 where attended, dtype-min where padded."""
    mask = attention_mask[:, None, None, :].to(dtype)
    return (1.0 - mask) * torch.finfo(dtype).min


@torch.no_grad()
def init_bert_weights(module: nn.Module, std: float = 0.02) -> None:
    """BERT's initialisation: N(0, std) weights, zero biases and padding row, unit LayerNorm."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        module.weight.normal_(0.0, std)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.zero_()
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        module.weight.fill_(1.0)
        module.bias.zero_()


class AtbBertPreTrainedModel(PreTrainedModel):
    """What every atb-bert model shares with 🤗: its config class, weight prefix, BERT's
    initialisation (as ``BertPreTrainedModel``) and a directory that loads without atb."""

    config_class = AtbBertConfig
    base_model_prefix = "bert"

    def _init_weights(self, module: nn.Module) -> None:
        init_bert_weights(module, self.config.initializer_range)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """🤗's ``save_pretrained``, plus this file and the config's next to the weights and an
        ``auto_map`` naming every atb-bert class, so that ``trust_remote_code=True`` loads the
        directory with any of the Auto classes where atb is not installed.

        (🤗's own ``register_for_auto_class`` does the copying too, but records only the one
        Auto class of the saved model, so an encoder's directory would not load with
        ``AutoModelForSequenceClassification``.)
        """
        self.config.auto_map = dict(AUTO_MAP)
        result = super().save_pretrained(save_directory, *args, **kwargs)
        here = Path(__file__).resolve().parent
        for name in CODE_FILES:
            shutil.copyfile(here / name, Path(save_directory) / name)
        return result


class AtbBertModel(AtbBertPreTrainedModel):
    """BERT encoder + pooler for one architecture (outputs like ``transformers.BertModel``)."""

    def __init__(self, config: AtbBertConfig):
        super().__init__(config)
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        hidden = self.embeddings(input_ids, token_type_ids)  # (b, s, dm)
        hidden = self.encoder(hidden, additive_attention_mask(attention_mask, hidden.dtype))
        pooled = self.pooler(hidden)  # (b, dm)
        return_dict = self.config.return_dict if return_dict is None else return_dict
        if not return_dict:
            return hidden, pooled
        return BaseModelOutputWithPooling(last_hidden_state=hidden, pooler_output=pooled)


class AtbBertForSequenceClassification(AtbBertPreTrainedModel):
    """:class:`AtbBertModel` + dropout + a linear classifier on the pooled output.

    ``config.classifier_pooling`` says what is pooled: ``"cls"`` (the default, as 🤗) the
    encoder's tanh pooler on the first token, ``"mean"`` the mean of the last hidden states over
    the attention mask (the pooler's weights are then kept but unused). The layout of 🤗 ``BertForSequenceClassification`` (``bert.*``, ``classifier.*``), so
    ``from_pretrained`` on a directory saved by :class:`AtbBertModel` loads the encoder and
    initialises only the head. ``config.num_labels`` sets the output width; the loss follows
    🤗's ``problem_type`` (regression when ``num_labels == 1``, else cross-entropy on integer
    labels, binary cross-entropy on float multi-label targets).
    """

    def __init__(self, config: AtbBertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = AtbBertModel(config)
        dropout = getattr(config, "classifier_dropout", None)
        self.dropout = nn.Dropout(config.hidden_dropout_prob if dropout is None else dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        encoded = self.bert(input_ids, attention_mask, token_type_ids, return_dict=True)
        if self.config.classifier_pooling == "mean":
            pooled = mean_pool(encoded.last_hidden_state, attention_mask)
        else:
            pooled = encoded.pooler_output
        logits = self.classifier(self.dropout(pooled))  # (b, num_labels)
        loss = None if labels is None else self._loss(logits, labels)
        return_dict = self.config.return_dict if return_dict is None else return_dict
        if not return_dict:
            return (logits,) if loss is None else (loss, logits)
        return SequenceClassifierOutput(loss=loss, logits=logits)

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.config.problem_type is None:  # inferred once, as 🤗 does
            if self.num_labels == 1:
                self.config.problem_type = "regression"
            elif labels.dtype in (torch.long, torch.int):
                self.config.problem_type = "single_label_classification"
            else:
                self.config.problem_type = "multi_label_classification"
        if self.config.problem_type == "regression":
            return nn.functional.mse_loss(logits.squeeze(-1), labels.to(logits.dtype).view(-1))
        if self.config.problem_type == "single_label_classification":
            return nn.functional.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
        return nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
