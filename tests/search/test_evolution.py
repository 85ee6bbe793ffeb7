import numpy as np
import pytest

from atb.search.fitness_cache import Evaluator
from atb.search.evolution import EvolutionConfig, WindowSearch, evolve, roulette_select
from atb.search.window import Window

from tests.search.synthetic import SyntheticFitness


def test_roulette_is_proportional_to_shifted_fitness():
    rng = np.random.default_rng(0)
    f = np.array([1.0, 2.0, 5.0])  # weights f - 1 + 0.05 * 4 = 0.2, 1.2, 4.2
    counts = np.bincount(roulette_select(f, rng, 60_000), minlength=3) / 60_000
    assert counts == pytest.approx(np.array([0.2, 1.2, 4.2]) / 5.6, abs=0.01)


def test_roulette_handles_negative_equal_and_nan_fitness():
    rng = np.random.default_rng(0)
    neg = np.bincount(roulette_select(np.array([-10.0, -9.0]), rng, 20_000), minlength=2)
    assert neg[1] > 10 * neg[0]  # the better (less negative) one dominates
    eq = np.bincount(roulette_select(np.ones(4), rng, 40_000), minlength=4) / 40_000
    assert eq == pytest.approx(np.full(4, 0.25), abs=0.02)
    nan = roulette_select(np.array([np.nan, 1.0, 2.0]), rng, 1000)
    assert 0 not in nan


def run(space, latency, seed, cfg=None, target=15):
    ev = Evaluator(SyntheticFitness(space), latency)
    gens = evolve(WindowSearch(space, latency, ev, Window.for_target(target), np.random.default_rng(seed)), cfg)
    return gens, ev


def test_algorithm2_defaults_generations_population_window(small_space, latency):
    gens, ev = run(small_space, latency, 0)
    assert [g.index for g in gens] == [0, 1, 2, 3]  # T = 4
    w = Window.for_target(15)
    for g in gens:
        assert len(g.archs) == 25  # S = 25
        assert w.contains(latency.predict_speedup(g.archs)).all()
        assert small_space.contains_array(g.archs).all()
    assert len(ev) == 100  # every generation spends its evaluations on new archs


def test_seeds_reproduce_and_differ(small_space, latency):
    a, _ = run(small_space, latency, 7)
    b, _ = run(small_space, latency, 7)
    c, _ = run(small_space, latency, 8)
    assert all((x.archs == y.archs).all() for x, y in zip(a, b))
    assert not all((x.archs == y.archs).all() for x, y in zip(a, c))


def _mean_distance_to_parents(gens):
    d = []
    for parent, child in zip(gens, gens[1:]):
        diff = (child.archs[:, None, :4] != parent.archs[None, :, :4]).sum(axis=2)
        d.append(diff.min(axis=1).mean())
    return float(np.mean(d))


def test_mutation_stays_near_parents_and_exploration_does_not(small_space, latency):
    mutate_only, _ = run(small_space, latency, 0, EvolutionConfig(4, 25, mutation_prob=0.25, explore_prob=0.0))
    explore_only, _ = run(small_space, latency, 0, EvolutionConfig(4, 25, mutation_prob=0.25, explore_prob=1.0))
    assert _mean_distance_to_parents(mutate_only) < _mean_distance_to_parents(explore_only) - 0.25


def test_evaluations_are_cached(small_space, latency):
    fit = SyntheticFitness(small_space)
    ev = Evaluator(fit, latency)
    rows = small_space.sample_array(np.random.default_rng(0), 5)
    first = ev.evaluate(rows)
    again = ev.evaluate(np.concatenate([rows, rows]))
    assert (again[:5] == first).all() and len(fit.evaluated) == 5
