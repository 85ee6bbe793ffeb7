"""Protocol 4: a pooled BERT-base anchor, sentinels in every run, and ``--samples auto``."""

import json

import numpy as np
import pytest

from atb.arch import get_space
from atb.profiler import drift
from atb.profiler.drift import anchor_estimate, corrected_rows
from atb.profiler.labels import LabelSet, write_csv
from atb.profiler.repeatability import (
    BETWEEN, WITHIN, Repeatability, mape_floor, noise_warning, repeatability, sentinel_count,
)
from atb.profiler.stopping import AutoStop, gain_threshold, plan_auto
from atb.profiler.store import LatencyStore
from atb.profiler.timing import PROTOCOL_VERSION
from tests.profiler.stores import KEY, add_record, add_run, measured
from tests.profiler.test_cli import run

ARCHS = {"2-128-512-2-128": 5.0, "3-256-1024-4-256": 10.0, "4-384-1536-6-384": 20.0}
BERT, REF = "12-768-3072-12-768", "4-512-2048-8-512"


def test_protocol_4_pools_the_anchor_over_every_run(tmp_path):
    with LatencyStore.open(tmp_path / "s.sqlite") as store:
        add_run(store, 1.0, 0, ARCHS)
        rid = add_run(store, 1.0, 100, ARCHS)
        # two of the second run's BERT-base points came out 20% slow (a slow mode)
        for t in (160, 170):
            add_record(store, rid, KEY, BERT, "bert_base", PROTOCOL_VERSION, measured(240, t))
        rows = corrected_rows(store, KEY)
        estimate = anchor_estimate(store, KEY, PROTOCOL_VERSION)
    bert = {r["bert_base_ms"] for r in rows}
    assert len(bert) == 1  # one anchor for every label of the key
    assert estimate.points == 6 and estimate.runs == 2
    assert estimate.ratio == pytest.approx(200 / 30, rel=1e-6)  # the median of the six points
    assert estimate.low <= estimate.ratio <= estimate.high and estimate.run_spread > 0
    by_run = {}
    for r in rows:
        by_run.setdefault(r["arch"], []).append(r["speedup"])
    assert all(a == pytest.approx(b) for a, b in by_run.values())  # same arch, same label in both runs


def test_older_protocols_keep_their_per_run_anchor(tmp_path):
    old = drift.POOLED_ANCHOR_SINCE - 1
    with LatencyStore.open(tmp_path / "s.sqlite") as store:
        add_run(store, 1.0, 0, ARCHS, protocol=old)
        rid = add_run(store, 1.0, 100, ARCHS, protocol=old)
        for t in (160, 170):
            add_record(store, rid, KEY, BERT, "bert_base", old, measured(240, t))
        rows = corrected_rows(store, KEY)
        assert anchor_estimate(store, KEY, PROTOCOL_VERSION) is None  # no protocol-4 run yet
    assert len({round(r["bert_base_ms"], 6) for r in rows}) == 2  # each run its own


def test_protocol_4_anchor_ignores_protocol_3_runs(tmp_path):
    with LatencyStore.open(tmp_path / "s.sqlite") as store:
        rid = add_run(store, 1.0, 0, ARCHS, protocol=PROTOCOL_VERSION - 1)
        add_record(store, rid, KEY, BERT, "bert_base", PROTOCOL_VERSION - 1, measured(400, 60))
        add_run(store, 1.0, 100, ARCHS)
        estimate = anchor_estimate(store, KEY, PROTOCOL_VERSION)
        labels = LabelSet.from_store(store, KEY)
    assert estimate.points == 2 and estimate.ratio == pytest.approx(200 / 30)
    assert labels.protocol_version == PROTOCOL_VERSION
    assert labels.speedup[0] == pytest.approx(200 / 5)


def _sentinel_store(path, retimed_ms: dict[str, float], same_run: bool = False):
    store = LatencyStore.open(path)
    rid = add_run(store, 1.0, 0, ARCHS)
    if not same_run:
        rid = add_run(store, 1.0, 100, {"1-128-128-1-64": 2.0})
    for i, (arch, ms) in enumerate(retimed_ms.items()):
        add_record(store, rid, KEY, arch, "sentinel", PROTOCOL_VERSION, measured(ms, 130 + i))
    return store, rid


def test_sentinels_read_back_as_repeatability_between_processes(tmp_path):
    store, rid = _sentinel_store(tmp_path / "s.sqlite", {"2-128-512-2-128": 5.5, "3-256-1024-4-256": 10.0})
    with store:
        rows = corrected_rows(store, KEY)
        labels = LabelSet.from_store(store, KEY)
    rep = repeatability(rows, rid)
    assert rep.scope == BETWEEN and rep.n == 2
    assert rep.median == pytest.approx((1 - 5 / 5.5) / 2, rel=1e-6)  # median of |−9.1%| and 0
    assert repeatability(rows, run_id=1) is None  # the first run re-timed nothing
    assert len(labels) == 4  # sentinel rows are never training labels


def test_sentinels_never_train_from_a_csv_either(tmp_path):
    store, _ = _sentinel_store(tmp_path / "s.sqlite", {"2-128-512-2-128": 5.5})
    with store:
        write_csv(corrected_rows(store, KEY), tmp_path / "labels.csv")
    assert len(LabelSet.from_csv(tmp_path / "labels.csv")) == 4


def test_a_first_run_says_its_figure_is_within_one_process(tmp_path):
    store, rid = _sentinel_store(tmp_path / "s.sqlite", {"4-384-1536-6-384": 21.0}, same_run=True)
    with store:
        rep = repeatability(corrected_rows(store, KEY), rid)
    assert rep.scope == WITHIN and rep.n == 1


