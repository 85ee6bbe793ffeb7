"""The one definition of an architecture and of the search spaces it lives in.

An architecture is ``lt-dm-df-h-dqkv`` (PAPER.md): layers, hidden size, FFN size, heads,
and the Q/K/V width summed over heads. Every layer of a sub-model is identical.

Spaces are derived from a super-configuration (the SuperPLM) and a head strategy, so the
paper's spaces (Appendix B) and the CPU-sized ``small`` supernet share one set of rules:

* ``pretrain``: the super-architecture's head size (64 for BERT, 32 for MiniLM), ``h`` in
  1..H, ``dqkv = head_size * h``;
* ``kd``: ``h = H`` heads, ``dqkv`` from ``15 H`` to ``Dqkv`` in steps of ``H`` (for the base
  supernet: 180..768 step 12, i.e. 15..64 dimensions per head);
* both: ``lt`` in 1..L, ``dm`` in 128..Dm step 4, ``df`` in 128..Df step 4.

Everything vectorised works on integer arrays of shape (n, 5) in :data:`FIELDS` order, so the
search can filter millions of candidates without building Python objects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from atb.errors import ArchSpecError

FIELDS = ("lt", "dm", "df", "h", "dqkv")
VOCAB_SIZE = 30522  # uncased BERT WordPiece vocabulary
MAX_POSITIONS = 512
TYPE_VOCAB_SIZE = 2
_ARCH_RE = re.compile(r"^\s*(\d+)-(\d+)-(\d+)-(\d+)-(\d+)\s*$")


@dataclass(frozen=True, order=True)
class Arch:
    """One sub-model architecture; ``str(arch)`` is the canonical ``lt-dm-df-h-dqkv`` form."""

    lt: int  # number of Transformer layers
    dm: int  # hidden size: embeddings, residual stream, LayerNorm (do = dm)
    df: int  # FFN intermediate size
    h: int  # attention heads
    dqkv: int  # width of each of Q, K, V summed over heads; head size = dqkv / h

    def __post_init__(self) -> None:
        for name in FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ArchSpecError(f"arch field {name}={value!r} must be a positive integer")
            object.__setattr__(self, name, int(value))
        if self.dqkv % self.h:
            raise ArchSpecError(
                f"arch {self}: dqkv={self.dqkv} is not divisible by h={self.h}",
                hint="every head has the same size dqkv / h",
            )

    @classmethod
    def parse(cls, text: str) -> "Arch":
        """Parse ``lt-dm-df-h-dqkv``, e.g. ``5-564-1054-8-512``."""
        match = _ARCH_RE.match(str(text))
        if not match:
            raise ArchSpecError(
                f"malformed arch {text!r}: expected lt-dm-df-h-dqkv, five positive integers "
                "such as 5-564-1054-8-512"
            )
        return cls(*(int(g) for g in match.groups()))

    @classmethod
    def bert_rule(cls, lt: int, dm: int, h: int) -> "Arch":
        """BERT's conventional shape: ``dqkv = dm`` and ``df = 4 dm``."""
        return cls(lt, dm, 4 * dm, h, dm)

    def __str__(self) -> str:
        return f"{self.lt}-{self.dm}-{self.df}-{self.h}-{self.dqkv}"

    @property
    def head_size(self) -> int:
        return self.dqkv // self.h

    def as_tuple(self) -> tuple[int, int, int, int, int]:
        return (self.lt, self.dm, self.df, self.h, self.dqkv)

    def params(self) -> int:
        """Parameter count of the standalone model (embeddings, encoder, pooler)."""
        return int(cost_terms(archs_to_array([self]))["params"][0])

    def non_embedding_params(self) -> int:
        """Parameters of the Transformer layers (attention, FFN, their biases and LayerNorms):
        the capacity that costs latency, unlike the embedding table."""
        return int(cost_terms(archs_to_array([self]))["layer_params"][0])

    def macs(self, seq_len: int = 128) -> int:
        """Multiply-accumulates of one forward pass over ``seq_len`` tokens (batch 1)."""
        return int(cost_terms(archs_to_array([self]), seq_len)["total_macs"][0])


BERT_BASE = Arch(12, 768, 3072, 12, 768)  # the latency reference for every speedup
SUPERPLM_BASE = Arch(8, 768, 3072, 12, 768)  # the paper's SuperPLM
SUPERPLM_SMALL = Arch(4, 384, 1536, 6, 384)  # CPU-sized supernet for tests, demos, experiments
SUPERPLM_MINILM = Arch(6, 384, 1536, 12, 384)  # the bundled MiniLM (`--init minilm`): heads of 32
SUPER_CONFIGS = {"base": SUPERPLM_BASE, "small": SUPERPLM_SMALL, "minilm": SUPERPLM_MINILM}


def archs_to_array(archs) -> np.ndarray:
    """Stack archs (Arch objects or strings) into an int64 array of shape (n, 5)."""
    rows = [(a if isinstance(a, Arch) else Arch.parse(a)).as_tuple() for a in archs]
    return np.asarray(rows, dtype=np.int64).reshape(len(rows), len(FIELDS))


