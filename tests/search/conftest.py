"""Fixtures of the search tests (synthetic latency and fitness, see synthetic.py)."""

import pytest

from atb.arch import get_space
from tests.search.synthetic import SyntheticFitness, SyntheticLatency


@pytest.fixture
def small_space():
    return get_space("pretrain", "small")


@pytest.fixture
def latency():
    return SyntheticLatency()


@pytest.fixture
def fitness(small_space):
    return SyntheticFitness(small_space)
