"""Synthetic latency labels with the shape of real CPU timings, for tests and benchmarks.

Real labels come from the profiler (``atb-profile``); these stand in where no measurement
should be needed (unit tests, ``bench/predictor.py --synthetic``). The model is deliberately
not one of the predictor's model families: per-layer launch overhead, matrix products whose
efficiency grows with their size and drops for widths that are not a multiple of 16 (SIMD
tails) and for weights that spill out of a 2 MiB cache, a softmax cost per head, an
embedding gather, plus multiplicative noise (1% by default, like drift-corrected labels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atb.arch import BERT_BASE, archs_to_array, cost_terms, get_space
from atb.profiler.labels import LabelSet


def synthetic_latency_ms(archs: np.ndarray, seq_len: int = 128, speed: float = 1.0,
                         overhead: float = 1.0) -> np.ndarray:
    """Noise-free latency in ms; ``speed`` scales compute, ``overhead`` the fixed costs
    (two knobs so that a second "device" is a different, not just rescaled, function)."""
    a = np.asarray(archs, dtype=np.float64).reshape(-1, 5)
    lt, dm, df, h, dqkv = a.T
    c = cost_terms(a, seq_len)
    s = float(seq_len)

    def gemm_ms(macs, width, weight_bytes=0.0):
        eff = width / (width + 96.0)  # small matrices use the vector units badly
        eff = eff * np.where(width % 16 == 0, 1.0, 0.93)  # SIMD tail
        eff = eff / (1.0 + 0.12 / (1.0 + np.exp(-(weight_bytes - 2**21) / 2**19)))  # cache spill
        return macs / (eff * 6e10 * speed) * 1e3

    layer_ms = (gemm_ms(c["qkv_macs"] + c["attn_out_macs"], dqkv, 16.0 * dm * dqkv)
                + gemm_ms(c["ffn_macs"], np.minimum(dm, df), 8.0 * dm * df)
                + gemm_ms(c["attention_macs"], dqkv / h) * 1.3
                + lt * h * s * s * 5e-7 / speed)  # softmax per head
    fixed = overhead * (0.06 + 0.018 * lt)  # graph launch + per-layer op dispatch
    embed = dm * s * 4e-7 / speed + c["pooler_macs"] / 6e10 * 1e3
    return fixed + layer_ms + embed


@dataclass(frozen=True)
class SyntheticDevice:
    """The device synthetic labels pretend to come from (:func:`synthetic_latency_ms`)."""

    device_key: str = "synthetic-cpu"
    seq_len: int = 128
    speed: float = 1.0  # scales the compute
    overhead: float = 1.0  # scales the fixed costs


def synthetic_labels(n: int, seed: int = 0, noise: float = 0.01,
                     device: SyntheticDevice = SyntheticDevice(), space: str = "pretrain",
                     archs: np.ndarray | None = None) -> LabelSet:
    """A :class:`LabelSet` of ``n`` archs sampled uniformly from ``space`` (or the given archs),
    timed on ``device`` with multiplicative ``noise``."""
    rng = np.random.default_rng(seed)
    if archs is None:
        archs = get_space(space).sample_array(rng, n)
    archs = np.asarray(archs, dtype=np.int64)
    timing = (device.seq_len, device.speed, device.overhead)
    true = synthetic_latency_ms(archs, *timing)
    latency = true * np.exp(rng.normal(0.0, noise, len(archs)))
    bert = float(synthetic_latency_ms(archs_to_array([BERT_BASE]), *timing)[0])
    return LabelSet(
        device_key=device.device_key,
        protocol_version=0,  # not timed by atb's profiler
        archs=archs,
        latency_ms=latency,
        speedup=bert / latency,
        raw_ms=latency * np.exp(rng.normal(0.0, 0.05, len(archs))),  # uncorrected drift
        bert_base_ms=bert,
        sources=np.array(["synthetic"] * len(archs), dtype=object),
    )
