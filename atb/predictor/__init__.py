"""Latency predictors: features, model families, metrics, portable artefacts, transfer and
active sampling (see docs/predictor.md). Re-exports only."""

from atb.predictor.active import propose_uncertain
from atb.predictor.auto import load_or_fit, predictor_path
from atb.predictor.fit import FitConfig, cross_validate, evaluate_predictor, fit_predictor, session_check
from atb.predictor.metrics import (METRIC_KEYS, PREDICTION_KEYS, SPEEDUP_KEYS, latency_metrics,
                                   prediction_metrics, speedup_metrics)
from atb.predictor.predictor import LatencyPredictor
from atb.predictor.few_shot import transfer

__all__ = [
    "LatencyPredictor", "FitConfig", "fit_predictor", "evaluate_predictor", "session_check", "cross_validate",
    "load_or_fit", "predictor_path", "transfer", "propose_uncertain", "latency_metrics",
    "speedup_metrics", "prediction_metrics", "METRIC_KEYS", "SPEEDUP_KEYS", "PREDICTION_KEYS",
]
