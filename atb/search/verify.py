"""Re-measurement of the top-k: trust the device, not the predictor.

The k best in-window archs are timed on the device (with the BERT-rule baseline in the same
call, so both see the same drift). An arch whose measured speedup lands outside the accepted
band ``[0.95, 1.10] x target`` is dropped and replaced by the next-best evaluated arch. The
replacements are chosen with the predictor *recalibrated* on what was just measured (median
of measured / predicted): if the predictor is 4 % optimistic on this device today, the next
candidates are picked 4 % further from the edge. At most ``max_rounds`` measurement calls
(:class:`Verification`).

What is timed beside the top-k (:class:`Beside`) shares those calls. The BERT-rule arch is
held to the band as the top-k are: measured outside it, the next rule arch is asked for
(``Beside.repick``) and measured in the next call; when none lands in the band within the
rounds, the rule arch measured nearest the target stays. The layer cut is measured in the
first call and never judged, nor does it recalibrate the predictor (its speedup is what it is).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from atb.arch import Arch
from atb.search.fitness_cache import Record
from atb.search.ports import Measure
from atb.search.window import ACCEPT_BAND, Window

log = logging.getLogger("atb.search.verify")


def in_band(measured: float | None, target: float, band: tuple[float, float] = ACCEPT_BAND) -> bool:
    return measured is not None and np.isfinite(measured) and band[0] * target <= measured <= band[1] * target


def _untried(pool: list[Record], tried: set[str], window: Window, n: int) -> list[Record]:
    """The first ``n`` records of ``pool`` not measured yet whose prediction is in ``window``."""
    return [r for r in pool if r.arch not in tried and window.contains([r.predicted_speedup])[0]][:n]


@dataclass(frozen=True)
class Verification:
    """How the top-k are checked on the device."""

    measure: Measure  # the archs timed under the predictor's key
    max_rounds: int = 3  # measurement calls at most
    # new evaluated archs inside a corrected window (a short search there), when the
    # recalibrated window holds too few
    replenish: Callable[[Window], list[Record]] | None = None


@dataclass
class Beside:
    """What is timed beside the top-k, in the same profiler calls (the same drift)."""

    rule: Record | None = None  # the BERT-rule arch: held to the band as the top-k are
    # (rule archs measured outside the band, predictor scale) -> the next rule arch, or None
    repick: Callable[[set[str], float], Record | None] | None = None
    # measured in the first call and not judged (the layer cut): anything with ``arch``,
    # ``predicted_speedup`` and a writable ``measured_speedup``
    alongside: list = field(default_factory=list)
    rules_measured: list[Record] = field(default_factory=list)  # every rule arch timed, in order

    def due(self) -> list[Record]:
        """The rule arch when it still waits for its measurement."""
        waiting = self.rule is not None and all(r is not self.rule for r in self.rules_measured)
        return [self.rule] if waiting else []

    def judge_rule(self, target: float, scale: float, more_rounds: bool) -> None:
        """After the rule arch was measured: keep it in band, or ask for the next one (timed
        in the next call), or settle on the rule arch measured nearest the target."""
        rule = self.rule
        if in_band(rule.measured_speedup, target):
            return
        outside = (f"the BERT-rule arch {rule.arch} measured {_speed(rule.measured_speedup)}, "
                   f"outside {ACCEPT_BAND[0]:.2f}-{ACCEPT_BAND[1]:.2f} x target")
        tried = {r.arch for r in self.rules_measured}
        following = self.repick(tried, scale) if self.repick and more_rounds else None
        if following is not None:
            log.warning("%s; measuring the next rule arch, %s (predicted %.2fx)", outside,
                        following.arch, following.predicted_speedup)
            self.rule = following
            return

        def distance(r: Record) -> float:
            m = r.measured_speedup
            return abs(np.log(m / target)) if m and np.isfinite(m) and m > 0 else np.inf

        self.rule = min(self.rules_measured, key=distance)
        log.warning("%s; %s, the rule arch measured nearest the target, stays", outside,
                    self.rule.arch)


def _speed(x: float | None) -> str:
    return f"{x:.2f}x" if x else "failed"


def _measure(check: Verification, batch: list, alongside: list) -> None:
    """Time ``batch`` and the ``alongside`` archs not in it in one call; write the measured
    speedups into them (an alongside arch already in ``batch`` takes its measurement)."""
    names = {r.arch for r in batch}
    extra = [r for r in alongside if r.arch not in names]
    todo = batch + extra
    speeds = list(check.measure([Arch.parse(r.arch) for r in todo]))
    if len(speeds) != len(todo):
        raise RuntimeError(f"measure returned {len(speeds)} speedups for {len(todo)} archs")
    for rec, s in zip(todo, speeds):
        rec.measured_speedup = float(s) if s is not None and np.isfinite(s) else None
    measured = {r.arch: r.measured_speedup for r in todo}
    for rec in alongside:
        rec.measured_speedup = measured[rec.arch]


def verify_top_k(pool: list[Record], window: Window, k: int, check: Verification,
                 beside: Beside | None = None) -> tuple[list[Record], list[Record]]:
    """Measure and keep up to ``k`` archs of ``pool`` (ranked best first) that land in
    :data:`~atb.search.window.ACCEPT_BAND` around the window's target.

    ``beside`` (:class:`Beside`) is timed in the same calls: its rule arch held to the band
    (``beside.rule`` is the one kept, ``beside.rules_measured`` every one timed), its
    ``alongside`` archs in the first call only. Measured speedups are written into the
    records. When the recalibrated window holds too few evaluated archs (the predictor is off
    by more than the window's width), ``check.replenish`` is asked for new evaluated archs
    inside the *corrected* window. Returns ``(accepted best first, dropped)``.
    """
    beside = beside or Beside()
    pool = list(pool)
    accepted: list[Record] = []
    dropped: list[Record] = []
    ratios: list[float] = []  # measured / predicted, for recalibration
    tried: set[str] = set()
    for round_ in range(check.max_rounds):
        need, rule = k - len(accepted), beside.due()
        if need <= 0 and not rule:
            break
        scale = float(np.median(ratios)) if ratios else 1.0
        todo = _candidates(pool, tried, window, need, scale, check.replenish if round_ else None)
        batch = todo + rule
        if not batch:
            break
        log.info("measuring %d archs on the device (round %d, predictor scale %.3f)",
                 len(batch) + (len(beside.alongside) if round_ == 0 else 0), round_ + 1, scale)
        _measure(check, batch, beside.alongside if round_ == 0 else [])
        ratios += [r.measured_speedup / r.predicted_speedup for r in batch
                   if r.measured_speedup and r.predicted_speedup > 0]
        for rec in todo:
            tried.add(rec.arch)
            if in_band(rec.measured_speedup, window.target):
                accepted.append(rec)
            else:
                log.warning("dropping %s: predicted %.2fx, measured %s", rec.arch,
                            rec.predicted_speedup, _speed(rec.measured_speedup))
                dropped.append(rec)
        if rule:
            beside.rules_measured.append(rule[0])
            beside.judge_rule(window.target, float(np.median(ratios)) if ratios else 1.0,
                              round_ + 1 < check.max_rounds)
    accepted.sort(key=lambda r: -r.fitness)
    if len(accepted) < k:
        log.warning("only %d of %d archs measured inside %.2f-%.2f x target", len(accepted), k,
                    *ACCEPT_BAND)
    return accepted, dropped


def _candidates(pool: list[Record], tried: set[str], window: Window, need: int, scale: float,
                replenish: Callable[[Window], list[Record]] | None) -> list[Record]:
    """The next ``need`` archs to measure: untried ones of ``pool`` predicted inside the
    window corrected by ``scale``; with ``replenish``, a short search there when too few are
    left (``pool`` grows in place, kept ranked by fitness)."""
    if need <= 0:
        return []
    corrected = Window(window.target, window.lo / scale, window.hi / scale)
    todo = _untried(pool, tried, corrected, need)
    if len(todo) < need and replenish is not None:
        log.info("searching again in the recalibrated %s", corrected.describe())
        known = {r.arch for r in pool}
        pool += [r for r in replenish(corrected) if r.arch not in known]
        pool.sort(key=lambda r: -r.fitness if np.isfinite(r.fitness) else np.inf)
        todo = _untried(pool, tried, corrected, need)
    return todo
