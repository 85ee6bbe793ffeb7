import dataclasses

import numpy as np
import pytest

from atb.errors import DeviceKeyMismatchError, PredictorError
from atb.predictor import evaluate_predictor, fit_predictor, session_check
from atb.predictor.fit import FitConfig, choose_kind, group_folds, seq_len_from_key
from atb.predictor.metrics import PREDICTION_KEYS, SPEEDUP_KEYS
from atb.predictor.models import CANDIDATE_KINDS

from .conftest import KEY, another_session


def test_selection_records_every_model_and_picks_by_cv_mape(predictor):
    assert set(predictor.cv_scores) == set(CANDIDATE_KINDS) == set(predictor.heldout_metrics)
    best = min(v["mape"] for v in predictor.cv_scores.values())
    chosen = predictor.chosen
    assert predictor.cv_scores[chosen]["mape"] <= best * 1.02 and predictor.model is predictor.models[chosen]
    assert predictor.metrics == predictor.heldout_metrics[chosen]
    assert predictor.cv_scores["flops_linear"]["mape"] > predictor.cv_scores[chosen]["mape"]


def test_ties_go_to_the_cheaper_model():
    assert choose_kind({"gbt": {"mape": 0.0100}, "additive": {"mape": 0.0101}}) == "additive"
    assert choose_kind({"gbt": {"mape": 0.0100}, "additive": {"mape": 0.0110}}) == "gbt"
    assert choose_kind({"hybrid": {"mape": 0.02}, "mlp": {"mape": 0.02}}) == "mlp"


def test_held_out_archs_are_unseen(predictor, labels):
    assert predictor.training["n_train"] + predictor.training["n_test"] == len(labels)
    assert predictor.metrics["n"] == predictor.training["n_test"] > 0
    held = {tuple(r) for r in predictor.heldout["archs"]}
    in_held = sum(tuple(r) in held for r in labels.archs)
    assert in_held == predictor.training["n_test"]  # no training row shares a held-out arch


def test_predictor_meets_accuracy_on_synthetic_labels(predictor):
    m = predictor.metrics
    assert m["within_10"] >= 0.99 and m["within_5"] >= 0.95
    assert m["mape"] <= 0.025 and m["kendall_tau"] >= 0.95


def test_predict_latency_and_speedup(predictor, labels):
    ms = predictor.predict_ms(labels.archs)
    np.testing.assert_allclose(predictor.predict_speedup(labels.archs), labels.bert_base_ms / ms)
    assert predictor.space.name == "pretrain"
    assert predictor.seq_len == 128 and predictor.device_key == KEY


def test_evaluate_predictor_keys_and_refusal(predictor, labels, other_labels):
    m = evaluate_predictor(predictor, labels)
    assert tuple(m) == PREDICTION_KEYS and m["n"] == len(labels)
    with pytest.raises(DeviceKeyMismatchError):
        evaluate_predictor(predictor, other_labels)
    assert evaluate_predictor(predictor, other_labels, allow_other_device=True)["n"] == len(other_labels)


def test_repeated_archs_share_a_fold():
    archs = np.array([[1, 128, 128, 1, 64]] * 5 + [[2, 128, 128, 1, 64]] * 5)
    fold = group_folds(archs, 2, np.random.default_rng(0))
    assert len(set(fold[:5])) == 1 and len(set(fold[5:])) == 1


def test_too_few_or_bad_labels_are_refused(labels):
    with pytest.raises(PredictorError, match="too few"):
        fit_predictor(labels.subset(np.arange(10)))
    with pytest.raises(PredictorError, match="unknown model kinds"):
        fit_predictor(labels, FitConfig(kinds=("forest",)))
    bad = labels.subset(np.arange(50))
    bad.latency_ms[3] = -1.0
    with pytest.raises(PredictorError, match="non-positive"):
        fit_predictor(bad, FitConfig(kinds=("additive",)))


def test_single_kind_fit_skips_cross_validation(labels):
    pred = fit_predictor(labels, FitConfig(kinds=("additive",)))
    assert pred.chosen == "additive" and pred.cv_scores == {}


def test_seq_len_is_read_from_the_device_key():
    assert seq_len_from_key("cpu-onnxruntime-t2-fp32-s256-b1-abcd") == 256
    assert seq_len_from_key("synthetic") == 128


def test_every_score_carries_both_families(predictor, labels):
    for scores in (predictor.cv_scores, predictor.heldout_metrics):
        for kind, m in scores.items():
            assert set(PREDICTION_KEYS) <= set(m), kind
    m = predictor.metrics
    assert m["speedup_mape"] <= 0.025 and m["speedup_kendall_tau"] >= 0.95
    np.testing.assert_allclose(predictor.heldout["measured_speedup"],  # synthetic: bert / latency
                               labels.bert_base_ms / predictor.heldout["measured_ms"])


def test_session_check_same_session(predictor, labels):
    s = session_check(predictor, labels)
    assert s["same_session"] and s["session_note"] is None and s["bert_base_shift"] == 0
    assert session_check(predictor, another_session(labels, 1.005))["same_session"]  # within 1 %


def test_another_session_shows_in_latency_errors_not_in_speedup_errors(predictor, labels):
    drifted = another_session(labels, 1.08)
    s = session_check(predictor, drifted)
    assert not s["same_session"] and "BERT-base" in s["session_note"] and "+8.0%" in s["session_note"]
    assert s["bert_base_shift"] == pytest.approx(0.08)
    here, there = evaluate_predictor(predictor, labels), evaluate_predictor(predictor, drifted)
    for key in SPEEDUP_KEYS:
        assert there[key] == pytest.approx(here[key])
    assert there["mape"] > here["mape"] + 0.04  # the 8 % drift lands in the latency error


def test_other_protocol_or_device_is_another_session(predictor, labels, other_labels):
    newer = dataclasses.replace(labels, protocol_version=labels.protocol_version + 1)
    assert "protocol" in session_check(predictor, newer)["session_note"]
    s = session_check(predictor, other_labels)
    assert not s["same_session"] and "device key" in s["session_note"]
