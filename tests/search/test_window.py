import numpy as np
import pytest

from atb.arch import archs_to_array
from atb.errors import InfeasibleTargetError, UsageError
from atb.search import window as window_module
from atb.search.window import Window, check_feasible, diagonal_sample, sample_in_window

from tests.search.synthetic import SyntheticLatency


def test_window_edges_follow_the_stated_margins():
    w = Window.for_target(15)
    assert (w.lo, w.hi) == pytest.approx((15 * 1.02, 15 * 1.06))
    assert w.contains([15.3, 15.9]).all()
    assert not w.contains([15.29, 15.91, np.nan]).any()


@pytest.mark.parametrize("target", [1.0, 0.5, -3, float("nan"), float("inf")])
def test_target_must_exceed_one(target):
    with pytest.raises(UsageError):
        Window.for_target(target)


def test_infeasible_target_names_reachable_range(small_space, latency):
    rng = np.random.default_rng(0)
    with pytest.raises(InfeasibleTargetError) as exc:
        check_feasible(Window.for_target(500), small_space, latency, rng)
    msg = exc.value.one_line()
    assert "500x" in msg and "10.20x" in msg and "--target-speedup between" in msg
    with pytest.raises(InfeasibleTargetError):  # too slow: the small space is >= ~10x
        check_feasible(Window.for_target(3), small_space, latency, rng)
    slow, fast = check_feasible(Window.for_target(15), small_space, latency, rng)
    assert slow < 15 < fast


def test_sample_in_window_is_distinct_in_window_and_seeded(small_space, latency):
    w = Window.for_target(15)
    a, s = sample_in_window(small_space, latency, w, np.random.default_rng(1), 50)
    assert len(a) == 50 and len({tuple(r) for r in a}) == 50
    assert w.contains(s).all() and w.contains(latency.predict_speedup(a)).all()
    assert small_space.contains_array(a).all()
    b, _ = sample_in_window(small_space, latency, w, np.random.default_rng(1), 50)
    assert (a == b).all()


def test_sample_in_window_respects_exclude(small_space, latency):
    w = Window.for_target(15)
    a, _ = sample_in_window(small_space, latency, w, np.random.default_rng(2), 20)
    excl = {"-".join(map(str, r)) for r in a}
    b, _ = sample_in_window(small_space, latency, w, np.random.default_rng(2), 20, exclude=excl)
    assert not excl & {"-".join(map(str, r)) for r in b}


def test_sampling_is_bounded_when_nothing_fits(small_space, monkeypatch):
    class Never(SyntheticLatency):
        def predict_speedup(self, archs):
            self.calls += 1
            return np.full(len(archs), 2.0)

    lat = Never()
    monkeypatch.setattr(window_module, "MAX_DRAWS", 50_000)
    a, s = sample_in_window(small_space, lat, Window.for_target(15), np.random.default_rng(0), 10)
    assert len(a) == 0 and len(s) == 0
    assert lat.calls <= 10  # a handful of vectorised batches, never an endless loop


def test_extreme_window_reached_through_the_fallbacks(small_space, latency):
    # Near the fastest arch of the space uniform draws almost never land: the diagonal does.
    fastest = float(latency.predict_speedup(archs_to_array([small_space.smallest]))[0])
    w = Window.for_target(fastest / 1.05)
    a, s = sample_in_window(small_space, latency, w, np.random.default_rng(0), 5)
    assert len(a) >= 1 and w.contains(s).all()


def test_diagonal_sample_stays_in_space(small_space):
    d = diagonal_sample(small_space, np.random.default_rng(0), 1000)
    assert small_space.contains_array(d).all()
