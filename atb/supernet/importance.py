"""Importance reordering: permute a pretrained SuperPLM so the leading slices hold the most
important units (DynaBERT's "network rewiring", Minitron's activation-based ranking).

A sub-model keeps the *first* heads, FFN neurons, hidden channels and per-head dimensions of
the supernet (PAPER.md, Sec. 3.4). A pretrained checkpoint stores its units in arbitrary order,
so plain leading slices keep arbitrary units. This module scores every unit on calibration
text and permutes the weights so that units sit in decreasing order of importance:

* heads (the pretrain strategy keeps the first ``h``): the norm of the head's contribution to
  the attention output, ``|| context_j Wo[:, j]^T ||``;
* dimensions inside a head (the kd strategy keeps the first ``dqkv / H`` of each): Q and K
  dimensions by ``sqrt(E q_d^2 E k_d^2)`` (their share of the attention scores), V dimensions
  by ``E |context_d| ||Wo[:, d]||``; Q/K and V get separate permutations, since the scores
  only need Q and K to agree;
* FFN neurons: ``E |gelu(x W1)_i| ||W2[:, i]||``, the neuron's contribution to the output;
* hidden channels: the mean absolute value of every LayerNorm output (Minitron).

Expectations are over the non-padding tokens of the calibration batches. Why activations and
not gradients: the supernet is distilled from the checkpoint itself, so at the full model the
distillation loss and its gradient are zero and a first-order (Taylor) score is degenerate;
DynaBERT's gradient scores need a task loss atb does not have. ``method="weight"`` ranks by
weight norms alone (BootstrapNAS's L2 criterion), as the benchmark's comparison point.

Every permutation preserves the full model's function (Q/K rows, V rows with Wo columns, FFN
rows with W2 columns, and hidden channels along every axis that carries them: LayerNorm is
permutation-equivariant). Permuting hidden channels permutes the model's output channels by
the same permutation, which is recorded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from atb import progress
from atb.supernet.elastic import SuperPLM

log = logging.getLogger("atb.supernet.importance")

METHODS = ("activation", "weight")


@dataclass
class Reordering:
    """Scores (higher = more important) and the orders derived from them, per layer.

    ``*_order[k]`` is the old index of the unit that moves to position ``k``; orders of
    within-head dimensions are per old head, in that head's coordinates.
    """

    method: str
    head_scores: torch.Tensor  # (L, H)
    qk_dim_scores: torch.Tensor  # (L, H, head_size)
    v_dim_scores: torch.Tensor  # (L, H, head_size)
    ffn_scores: torch.Tensor  # (L, Df)
    hidden_scores: torch.Tensor  # (Dm,)
    reorder_hidden: bool = True

    @staticmethod
    def _order(scores: torch.Tensor) -> torch.Tensor:
        return torch.argsort(scores, dim=-1, descending=True, stable=True)

    @property
    def head_order(self) -> torch.Tensor:
        return self._order(self.head_scores)

    @property
    def qk_dim_order(self) -> torch.Tensor:
        return self._order(self.qk_dim_scores)

    @property
    def v_dim_order(self) -> torch.Tensor:
        return self._order(self.v_dim_scores)

    @property
    def ffn_order(self) -> torch.Tensor:
        return self._order(self.ffn_scores)

    @property
    def hidden_order(self) -> torch.Tensor:
        """Position k of the reordered model's hidden states holds old channel ``[k]``."""
        if not self.reorder_hidden:
            return torch.arange(len(self.hidden_scores))
        return self._order(self.hidden_scores)

    def to_tensors(self) -> dict[str, torch.Tensor]:
        """Flat named tensors for ``importance.safetensors`` in the checkpoint."""
        out = {}
        for name in ("head", "qk_dim", "v_dim", "ffn", "hidden"):
            out[f"{name}_scores"] = getattr(self, f"{name}_scores").float().contiguous()
            out[f"{name}_order"] = getattr(self, f"{name}_order").contiguous()
        return out


def _qkv_rows(order_heads: torch.Tensor, order_dims: torch.Tensor, head_size: int) -> torch.Tensor:
    """Old row indices of Q/K/V in their new order: heads by ``order_heads``, and inside
    new head slot ``a`` (old head ``order_heads[a]``) dimensions by that head's order."""
    return torch.cat([h * head_size + order_dims[h] for h in order_heads.tolist()])


