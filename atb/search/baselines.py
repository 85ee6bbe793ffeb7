"""BERT-rule baselines: the conventional shape (``dqkv = dm``, ``df = 4 dm``) at equal speedup.

The paper's Figure 1 compares searched archs with BERT-rule ones at the same speedup. The
fair baseline for a target is the best-fitness BERT-rule arch under the *same* latency window
as the search; the rule's grid is coarse (in the pretrain space ``dm`` must be a multiple of
64), so when no rule arch falls in the window the baseline is the slowest rule arch that is
still at least as fast as the window's lower edge (the rule's best shot at that constraint).
"""

from __future__ import annotations

import logging

import numpy as np

from atb.arch import FIELDS, SearchSpace
from atb.search.evaluate import Evaluator
from atb.search.ports import SpeedupModel
from atb.search.window import Window

log = logging.getLogger("atb.search.baselines")

MAX_BASELINE_EVALS = 4  # rule archs evaluated per window (the slowest ones in it)


def bert_rule_archs(space: SearchSpace) -> np.ndarray:
    """Every arch of ``space`` that follows BERT's rule, as an (n, 5) array."""
    r = space.ranges
    lt, dm, h = np.meshgrid(r["lt"].values, r["dm"].values, r["h"].values, indexing="ij")
    lt, dm, h = lt.ravel(), dm.ravel(), h.ravel()
    out = np.stack([lt, dm, 4 * dm, h, dm], axis=1).astype(np.int64)
    out = out[space.contains_array(out) & (out[:, 4] % out[:, 3] == 0)]
    return out.reshape(-1, len(FIELDS))


def bert_rule_candidates(space: SearchSpace, latency: SpeedupModel, window: Window,
                         limit: int = MAX_BASELINE_EVALS) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``limit`` rule archs to evaluate for ``window``: the slowest ones inside it, or
    else the slowest one faster than it. Empty when the rule cannot reach the window."""
    rule = bert_rule_archs(space)
    if not len(rule):
        return rule, np.empty(0)
    s = np.asarray(latency.predict_speedup(rule), dtype=np.float64)
    inside = np.flatnonzero(window.contains(s))
    if len(inside):
        pick = inside[np.argsort(s[inside], kind="stable")[:limit]]
    else:
        faster = np.flatnonzero(np.isfinite(s) & (s >= window.lo))
        if not len(faster):
            return rule[:0], np.empty(0)
        pick = faster[[np.argmin(s[faster])]]
    return rule[pick], s[pick]


def bert_rule_baseline(space: SearchSpace, latency: SpeedupModel, evaluator: Evaluator,
                       window: Window):
    """The best BERT-rule :class:`~atb.search.evaluate.Record` for ``window`` (or None)."""
    archs, pred = bert_rule_candidates(space, latency, window)
    if not len(archs):
        log.info("no BERT-rule arch reaches %s", window.describe())
        return None
    evaluator.evaluate(archs, generation=-1, source="bert-rule", predicted=pred)
    recs = [evaluator.records["-".join(map(str, row))] for row in archs]
    return max(recs, key=lambda r: (r.fitness if np.isfinite(r.fitness) else -np.inf))
