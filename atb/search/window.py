"""The latency window: which predicted speedups a candidate may have, and bounded sampling in it.

Window choice (why ``[1.02 T, 1.06 T]``)
-----------------------------------------
A returned arch must *measure* within ``[0.95, 1.10] x T`` (the acceptance band). Fitness
rises as an arch gets slower, so the search always pushes its best archs to the *lower* edge
of whatever window it is given. With a predictor of about 2 % relative error (1 sigma) and a
lower edge at ``1.02 T`` the best archs measure around ``1.02 T +- 4 %`` (2 sigma), i.e. in
``[0.98, 1.06] T``: above the band's floor by 3.5 sigma and under its ceiling by 2 sigma even
for the archs that sit at the upper edge ``1.06 T``. The small 2 % head-room also makes the
common case "really at least T times faster" rather than "T times faster on average". In
latency terms the window is "just under the target": predicted latency between
``Lat(BERT-base) / (1.06 T)`` and ``Lat(BERT-base) / (1.02 T)``.

Feasibility is checked up front (:func:`reachable_range`): the fastest and slowest archs of
the space under the predictor, widened by a random sample because a learned predictor need
not be monotone. Sampling (:func:`sample_in_window`) is vectorised rejection sampling with a
hard cap on draws; when uniform draws rarely land in a narrow window it falls back to draws
along the small-to-large diagonal of the space, then to mutations of what it found. It never
loops without bound.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from atb.arch import FIELDS, SearchSpace, archs_to_array
from atb.errors import InfeasibleTargetError, UsageError
from atb.search.ports import SpeedupModel

log = logging.getLogger("atb.search.window")

DEFAULT_LOW_MARGIN = 0.02  # lower edge of the window: 2 % faster than the target
DEFAULT_HIGH_MARGIN = 0.06  # upper edge: at most 6 % faster than needed
ACCEPT_BAND = (0.95, 1.10)  # a measured speedup within this x target is a hit
MAX_DRAWS = 400_000  # hard cap on candidates drawn by one call to sample_in_window
BATCH = 8192  # candidates predicted per vectorised batch


@dataclass(frozen=True)
class Window:
    """Accepted predicted speedups ``[lo, hi]`` for a target ``T``."""

    target: float
    lo: float
    hi: float

    @classmethod
    def for_target(
        cls,
        target: float,
        low_margin: float = DEFAULT_LOW_MARGIN,
        high_margin: float = DEFAULT_HIGH_MARGIN,
    ) -> "Window":
        if not np.isfinite(target) or target <= 1.0:
            raise UsageError(
                f"target speedup {target} must be greater than 1",
                hint="it is Lat(BERT-base) / Lat(arch), e.g. --target-speedup 15",
            )
        if not -0.5 < low_margin < high_margin:
            raise UsageError(f"window margins must satisfy -0.5 < low ({low_margin}) < high ({high_margin})")
        return cls(float(target), target * (1 + low_margin), target * (1 + high_margin))

    def contains(self, speedup: np.ndarray) -> np.ndarray:
        s = np.asarray(speedup, dtype=np.float64)
        return np.isfinite(s) & (s >= self.lo) & (s <= self.hi)

    def describe(self) -> str:
        return (
            f"predicted speedup in [{self.lo:.2f}, {self.hi:.2f}] "
            f"({self.lo / self.target:.2f}-{self.hi / self.target:.2f} x target {self.target:g})"
        )

    def as_dict(self) -> dict:
        return {"target": self.target, "lo": self.lo, "hi": self.hi}


def diagonal_sample(space: SearchSpace, rng: np.random.Generator, n: int, jitter: float = 0.15):
    """``n`` archs near the line from the smallest to the largest arch of the space.

    One size ``t ~ U(0, 1)`` per row, each gene at ``t`` plus Gaussian jitter along its range
    and snapped to the grid. Covers the fast and slow ends of the space, which uniform draws
    almost never reach (a uniform arch is a mid-sized one).
    """
    r = space.ranges
    t = rng.random((n, 1)) + rng.normal(0.0, jitter, (n, len(FIELDS)))
    t = np.clip(t, 0.0, 1.0)
    out = np.empty((n, len(FIELDS)), dtype=np.int64)
    for i, f in enumerate(FIELDS):
        k = np.rint(t[:, i] * (len(r[f]) - 1)).astype(np.int64)
        out[:, i] = r[f].lo + k * r[f].step
    return space.tie_heads(out)


def reachable_range(space: SearchSpace, latency: SpeedupModel, rng: np.random.Generator,
                    n_probe: int = 4096) -> tuple[float, float]:
    """(slowest, fastest) predicted speedup over the space's extremes and a probe sample."""
    probe = np.concatenate(
        [
            archs_to_array([space.smallest, space.largest]),
            space.sample_array(rng, n_probe // 2),
            diagonal_sample(space, rng, n_probe // 2),
        ]
    )
    s = np.asarray(latency.predict_speedup(probe), dtype=np.float64)
    s = s[np.isfinite(s)]
    if not len(s):
        raise InfeasibleTargetError("the latency predictor returned no finite speedup for the space")
    return float(s.min()), float(s.max())


def check_feasible(windows: "Window | list[Window]", space: SearchSpace, latency: SpeedupModel,
                   rng: np.random.Generator) -> tuple[float, float]:
    """Raise :class:`InfeasibleTargetError` naming the reachable range when a window is out
    of it; return the reachable ``(slowest, fastest)`` predicted speedups otherwise."""
    slow, fast = reachable_range(space, latency, rng)
    for window in windows if isinstance(windows, list) else [windows]:
        if window.lo > fast or window.hi < slow:
            lo_t = slow / (window.hi / window.target)
            hi_t = fast / (window.lo / window.target)
            raise InfeasibleTargetError(
                f"target speedup {window.target:g}x is outside what the {space.describe()} "
                f"reaches on {latency.device_key}: predicted speedups {slow:.2f}x to {fast:.2f}x",
                hint=f"choose --target-speedup between {lo_t:.1f} and {hi_t:.1f}, or another space",
            )
    return slow, fast


class InWindow:
    """Collects up to ``n`` distinct archs whose predicted speedup lies in a window."""

    def __init__(self, space: SearchSpace, latency: SpeedupModel, window: Window, n: int,
                 exclude: set[str] | None = None):
        self.space, self.latency, self.window, self.n = space, latency, window, n
        self.seen = set(exclude or ())
        self.rows: list[np.ndarray] = []
        self.speedups: list[float] = []
        self.drawn = 0

    @property
    def missing(self) -> int:
        return self.n - len(self.rows)

    def offer(self, cands: np.ndarray) -> None:
        """Predict ``cands`` in one batch and keep the new in-window ones (in draw order)."""
        self.drawn += len(cands)
        s = np.asarray(self.latency.predict_speedup(cands), dtype=np.float64)
        ok = self.window.contains(s) & self.space.contains_array(cands)
        for row, sp in zip(cands[ok], s[ok]):
            if len(self.rows) >= self.n:
                break
            key = "-".join(map(str, row))
            if key not in self.seen:
                self.seen.add(key)
                self.rows.append(row)
                self.speedups.append(float(sp))


def sample_in_window(
    space: SearchSpace,
    latency: SpeedupModel,
    window: Window,
    rng: np.random.Generator,
    n: int,
    *,
    exclude: set[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``n`` distinct archs whose predicted speedup lies in ``window``.

    Returns ``(archs (m, 5), predicted speedups (m,))`` with ``m <= n``; fewer than ``n`` only
    when :data:`MAX_DRAWS` candidates did not yield enough (logged). Rows in ``exclude`` (text
    form) are skipped. Order of rows follows the random draws, so a seed reproduces it.
    """
    max_draws = MAX_DRAWS
    if n <= 0:
        return np.empty((0, len(FIELDS)), dtype=np.int64), np.empty(0)
    found = InWindow(space, latency, window, n, exclude)
    # 1. Uniform rejection sampling: the paper's "sample a fresh arch meeting the constraint".
    while found.missing > 0 and found.drawn < max_draws // 2:
        found.offer(space.sample_array(rng, BATCH))
    # 2. Narrow or extreme windows: draws along the diagonal reach the ends of the space.
    while found.missing > 0 and found.drawn < 3 * max_draws // 4:
        found.offer(diagonal_sample(space, rng, BATCH))
    # 3. Still short: local moves around what was found (one gene at a time on average).
    while found.missing > 0 and found.drawn < max_draws and found.rows:
        parents = np.asarray(found.rows)[rng.integers(0, len(found.rows), BATCH)]
        found.offer(space.mutate_array(parents, rng, prob=1.0 / len(FIELDS)))
    if found.missing > 0:
        log.warning("only %d of %d archs found in the window after %d draws", len(found.rows), n, found.drawn)
    kept, kept_s = found.rows, found.speedups
    arr = np.asarray(kept, dtype=np.int64).reshape(-1, len(FIELDS))
    return arr, np.asarray(kept_s, dtype=np.float64)
