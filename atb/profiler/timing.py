"""How latencies are taken: a written rule, and frozen records of raw times.

Protocol version 4 ("pooled anchor, sentinels"): version 3's timing, plus BERT-base timed at
more points of a run (every minute, :data:`ANCHOR_RULE`) and pooled over the device key's runs
into one anchor (:mod:`atb.profiler.drift`), and a few sentinel archs re-timed in every run
(:mod:`atb.profiler.repeatability`). Version 3 ("interleaved groups, deployed sessions"): the rule below, with every backend
in the configuration its users deploy for single-request latency (:mod:`atb.devices.backends`;
for ONNX Runtime, workers that spin inside a run and stop when it returns). Version 2 had the
same rule with ONNX Runtime's workers parked between parallel sections, which timed small
models up to 12% slow against a default session; labels of the two versions are never mixed
(:meth:`atb.profiler.labels.LabelSet.from_rows`). On a small shared machine the run time of one model
moves by 10% and more within a second (hypervisor steal, frequency, a stalled worker thread),
far faster than a reference re-timed every few seconds can follow. So models are timed
*together with a reference*, in short alternating bursts, and every run keeps its start time:
each run can then be divided by the reference level at that very moment
(:mod:`atb.profiler.drift`).

The rule (:class:`TimingRule`) for a group of models timed with a reference:

1. warm up: run each model at least ``warmup_runs`` times and ``warmup_s`` seconds;
2. repeat rounds; a round visits the reference and every unfinished model once, in random
   order, each visit a *burst* of runs lasting at least ``burst_s`` seconds (at least one run;
   the reference's bursts last ``reference_burst_s``);
3. a model is finished once it has ``min_runs`` runs and ``min_s`` seconds and the robust
   relative standard error of its median, ``1.2533 * (IQR / 1.349) / sqrt(n) / median``, is
   at most ``target_rel_se``, or, at the latest, at ``max_runs`` runs or ``max_s`` seconds (the
   minimums always hold, so a slow model still gets ``min_runs`` runs).

The label is the median; every raw time and start time is kept, and p10/p90/IQR/mean/std and
the noise verdict are derived from them, never stored separately.

A model whose run raises can be dropped from its group (``drop_failing``): its runs so far are
discarded, it is reported as a :class:`TimingFailure` and the rounds go on without it. The
reference failing always raises: without it no model of the group can be corrected.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

PROTOCOL_VERSION = 4
NOISY_IQR = 0.05  # a cell whose IQR exceeds 5% of its median is flagged noisy


@dataclass(frozen=True)
class TimingRule:
    warmup_runs: int = 1  # after its first run a session is steady
    warmup_s: float = 0.02
    min_runs: int = 10
    min_s: float = 0.2
    max_runs: int = 300
    max_s: float = 0.6
    target_rel_se: float = 0.01
    burst_s: float = 0.03
    reference_burst_s: float = 0.015

    def to_dict(self) -> dict:
        return dict(self.__dict__)


DEFAULT_RULE = TimingRule()
# BERT-base at the start and end of a run anchors every speedup: time it longer
CAREFUL_RULE = TimingRule(warmup_runs=2, warmup_s=0.2, min_runs=20, min_s=2.0, max_s=6.0,
                          target_rel_se=0.0025, burst_s=0.0, reference_burst_s=0.06)
# an anchor point between groups: shorter than the careful ends, since the anchor is the median
# of many points (drift.anchor_estimate)
ANCHOR_RULE = TimingRule(warmup_runs=1, warmup_s=0.05, min_runs=10, min_s=1.0, max_s=2.0,
                         target_rel_se=0.005, burst_s=0.0, reference_burst_s=0.06)
# rough and fast, for tests and smoke runs only (select with ATB_TIMING_RULE=smoke)
SMOKE_RULE = TimingRule(warmup_runs=1, warmup_s=0.0, min_runs=3, min_s=0.0, max_runs=5, max_s=0.05,
                        target_rel_se=0.05, burst_s=0.0, reference_burst_s=0.0)


def rules_from_env() -> tuple[TimingRule, TimingRule]:
    """(rule, careful rule): the defaults, or the smoke rule under ``ATB_TIMING_RULE=smoke``."""
    if os.environ.get("ATB_TIMING_RULE") == "smoke":
        return SMOKE_RULE, SMOKE_RULE
    return DEFAULT_RULE, CAREFUL_RULE


def anchor_rule_from_env() -> TimingRule:
    """The rule of an anchor point between groups (the smoke rule under ``ATB_TIMING_RULE=smoke``)."""
    return SMOKE_RULE if os.environ.get("ATB_TIMING_RULE") == "smoke" else ANCHOR_RULE


def relative_standard_error(times: np.ndarray) -> float:
    """Robust relative standard error of the median of ``times``."""
    if len(times) < 4:
        return float("inf")
    q25, q50, q75 = np.percentile(times, [25, 50, 75])
    return float(1.2533 * (q75 - q25) / 1.349 / np.sqrt(len(times)) / q50)


@dataclass(frozen=True)
class Measurement:
    """Raw per-run times (seconds) of one model and when each run started (unix seconds)."""

    times: tuple[float, ...]
    starts: tuple[float, ...]
    warmup_runs: int
    target_met: bool = True
    rule: TimingRule = field(default=DEFAULT_RULE, compare=False)

    @property
    def started_at(self) -> float:
        return self.starts[0]

    @property
    def finished_at(self) -> float:
        return self.starts[-1] + self.times[-1]

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
    def timed_s(self) -> float:
        return float(sum(self.times))

    def summary(self) -> dict:
        return {
            "median_ms": self.median_ms, "p10_ms": self.percentile_ms(10), "p90_ms": self.percentile_ms(90),
            "iqr_ms": self.iqr_ms, "mean_ms": self.mean_ms, "std_ms": self.std_ms, "runs": self.n,
            "rel_se": self.rel_se, "noisy": self.noisy,
        }


@dataclass(frozen=True)
class TimingFailure:
    """A model whose run raised while it was timed: dropped from its group, its runs discarded."""

    exception: Exception
    completed_runs: int  # runs that returned before the failing one (warm-up included)

    @property
    def reason(self) -> str:
        return describe_exception(self.exception)


def describe_exception(exc: BaseException) -> str:
    """``ExcType: message`` on one line (backend messages often span several)."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


