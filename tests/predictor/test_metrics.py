import numpy as np
import pytest

from atb.errors import PredictorError
from atb.predictor.metrics import (METRIC_KEYS, PREDICTION_KEYS, SPEEDUP_KEYS, latency_metrics,
                                   prediction_metrics, speedup_metrics)


def test_metrics_on_known_values():
    true = np.array([100.0, 110.0, 200.0, 400.0])
    pred = np.array([108.0, 105.6, 200.0, 500.0])  # +8 %, -4 %, 0 %, +25 %
    m = latency_metrics(pred, true)
    assert tuple(m) == METRIC_KEYS
    assert m["n"] == 4
    assert m["mape"] == pytest.approx((0.08 + 0.04 + 0.0 + 0.25) / 4)
    assert m["within_5"] == pytest.approx(0.5)
    assert m["within_10"] == pytest.approx(0.75)
    assert m["rmse_ms"] == pytest.approx(np.sqrt((8**2 + 4.4**2 + 0 + 100**2) / 4))
    assert m["kendall_tau"] == pytest.approx(4 / 6)  # one discordant pair of six
    assert m["spearman_rho"] == pytest.approx(0.8)  # ranks 2,1,3,4 vs 1,2,3,4


def test_perfect_predictions():
    true = np.array([1.0, 2.0, 3.0])
    m = latency_metrics(true, true)
    assert (m["mape"], m["rmse_ms"], m["within_5"], m["kendall_tau"]) == (0, 0, 1, pytest.approx(1))


@pytest.mark.parametrize("pred,true", [([1.0], [1.0, 2.0]), ([], []), ([1.0], [0.0]), ([1.0], [np.nan])])
def test_bad_inputs_are_refused(pred, true):
    with pytest.raises(PredictorError):
        latency_metrics(pred, true)


def test_speedup_metrics_on_known_values():
    true = np.array([2.0, 2.1, 4.0, 4.5])
    pred = true * np.array([1.08, 0.96, 1.0, 1.25])  # 2.16 > 2.016: the first pair is discordant
    m = speedup_metrics(pred, true)
    assert tuple(m) == SPEEDUP_KEYS
    assert m["speedup_mape"] == pytest.approx((0.08 + 0.04 + 0.0 + 0.25) / 4)
    assert m["speedup_within_5"] == pytest.approx(0.5)
    assert m["speedup_within_10"] == pytest.approx(0.75)
    assert m["speedup_kendall_tau"] == pytest.approx(4 / 6)


def test_latency_off_by_a_session_factor_but_speedups_exact():
    """A predictor fitted in a session 7 % slower than the labels' one: every latency is 7 %
    too high, and so is its BERT-base latency, so every predicted speedup is exact."""
    true_ms = np.array([10.0, 20.0, 40.0, 80.0])
    bert_ms = 100.0
    pred_ms, pred_bert_ms = 1.07 * true_ms, 1.07 * bert_ms
    m = prediction_metrics(pred_ms, true_ms, pred_bert_ms / pred_ms, bert_ms / true_ms)
    assert tuple(m) == PREDICTION_KEYS
    assert m["mape"] == pytest.approx(0.07)
    assert (m["within_5"], m["within_10"]) == (0.0, 1.0)
    assert m["speedup_mape"] == pytest.approx(0.0, abs=1e-12)
    assert (m["speedup_within_5"], m["speedup_within_10"]) == (1.0, 1.0)
    assert m["kendall_tau"] == pytest.approx(1) and m["speedup_kendall_tau"] == pytest.approx(1)


@pytest.mark.parametrize("pred,true", [([1.0], [1.0, 2.0]), ([1.0], [0.0]), ([1.0], [np.inf])])
def test_bad_speedups_are_refused(pred, true):
    with pytest.raises(PredictorError, match="speedup"):
        speedup_metrics(pred, true)
