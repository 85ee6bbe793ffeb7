"""Features of an architecture for the latency models.

Raw dims plus the analytic costs of :func:`atb.arch.cost_terms` (MACs of the Q/K/V and output
projections, attention scores, FFN, pooler; embedding and total parameter bytes). Costs enter
in log space because latency spans two orders of magnitude across the space and the models fit
log latency (relative errors are what matter).

Normalisation (mean/std per column) is computed from the training data by
:class:`Normaliser` and stored in the artefact with the model, never hand-copied.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atb.arch import FIELDS, cost_terms
from atb.errors import PredictorError

FEATURE_NAMES = FIELDS + tuple(f"log_{f}" for f in FIELDS) + (
    "log_total_macs", "log_layer_macs", "log_attention_share", "log_param_bytes",
    "dm_aligned16", "df_aligned16",
)
# Why so few cost columns: every per-part MAC count of cost_terms (Q/K/V, scores, output
# projection, FFN, pooler) is a product of dims, so its log is a linear combination of the
# log dims above, which every model here can form itself. Only the sums need their own
# column: total MACs, MACs of one layer, the share of the seq^2 attention scores in a layer
# (what makes short and wide differ from long and thin), and parameter bytes. The alignment
# flags mark widths that fill whole 16-lane SIMD panels (GEMM kernels pack in such panels;
# dm and df move in steps of 4, dqkv in steps of 64 or of the head count).


def check_archs(archs) -> np.ndarray:
    """``archs`` as a float64 (n, 5) array, or :class:`PredictorError` saying what is wrong."""
    a = np.asarray(archs)
    if a.ndim == 1 and a.size == len(FIELDS):
        a = a.reshape(1, -1)
    if a.ndim != 2 or a.shape[1] != len(FIELDS):
        raise PredictorError(
            f"expected architectures as an (n, 5) array of {'-'.join(FIELDS)}, got shape {a.shape}"
        )
    if not np.issubdtype(a.dtype, np.number):
        raise PredictorError(f"architecture array must be numeric, got dtype {a.dtype}")
    a = a.astype(np.float64, copy=False)
    if a.size and not (np.isfinite(a).all() and (a >= 1).all()):
        raise PredictorError("architecture fields must be finite positive integers")
    return a


def make_features(archs, seq_len: int = 128) -> np.ndarray:
    """Feature matrix (n, len(FEATURE_NAMES)), float64, columns in FEATURE_NAMES order."""
    a = check_archs(archs)
    costs = cost_terms(a, seq_len)
    out = np.empty((len(a), len(FEATURE_NAMES)))
    out[:, :5] = a
    np.log(a, out=out[:, 5:10])
    layer = (costs["total_macs"] - costs["pooler_macs"]) / a[:, 0]
    out[:, 10] = np.log(costs["total_macs"])
    out[:, 11] = np.log(layer)
    out[:, 12] = np.log(costs["attention_macs"] / a[:, 0] / layer)
    out[:, 13] = np.log(costs["param_bytes"])
    out[:, 14] = a[:, 1] % 16 == 0
    out[:, 15] = a[:, 2] % 16 == 0
    return out


@dataclass
class Normaliser:
    """Per-column standardisation fitted on training features."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> "Normaliser":
        std = x.std(axis=0)
        # a column constant in the training set (e.g. h in the kd space) must not blow up
        std = np.where(std > 1e-12, std, 1.0)
        return cls(x.mean(axis=0), std)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std

    def arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        return {f"{prefix}norm_mean": self.mean, f"{prefix}norm_std": self.std}

    @classmethod
    def from_arrays(cls, arrays: dict, prefix: str = "") -> "Normaliser":
        return cls(np.asarray(arrays[f"{prefix}norm_mean"]), np.asarray(arrays[f"{prefix}norm_std"]))
