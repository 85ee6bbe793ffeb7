import numpy as np
import pytest

from atb.arch import get_space
from atb.errors import PredictorError
from atb.predictor import propose_uncertain
from atb.predictor.active import committee_spread
from atb.predictor.synthetic import synthetic_labels


@pytest.fixture(scope="module")
def candidates():
    return get_space().sample_array(np.random.default_rng(3), 500)


def test_proposals_are_distinct_valid_indices(labels, candidates):
    idx = propose_uncertain(labels.subset(np.arange(120)), candidates, 20, np.random.default_rng(0))
    assert idx.dtype == np.int64 and len(idx) == 20 == len(set(idx.tolist()))
    assert idx.min() >= 0 and idx.max() < len(candidates)


def test_committee_is_least_sure_outside_the_data(candidates):
    shallow = get_space().sample_array(np.random.default_rng(1), 150)
    shallow[:, 0] = np.minimum(shallow[:, 0], 3)  # measured only up to 3 layers
    spread = committee_spread(synthetic_labels(0, archs=shallow), candidates, members=4)
    deep = candidates[:, 0] >= 6
    assert spread[deep].mean() > 1.5 * spread[~deep & (candidates[:, 0] <= 3)].mean()


def test_cold_start_and_predictor_sources(labels, candidates, predictor):
    idx = propose_uncertain(labels.subset(np.arange(5)), candidates, 10, np.random.default_rng(0))
    assert len(set(idx.tolist())) == 10
    idx = propose_uncertain(predictor, candidates, 10, np.random.default_rng(0))
    assert len(set(idx.tolist())) == 10


def test_edge_cases(labels, candidates):
    rng = np.random.default_rng(0)
    assert len(propose_uncertain(labels, candidates[:3], 10, rng)) == 3
    assert len(propose_uncertain(labels, candidates, 0, rng)) == 0
    with pytest.raises(PredictorError):
        propose_uncertain(labels, candidates, -1, rng)
    with pytest.raises(PredictorError):
        propose_uncertain(object(), candidates, 3, rng)
    with pytest.raises(PredictorError):
        propose_uncertain(labels, candidates[:, :4], 3, rng)
