"""Latency model families behind one small interface, and the registry of them.

Every model maps an (n, 5) architecture array to **log latency in ms**, keeps its parameters
as plain numpy arrays (``arrays()`` / ``from_arrays``) plus a JSON-able ``config``, and
predicts with vectorised numpy only, so an artefact is JSON + npz and never a pickle.

This module holds the two analytic families; the learned ones live in :mod:`.gbt` and
:mod:`.mlp`, the few-shot head in :mod:`.transfer`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from atb.arch import cost_terms
from atb.errors import PredictorError
from atb.predictor.features import check_archs

_FLOOR_MS = 1e-4  # linear models can go negative far outside the data; log needs > 0


class LatencyModel(ABC):
    """One model family. Subclasses set ``kind`` and implement fit / predict / arrays."""

    kind: ClassVar[str]

    def __init__(self, seq_len: int = 128, **config):
        self.seq_len = int(seq_len)
        self.config = dict(config)

    @abstractmethod
    def fit(self, archs: np.ndarray, log_ms: np.ndarray, rng: np.random.Generator) -> "LatencyModel":
        """Fit on archs (n, 5) and their log latency; returns self."""

    @abstractmethod
    def predict_log(self, archs: np.ndarray) -> np.ndarray:
        """Log latency (ms) of each row, float64 (n,)."""

    @abstractmethod
    def arrays(self) -> dict[str, np.ndarray]:
        """Fitted parameters as named numpy arrays."""

    @abstractmethod
    def _load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Inverse of :meth:`arrays`."""

    def describe(self) -> dict:
        """JSON-able description: kind, seq_len, hyper-parameters."""
        return {"kind": self.kind, "seq_len": self.seq_len, **self.config}

    @classmethod
    def from_arrays(cls, describe: dict, arrays: dict[str, np.ndarray]) -> "LatencyModel":
        config = {k: v for k, v in describe.items() if k not in ("kind", "seq_len")}
        model = cls(seq_len=describe.get("seq_len", 128), **config)
        model._load_arrays(arrays)
        return model


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



def model_classes() -> dict[str, type[LatencyModel]]:
    """Every model family by ``kind`` (imports the learned ones lazily: sklearn is heavy)."""
    from atb.predictor.gbt import GradientBoostedTrees
    from atb.predictor.mlp import MLP, HybridMLP
    from atb.predictor.transfer import TransferHead

    classes = (FlopsLinear, AdditiveLayers, GradientBoostedTrees, MLP, HybridMLP, TransferHead)
    return {c.kind: c for c in classes}


CANDIDATE_KINDS = ("flops_linear", "additive", "gbt", "mlp", "hybrid")  # compared by CV


def make_model(kind: str, seq_len: int = 128, **config) -> LatencyModel:
    classes = model_classes()
    if kind not in classes:
        raise PredictorError(f"unknown model kind {kind!r}", hint="use one of: " + ", ".join(classes))
    return classes[kind](seq_len=seq_len, **config)


def model_from_arrays(describe: dict, arrays: dict[str, np.ndarray]) -> LatencyModel:
    classes = model_classes()
    kind = describe.get("kind")
    if kind not in classes:
        raise PredictorError(f"artefact names an unknown model kind {kind!r}")
    try:
        return classes[kind].from_arrays(describe, arrays)
    except KeyError as exc:
        raise PredictorError(f"artefact lacks array {exc} of its {kind} model") from exc
