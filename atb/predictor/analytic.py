"""The analytic latency model families: linear in operator costs, fitted on relative error.

``flops_linear`` is the baseline a FLOPs proxy assumes; ``additive`` is the lookup-table idea
of nn-Meter with the table replaced by operator costs. Both are the cheapest to predict, and
``hybrid`` (:mod:`.mlp`) uses ``additive`` as its prior.
"""

from __future__ import annotations

import numpy as np

from atb.arch import cost_terms
from atb.predictor.base import LatencyModel
from atb.predictor.features import check_archs

_FLOOR_MS = 1e-4  # linear models can go negative far outside the data; log needs > 0


def _weighted_lstsq(basis: np.ndarray, y_ms: np.ndarray, ridge: float = 1e-8) -> np.ndarray:
    """Least squares of relative errors: rows weighted by 1/y so a 1 ms miss on a 2 ms model
    counts as much as 50 ms on a 100 ms one. Columns scaled for conditioning."""
    w = 1.0 / y_ms
    a = basis * w[:, None]
    scale = np.sqrt((a * a).mean(axis=0)) + 1e-300
    a = a / scale
    gram = a.T @ a + ridge * len(a) * np.eye(a.shape[1])
    coef = np.linalg.solve(gram, a.T @ (y_ms * w))
    return coef / scale


class _LinearInBasis(LatencyModel):
    """Latency linear in a basis of operator costs, fitted on relative error."""

    ridge = 1e-8  # relative, for conditioning only

    def _basis(self, archs) -> np.ndarray:
        raise NotImplementedError

    def fit(self, archs, log_ms, rng):
        self.coef = _weighted_lstsq(self._basis(archs), np.exp(log_ms), ridge=self.ridge)
        return self

    def predict_log(self, archs):
        return np.log(np.maximum(self._basis(archs) @ self.coef, _FLOOR_MS))

    def arrays(self):
        return {"coef": self.coef}

    def _load_arrays(self, arrays):
        self.coef = np.asarray(arrays["coef"], dtype=np.float64)


class FlopsLinear(_LinearInBasis):
    """Baseline: latency = c0 + c1 * total MACs (what a FLOPs proxy assumes)."""

    kind = "flops_linear"

    def _basis(self, archs):
        macs = cost_terms(check_archs(archs), self.seq_len)["total_macs"]
        return np.stack([np.ones_like(macs), macs], axis=1)


class AdditiveLayers(_LinearInBasis):
    """Additive per-layer model: latency = emb(dm) + lt * layer(dm, df, h, dqkv).

    Both parts are linear in a small basis of the operator costs a layer runs (Q/K/V and
    output GEMMs, FFN GEMMs, scores and softmax per head, element-wise work per width, a
    constant dispatch cost), fitted on relative error. It is the lookup-table idea of
    nn-Meter with the table replaced by operator costs, so it needs no grid of measured dims.
    """

    kind = "additive"
    ridge = 1e-9

    def _basis(self, archs):
        a = check_archs(archs)
        lt, dm, df, h, dqkv = a.T
        s = float(self.seq_len)
        one = np.ones_like(lt)
        emb = [one, dm * s, dm * dm]  # launch, gather + LayerNorm, pooler
        layer = [one, s * dm * dqkv, s * dm * df, s * s * dqkv, s * s * h,
                 s * dm, s * df, s * dqkv, h]
        return np.stack(emb + [lt * x for x in layer], axis=1)
