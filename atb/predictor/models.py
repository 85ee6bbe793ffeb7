"""The registry of latency model families: every ``kind``, made or loaded by name.

The interface is :class:`~atb.predictor.base.LatencyModel`; the families live in
:mod:`.analytic` (``flops_linear``, ``additive``), :mod:`.gbt`, :mod:`.mlp` (``mlp``,
``hybrid``) and :mod:`.head` (``transfer``). scikit-learn, which fits the learned ones, is
imported only when they fit.
"""

from __future__ import annotations

import numpy as np

from atb.errors import PredictorError
from atb.predictor.analytic import AdditiveLayers, FlopsLinear
from atb.predictor.base import LatencyModel
from atb.predictor.gbt import GradientBoostedTrees
from atb.predictor.transfer_head import TransferHead
from atb.predictor.mlp import MLP, HybridMLP


def model_classes() -> dict[str, type[LatencyModel]]:
    """Every model family by ``kind``."""
    classes = (FlopsLinear, AdditiveLayers, GradientBoostedTrees, MLP, HybridMLP, TransferHead)
    return {c.kind: c for c in classes}


CANDIDATE_KINDS = ("flops_linear", "additive", "gbt", "mlp", "hybrid")  # compared by CV


def make_model(kind: str, seq_len: int = 128, config: dict | None = None) -> LatencyModel:
    """An unfitted model of ``kind``; ``config``: its hyper-parameters (the class's keywords)."""
    classes = model_classes()
    if kind not in classes:
        raise PredictorError(f"unknown model kind {kind!r}", hint="use one of: " + ", ".join(classes))
    return classes[kind](seq_len=seq_len, **(config or {}))


def model_from_arrays(describe: dict, arrays: dict[str, np.ndarray]) -> LatencyModel:
    classes = model_classes()
    kind = describe.get("kind")
    if kind not in classes:
        raise PredictorError(f"artefact names an unknown model kind {kind!r}")
    try:
        return classes[kind].from_arrays(describe, arrays, load=model_from_arrays)
    except KeyError as exc:
        raise PredictorError(f"artefact lacks array {exc} of its {kind} model") from exc
