"""Honest accuracy figures for a latency predictor (what users asked HAT for).

Two families, always reported together:

* latency (ms): how close predicted milliseconds are to measured ones. Labels from another
  profiling session carry that session's drift (BERT-base itself was 8 % slower in one
  workspace than in another, minutes apart), so these errors include it.
* speedup over BERT-base: predicted ``bert_base_ms / latency`` against the labels' speedup
  (both latencies from the same session). This is what the search constrains, and it is free
  of session drift.

All relative figures are fractions in 0..1: ``mape`` 0.021 means 2.1 %.
"""

from __future__ import annotations

import numpy as np

from atb.errors import PredictorError

METRIC_KEYS = ("n", "rmse_ms", "mape", "within_5", "within_10", "kendall_tau", "spearman_rho")
SPEEDUP_KEYS = ("speedup_mape", "speedup_within_5", "speedup_within_10", "speedup_kendall_tau")
PREDICTION_KEYS = METRIC_KEYS + SPEEDUP_KEYS  # what prediction_metrics returns, in order


def _checked(predicted, measured, what: str) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(predicted, dtype=np.float64).ravel()
    true = np.asarray(measured, dtype=np.float64).ravel()
    if pred.shape != true.shape:
        raise PredictorError(f"{len(pred)} predicted {what} for {len(true)} measured ones")
    if len(true) == 0:
        raise PredictorError("no measurements to evaluate on")
    if not (np.isfinite(true).all() and (true > 0).all()):
        raise PredictorError(f"measured {what} must be finite and positive")
    return pred, true


def _ranks_defined(pred: np.ndarray, true: np.ndarray) -> bool:
    """Rank correlations need two points and some spread on both sides."""
    return len(true) > 1 and np.ptp(true) > 0 and np.ptp(pred) > 0


def _relative(pred: np.ndarray, true: np.ndarray) -> dict:
    """MAPE, share within ±5 % / ±10 % and Kendall τ (scipy's tau-b, ties handled)."""
    from scipy.stats import kendalltau

    rel = np.abs(pred - true) / true
    return {
        "mape": float(rel.mean()),
        "within_5": float((rel <= 0.05).mean()),
        "within_10": float((rel <= 0.10).mean()),
        "kendall_tau": float(kendalltau(pred, true)[0]) if _ranks_defined(pred, true) else float("nan"),
    }


def latency_metrics(pred_ms, true_ms) -> dict:
    """RMSE (ms), MAPE, share within ±5 % / ±10 %, Kendall τ and Spearman ρ of predictions
    (keys :data:`METRIC_KEYS`)."""
    from scipy.stats import spearmanr

    pred, true = _checked(pred_ms, true_ms, "latencies")
    rel = _relative(pred, true)
    return {
        "n": int(len(true)),
        "rmse_ms": float(np.sqrt(np.mean((pred - true) ** 2))),
        **rel,
        "spearman_rho": float(spearmanr(pred, true)[0]) if _ranks_defined(pred, true) else float("nan"),
    }


def speedup_metrics(pred_speedup, true_speedup) -> dict:
    """MAPE, share within ±5 % / ±10 % and Kendall τ of predicted speedups over BERT-base
    (keys :data:`SPEEDUP_KEYS`)."""
    pred, true = _checked(pred_speedup, true_speedup, "speedups")
    return {f"speedup_{k}": v for k, v in _relative(pred, true).items()}


def prediction_metrics(pred_ms, true_ms, pred_speedup, true_speedup) -> dict:
    """Both families on one label set: :func:`latency_metrics` of the milliseconds and
    :func:`speedup_metrics` of the speedups (keys :data:`PREDICTION_KEYS`)."""
    return {**latency_metrics(pred_ms, true_ms), **speedup_metrics(pred_speedup, true_speedup)}
