"""SuperPLM: one elastic BERT encoder whose forward runs any sub-architecture of its space.

The weights are those of the super-architecture (for example ``8-768-3072-12-768``) and
carry 🤗 ``BertModel`` parameter names. ``forward(..., arch=a)`` slices them in place
(PAPER.md, Sec. 3.4), so no copy of a sub-model is ever made during training:

* depth: the first ``lt`` layers (``depth="first"``, the paper's rule), or ``lt`` layers spread
  evenly over the ``L`` with the last one kept (``depth="spread"``, DistilBERT / DynaBERT's
  choice for pretrained teachers; :func:`layer_indices`);
* width: the leading (top-left) sub-matrix of every weight, the first entries of every bias
  and LayerNorm, the first ``dm`` columns of every embedding;
* heads, ``pretrain`` strategy: the first ``h`` heads of size 64 (first ``64 h`` rows of
  Wq/Wk/Wv, first ``64 h`` columns of Wo);
* heads, ``kd`` strategy: all ``H`` heads, the first ``dqkv / H`` dimensions inside each.

The maths is the same as :mod:`atb.modeling` term for term (exact GELU, dtype-min additive
mask, LayerNorm eps 1e-12), so an extracted sub-model computes what the sliced supernet
computes. There is no dropout: the supernet is trained briefly and its sub-models are ranked
by held-out loss; dropout would only add noise to both.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from atb.arch import MAX_POSITIONS, TYPE_VOCAB_SIZE, VOCAB_SIZE, Arch, SearchSpace
from atb.errors import UsageError
from atb.modeling import additive_attention_mask, init_bert_weights
from atb.supernet.config import DEPTHS  # defined there: the CLI's choices, without torch

LAYER_NORM_EPS = 1e-12  # as BERT
INIT_STD = 0.02  # as BERT


def layer_indices(lt: int, total: int, depth: str) -> list[int]:
    """The supernet layers (of ``total``) a sub-model of ``lt`` layers runs, in order.

    ``first``: layers ``0..lt-1`` (the paper's rule). ``spread``: evenly spaced, ending on the
    last layer, which a pretrained teacher's output states come from (6 layers, lt 3:
    ``[1, 3, 5]``); ``lt == total`` keeps every layer under either rule.
    """
    if depth not in DEPTHS:
        raise UsageError(f"depth must be one of {', '.join(DEPTHS)} (got {depth!r})")
    if depth == "first":
        return list(range(lt))
    return [int((i + 1) * total / lt + 0.5) - 1 for i in range(lt)]


def qkv_rows(space: SearchSpace, arch: Arch) -> slice | torch.Tensor:
    """Rows of the super Wq/Wk/Wv (and columns of Wo) that ``arch`` keeps, in head order.

    A slice for the ``pretrain`` strategy (the first ``h`` heads are contiguous), an index
    tensor for ``kd`` (the first ``dqkv / H`` dimensions of each of the ``H`` heads).
    """
    if space.strategy == "pretrain":
        return slice(0, arch.dqkv)
    sup = space.super_arch
    per_head = arch.dqkv // sup.h
    heads = torch.arange(sup.h).unsqueeze(1) * sup.head_size  # (H, 1)
    return (heads + torch.arange(per_head).unsqueeze(0)).reshape(-1)  # (H * per_head,)


class _LeadingColumns(torch.autograd.Function):
    """``weight[:, :cols]`` whose backward adds into ``weight.grad[:, :cols]`` in place.

    Autograd's own slice backward builds a zero tensor of the full (vocab x Dm) size and adds
    it to ``.grad`` on every pass; for the word embeddings (used twice per pass: input and MLM
    decoder) that traffic made a small sub-model's update ~1.4x dearer than training it alone.
    """

    @staticmethod
    def forward(ctx, weight: torch.Tensor, cols: int) -> torch.Tensor:
        ctx.weight, ctx.cols = weight, cols
        return weight[:, :cols]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        weight = ctx.weight
        if weight.grad is None:
            weight.grad = torch.zeros_like(weight)
        weight.grad[:, : ctx.cols] += grad
        return None, None


def leading_columns(weight: torch.Tensor, cols: int) -> torch.Tensor:
    """The first ``cols`` columns of an embedding matrix (gradients accumulate in place)."""
    if not (torch.is_grad_enabled() and weight.requires_grad):
        return weight[:, :cols]
    return _LeadingColumns.apply(weight, cols)


def _linear(x: torch.Tensor, lin: nn.Linear, rows, cols) -> torch.Tensor:
    """``x @ W[rows, cols].T + b[rows]``; ``rows``/``cols`` are slices or index tensors."""
    weight, bias = lin.weight, lin.bias
    if isinstance(rows, torch.Tensor):
        weight, bias = weight.index_select(0, rows), bias.index_select(0, rows)
    else:
        weight, bias = weight[rows], bias[rows]
    weight = weight.index_select(1, cols) if isinstance(cols, torch.Tensor) else weight[:, cols]
    return F.linear(x, weight, bias)


def _layer_norm(x: torch.Tensor, norm: nn.LayerNorm, dm: int) -> torch.Tensor:
    return F.layer_norm(x, (dm,), norm.weight[:dm], norm.bias[:dm], LAYER_NORM_EPS)


class _Namespace(nn.Module):
    """A container that only exists so parameter names match 🤗 BertModel's."""


