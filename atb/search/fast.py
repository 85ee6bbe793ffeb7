"""AutoTinyBERT-Fast (Section 4.4): one rule-following candidate per layer count.

The rule: ``1.6 dm <= df <= 1.9 dm`` and ``0.7 dm <= dqkv <= dm``. Candidates are built to
follow it (``dm`` uniform, ``df`` and ``dqkv`` uniform inside their rule intervals, snapped to
the space's grid) rather than found by rejection from uniform draws, where the rule holds for
about 1 % of archs. For every layer count the candidate kept is the one in the latency
window with the *lowest* predicted speedup: the largest model the constraint allows, which is
what a person applying the rule by hand would pick. At most ``L`` fitness evaluations.
:class:`FastRule` is the algorithm (``--algorithm fast``).
"""

from __future__ import annotations

import logging

import numpy as np

from atb.arch import FIELDS, SearchSpace, fast_rule_mask
from atb.errors import InfeasibleTargetError
from atb.search.algorithm import SearchAlgorithm, SearchProblem
from atb.search.ports import SpeedupModel
from atb.search.window import BATCH, Window

log = logging.getLogger("atb.search.fast")


def rule_sample(space: SearchSpace, rng: np.random.Generator, n: int, lt: int) -> np.ndarray:
    """``n`` archs with ``lt`` layers that follow the fast rule (rows that cannot are dropped)."""
    r = space.ranges
    dm = rng.choice(r["dm"].values, size=n)

    def pick(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Uniform choice among grid values in [lo, hi] for each row; ok=False when none exists.
        a = np.searchsorted(values, lo, side="left")
        b = np.searchsorted(values, hi, side="right")
        ok = b > a
        idx = a + np.floor(rng.random(n) * np.maximum(b - a, 1)).astype(np.int64)
        return values[np.minimum(idx, len(values) - 1)], ok

    df, ok_f = pick(r["df"].values, 1.6 * dm, 1.9 * dm)
    dqkv, ok_q = pick(r["dqkv"].values, 0.7 * dm, dm)
    h = dqkv // space.head_size if space.strategy == "pretrain" else np.full(n, r["h"].lo)
    out = np.stack([np.full(n, lt), dm, df, h, dqkv], axis=1).astype(np.int64)
    keep = ok_f & ok_q & space.contains_array(out) & fast_rule_mask(out)
    return out[keep]


def fast_rule_candidates(space: SearchSpace, latency: SpeedupModel, window: Window,
                         rng: np.random.Generator, batches: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """One in-window, rule-following arch per layer count: ``(archs (m, 5), predicted (m,))``.

    ``m <= L``: a layer count with no rule-following arch in the window is skipped (logged).
    Draws are bounded: ``batches`` x :data:`BATCH` per layer count.
    """
    rows, speeds = [], []
    for lt in space.ranges["lt"].values:
        best_row, best_s = None, np.inf
        for _ in range(batches):
            cands = rule_sample(space, rng, BATCH, int(lt))
            if not len(cands):
                continue
            s = np.asarray(latency.predict_speedup(cands), dtype=np.float64)
            ok = window.contains(s)
            if ok.any():
                i = np.flatnonzero(ok)[np.argmin(s[ok])]
                if s[i] < best_s:
                    best_row, best_s = cands[i], float(s[i])
        if best_row is None:
            log.info("fast rule: no %d-layer arch in the window", lt)
            continue
        rows.append(best_row)
        speeds.append(best_s)
    return np.asarray(rows, dtype=np.int64).reshape(-1, len(FIELDS)), np.asarray(speeds)


class FastRule(SearchAlgorithm):
    """AutoTinyBERT-Fast in the first window: the rule's candidates, evaluated once."""

    name = "fast"

    def run(self, problem: SearchProblem) -> list[dict]:
        window = problem.windows[0]
        archs, pred = fast_rule_candidates(problem.space, problem.latency, window, problem.rng)
        if not len(archs):
            raise InfeasibleTargetError(
                f"no arch that follows the fast rule (1.6 dm <= df <= 1.9 dm, 0.7 dm <= dqkv <= dm) "
                f"has a {window.describe()}",
                hint="use --algorithm evolution, or another target",
            )
        fit = problem.evaluator.evaluate(archs, generation=0, source=self.name, predicted=pred)
        return [{"generation": 1, "size": len(archs), "best_fitness": float(np.max(fit))}]
