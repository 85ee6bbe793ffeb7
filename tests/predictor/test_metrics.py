import numpy as np
import pytest

from atb.errors import PredictorError
from atb.predictor.metrics import METRIC_KEYS, latency_metrics


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
