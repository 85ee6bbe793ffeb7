import numpy as np

from atb.profiler.timing import Measurement, TimingRule, measure, relative_standard_error


def test_measure_follows_the_rule():
    calls = []
    rule = TimingRule(warmup_runs=3, warmup_s=0.0, min_runs=8, min_s=0.0, max_runs=20, max_s=10.0,
                      target_rel_se=1.0)
    m = measure(lambda: calls.append(1), rule)
    assert m.warmup_runs == 3
    assert 8 <= m.n <= 20
    assert len(calls) == m.warmup_runs + m.n
    assert m.target_met


def test_measure_stops_at_max_runs_when_precision_is_unreachable():
    rule = TimingRule(warmup_runs=1, warmup_s=0.0, min_runs=4, min_s=0.0, max_runs=12, max_s=10.0,
                      target_rel_se=0.0)
    m = measure(lambda: None, rule)
    assert m.n == 12 and not m.target_met


def test_statistics_derive_from_raw_times():
    m = Measurement(times=(0.001, 0.002, 0.003, 0.004, 0.100), warmup_runs=1, started_at=10.0, finished_at=12.0)
    assert m.median_ms == 3.0
    assert m.n == 5 and m.midpoint == 11.0
    assert m.noisy  # IQR 2 ms on a 3 ms median
    assert abs(m.timed_s - 0.11) < 1e-12
    assert set(m.summary()) >= {"median_ms", "p10_ms", "p90_ms", "iqr_ms", "mean_ms", "std_ms", "runs"}


def test_relative_standard_error_shrinks_with_more_runs():
    rng = np.random.default_rng(0)
    few = relative_standard_error(1.0 + 0.02 * rng.standard_normal(10))
    many = relative_standard_error(1.0 + 0.02 * rng.standard_normal(1000))
    assert many < few
    assert relative_standard_error(np.ones(3)) == float("inf")