class SuperLayer(nn.Module):
    """One Transformer layer at full size; :meth:`forward` runs a slice of it."""

    def __init__(self, sup: Arch):
        super().__init__()
        self.attention = _Namespace()
        self.attention.self = _Namespace()
        self.attention.self.query = nn.Linear(sup.dm, sup.dqkv)
        self.attention.self.key = nn.Linear(sup.dm, sup.dqkv)
        self.attention.self.value = nn.Linear(sup.dm, sup.dqkv)
        self.attention.output = _Namespace()
        self.attention.output.dense = nn.Linear(sup.dqkv, sup.dm)
        self.attention.output.LayerNorm = nn.LayerNorm(sup.dm, eps=LAYER_NORM_EPS)
        self.intermediate = _Namespace()
        self.intermediate.dense = nn.Linear(sup.dm, sup.df)
        self.output = _Namespace()
        self.output.dense = nn.Linear(sup.df, sup.dm)
        self.output.LayerNorm = nn.LayerNorm(sup.dm, eps=LAYER_NORM_EPS)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, arch: Arch, rows,
                observe=None) -> torch.Tensor:
        """One layer of ``arch``; ``observe(tensors)``, when given, sees its activations
        (importance scoring reads them; training never passes it)."""
        att, dm = self.attention, arch.dm
        b, s, _ = x.shape
        hs = arch.head_size

        def heads(lin: nn.Linear) -> torch.Tensor:
            return _linear(x, lin, rows, slice(0, dm)).view(b, s, arch.h, hs).transpose(1, 2)

        q, k, v = heads(att.self.query), heads(att.self.key), heads(att.self.value)  # (b,h,s,hs)
        scores = q @ k.transpose(-1, -2) / math.sqrt(hs)  # (b, h, s, s)
        context = torch.softmax(scores + mask, dim=-1) @ v  # (b, h, s, hs)
        context = context.transpose(1, 2).reshape(b, s, arch.dqkv)  # (b, s, dqkv)
        attended = _linear(context, att.output.dense, slice(0, dm), rows)  # (b, s, dm)
        attended = _layer_norm(attended + x, att.output.LayerNorm, dm)
        inner = F.gelu(_linear(attended, self.intermediate.dense, slice(0, arch.df), slice(0, dm)))
        out = _linear(inner, self.output.dense, slice(0, dm), slice(0, arch.df))
        out = _layer_norm(out + attended, self.output.LayerNorm, dm)
        if observe is not None:
            observe({"query": q, "key": k, "context": context, "attended": attended,
                     "inner": inner, "output": out})
        return out