def array_to_archs(array: np.ndarray) -> list[Arch]:
    return [Arch(*map(int, row)) for row in np.asarray(array).reshape(-1, len(FIELDS))]


def cost_terms(archs: np.ndarray, seq_len: int = 128) -> dict[str, np.ndarray]:
    """Analytic cost of each arch row (float64 arrays): MACs by part, parameters, bytes.

    MACs count the matrix products of one forward pass at batch 1; element-wise work
    (softmax, GELU, LayerNorm) is not a MAC. The pooler runs on the first token only.
    """
    a = np.asarray(archs, dtype=np.float64).reshape(-1, len(FIELDS))
    lt, dm, df, h, dqkv = (a[:, i] for i in range(len(FIELDS)))
    s = float(seq_len)
    qkv = lt * 3 * s * dm * dqkv  # Q, K, V projections
    attention = lt * 2 * s * s * dqkv  # scores Q K^T and context P V, summed over heads
    attn_out = lt * s * dqkv * dm  # output projection dqkv -> dm
    ffn = lt * 2 * s * dm * df  # two FFN matrices
    pooler = dm * dm
    embedding_params = (VOCAB_SIZE + MAX_POSITIONS + TYPE_VOCAB_SIZE) * dm + 2 * dm
    layer_params = 4 * dm * dqkv + 3 * dqkv + 2 * dm * df + df + 6 * dm
    params = embedding_params + lt * layer_params + dm * dm + dm
    return {
        "qkv_macs": qkv,
        "attention_macs": attention,
        "attn_out_macs": attn_out,
        "ffn_macs": ffn,
        "pooler_macs": pooler,
        "total_macs": qkv + attention + attn_out + ffn + pooler,
        "embedding_params": embedding_params,
        "layer_params": lt * layer_params,
        "params": params,
        "param_bytes": 4 * params,  # fp32
    }


def fast_rule_mask(archs: np.ndarray) -> np.ndarray:
    """Rows that satisfy the fast development rule for good shapes (PAPER.md, Sec. 4.4):
    1.6 dm <= df <= 1.9 dm and 0.7 dm <= dqkv <= dm."""
    a = np.asarray(archs).reshape(-1, len(FIELDS))
    dm, df, dqkv = a[:, 1], a[:, 2], a[:, 4]
    return (1.6 * dm <= df) & (df <= 1.9 * dm) & (0.7 * dm <= dqkv) & (dqkv <= dm)


