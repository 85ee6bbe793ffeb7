"""The ``transfer`` model family: a frozen base model plus a linear head on its log-residuals.

Latency on a new backend, thread count or machine is, to first order, the old latency
rescaled; what changes beyond that (fixed overheads, GEMM efficiency at small widths) is a
smooth function of the same features. So the new model is the old model plus a *head*
fitted on the log-residuals of a few dozen new samples. Three heads of growing capacity are
compared by exact leave-one-out error (closed form for ridge regression) and the best kept:

* ``shift``  new = old + c (a constant speed ratio);
* ``affine`` new = a + b * old (ratio that drifts with size);
* ``ridge``  affine plus a ridge term on the normalised features, λ chosen by LOO.
"""

from __future__ import annotations

import logging

import numpy as np

from atb.errors import PredictorError
from atb.predictor.base import LatencyModel
from atb.predictor.features import Normaliser, make_features

log = logging.getLogger("atb.predictor.transfer")  # what it logs is a transfer's choice

HEADS = ("shift", "affine", "ridge")
_LAMBDAS = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


def _design(head: str, base_log: np.ndarray, z: np.ndarray | None) -> np.ndarray:
    cols = [np.ones_like(base_log)]
    if head in ("affine", "ridge"):
        cols.append(base_log)
    out = np.stack(cols, axis=1)
    return np.hstack([out, z]) if head == "ridge" else out


def _ridge_loo(x: np.ndarray, y: np.ndarray, penalty: np.ndarray) -> tuple[np.ndarray, float]:
    """Coefficients and exact leave-one-out MSE of ridge regression (penalty per column)."""
    gram = x.T @ x + np.diag(penalty)
    inv = np.linalg.pinv(gram)
    coef = inv @ x.T @ y
    hat = np.einsum("ij,jk,ik->i", x, inv, x)
    loo = (y - x @ coef) / np.maximum(1.0 - hat, 1e-6)
    return coef, float(np.mean(loo**2))


class TransferHead(LatencyModel):
    """A base model (any family, frozen) plus a linear head on its log-residuals."""

    kind = "transfer"

    def __init__(self, seq_len: int = 128, head: str = "affine", lam: float = 0.0,
                 base: dict | None = None, loo_mse: dict | None = None):
        super().__init__(seq_len, {"head": head, "lam": lam, "base": base, "loo_mse": loo_mse or {}})
        self.base: LatencyModel | None = None

    def fit_head(self, base: LatencyModel, archs: np.ndarray, log_ms: np.ndarray) -> "TransferHead":
        """Freeze ``base`` and choose/fit the head on (archs, log_ms) by leave-one-out."""
        self.base = base
        self.config["base"] = base.describe()
        base_log = base.predict_log(archs)
        resid = log_ms - base_log
        x = make_features(archs, self.seq_len)
        self.norm = Normaliser.fit(x)
        z = self.norm(x)
        best = None
        scores = {}
        for head in HEADS:
            design = _design(head, base_log, z)
            if design.shape[1] >= len(archs):  # more unknowns than samples: LOO meaningless
                continue
            lams = _LAMBDAS if head == "ridge" else (1e-8,)
            for lam in lams:
                penalty = np.full(design.shape[1], lam)
                penalty[0] = 1e-8  # never shrink the intercept (the speed ratio)
                if head != "ridge":
                    penalty[:] = 1e-8
                coef, mse = _ridge_loo(design, resid, penalty)
                scores[f"{head}" + (f"@{lam:g}" if head == "ridge" else "")] = mse
                if best is None or mse < best[0]:
                    best = (mse, head, lam, coef)
        if best is None:
            raise PredictorError(f"transfer needs at least 2 new samples, got {len(archs)}")
        _, self.config["head"], self.config["lam"], self.coef = best
        self.config["loo_mse"] = scores
        log.info("transfer head %s (lambda %g) chosen by leave-one-out over %d samples",
                 self.config["head"], self.config["lam"], len(archs))
        return self

    def fit(self, archs, log_ms, rng):
        raise PredictorError("a transfer model is fitted with transfer(base, new_labels)")

    def predict_log(self, archs):
        base_log = self.base.predict_log(archs)
        z = self.norm(make_features(archs, self.seq_len)) if self.config["head"] == "ridge" else None
        return base_log + _design(self.config["head"], base_log, z) @ self.coef

    def arrays(self):
        out = {"coef": self.coef, **self.norm.arrays()}
        out.update({f"base.{k}": v for k, v in self.base.arrays().items()})
        return out

    def _load_arrays(self, arrays):
        self.coef = np.asarray(arrays["coef"], np.float64)
        self.norm = Normaliser.from_arrays(arrays)

    @classmethod
    def from_arrays(cls, describe, arrays, load=None):
        """The head from its arrays; the base model (any kind, ``base.``-prefixed arrays) by
        ``load``, the registry's ``model_from_arrays``."""
        head = super().from_arrays(describe, arrays)
        base_arrays = {k[5:]: v for k, v in arrays.items() if k.startswith("base.")}
        head.base = load(head.config["base"], base_arrays)
        return head
