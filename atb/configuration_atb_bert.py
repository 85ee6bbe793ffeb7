"""The configuration of an atb-bert model: BERT's fields plus ``qkv_size`` (``dqkv``) and the
sequence classifier's pooling.

Self-contained on purpose: it imports only transformers, never atb, because
``save_pretrained`` copies this file verbatim into every atb-bert model directory, where
``AutoConfig.from_pretrained(dir, trust_remote_code=True)`` imports it with no atb installed.
"""

from __future__ import annotations

from transformers import PretrainedConfig

CLASSIFIER_POOLINGS = ("cls", "mean")


class AtbBertConfig(PretrainedConfig):
    """BERT config plus ``qkv_size`` and ``classifier_pooling``; field names follow
    ``transformers.BertConfig``."""

    model_type = "atb-bert"

    def __init__(
        self,
        vocab_size: int = 30522,  # WordPiece vocabulary
        hidden_size: int = 768,  # dm
        num_hidden_layers: int = 12,  # lt
        num_attention_heads: int = 12,  # h
        intermediate_size: int = 3072,  # df
        qkv_size: int | None = None,  # dqkv, summed over heads (None: = hidden_size, as BERT)
        hidden_act: str = "gelu",  # exact (erf) GELU, as BERT
        hidden_dropout_prob: float = 0.1,
        attention_probs_dropout_prob: float = 0.1,
        max_position_embeddings: int = 512,
        type_vocab_size: int = 2,
        initializer_range: float = 0.02,
        layer_norm_eps: float = 1e-12,
        pad_token_id: int = 0,
        classifier_pooling: str = "cls",  # what the sequence classifier reads, see below
        **kwargs,
    ):
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.qkv_size = hidden_size if qkv_size is None else qkv_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        # "cls": BERT's tanh pooler on the first token, as BertForSequenceClassification;
        # "mean": the mean of the last hidden states over the attention mask, which suits
        # encoders whose pooler was never trained (sentence-embedding models, atb's supernets)
        if classifier_pooling not in CLASSIFIER_POOLINGS:
            raise ValueError(f"classifier_pooling {classifier_pooling!r} is not one of "
                             f"{', '.join(CLASSIFIER_POOLINGS)}")
        self.classifier_pooling = classifier_pooling
        if self.qkv_size % num_attention_heads:
            raise ValueError(f"qkv_size {self.qkv_size} not divisible by {num_attention_heads} heads")

    @classmethod
    def from_arch(cls, arch, **kwargs) -> "AtbBertConfig":
        """The config of ``arch`` (anything with ``lt, dm, df, h, dqkv`` attributes)."""
        return cls(
            hidden_size=arch.dm,
            num_hidden_layers=arch.lt,
            num_attention_heads=arch.h,
            intermediate_size=arch.df,
            qkv_size=arch.dqkv,
            **kwargs,
        )

    @classmethod
    def from_bert(cls, bert: dict, **kwargs) -> "AtbBertConfig":
        """The atb-bert config of a stock BERT's ``config.json`` (a dict): the same encoder, whose
        ``BertModel`` weights load into atb-bert unchanged. Refuses what atb-bert does not
        implement (relative position embeddings, an activation other than exact GELU)."""
        position = bert.get("position_embedding_type", "absolute")
        if position != "absolute" or bert.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"atb-bert implements absolute positions and exact GELU, not "
                             f"{position} positions and {bert.get('hidden_act')}")
        fields = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                  "intermediate_size", "hidden_dropout_prob", "attention_probs_dropout_prob",
                  "max_position_embeddings", "type_vocab_size", "initializer_range",
                  "layer_norm_eps", "pad_token_id")
        return cls(**{name: bert[name] for name in fields if name in bert}, **kwargs)

    @property
    def arch_string(self) -> str:
        """The canonical ``lt-dm-df-h-dqkv`` text of this config."""
        return (
            f"{self.num_hidden_layers}-{self.hidden_size}-{self.intermediate_size}-"
            f"{self.num_attention_heads}-{self.qkv_size}"
        )
