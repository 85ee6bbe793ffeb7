"""The interface every latency model family implements.

Every model maps an (n, 5) architecture array to **log latency in ms**, keeps its parameters
as plain numpy arrays (``arrays()`` / ``from_arrays``) plus a JSON-able ``config``, and
predicts with vectorised numpy only, so an artefact is JSON + npz and never a pickle. Its own
module so the families (:mod:`.analytic`, :mod:`.gbt`, :mod:`.mlp`, :mod:`.head`) and the
registry over them (:mod:`.models`) import it without a circle.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np


class LatencyModel(ABC):
    """One model family. Subclasses set ``kind`` and implement fit / predict / arrays."""

    kind: ClassVar[str]

    def __init__(self, seq_len: int = 128, config: dict | None = None):
        # config: the family's hyper-parameters, its constructor's keywords (describe() lists them)
        self.seq_len = int(seq_len)
        self.config = dict(config or {})

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
    def from_arrays(cls, describe: dict, arrays: dict[str, np.ndarray], load=None) -> "LatencyModel":
        """Inverse of :meth:`describe` and :meth:`arrays`. ``load`` is the registry's
        ``model_from_arrays``, for a family that wraps a model of any kind (a family cannot
        import the registry that lists it)."""
        config = {k: v for k, v in describe.items() if k not in ("kind", "seq_len")}
        model = cls(seq_len=describe.get("seq_len", 128), **config)
        model._load_arrays(arrays)
        return model
