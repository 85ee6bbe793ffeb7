import numpy as np
import pytest

from atb.errors import PredictorError
from atb.predictor import LatencyPredictor, evaluate_predictor, transfer


def test_transfer_from_50_samples_reaches_the_target(predictor, other_labels):
    new = transfer(predictor, other_labels.subset(np.arange(50)))
    assert new.device_key == other_labels.device_key
    assert new.bert_base_ms == other_labels.bert_base_ms
    assert new.transfer["base_device_key"] == predictor.device_key
    m = evaluate_predictor(new, other_labels.subset(np.arange(50, 400)))
    assert m["within_10"] >= 0.95
    # the untransferred predictor is far off on the new device (the test is not trivial)
    off = np.abs(predictor.predict_ms(other_labels.archs) / other_labels.latency_ms - 1)
    assert np.mean(off <= 0.10) < 0.5


def test_few_samples_choose_a_simple_head(predictor, other_labels):
    new = transfer(predictor, other_labels.subset(np.arange(5)))
    assert new.transfer["head"] in ("shift", "affine")


def test_transferred_predictor_round_trips(predictor, other_labels, tmp_path):
    new = transfer(predictor, other_labels.subset(np.arange(30)))
    path = new.save(tmp_path / "t.json")
    again = LatencyPredictor.load(path, device_key=other_labels.device_key)
    np.testing.assert_array_equal(again.predict_ms(other_labels.archs), new.predict_ms(other_labels.archs))
    assert again.chosen == "transfer"


def test_transfer_needs_samples(predictor, other_labels):
    with pytest.raises(PredictorError, match="at least 3"):
        transfer(predictor, other_labels.subset(np.arange(2)))