class SuperPLM(nn.Module):
    """The elastic encoder (embeddings, layers, pooler) of one search space.

    ``forward(input_ids, attention_mask, token_type_ids, arch)`` returns
    ``(last_hidden_state (b, s, dm), pooled (b, dm))`` of the sub-model ``arch``; ``arch``
    must lie in ``space`` (checked by the callers that take user input, not here). ``depth``
    picks which layers a shallower ``arch`` runs (:func:`layer_indices`).
    """

    def __init__(self, space: SearchSpace, vocab_size: int = VOCAB_SIZE,
                 max_positions: int = MAX_POSITIONS, type_vocab_size: int = TYPE_VOCAB_SIZE,
                 depth: str = "first"):
        super().__init__()
        layer_indices(1, 1, depth)  # refuse an unknown rule now, not at the first forward
        self.space, self.depth = space, depth
        sup = space.super_arch
        self.embeddings = _Namespace()
        self.embeddings.word_embeddings = nn.Embedding(vocab_size, sup.dm, padding_idx=0)
        self.embeddings.position_embeddings = nn.Embedding(max_positions, sup.dm)
        self.embeddings.token_type_embeddings = nn.Embedding(type_vocab_size, sup.dm)
        self.embeddings.LayerNorm = nn.LayerNorm(sup.dm, eps=LAYER_NORM_EPS)
        self.encoder = _Namespace()
        self.encoder.layer = nn.ModuleList(SuperLayer(sup) for _ in range(sup.lt))
        self.pooler = _Namespace()
        self.pooler.dense = nn.Linear(sup.dm, sup.dm)
        self.apply(init_weights)

    @property
    def super_arch(self) -> Arch:
        return self.space.super_arch

    def layers_of(self, arch: Arch) -> list[int]:
        """The indices into ``encoder.layer`` that ``arch`` runs, in order."""
        return layer_indices(arch.lt, self.super_arch.lt, self.depth)

    def embed(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor, dm: int):
        emb = self.embeddings
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        x = (
            F.embedding(input_ids, leading_columns(emb.word_embeddings.weight, dm), padding_idx=0)
            + F.embedding(token_type_ids, leading_columns(emb.token_type_embeddings.weight, dm))
            + F.embedding(positions, leading_columns(emb.position_embeddings.weight, dm))
        )  # (b, s, dm)
        return _layer_norm(x, emb.LayerNorm, dm)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        arch: Arch | None = None,
        observe=None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``observe(layer, tensors)``, when given, sees the embeddings (layer -1) and every
        layer's activations (see :meth:`SuperLayer.forward`); ``layer`` is the position in
        the sub-model, not the supernet layer it runs."""
        arch = arch or self.super_arch
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        hidden = self.embed(input_ids, token_type_ids, arch.dm)
        if observe is not None:
            observe(-1, {"output": hidden})
        mask = additive_attention_mask(attention_mask, hidden.dtype)  # (b, 1, 1, s)
        rows = qkv_rows(self.space, arch)
        if isinstance(rows, torch.Tensor):
            rows = rows.to(input_ids.device)
        for i, layer in enumerate(self.encoder.layer[j] for j in self.layers_of(arch)):
            seen = None if observe is None else (lambda tensors, i=i: observe(i, tensors))
            hidden = layer(hidden, mask, arch, rows, seen)
        dm = slice(0, arch.dm)
        pooled = torch.tanh(_linear(hidden[:, 0], self.pooler.dense, dm, dm))  # (b, dm)
        return hidden, pooled


class ElasticMLMHead(nn.Module):
    """BERT's masked-LM head (transform + tied decoder), sliced to the first ``dm`` inputs.

    Names follow 🤗 ``BertForMaskedLM.cls.predictions`` (without the ``cls.predictions``
    prefix); the decoder weight is the supernet's word-embedding matrix.
    """

    def __init__(self, sup_dm: int, vocab_size: int = VOCAB_SIZE):
        super().__init__()
        self.transform = _Namespace()
        self.transform.dense = nn.Linear(sup_dm, sup_dm)
        self.transform.LayerNorm = nn.LayerNorm(sup_dm, eps=LAYER_NORM_EPS)
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        self.apply(init_weights)

    def forward(self, hidden: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        """``hidden`` (n, dm) of the masked positions -> logits (n, vocab)."""
        dm = hidden.shape[-1]
        t = self.transform
        x = F.gelu(_linear(hidden, t.dense, slice(0, dm), slice(0, dm)))
        x = _layer_norm(x, t.LayerNorm, dm)
        return F.linear(x, leading_columns(word_embeddings, dm), self.bias)


class ElasticProjection(nn.Module):
    """Student hidden states (first ``dm`` of ``Dm``) -> teacher width, for distillation."""

    def __init__(self, sup_dm: int, teacher_dm: int):
        super().__init__()
        self.dense = nn.Linear(sup_dm, teacher_dm)
        self.apply(init_weights)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.linear(hidden, self.dense.weight[:, : hidden.shape[-1]], self.dense.bias)


def init_weights(module: nn.Module) -> None:
    """BERT's initialisation (the same as atb.modeling's), N(0, 0.02)."""
    init_bert_weights(module, INIT_STD)
