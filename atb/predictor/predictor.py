"""The fitted latency predictor the search calls: one device key, one chosen model.

A :class:`LatencyPredictor` predicts latency (ms) and speedup over BERT-base for batches of
architectures with vectorised numpy. It carries everything needed to trust or refuse it:
device key, search space, profiler protocol version, training-set hash, every model's
cross-validation and held-out scores. Persistence is in :mod:`atb.predictor.artefact`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from atb.arch import SearchSpace, get_space
from atb.predictor.artefact import predictor_fields, save_predictor
from atb.predictor.base import LatencyModel
from atb.predictor.features import check_archs

_BLOCK = 1 << 15  # rows per prediction block
# spaces tried when recording which space a training set lives in, smallest first
_SPACES = (("pretrain", "small"), ("kd", "small"), ("pretrain", "minilm"), ("kd", "minilm"),
           ("pretrain", "base"), ("kd", "base"))


def infer_space(archs: np.ndarray) -> dict | None:
    """The smallest known space holding every arch, as ``{"strategy", "super_config"}``."""
    for strategy, super_config in _SPACES:
        if get_space(strategy, super_config).contains_array(archs).all():
            return {"strategy": strategy, "super_config": super_config}
    return None


@dataclass
class LatencyPredictor:
    """Latency (ms) and speedup predictions for one device key."""

    device_key: str
    model: LatencyModel  # the chosen model
    bert_base_ms: float  # Lat(BERT-base) on this device key: speedup = bert_base_ms / latency
    protocol_version: int = 0  # profiler measurement protocol the labels were taken with
    space_info: dict | None = None  # {"strategy", "super_config"} of the training archs
    seq_len: int = 128
    chosen: str = ""  # kind of the chosen model
    models: dict[str, LatencyModel] = field(default_factory=dict)  # every fitted family
    cv_scores: dict[str, dict] = field(default_factory=dict)  # kind -> cross-validation metrics
    heldout_metrics: dict[str, dict] = field(default_factory=dict)  # kind -> held-out metrics
    metrics: dict = field(default_factory=dict)  # held-out metrics of the chosen model
    training: dict = field(default_factory=dict)  # hash, n, n_train, n_test, seed, source
    heldout: dict[str, np.ndarray] = field(default_factory=dict)  # archs, measured_ms
    transfer: dict | None = None  # base device key etc. when fitted by few-shot transfer
    store_last_modified: float | None = None  # store time the labels were read at
    created_at: float = 0.0
    path: Path | None = None  # where it was loaded from / saved to

    def reanchored(self, bert_base_ms: float) -> "LatencyPredictor":
        """The same predictor with speedups over ``bert_base_ms``: latencies are predicted on the
        device key's fixed scale, and protocol 4 pools the key's BERT-base anchor over every
        run, so a later run moves every label's speedup and a predictor follows it."""
        return replace(self, bert_base_ms=float(bert_base_ms))

    @property
    def space(self) -> SearchSpace | None:
        if not self.space_info:
            return None
        return get_space(self.space_info["strategy"], self.space_info["super_config"])

    def predict_log_ms(self, archs) -> np.ndarray:
        """Log of the predicted latency (ms); rows are processed in blocks of ``_BLOCK`` so
        memory stays bounded (and cache-resident) for millions of candidates."""
        a = check_archs(archs)
        if len(a) <= _BLOCK:
            return self.model.predict_log(a)
        out = np.empty(len(a))
        for start in range(0, len(a), _BLOCK):
            out[start:start + _BLOCK] = self.model.predict_log(a[start:start + _BLOCK])
        return out

    def predict_ms(self, archs) -> np.ndarray:
        """Predicted latency in ms of each row of an (n, 5) arch array."""
        return np.exp(self.predict_log_ms(archs))

    def predict_speedup(self, archs) -> np.ndarray:
        """Predicted speedup over BERT-base (= bert_base_ms / predicted latency)."""
        return self.bert_base_ms * np.exp(-self.predict_log_ms(archs))

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (JSON) and its arrays next to it (same name, ``.npz``)."""
        return save_predictor(self, path)

    @classmethod
    def load(cls, path: str | Path, device_key: str | None = None,
             allow_other_device: bool = False) -> "LatencyPredictor":
        """Load an artefact; refuse it for another ``device_key`` unless ``allow_other_device``."""
        return cls(**predictor_fields(path, device_key=device_key, allow_other_device=allow_other_device))

    def summary(self) -> dict:
        """JSON-able summary for CLIs and logs."""
        return {
            "device_key": self.device_key,
            "chosen": self.chosen,
            "space": self.space_info,
            "protocol_version": self.protocol_version,
            "bert_base_ms": self.bert_base_ms,
            "training": self.training,
            "metrics": self.metrics,
            "cv_scores": self.cv_scores,
            "heldout_metrics": self.heldout_metrics,
            "transfer": self.transfer,
            "path": str(self.path) if self.path else None,
        }
