import numpy as np

from atb.profiler.timing import Measurement, TimingRule, measure, measure_group, relative_standard_error


def _rule(**kw):
    base = dict(warmup_runs=3, warmup_s=0.0, min_runs=8, min_s=0.0, max_runs=20, max_s=10.0,
                target_rel_se=1.0, burst_s=0.0, reference_burst_s=0.0)
    return TimingRule(**{**base, **kw})


def test_measure_follows_the_rule():
    calls = []
    m = measure(lambda: calls.append(1), _rule())
    assert m.warmup_runs == 3
    assert 8 <= m.n <= 20
    assert len(calls) == m.warmup_runs + m.n
    assert m.target_met


def test_measure_stops_at_max_runs_when_precision_is_unreachable():
    m = measure(lambda: None, _rule(warmup_runs=1, min_runs=4, max_runs=12, target_rel_se=0.0))
    assert m.n == 12 and not m.target_met


def test_group_interleaves_every_model_with_the_reference():
    order = []
    runs = [lambda i=i: order.append(i) for i in range(3)]
    ms, ref = measure_group(runs, lambda: order.append("ref"), _rule(warmup_runs=0, min_runs=5, max_runs=5),
                            np.random.default_rng(0))
    assert [m.n for m in ms] == [5, 5, 5] and ref.n == 5
    # every round visits each model and the reference once: in 4 consecutive visits all appear
    for k in range(0, len(order), 4):
        assert sorted(map(str, order[k:k + 4])) == ["0", "1", "2", "ref"]
    for m in ms + [ref]:
        assert list(m.starts) == sorted(m.starts) and len(m.starts) == m.n


def test_statistics_derive_from_raw_times():
    m = Measurement(times=(0.001, 0.002, 0.003, 0.004, 0.100), starts=(10.0, 10.1, 10.2, 10.3, 10.4),
                    warmup_runs=1)
    assert m.median_ms == 3.0
    assert m.n == 5 and m.started_at == 10.0 and abs(m.finished_at - 10.5) < 1e-9
    assert m.noisy  # IQR 2 ms on a 3 ms median
    assert abs(m.timed_s - 0.11) < 1e-12
    assert set(m.summary()) >= {"median_ms", "p10_ms", "p90_ms", "iqr_ms", "mean_ms", "std_ms", "runs"}


def test_relative_standard_error_shrinks_with_more_runs():
    rng = np.random.default_rng(0)
    few = relative_standard_error(1.0 + 0.02 * rng.standard_normal(10))
    many = relative_standard_error(1.0 + 0.02 * rng.standard_normal(1000))
    assert many < few
    assert relative_standard_error(np.ones(3)) == float("inf")