class _Series:
    """Runs of one model being collected (times and unix start times)."""

    def __init__(self, run: Callable[[], None]):
        self.run = run
        self.times: list[float] = []
        self.starts: list[float] = []
        self.warmup = 0
        self.done = False
        self.target_met = False
        self.failure: TimingFailure | None = None

    def fail(self, exc: Exception) -> None:
        self.failure = TimingFailure(exc, self.warmup + len(self.times))
        self.done = True

    def burst(self, seconds: float, clock_offset: float) -> None:
        clock = time.perf_counter
        begin = clock()
        while True:
            t0 = clock()
            self.run()
            t1 = clock()
            self.times.append(t1 - t0)
            self.starts.append(t0 + clock_offset)
            if t1 - begin >= seconds:
                return

    def check(self, rule: TimingRule) -> None:
        n, total = len(self.times), sum(self.times)
        if n < rule.min_runs or total < rule.min_s:
            return
        self.target_met = relative_standard_error(np.asarray(self.times)) <= rule.target_rel_se
        self.done = self.target_met or n >= rule.max_runs or total >= rule.max_s

    def record(self, rule: TimingRule) -> Measurement:
        return Measurement(tuple(self.times), tuple(self.starts), self.warmup, self.target_met, rule)


def _warm_up(series: _Series, rule: TimingRule) -> None:
    start = time.perf_counter()
    while series.warmup < rule.warmup_runs or time.perf_counter() - start < rule.warmup_s:
        series.run()
        series.warmup += 1


def measure_group(
    runs: Sequence[Callable[[], None]],
    reference: Callable[[], None] | None,
    rule: TimingRule = DEFAULT_RULE,
    rng: np.random.Generator | None = None,
    drop_failing: bool = False,
) -> tuple[list[Measurement | TimingFailure], Measurement | None]:
    """Time ``runs`` (one synchronous inference each) interleaved with ``reference``.

    Returns one :class:`Measurement` per model and one for the reference (all its bursts).
    With ``drop_failing`` a model whose run raises an ``Exception`` gets a
    :class:`TimingFailure` in its place and the others are timed on; without it, or when the
    reference raises, the exception propagates (as do Ctrl-C and anything else that is not an
    ``Exception``).
    See the module docstring for the rule.
    """
    rng = rng or np.random.default_rng()
    clock_offset = time.time() - time.perf_counter()  # perf_counter precision, unix meaning
    models = [_Series(r) for r in runs]
    ref = _Series(reference) if reference is not None else None

    def visit(s: _Series, action: Callable[..., None], *args) -> None:
        try:
            action(*args)
        except Exception as exc:
            if s is ref or not drop_failing:
                raise
            s.fail(exc)

    for s in models + ([ref] if ref else []):
        visit(s, _warm_up, s, rule)
    while True:
        active = [s for s in models if not s.done]
        if not active:
            break
        visits = active + ([ref] if ref else [])
        for i in rng.permutation(len(visits)):
            s = visits[i]
            visit(s, s.burst, rule.reference_burst_s if s is ref else rule.burst_s, clock_offset)
        for s in active:
            if s.failure is None:
                s.check(rule)
    return [s.failure or s.record(rule) for s in models], (ref.record(rule) if ref else None)


def measure(run: Callable[[], None], rule: TimingRule = DEFAULT_RULE) -> Measurement:
    """Time one model alone (no reference) under ``rule``."""
    (m,), _ = measure_group([run], None, rule)
    return m
