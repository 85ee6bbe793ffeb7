import numpy as np
import pytest

from atb.search.algorithm import SearchProblem
from atb.search.fitness_cache import Evaluator
from atb.search.pareto import hypervolume, nsga2_search, pareto_front, repair
from atb.search.window import Window

from tests.search.synthetic import SyntheticFitness


def test_front_of_a_known_set():
    pts = np.array([[1, 3], [2, 2], [3, 1], [1, 1], [2, 1], [2, 2], [0.5, 3], [np.nan, 9]])
    front = set(pareto_front(pts).tolist())
    assert front == {0, 1, 2, 5}  # (1,3), (2,2) twice, (3,1)
    assert pareto_front(pts)[0] == 2  # sorted by the first column, descending


def test_hypervolume_known_values():
    pts = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]])
    assert hypervolume(pts, [0, 0]) == pytest.approx(6.0)
    # dominated points and points not beyond the reference add nothing
    more = np.vstack([pts, [[1.0, 1.0], [5.0, -1.0]]])
    assert hypervolume(more, [0, 0]) == pytest.approx(6.0)
    assert hypervolume(pts, [1, 1]) == pytest.approx(1.0)  # only (2, 2) is beyond (1, 1)
    assert hypervolume(np.empty((0, 2)), [0, 0]) == 0.0


def test_hypervolume_three_objectives():
    assert hypervolume(np.array([[1.0, 2.0, 3.0]]), [0, 0, 0]) == pytest.approx(6.0)
    two = np.array([[2.0, 1.0, 1.0], [1.0, 2.0, 1.0]])
    assert hypervolume(two, [0, 0, 0]) == pytest.approx(2 + 2 - 1)


def test_hypervolume_matches_monte_carlo():
    rng = np.random.default_rng(0)
    pts = rng.random((30, 2))
    u = rng.random((200_000, 2))
    covered = (u[:, None, :] <= pts[None, :, :]).all(axis=2).any(axis=1).mean()
    assert hypervolume(pts, [0, 0]) == pytest.approx(covered, abs=0.01)


def test_repair_lands_in_a_window(small_space, latency):
    w = [Window.for_target(15)]
    row = np.array([1, 128, 128, 1, 64])
    fixed = repair(row, small_space, latency, w)
    if fixed is not None:
        assert w[0].contains([fixed[1]])[0] and (fixed[0] != row).sum() <= 2


def test_nsga2_evaluates_only_archs_in_the_windows(small_space, latency):
    windows = [Window.for_target(t) for t in (12, 20)]
    ev = Evaluator(SyntheticFitness(small_space), latency)
    problem = SearchProblem(small_space, latency, ev, windows, np.random.default_rng(0), None)
    nsga2_search(problem, n_evals=30, population=10, seed=0)
    assert len(ev) == 30
    s = np.array([r.predicted_speedup for r in ev.records.values()])
    inside = windows[0].contains(s) | windows[1].contains(s)
    assert inside.all() and windows[0].contains(s).any() and windows[1].contains(s).any()