@torch.no_grad()
def apply_reordering(supernet: SuperPLM, reordering: Reordering) -> None:
    """Permute ``supernet``'s weights in place; the full model's function is preserved up to
    the permutation ``reordering.hidden_order`` of its output channels."""
    hs = supernet.super_arch.head_size
    c = reordering.hidden_order
    emb = supernet.embeddings
    for table in (emb.word_embeddings, emb.position_embeddings, emb.token_type_embeddings):
        table.weight.copy_(table.weight[:, c])
    _permute_norm(emb.LayerNorm, c)
    for i, layer in enumerate(supernet.encoder.layer):
        att = layer.attention
        qk = _qkv_rows(reordering.head_order[i], reordering.qk_dim_order[i], hs)
        v = _qkv_rows(reordering.head_order[i], reordering.v_dim_order[i], hs)
        f = reordering.ffn_order[i]
        _permute_linear(att.self.query, rows=qk, cols=c)
        _permute_linear(att.self.key, rows=qk, cols=c)
        _permute_linear(att.self.value, rows=v, cols=c)
        _permute_linear(att.output.dense, rows=c, cols=v)
        _permute_norm(att.output.LayerNorm, c)
        _permute_linear(layer.intermediate.dense, rows=f, cols=c)
        _permute_linear(layer.output.dense, rows=c, cols=f)
        _permute_norm(layer.output.LayerNorm, c)
    _permute_linear(supernet.pooler.dense, rows=c, cols=c)


def _permute_linear(lin: torch.nn.Linear, rows: torch.Tensor, cols: torch.Tensor) -> None:
    lin.weight.copy_(lin.weight[rows][:, cols])
    lin.bias.copy_(lin.bias[rows])


def _permute_norm(norm: torch.nn.LayerNorm, channels: torch.Tensor) -> None:
    norm.weight.copy_(norm.weight[channels])
    norm.bias.copy_(norm.bias[channels])


class _Accumulator:
    """Running token-weighted sums of the activation statistics, one forward at a time."""

    def __init__(self, supernet: SuperPLM):
        sup = supernet.super_arch
        self.supernet, self.hs = supernet, sup.head_size
        L, H, hs = sup.lt, sup.h, sup.head_size
        self.head = torch.zeros(L, H, dtype=torch.float64)
        self.q2 = torch.zeros(L, H, hs, dtype=torch.float64)
        self.k2 = torch.zeros(L, H, hs, dtype=torch.float64)
        self.v_abs = torch.zeros(L, H, hs, dtype=torch.float64)
        self.ffn_abs = torch.zeros(L, sup.df, dtype=torch.float64)
        self.hidden_abs = torch.zeros(sup.dm, dtype=torch.float64)
        self.tokens = 0
        self.keep: torch.Tensor | None = None  # (b, s) bool of the current batch

    def __call__(self, layer: int, t: dict) -> None:
        keep = self.keep
        self.hidden_abs += t["output"][keep].abs().sum(0).double()
        if layer < 0:
            return
        self.hidden_abs += t["attended"][keep].abs().sum(0).double()
        lay = self.supernet.encoder.layer[layer]
        q = t["query"].transpose(1, 2)[keep]  # (n, H, hs)
        k = t["key"].transpose(1, 2)[keep]
        self.q2[layer] += (q * q).sum(0).double()
        self.k2[layer] += (k * k).sum(0).double()
        context = t["context"][keep]  # (n, dqkv)
        n, heads = context.shape[0], self.head.shape[1]
        self.v_abs[layer] += context.abs().sum(0).view(heads, self.hs).double()
        wo = lay.attention.output.dense.weight  # (dm, dqkv)
        per_head = torch.einsum("nhd,mhd->nhm", context.view(n, heads, self.hs),
                                wo.view(wo.shape[0], heads, self.hs))  # (n, H, dm)
        self.head[layer] += per_head.norm(dim=-1).sum(0).double()
        self.ffn_abs[layer] += t["inner"][keep].abs().sum(0).double()


@torch.no_grad()
def score_units(supernet: SuperPLM, batches: list[dict], method: str = "activation",
                reorder_hidden: bool = True) -> Reordering:
    """Importance of every head, head dimension, FFN neuron and hidden channel of the full
    ``supernet``; ``batches`` are dicts of ``input_ids``/``attention_mask`` (calibration text)."""
    if method not in METHODS:
        raise ValueError(f"unknown importance method {method!r}")
    scores = _weight_scores(supernet) if method == "weight" else _activation_scores(supernet, batches)
    return Reordering(method, **scores, reorder_hidden=reorder_hidden)


