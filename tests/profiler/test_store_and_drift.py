import sqlite3

import numpy as np
import pytest

from atb.errors import MissingInputError, StoreError
from atb.profiler.drift import corrected_rows
from atb.profiler.rows import RunHeader
from atb.profiler.store import LatencyStore
from atb.profiler.timing import PROTOCOL_VERSION, Measurement
from tests.profiler.stores import KEY, add_record, add_run, measured

def test_drift_between_runs_is_corrected(tmp_path):
    with LatencyStore.open(tmp_path / "s.sqlite") as store:
        add_run(store, 1.00, 0, {"2-128-256-2-128": 4.0, "3-256-512-4-256": 10.0})
        add_run(store, 1.12, 1000, {"4-256-512-4-256": 12.0, "5-256-512-4-256": 15.0})
        labels = store.labels(KEY)
    by_arch = dict(zip(labels.arch_strings(), labels.latency_ms))
    raw = dict(zip(labels.arch_strings(), labels.raw_ms))
    assert raw["4-256-512-4-256"] == pytest.approx(12.0 * 1.12)
    assert by_arch["4-256-512-4-256"] == pytest.approx(12.0)  # put back on the first run's scale
    speed = dict(zip(labels.arch_strings(), labels.speedup))
    assert speed["5-256-512-4-256"] == pytest.approx(200 / 15.0)
    assert labels.bert_base_ms == pytest.approx(200.0)


def test_each_run_is_divided_by_the_reference_next_to_it(tmp_path):
    """The machine is 10% slower for a while; runs timed then are scaled back run by run."""
    def series(t0, values):
        return Measurement(tuple(v / 1e3 for v in values), tuple(t0 + 0.1 * i for i in range(len(values))), 1)

    slow = [1.0] * 10 + [1.1] * 10 + [1.0] * 10  # machine speed over 3 s
    with LatencyStore.open(tmp_path / "s.sqlite") as store:
        rid = store.begin_run(RunHeader(KEY, {}, {}, PROTOCOL_VERSION, {}, "ref", "test"))
        # reference and arch interleaved: reference at t = 0.00, 0.10, ...; arch at t = 0.05, ...
        add_record(store, rid, KEY, "2-384-1536-6-384", "reference", PROTOCOL_VERSION,
                   series(0.0, [8.0 * f for f in slow]))
        add_record(store, rid, KEY, "2-128-256-2-128", "sampled", PROTOCOL_VERSION,
                   series(0.05, [4.0 * f for f in slow]))
        add_record(store, rid, KEY, "12-768-3072-12-768", "bert_base", PROTOCOL_VERSION,
                   series(0.02, [160.0 * f for f in slow]))
        (row,) = corrected_rows(store, KEY)
    assert row["raw_ms"] == pytest.approx(4.0 * 1.0)  # median of the raw runs
    assert row["iqr_ms"] < 0.05  # the 10% episode is gone from the corrected runs
    assert row["speedup"] == pytest.approx(40.0, rel=0.01)


def test_failed_measurements_are_kept_with_their_reason(tmp_path):
    with LatencyStore.open(tmp_path / "s.sqlite") as store:
        rid = store.begin_run(RunHeader(KEY, {}, {}, PROTOCOL_VERSION, {}, "ref", "test"))
        add_record(store, rid, KEY, "2-128-256-2-128", "sampled", PROTOCOL_VERSION, error="RuntimeError: boom")
        rows = store.measurements(KEY)
        assert rows[0].status == "failed" and "boom" in rows[0].error
        assert store.sampled_archs(KEY) == {"2-128-256-2-128"}  # not retried on resume
        with pytest.raises(MissingInputError):
            store.labels(KEY)


def test_records_keep_their_raw_times(tmp_path):
    with LatencyStore.open(tmp_path / "s.sqlite") as store:
        rid = store.begin_run(RunHeader(KEY, {}, {}, PROTOCOL_VERSION, {}, "ref", "test"))
        m = measured(5.0, 0, spread=0.5)
        add_record(store, rid, KEY, "2-128-256-2-128", "sampled", PROTOCOL_VERSION, m)
        (row,) = store.measurements(KEY)
    assert np.array_equal(row.times, np.asarray(m.times)) and row.protocol_version == PROTOCOL_VERSION


def test_corrupt_store_is_reported(tmp_path):
    path = tmp_path / "s.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="corrupt"):
        LatencyStore.open(path)


def test_readonly_store_must_exist(tmp_path):
    with pytest.raises(MissingInputError) as info:
        LatencyStore.open(tmp_path / "missing.sqlite", readonly=True)
    assert "atb-profile" in info.value.one_line()


def test_wal_mode(tmp_path):
    LatencyStore.open(tmp_path / "s.sqlite").close()
    conn = sqlite3.connect(tmp_path / "s.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
