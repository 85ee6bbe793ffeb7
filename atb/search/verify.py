"""Re-measurement of the top-k: trust the device, not the predictor.

The k best in-window archs are timed on the device (with the BERT-rule baseline in the same
call, so both see the same drift). An arch whose measured speedup lands outside the accepted
band ``[0.95, 1.10] x target`` is dropped and replaced by the next-best evaluated arch. The
replacements are chosen with the predictor *recalibrated* on what was just measured (median
of measured / predicted): if the predictor is 4 % optimistic on this device today, the next
candidates are picked 4 % further from the edge. At most ``max_rounds`` measurement calls
(:class:`Verification`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
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


def verify_top_k(pool: list[Record], window: Window, k: int, check: Verification,
                 extra: list[Record] = ()) -> tuple[list[Record], list[Record]]:
    """Measure and keep up to ``k`` archs of ``pool`` (ranked best first) that land in
    :data:`~atb.search.window.ACCEPT_BAND` around the window's target.

    ``extra`` records (baselines) are measured in the first call and not judged. Measured
    speedups are written into the records. When the recalibrated window holds too few
    evaluated archs (the predictor is off by more than the window's width),
    ``check.replenish`` is asked for new evaluated archs inside the *corrected* window.
    Returns ``(accepted best first, dropped)``.
    """
    measure, max_rounds, replenish, band = check.measure, check.max_rounds, check.replenish, ACCEPT_BAND
    pool = list(pool)
    accepted: list[Record] = []
    dropped: list[Record] = []
    ratios: list[float] = []  # measured / predicted, for recalibration
    tried: set[str] = set()
    for round_ in range(max_rounds):
        need = k - len(accepted)
        if need <= 0:
            break
        scale = float(np.median(ratios)) if ratios else 1.0
        corrected = Window(window.target, window.lo / scale, window.hi / scale)

        todo = _untried(pool, tried, corrected, need)
        if len(todo) < need and round_ > 0 and replenish is not None:
            log.info("searching again in the recalibrated %s", corrected.describe())
            known = {r.arch for r in pool}
            pool += [r for r in replenish(corrected) if r.arch not in known]
            pool.sort(key=lambda r: -r.fitness if np.isfinite(r.fitness) else np.inf)
            todo = _untried(pool, tried, corrected, need)
        batch = todo + (list(extra) if round_ == 0 else [])
        if not batch:
            break
        log.info("measuring %d archs on the device (round %d, predictor scale %.3f)",
                 len(batch), round_ + 1, scale)
        speeds = list(measure([Arch.parse(r.arch) for r in batch]))
        if len(speeds) != len(batch):
            raise RuntimeError(f"measure returned {len(speeds)} speedups for {len(batch)} archs")
        for rec, s in zip(batch, speeds):
            rec.measured_speedup = float(s) if s is not None and np.isfinite(s) else None
            if rec.measured_speedup and rec.predicted_speedup > 0:
                ratios.append(rec.measured_speedup / rec.predicted_speedup)
        for rec in todo:
            tried.add(rec.arch)
            if in_band(rec.measured_speedup, window.target, band):
                accepted.append(rec)
            else:
                log.warning("dropping %s: predicted %.2fx, measured %s", rec.arch,
                            rec.predicted_speedup, f"{rec.measured_speedup:.2f}x"
                            if rec.measured_speedup else "failed")
                dropped.append(rec)
    accepted.sort(key=lambda r: -r.fitness)
    if len(accepted) < k:
        log.warning("only %d of %d archs measured inside %.2f-%.2f x target", len(accepted), k, *band)
    return accepted, dropped