def test_sentinels_cost_at_most_one_group_and_skip_small_runs():
    assert sentinel_count(9) == 0 and sentinel_count(49) == 0  # a search's verification run
    assert sentinel_count(50) == 2 and sentinel_count(100) == 4 and sentinel_count(10_000) == 12


def test_the_warning_line_names_what_the_run_could_see():
    noisy = Repeatability(0.05, 0.09, 4, BETWEEN)
    line = noise_warning(noisy, threads=2, cores=2, steal_share=0.04, noisy_share=0.7)
    assert line.count("\n") == 0 and "5.0%" in line
    assert "2 threads on 2 cores" in line and "stolen" in line and "bimodal" in line and "--threads 1" in line
    assert "--threads 1" not in noise_warning(noisy, threads=1, cores=2, steal_share=0.0, noisy_share=0.0)
    assert noise_warning(Repeatability(0.02, 0.04, 4, BETWEEN), 2, 2, 0.5, 1.0) is None
    assert noise_warning(None, 2, 2, 0.5, 1.0) is None
    assert mape_floor(0.02) == pytest.approx(0.0167, abs=1e-4)


class _Curve:
    """A synthetic learning curve: MAPE = floor + c / n."""

    def __init__(self, floor=0.015, c=1.0):
        self.floor, self.c, self.seen = floor, c, []

    def __call__(self, labels):
        n = labels
        self.seen.append(n)
        return self.floor + self.c / n, self.floor + self.c / (n / 2)


def _plan(state, curve, noise=None):
    space = get_space("pretrain", "small")
    taken = []
    for batch in plan_auto(space, 0, set(), state, observe=lambda: (len(taken), noise), gain=curve):
        taken.extend(batch)
    return taken


def test_samples_auto_stops_where_a_doubling_gains_less_than_the_threshold():
    # gain of a doubling = c / n: below 0.1 points once n > 1000 with c = 1
    state = AutoStop(floor=100, cap=10_000)
    taken = _plan(state, _Curve())
    assert len(set(map(str, taken))) == len(taken)  # distinct archs
    assert 1000 < len(taken) <= 1300 and "doubling" in state.reason
    assert all(c.gain >= c.threshold for c in state.checkpoints[:-1])
    assert state.checkpoints[-1].gain < state.checkpoints[-1].threshold
    # noisier labels raise the bar: 5% noise -> 0.25 points -> stops near 400
    noisy = AutoStop(floor=100, cap=10_000)
    assert 400 <= len(_plan(noisy, _Curve(), noise=0.05)) < 600
    assert gain_threshold(0.05) == pytest.approx(0.0025) and gain_threshold(None) == pytest.approx(0.001)


def test_samples_auto_stops_at_the_cap():
    state = AutoStop(floor=100, cap=250)
    assert len(_plan(state, _Curve(c=100.0))) == 250
    assert state.reason == "reached --max-samples 250" and json.dumps(state.to_dict())


def test_samples_auto_end_to_end_reports_why_it_stopped(tmp_path):
    ws = tmp_path / "ws"
    env = dict(ATB_LOCK_FILE=tmp_path / "lock", ATB_TIMING_RULE="smoke")
    args = ["--samples", "auto", "--max-samples", "60", "--threads", "1", "--super", "small",
            "--seq-len", "16", "--workspace", str(ws), "--json"]
    out = run(args, **env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["total"] == 60 and result["auto"]["reason"] == "reached --max-samples 60"
    # a first run of 60 archs re-timed 2 of its own: a figure within one process
    assert result["repeatability"]["scope"] == WITHIN and result["repeatability"]["n"] == 2
    assert result["anchor"]["points"] >= 2 and result["anchor"]["runs"] == 1
    # the next run re-times archs of the first: the figure spans processes
    out = run(["--samples", "110", "--threads", "1", "--super", "small", "--seq-len", "16",
               "--workspace", str(ws), "--json"], **env)
    assert out.returncode == 0, out.stderr
    again = json.loads(out.stdout)
    assert again["repeatability"]["scope"] == BETWEEN and again["repeatability"]["n"] == 2
    assert again["anchor"]["runs"] == 2
    with LatencyStore.open(ws / "latency.sqlite", readonly=True) as store:
        sentinels = [m for m in store.measurements() if m.role == "sentinel" and m.run_id == again["run_id"]]
        first = set(store.labelled_archs(again["device_key"])[:60])
    assert len(sentinels) == 2 and {m.arch for m in sentinels} <= first


@pytest.mark.parametrize("args,needle", [
    (["--samples", "lots"], "a number or 'auto'"),
    (["--samples", "auto", "--max-samples", "0"], "at least 1"),
    (["--samples", "10", "--max-samples", "50"], "goes with --samples auto"),
    (["--samples", "auto", "--strategy", "uncertainty"], "samples uniformly"),
])
def test_bad_auto_values_are_one_line_and_exit_2(args, needle, tmp_path):
    out = run(args + ["--workspace", str(tmp_path)], ATB_LOCK_FILE=tmp_path / "lock")
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and needle in out.stderr and "Traceback" not in out.stderr


def test_auto_reads_a_real_learning_curve():
    from atb.predictor.fit import learning_gain
    from atb.predictor.synthetic import synthetic_labels

    mape, mape_half = learning_gain(synthetic_labels(200))
    assert 0 < mape <= mape_half  # half the labels never help on average
    assert np.isfinite([mape, mape_half]).all()
