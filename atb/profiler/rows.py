"""The records a :class:`~atb.profiler.store.LatencyStore` takes and reads back, and the sink
a profiling run writes to.

Their own module so the store and what is derived from them (:mod:`atb.profiler.drift`) both
import them without importing each other, and so the fleet's recorder implements the same
:class:`StoreSink` as the store without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ContextManager, Protocol

import numpy as np

from atb.profiler.timing import Measurement


@dataclass(frozen=True)
class RunHeader:
    """What a profiling run records about itself when it opens (the store's ``runs`` row)."""

    device_key: str
    setting: dict  # DeviceSetting.record()
    fingerprint: dict  # the machine's (a fleet node's carries ``fleet_node``)
    protocol_version: int
    rule: dict  # the timing rule
    reference_arch: str
    command: str
    host: str | None = None  # the timing process's host and pid when it is not this process
    pid: int | None = None  # (a fleet node's, whose rows the driver writes)

    def shipped(self) -> dict:
        """The header as a fleet node ships it (plain data; the driver adds host and pid)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("host", "pid")}


@dataclass(frozen=True)
class MeasurementRecord:
    """One measurement to store: a timing, or (``measurement`` None) a failure with its reason.

    A named record rather than ten arguments, so the session, the store and the fleet's
    recorder and writer agree on one list of fields.
    """

    run_id: int
    device_key: str
    arch: str
    role: str
    protocol_version: int
    measurement: Measurement | None = None
    space: str | None = None
    error: str | None = None
    setup_s: float | None = None
    started_at: float | None = None  # a failure's; a timing carries its own

    def to_row(self) -> dict:
        """The fields but the run id, as a fleet node ships them: its run id is a placeholder
        until the driver's store numbers the run."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "run_id"}

    @classmethod
    def from_row(cls, run_id: int, row: dict) -> "MeasurementRecord":
        return cls(run_id, **{k: v for k, v in row.items() if k != "run_id"})


class StoreSink(Protocol):
    """Where a :class:`~atb.profiler.session.ProfilingRun` commits: the workspace's
    :class:`~atb.profiler.store.LatencyStore`, or a fleet node's recorder that hands the rows to
    the one process writing the store (:mod:`atb.fleet.node`)."""

    def begin_run(self, header: RunHeader) -> int: ...

    def add(self, record: MeasurementRecord) -> int: ...

    def transaction(self) -> ContextManager: ...


@dataclass(frozen=True)
class MeasurementRow:
    """One stored measurement (raw; corrections are derived by atb.profiler.drift)."""

    id: int
    run_id: int
    device_key: str
    arch: str
    role: str
    space: str | None
    status: str
    error: str | None
    protocol_version: int
    started_at: float
    finished_at: float
    times: np.ndarray  # seconds
    starts: np.ndarray  # unix seconds, one per run
    median_ms: float | None
    setup_s: float | None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class RunRow:
    run_id: int
    device_key: str
    setting: dict
    fingerprint: dict
    protocol_version: int
    reference_arch: str
    started_at: float
