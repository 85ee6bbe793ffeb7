"""The artefact: JSON + npz, no pickles, refuses other device keys unless asked."""

import json
import zipfile

import numpy as np
import pytest

from atb.errors import DeviceKeyMismatchError, MissingInputError, PredictorError
from atb.predictor import LatencyPredictor
from atb.predictor.artefact import artefact_name
from atb.predictor.features import FEATURE_NAMES

from .conftest import KEY, OTHER_KEY


@pytest.fixture
def saved(predictor, tmp_path):
    return predictor.save(tmp_path / "p.json")


def test_round_trip_predicts_identically(predictor, saved, labels):
    again = LatencyPredictor.load(saved)
    np.testing.assert_array_equal(again.predict_ms(labels.archs), predictor.predict_ms(labels.archs))
    for kind, model in predictor.models.items():
        np.testing.assert_array_equal(again.models[kind].predict_log(labels.archs),
                                      model.predict_log(labels.archs))
    assert again.chosen == predictor.chosen and again.bert_base_ms == predictor.bert_base_ms
    np.testing.assert_array_equal(again.heldout["archs"], predictor.heldout["archs"])
    np.testing.assert_array_equal(again.heldout["measured_speedup"], predictor.heldout["measured_speedup"])
    assert again.metrics == pytest.approx(predictor.metrics)  # both metric families survive


def test_json_carries_provenance(saved, labels, predictor):
    doc = json.loads(saved.read_text())
    assert doc["device_key"] == KEY and doc["protocol_version"] == labels.protocol_version
    assert doc["space"] == {"strategy": "pretrain", "super_config": "base"}
    assert doc["training"]["hash"] == labels.content_hash()
    assert set(doc["cv_scores"]) == set(doc["models"]) and doc["chosen"] in doc["models"]
    assert doc["metrics"]["mape"] == pytest.approx(predictor.metrics["mape"])
    if doc["feature_normalisation"] is not None:
        assert doc["feature_normalisation"]["features"] == list(FEATURE_NAMES)
        assert len(doc["feature_normalisation"]["mean"]) == len(FEATURE_NAMES)


def test_arrays_are_plain_npy_without_pickles(saved):
    npz = saved.with_suffix(".npz")
    with np.load(npz, allow_pickle=False) as data:  # would raise on an object array
        assert all(data[k].dtype != object for k in data.files)
    with zipfile.ZipFile(npz) as z:
        assert all(name.endswith(".npy") for name in z.namelist())
    assert not list(saved.parent.glob("*.pkl"))


def test_other_device_key_is_refused_unless_allowed(saved):
    with pytest.raises(DeviceKeyMismatchError, match="fitted for device key"):
        LatencyPredictor.load(saved, device_key=OTHER_KEY)
    pred = LatencyPredictor.load(saved, device_key=OTHER_KEY, allow_other_device=True)
    assert pred.device_key == KEY
    assert LatencyPredictor.load(saved, device_key=KEY).device_key == KEY


def test_tampered_or_missing_files_are_reported(saved, tmp_path):
    npz = saved.with_suffix(".npz")
    with pytest.raises(MissingInputError):
        LatencyPredictor.load(tmp_path / "none.json")
    npz.write_bytes(npz.read_bytes() + b"x")
    with pytest.raises(PredictorError, match="sha256"):
        LatencyPredictor.load(saved)
    npz.unlink()
    with pytest.raises(PredictorError, match="missing"):
        LatencyPredictor.load(saved)
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(PredictorError, match="cannot read"):
        LatencyPredictor.load(tmp_path / "junk.json")
    (tmp_path / "other.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(PredictorError, match="not an atb"):
        LatencyPredictor.load(tmp_path / "other.json")


def test_newer_format_is_refused(saved):
    doc = json.loads(saved.read_text())
    doc["format_version"] = 99
    saved.write_text(json.dumps(doc))
    with pytest.raises(PredictorError, match="format version"):
        LatencyPredictor.load(saved)


def test_artefact_names_are_safe_file_names():
    assert artefact_name("cpu/ort t2:x") == "cpu_ort_t2_x.json"