@dataclass(frozen=True)
class IntRange:
    """Integers ``lo, lo+step, ..., hi``."""

    lo: int
    hi: int
    step: int = 1

    @cached_property
    def values(self) -> np.ndarray:
        return np.arange(self.lo, self.hi + 1, self.step, dtype=np.int64)

    def __len__(self) -> int:
        return (self.hi - self.lo) // self.step + 1

    def contains(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        return (x >= self.lo) & (x <= self.hi) & ((x - self.lo) % self.step == 0)

    def describe(self) -> str:
        return f"{self.lo}..{self.hi}" + (f" step {self.step}" if self.step != 1 else "")


MIN_HEAD_DIM_KD = 15  # kd strategy: 180 / 12 in the paper's space


@dataclass(frozen=True)
class SearchSpace:
    """A search space: a super-configuration plus a head strategy (``pretrain`` or ``kd``)."""

    strategy: str  # "pretrain": first h whole heads; "kd": all heads, first dims of each
    super_arch: Arch  # the SuperPLM every arch of the space is extracted from

    def __post_init__(self) -> None:
        if self.strategy not in ("pretrain", "kd"):
            raise ArchSpecError(f"unknown search space {self.strategy!r}", hint="use pretrain or kd")

    @property
    def name(self) -> str:
        return self.strategy

    @property
    def head_size(self) -> int:
        """Head size of the super-architecture; the pretrain strategy keeps it fixed."""
        return self.super_arch.head_size

    def tie_heads(self, archs: np.ndarray) -> np.ndarray:
        """Set ``dqkv = head_size * h`` in place where the strategy ties them (pretrain)."""
        if self.strategy == "pretrain":
            archs[:, 4] = self.head_size * archs[:, 3]
        return archs

    @cached_property
    def ranges(self) -> dict[str, IntRange]:
        s = self.super_arch
        if self.strategy == "pretrain":
            h = IntRange(1, s.h)
            dqkv = IntRange(self.head_size, self.head_size * s.h, self.head_size)
        else:
            h = IntRange(s.h, s.h)
            dqkv = IntRange(MIN_HEAD_DIM_KD * s.h, s.dqkv, s.h)
        return {
            "lt": IntRange(1, s.lt),
            "dm": IntRange(min(128, s.dm), s.dm, 4),  # narrower checkpoints: their own width
            "df": IntRange(min(128, s.df), s.df, 4),
            "h": h,
            "dqkv": dqkv,
        }

    @property
    def size(self) -> int:
        """Number of distinct architectures in the space."""
        r = self.ranges
        heads = len(r["h"]) if self.strategy == "pretrain" else len(r["dqkv"])
        return len(r["lt"]) * len(r["dm"]) * len(r["df"]) * heads

    @property
    def smallest(self) -> Arch:
        r = self.ranges
        return Arch(*(r[f].lo for f in FIELDS))

    @property
    def largest(self) -> Arch:
        return self.super_arch

    def describe(self) -> str:
        rule = f"= {self.head_size} h" if self.strategy == "pretrain" else self.ranges["dqkv"].describe()
        parts = [f"{f} {self.ranges[f].describe()}" for f in ("lt", "dm", "df", "h")]
        return f"{self.strategy} space of {self.super_arch}: " + ", ".join(parts) + f", dqkv {rule}"

    def violations(self, arch: Arch) -> list[str]:
        """The rules ``arch`` breaks, in words (empty when it is inside the space)."""
        broken = [
            f"{f}={getattr(arch, f)} not in {r.describe()}"
            for f, r in self.ranges.items()
            if not r.contains(getattr(arch, f))
        ]
        if self.strategy == "pretrain" and arch.dqkv != self.head_size * arch.h:
            broken.append(f"dqkv={arch.dqkv} must equal {self.head_size}*h={self.head_size * arch.h}")
        return broken

    def validate(self, arch: Arch | str) -> Arch:
        """Return ``arch`` as an :class:`Arch`, or raise :class:`ArchSpecError` naming the rule."""
        arch = arch if isinstance(arch, Arch) else Arch.parse(arch)
        broken = self.violations(arch)
        if broken:
            raise ArchSpecError(
                f"arch {arch} is outside the {self.strategy} space of {self.super_arch}: "
                + "; ".join(broken)
            )
        return arch

    def contains(self, arch: Arch) -> bool:
        return not self.violations(arch)

    def contains_array(self, archs: np.ndarray) -> np.ndarray:
        a = np.asarray(archs).reshape(-1, len(FIELDS))
        ok = np.ones(len(a), dtype=bool)
        for i, f in enumerate(FIELDS):
            ok &= self.ranges[f].contains(a[:, i])
        if self.strategy == "pretrain":
            ok &= a[:, 4] == self.head_size * a[:, 3]
        return ok

    def sample_array(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` archs drawn uniformly and independently, as an int64 array (n, 5)."""
        r = self.ranges
        out = np.empty((n, len(FIELDS)), dtype=np.int64)
        for i, f in enumerate(FIELDS):
            out[:, i] = rng.choice(r[f].values, size=n)
        return self.tie_heads(out)

    def sample(self, rng: np.random.Generator, n: int = 1) -> list[Arch]:
        return array_to_archs(self.sample_array(rng, n))

    def mutate(self, arch: Arch, rng: np.random.Generator, prob: float = 0.5) -> Arch:
        """Resample each gene with probability ``prob`` (heads and dqkv move together in
        the pretrain space, where dqkv follows h)."""
        genes = list(arch.as_tuple())
        fresh = self.sample_array(rng, 1)[0]
        for i, f in enumerate(FIELDS):
            if f == "dqkv" and self.strategy == "pretrain":
                continue
            if rng.random() < prob:
                genes[i] = int(fresh[i])
        if self.strategy == "pretrain":
            genes[4] = self.head_size * genes[3]
        return Arch(*genes)

    def mutate_array(self, archs: np.ndarray, rng: np.random.Generator, prob: float = 0.5):
        """Vectorised :meth:`mutate` over rows of an (n, 5) array."""
        a = np.array(archs, dtype=np.int64).reshape(-1, len(FIELDS))
        fresh = self.sample_array(rng, len(a))
        flip = rng.random(a.shape) < prob
        a[flip] = fresh[flip]
        return self.tie_heads(a)


def super_arch_of(super_config: str | Arch) -> Arch:
    """A named super-configuration (``base``, ``small``, ``minilm``) or an arch string."""
    if isinstance(super_config, Arch):
        return super_config
    if super_config in SUPER_CONFIGS:
        return SUPER_CONFIGS[super_config]
    if _ARCH_RE.match(str(super_config)):
        return Arch.parse(super_config)
    raise ArchSpecError(f"unknown super-configuration {super_config!r}",
                        hint=f"use one of: {', '.join(SUPER_CONFIGS)}, or an arch lt-dm-df-h-dqkv")


def super_config_name(super_arch: Arch) -> str:
    """The name of a super-architecture among :data:`SUPER_CONFIGS`, else its arch string."""
    return next((n for n, a in SUPER_CONFIGS.items() if a == super_arch), str(super_arch))


def get_space(name: str = "pretrain", super_config: str | Arch = "base") -> SearchSpace:
    """The space (``pretrain`` or ``kd``) of a super-configuration: a name among
    :data:`SUPER_CONFIGS` or an arch string such as ``6-384-1536-12-384``."""
    return SearchSpace(name, super_arch_of(super_config))
