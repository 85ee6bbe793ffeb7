"""The records a :class:`~atb.profiler.store.LatencyStore` reads back.

Their own module so the store and what is derived from them (:mod:`atb.profiler.drift`) both
import them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
