"""How one latency is taken: a written rule, and a frozen record of raw times.

The rule (:class:`TimingRule`, versioned by :data:`PROTOCOL_VERSION`) is:

1. warm up: run at least ``warmup_runs`` times and for at least ``warmup_s`` seconds
   (first runs allocate buffers and fault in weights);
2. time single runs with ``perf_counter`` until at least ``min_runs`` runs and ``min_s``
   seconds are done, then stop as soon as the median is precise enough: its relative
   standard error, estimated robustly as ``1.2533 * (IQR / 1.349) / sqrt(n) / median``,
   is at most ``target_rel_se``;
3. stop anyway at ``max_runs`` runs or ``max_s`` seconds (the record then says whether the
   target was met); the minimums of step 2 always hold, so a slow model still gets
   ``min_runs`` runs.

The label is the median; every raw time is kept, and p10/p90/IQR/mean/std and the noise
verdict are derived from them, never stored separately.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

PROTOCOL_VERSION = 1
NOISY_IQR = 0.05  # a cell whose IQR exceeds 5% of its median is flagged noisy


@dataclass(frozen=True)
class TimingRule:
    warmup_runs: int = 1  # after its first run a session is steady; a second costs ~10% of the budget
    warmup_s: float = 0.02
    min_runs: int = 10
    min_s: float = 0.15
    max_runs: int = 300
    max_s: float = 1.0
    target_rel_se: float = 0.005

    def to_dict(self) -> dict:
        return dict(self.__dict__)


DEFAULT_RULE = TimingRule()
# BERT-base and the reference at the start and end of a run anchor every speedup: time them longer
CAREFUL_RULE = TimingRule(warmup_runs=3, warmup_s=0.2, min_runs=20, min_s=1.0, max_s=6.0, target_rel_se=0.0025)


# rough and fast, for tests and smoke runs only (select with ATB_TIMING_RULE=smoke)
SMOKE_RULE = TimingRule(warmup_runs=1, warmup_s=0.0, min_runs=3, min_s=0.0, max_runs=5, max_s=0.05, target_rel_se=0.05)


def rules_from_env() -> tuple[TimingRule, TimingRule]:
    """(rule, careful rule): the defaults, or the smoke rule under ``ATB_TIMING_RULE=smoke``."""
    if os.environ.get("ATB_TIMING_RULE") == "smoke":
        return SMOKE_RULE, SMOKE_RULE
    return DEFAULT_RULE, CAREFUL_RULE


def relative_standard_error(times: np.ndarray) -> float:
    """Robust relative standard error of the median of ``times``."""
    if len(times) < 4:
        return float("inf")
    q25, q50, q75 = np.percentile(times, [25, 50, 75])
    return float(1.2533 * (q75 - q25) / 1.349 / np.sqrt(len(times)) / q50)


@dataclass(frozen=True)
class Measurement:
    """Raw per-run times (seconds) of one model; all statistics derive from them."""

    times: tuple[float, ...]
    warmup_runs: int
    started_at: float  # unix time when the timed runs began
    finished_at: float
    target_met: bool = True
    rule: TimingRule = field(default=DEFAULT_RULE, compare=False)

    @property
    def array_ms(self) -> np.ndarray:
        return np.asarray(self.times, dtype=np.float64) * 1e3

    @property
    def n(self) -> int:
        return len(self.times)

    @property
    def median_ms(self) -> float:
        return float(np.median(self.array_ms))

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.array_ms, q))

    @property
    def iqr_ms(self) -> float:
        return self.percentile_ms(75) - self.percentile_ms(25)

    @property
    def mean_ms(self) -> float:
        return float(self.array_ms.mean())

    @property
    def std_ms(self) -> float:
        return float(self.array_ms.std(ddof=1)) if self.n > 1 else 0.0

    @property
    def rel_se(self) -> float:
        return relative_standard_error(np.asarray(self.times))

    @property
    def noisy(self) -> bool:
        return self.iqr_ms > NOISY_IQR * self.median_ms

    @property
    def midpoint(self) -> float:
        return (self.started_at + self.finished_at) / 2

    @property
    def timed_s(self) -> float:
        return float(sum(self.times))

    def summary(self) -> dict:
        return {
            "median_ms": self.median_ms,
            "p10_ms": self.percentile_ms(10),
            "p90_ms": self.percentile_ms(90),
            "iqr_ms": self.iqr_ms,
            "mean_ms": self.mean_ms,
            "std_ms": self.std_ms,
            "runs": self.n,
            "rel_se": self.rel_se,
            "noisy": self.noisy,
        }


def measure(run: Callable[[], None], rule: TimingRule = DEFAULT_RULE) -> Measurement:
    """Time ``run`` (one synchronous inference) following ``rule``; see the module docstring."""
    clock = time.perf_counter
    warm_start, warm = clock(), 0
    while warm < rule.warmup_runs or clock() - warm_start < rule.warmup_s:
        run()
        warm += 1

    started_at = time.time()
    times: list[float] = []
    begin = clock()
    target_met = False
    while True:
        t0 = clock()
        run()
        times.append(clock() - t0)
        elapsed = clock() - begin
        if len(times) < rule.min_runs or elapsed < rule.min_s:
            continue
        # checking precision costs a percentile: do it every few runs, and at the limits
        at_limit = len(times) >= rule.max_runs or elapsed >= rule.max_s
        if at_limit or len(times) % 4 == 0:
            target_met = relative_standard_error(np.asarray(times)) <= rule.target_rel_se
            if target_met or at_limit:
                break
    return Measurement(tuple(times), warm, started_at, time.time(), target_met, rule)
