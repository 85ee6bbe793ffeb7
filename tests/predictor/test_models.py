"""Every model family: fits synthetic latencies, round-trips through plain arrays."""

import numpy as np
import pytest

from atb.errors import PredictorError
from atb.predictor.models import CANDIDATE_KINDS, make_model, model_from_arrays

from .conftest import SMALL, rel_errors

# held-out MAPE each family must reach on 1 %-noise synthetic labels (small configs)
MAX_MAPE = {"flops_linear": 0.15, "additive": 0.04, "gbt": 0.08, "mlp": 0.05, "hybrid": 0.04}


@pytest.fixture(scope="module")
def split(labels):
    return labels.subset(np.arange(300)), labels.subset(np.arange(300, 400))


@pytest.fixture(scope="module")
def fitted(split):
    train, _ = split
    rng = np.random.default_rng(0)
    return {k: make_model(k, config=SMALL.get(k)).fit(train.archs, np.log(train.latency_ms), rng)
            for k in CANDIDATE_KINDS}


@pytest.mark.parametrize("kind", CANDIDATE_KINDS)
def test_model_fits_held_out_archs(kind, fitted, split):
    _, test = split
    pred = np.exp(fitted[kind].predict_log(test.archs))
    assert pred.shape == (len(test),)
    assert rel_errors(pred, test.latency_ms).mean() < MAX_MAPE[kind]


@pytest.mark.parametrize("kind", CANDIDATE_KINDS)
def test_model_round_trips_through_arrays(kind, fitted, split):
    model = fitted[kind]
    arrays = model.arrays()
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in arrays.values())
    again = model_from_arrays(model.describe(), {k: v.copy() for k, v in arrays.items()})
    np.testing.assert_array_equal(again.predict_log(split[1].archs), model.predict_log(split[1].archs))


def test_gbt_numpy_walk_matches_sklearn(split):
    from sklearn.ensemble import GradientBoostingRegressor

    from atb.predictor.gbt import GradientBoostedTrees

    train, test = split
    model = GradientBoostedTrees(n_estimators=30, max_depth=3)
    model.fit(train.archs, np.log(train.latency_ms), np.random.default_rng(0))
    from atb.predictor.features import make_features

    est = GradientBoostingRegressor(n_estimators=30, max_depth=3, init="zero", random_state=0)
    z = model.norm(make_features(train.archs))
    est.fit(z, np.log(train.latency_ms) - model.offset)
    model._from_sklearn(est)
    expect = est.predict(model.norm(make_features(test.archs))) + model.offset
    np.testing.assert_allclose(model.predict_log(test.archs), expect, rtol=1e-12, atol=1e-12)


def test_predictions_are_batched_and_order_preserving(fitted, split):
    archs = split[1].archs
    for model in fitted.values():
        whole = model.predict_log(archs)
        parts = np.concatenate([model.predict_log(archs[:7]), model.predict_log(archs[7:])])
        np.testing.assert_allclose(whole, parts, rtol=1e-6)


def test_unknown_kind_is_refused():
    with pytest.raises(PredictorError, match="unknown model kind"):
        make_model("forest")
    with pytest.raises(PredictorError):
        model_from_arrays({"kind": "forest"}, {})
    with pytest.raises(PredictorError, match="lacks array"):
        model_from_arrays({"kind": "additive", "seq_len": 128}, {})
