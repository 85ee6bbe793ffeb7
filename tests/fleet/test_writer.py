"""The driver's side without Ray: what a node records is committed group by group, each group
in one transaction."""

from __future__ import annotations

import pytest

from atb.errors import StoreError
from atb.fleet import RowRecorder, StoreWriter
from atb.profiler.rows import MeasurementRecord, RunHeader
from atb.profiler.store import LatencyStore
from atb.profiler.timing import PROTOCOL_VERSION, Measurement

from tests.profiler.stores import add_record

KEY = "cpu-onnxruntime-t1-fp32-s128-b1-0badf00d"
REF = "2-384-1536-6-384"


def measured(ms: float, t: float) -> Measurement:
    return Measurement(tuple([ms / 1e3] * 5), tuple(t + 0.1 * i for i in range(5)), 1)


def recorded_run() -> tuple[RowRecorder, list[dict], list[dict]]:
    """A node's recorder after opening (BERT-base) and timing one group, as ProfilingRun drives it."""
    rec = RowRecorder()
    run_id = rec.begin_run(RunHeader(KEY, {"threads": 1}, {"cpu_model": "x"}, PROTOCOL_VERSION, {}, REF,
                                     "atb-fleet"))
    add_record(rec, run_id, KEY, REF, "reference", PROTOCOL_VERSION, measured(30.0, 1000))
    add_record(rec, run_id, KEY, "12-768-3072-12-768", "bert_base", PROTOCOL_VERSION, measured(200.0, 1001))
    opening = rec.take()
    add_record(rec, run_id, KEY, REF, "reference", PROTOCOL_VERSION, measured(30.0, 1002))
    add_record(rec, run_id, KEY, "4-256-512-4-256", "sampled", PROTOCOL_VERSION, measured(20.0, 1003),
               space="pretrain")
    add_record(rec, run_id, KEY, "2-128-256-2-128", "sampled", PROTOCOL_VERSION, space="pretrain",
               error="load failed: Fail: boom", started_at=1004.0)
    return rec, opening, rec.take()


def test_a_recorded_run_lands_in_the_store(tmp_path):
    rec, opening, group = recorded_run()
    with LatencyStore.open(tmp_path / "s.sqlite") as store:
        writer = StoreWriter(store)
        node = {"name": "a", "node_id": "n1", "hostname": "target-a", "pid": 4242}
        run_id = writer.open_run(rec.header, opening, node)
        writer.add_group(run_id, KEY, group)
        (run,) = store.runs()
        assert run.fingerprint == {"cpu_model": "x", "fleet_node": node}
        # the run names the process that timed it, not the driver that wrote it
        assert store.conn.execute("SELECT host, pid FROM runs").fetchone() == ("target-a", 4242)
        assert store.sampled_archs(KEY) == {"4-256-512-4-256", "2-128-256-2-128"}
        failed = [m for m in store.measurements(KEY) if not m.ok]
        assert [(m.arch, m.error, m.started_at) for m in failed] == [
            ("2-128-256-2-128", "load failed: Fail: boom", 1004.0)]
        assert store.labels(KEY).arch_strings() == ["4-256-512-4-256"]


def test_a_group_is_committed_whole_or_not_at_all(tmp_path):
    rec, opening, group = recorded_run()
    bad = {**group[-1], "device_key": "cpu-onnxruntime-t2-fp32-s128-b1-0badf00d", "arch": "3-128-256-2-128"}
    with LatencyStore.open(tmp_path / "s.sqlite") as store:
        writer = StoreWriter(store)
        run_id = writer.open_run(rec.header, opening, {"name": "a"})
        with pytest.raises(StoreError):
            writer.add_group(run_id, KEY, group + [bad])  # the last row fails after two were added
        assert store.sampled_archs(KEY) == set()
        assert len(store.measurements(KEY)) == len(opening)
        writer.add_group(run_id, KEY, group)  # the store is usable afterwards
        assert len(store.sampled_archs(KEY)) == 2


def test_the_recorder_is_a_store_sink_and_records_as_the_store_takes_them(tmp_path):
    """A record is one row, and the store reads it back as the record the node kept; a failed
    transaction drops what it added, as the store rolls back."""
    rec = RowRecorder()
    record = MeasurementRecord(0, KEY, REF, "reference", PROTOCOL_VERSION, measured(30.0, 1000))
    rec.add(record)
    with pytest.raises(RuntimeError), rec.transaction():
        rec.add(record)
        raise RuntimeError("a group that fails")
    (row,) = rec.take()
    assert row == record.to_row()
    assert MeasurementRecord.from_row(7, row) == MeasurementRecord(7, *list(row.values()))
    with LatencyStore.open(tmp_path / "s.sqlite") as store:
        run_id = store.begin_run(RunHeader(KEY, {}, {}, PROTOCOL_VERSION, {}, REF, "test"))
        store.add(MeasurementRecord.from_row(run_id, row))
        (stored,) = store.measurements(KEY)
    assert stored.started_at == record.measurement.started_at
    assert list(stored.times) == list(record.measurement.times)
