"""Latency stores written by hand: runs with a known machine speed, for drift and protocol tests."""

from atb.profiler.rows import MeasurementRecord, RunHeader
from atb.profiler.timing import PROTOCOL_VERSION, Measurement

KEY = "cpu-test-t1-fp32-s128-b1-00000000"


def add_record(sink, run_id: int, device_key: str, arch: str, role: str, protocol: int,
               measurement: Measurement | None = None, **fields) -> int:
    """``sink.add`` of the :class:`MeasurementRecord` of these fields (a store or a fleet
    recorder): the short form tests write rows in."""
    return sink.add(MeasurementRecord(run_id, device_key, arch, role, protocol, measurement, **fields))


def measured(ms: float, t: float, spread: float = 0.0) -> Measurement:
    """Five runs around ``ms`` starting at unix time ``t`` (0.2 s apart)."""
    times = tuple((ms + spread * d) / 1e3 for d in (-1, 0, 1, 0, 0))
    return Measurement(times, tuple(t + 0.2 * i for i in range(5)), 1)


def add_run(store, factor: float, t0: float, archs: dict[str, float], protocol: int = PROTOCOL_VERSION) -> int:
    """One run of ``protocol`` whose machine is ``factor`` times slower than nominal (process
    drift): BERT-base and the reference at both ends, ``archs`` (arch -> nominal ms) between."""
    rid = store.begin_run(RunHeader(KEY, {}, {}, protocol, {}, "4-512-2048-8-512", "test"))
    add_record(store, rid, KEY, "12-768-3072-12-768", "bert_base", protocol, measured(200 * factor, t0))
    add_record(store, rid, KEY, "4-512-2048-8-512", "reference", protocol, measured(30 * factor, t0 + 2))
    for i, (arch, ms) in enumerate(archs.items()):
        add_record(store, rid, KEY, arch, "sampled", protocol, measured(ms * factor, t0 + 4 + i), space="pretrain")
    add_record(store, rid, KEY, "4-512-2048-8-512", "reference", protocol, measured(30 * factor, t0 + 50))
    add_record(store, rid, KEY, "12-768-3072-12-768", "bert_base", protocol, measured(200 * factor, t0 + 52))
    return rid