def _output_column_norms(supernet: SuperPLM) -> tuple[torch.Tensor, torch.Tensor]:
    """``||Wo[:, d]||`` per head dimension (L, H, hs) and ``||W2[:, i]||`` per neuron (L, Df):
    how strongly a unit's activation reaches the residual stream."""
    sup, layers = supernet.super_arch, supernet.encoder.layer
    wo = torch.stack([lay.attention.output.dense.weight.view(sup.dm, sup.h, sup.head_size)
                      for lay in layers])
    w2 = torch.stack([lay.output.dense.weight.norm(dim=0) for lay in layers])
    return wo.norm(dim=1).double(), w2.double()


def _activation_scores(supernet: SuperPLM, batches: list[dict]) -> dict[str, torch.Tensor]:
    wo_col, w2_col = _output_column_norms(supernet)
    acc = _Accumulator(supernet)
    with progress.progress(total=len(batches), desc="importance", unit="batch") as bar:
        for batch in batches:
            acc.keep = batch["attention_mask"].bool()
            supernet(batch["input_ids"], batch["attention_mask"], observe=acc)
            acc.tokens += int(acc.keep.sum())
            bar.update(1)
    n = max(acc.tokens, 1)
    return {"head_scores": acc.head / n, "qk_dim_scores": (acc.q2 * acc.k2).sqrt() / n,
            "v_dim_scores": acc.v_abs / n * wo_col, "ffn_scores": acc.ffn_abs / n * w2_col,
            "hidden_scores": acc.hidden_abs / n}


def _weight_scores(supernet: SuperPLM) -> dict[str, torch.Tensor]:
    """Weight norms only (no data): row norms of Wq/Wk/Wv/W1 times the output column norms,
    LayerNorm scales for hidden channels."""
    sup, layers = supernet.super_arch, supernet.encoder.layer
    wo_col, w2_col = _output_column_norms(supernet)

    def row_norms(name: str) -> torch.Tensor:  # (L, H, hs)
        return torch.stack([getattr(lay.attention.self, name).weight.norm(dim=1)
                            .view(sup.h, sup.head_size) for lay in layers]).double()

    q, k, v = row_norms("query"), row_norms("key"), row_norms("value")
    w1_row = torch.stack([lay.intermediate.dense.weight.norm(dim=1) for lay in layers]).double()
    norms = [supernet.embeddings.LayerNorm.weight] + [
        n.weight for lay in layers for n in (lay.attention.output.LayerNorm, lay.output.LayerNorm)]
    return {"head_scores": (v * wo_col).pow(2).sum(-1).sqrt(), "qk_dim_scores": q * k,
            "v_dim_scores": v * wo_col, "ffn_scores": w1_row * w2_col,
            "hidden_scores": torch.stack(norms).abs().sum(0).double()}


def calibration_batches(ids, mask, n: int, seed: int, batch_size: int = 16) -> list[dict]:
    """``n`` training sequences drawn with ``seed``, in padding-trimmed batches."""
    import numpy as np

    rows = np.sort(np.random.default_rng([seed, 3]).permutation(len(ids))[:n])
    batches = []
    for start in range(0, len(rows), batch_size):
        part = rows[start:start + batch_size]
        length = int(mask[part].sum(1).max())
        batches.append({"input_ids": torch.from_numpy(ids[part, :length]),
                        "attention_mask": torch.from_numpy(mask[part, :length])})
    return batches


def reordered_supernet(pretrained, space, batches: list[dict], method: str = "activation",
                       reorder_hidden: bool = True) -> tuple[SuperPLM, Reordering | None]:
    """A SuperPLM of ``space`` holding ``pretrained``'s weights, importance-reordered by
    ``method`` on ``batches`` (``method="none"``: the checkpoint's own order)."""
    supernet = SuperPLM(space, pretrained.vocab_size, pretrained.max_positions,
                        pretrained.type_vocab_size)
    missing, unexpected = supernet.load_state_dict(pretrained.weights, strict=False)
    assert not unexpected and all(k.startswith("pooler.") for k in missing), (missing, unexpected)
    supernet.eval()
    if method == "none":
        return supernet, None
    reordering = score_units(supernet, batches, method, reorder_hidden)
    apply_reordering(supernet, reordering)
    log.info("reordered %s by %s importance (%d calibration batches)%s", space.super_arch,
             method, len(batches), "" if reorder_hidden else ", hidden channels kept")
    return supernet, reordering
