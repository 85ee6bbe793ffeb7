"""Shared fixtures: synthetic labels (no profiling) and one small fitted predictor."""

import dataclasses

import numpy as np
import pytest

from atb.predictor.fit import FitConfig, fit_predictor
from atb.predictor.synthetic import SyntheticDevice, synthetic_labels
from atb.profiler.labels import write_csv

KEY = "cpu-onnxruntime-t2-fp32-s128-b1-test0000"
OTHER_KEY = "cpu-onnxruntime-t1-fp32-s128-b1-test0000"
# small models: the tests check behaviour, not the accuracy ceiling
SMALL = {"gbt": {"n_estimators": 60, "max_depth": 3, "learning_rate": 0.2},
         "mlp": {"hidden": (16, 16), "max_iter": 150},
         "hybrid": {"hidden": (16, 16), "max_iter": 150}}


@pytest.fixture(scope="session")
def labels():
    return synthetic_labels(400, seed=1, device=SyntheticDevice(KEY))


@pytest.fixture(scope="session")
def other_labels():
    """A second 'device': slower compute and much larger fixed overheads."""
    return synthetic_labels(400, seed=7, device=SyntheticDevice(OTHER_KEY, speed=0.45, overhead=6.0))


@pytest.fixture(scope="session")
def predictor(labels):
    return fit_predictor(labels, FitConfig(folds=3, configs=SMALL, seed=0))


def labels_to_csv(labels, path):
    rows = [{"arch": a, "device_key": labels.device_key, "protocol_version": labels.protocol_version,
             "latency_ms": ms, "raw_ms": raw, "speedup": s, "bert_base_ms": labels.bert_base_ms,
             "source": "sampled"}  # synthetic labels stand in for sampled ones
            for a, ms, raw, s in zip(labels.arch_strings(), labels.latency_ms, labels.raw_ms,
                                     labels.speedup)]
    write_csv(rows, path)
    return path


def rel_errors(pred_ms, true_ms):
    return np.abs(np.asarray(pred_ms) - true_ms) / true_ms


def another_session(labels, factor=1.08):
    """The same archs as profiled in another session of the same device key: every latency,
    BERT-base's included, scaled by ``factor`` (that session's drift); speedups unchanged."""
    return dataclasses.replace(labels, latency_ms=labels.latency_ms * factor,
                               raw_ms=labels.raw_ms * factor, bert_base_ms=labels.bert_base_ms * factor)
