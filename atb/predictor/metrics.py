"""Honest accuracy figures for a latency predictor (what users asked HAT for).

All relative figures are fractions in 0..1: ``mape`` 0.021 means 2.1 %.
"""

from __future__ import annotations

import numpy as np

from atb.errors import PredictorError

METRIC_KEYS = ("n", "rmse_ms", "mape", "within_5", "within_10", "kendall_tau", "spearman_rho")


def latency_metrics(pred_ms, true_ms) -> dict:
    """RMSE (ms), MAPE, share within ±5 % / ±10 %, Kendall τ and Spearman ρ of predictions."""
    from scipy.stats import kendalltau, spearmanr

    pred = np.asarray(pred_ms, dtype=np.float64).ravel()
    true = np.asarray(true_ms, dtype=np.float64).ravel()
    if pred.shape != true.shape:
        raise PredictorError(f"{len(pred)} predictions for {len(true)} measurements")
    if len(true) == 0:
        raise PredictorError("no measurements to evaluate on")
    if not (np.isfinite(true).all() and (true > 0).all()):
        raise PredictorError("measured latencies must be finite and positive")
    rel = np.abs(pred - true) / true
    rank_ok = len(true) > 1 and np.ptp(true) > 0 and np.ptp(pred) > 0
    return {
        "n": int(len(true)),
        "rmse_ms": float(np.sqrt(np.mean((pred - true) ** 2))),
        "mape": float(rel.mean()),
        "within_5": float((rel <= 0.05).mean()),
        "within_10": float((rel <= 0.10).mean()),
        "kendall_tau": float(kendalltau(pred, true)[0]) if rank_ok else float("nan"),
        "spearman_rho": float(spearmanr(pred, true)[0]) if rank_ok else float("nan"),
    }
