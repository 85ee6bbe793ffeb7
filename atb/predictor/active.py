"""Active sampling: which architectures to profile next (``atb-profile --strategy uncertainty``).

A committee of models disagrees most where the data say least. From labels, the committee is
bootstrap replicas of two different families: the additive model plus trees on its residuals
(extrapolates the operator-cost trend) and plain trees on log latency (extrapolates flat).
Bootstrap replicas of one family alone agree with each other outside the data (trees all
extrapolate the same constant), so it is the mix that flags unexplored regions; inside them,
the spread reflects where the bootstrap fits are unstable. From a fitted predictor, the
committee is the predictor's own model families. The spread is
measured in log space, i.e. as relative uncertainty, which is what the accuracy targets use.
A batch is chosen greedily for spread x distance to the batch's earlier picks (diversity),
and a share of the picks is uniform (``explore``) so the committee's blind spots get data.
"""

from __future__ import annotations

import logging

import numpy as np

from atb.errors import PredictorError
from atb.predictor.features import check_archs
from atb.profiler.labels import LabelSet

log = logging.getLogger("atb.predictor.active")

MIN_LABELS_FOR_COMMITTEE = 20  # fewer labels: the committee is noise, sample uniformly


def committee_spread(labels: LabelSet, candidates: np.ndarray, members: int = 6,
                     seed: int = 0, seq_len: int = 128) -> np.ndarray:
    """Std over a bootstrap committee of log-latency predictions for each candidate."""
    from threadpoolctl import threadpool_limits

    from atb.predictor.analytic import AdditiveLayers
    from atb.predictor.gbt import GradientBoostedTrees

    rng = np.random.default_rng(seed)
    log_ms = np.log(labels.latency_ms)
    preds = np.empty((members, len(candidates)))
    with threadpool_limits(1):
        for i in range(members):
            idx = rng.integers(0, len(labels), len(labels))
            target, trend = log_ms[idx], None
            if i % 2 == 0:  # even members: operator-cost trend + trees on its residuals
                trend = AdditiveLayers(seq_len).fit(labels.archs[idx], target, rng)
                target = target - trend.predict_log(labels.archs[idx])
            trees = GradientBoostedTrees(seq_len, n_estimators=60, max_depth=3, learning_rate=0.1)
            trees.fit(labels.archs[idx], target, rng)
            preds[i] = trees.predict_log(candidates)
            if trend is not None:
                preds[i] += trend.predict_log(candidates)
    return preds.std(axis=0)


def propose_uncertain(source, candidates, n: int, rng: np.random.Generator,
                      explore: float = 0.2, members: int = 6) -> np.ndarray:
    """Indices (into ``candidates``, distinct) of the ``n`` architectures to profile next.

    ``source`` is a :class:`LabelSet` (the measurements so far; a bootstrap committee is fitted)
    or a :class:`~atb.predictor.predictor.LatencyPredictor` (disagreement of its stored model
    families). ``explore`` is the share of picks drawn uniformly from the rest.
    """
    cand = check_archs(candidates)
    if n < 0:
        raise PredictorError(f"cannot propose {n} architectures")
    n = min(n, len(cand))
    if n == 0:
        return np.empty(0, dtype=np.int64)
    spread = _spread(source, cand, rng, members)
    if spread is None:
        return rng.choice(len(cand), size=n, replace=False).astype(np.int64)
    n_explore = int(round(explore * n))
    picked = _diverse_top(cand, spread, n - n_explore, rng)
    rest = np.setdiff1d(np.arange(len(cand)), picked)
    if n_explore:
        picked += list(rng.choice(rest, size=n_explore, replace=False))
    return np.asarray(picked, dtype=np.int64)


def _diverse_top(cand: np.ndarray, spread: np.ndarray, k: int, rng) -> list[int]:
    """``k`` uncertain *and* mutually distant candidates: greedy on spread x distance to the
    ones already picked (log dims), within the 4k most uncertain. Without the distance term a
    batch piles onto one uncertain corner and wastes most of its measurements."""
    if k <= 0:
        return []
    # tiny jitter breaks ties between identical spreads without biasing the order
    order = np.argsort(-(spread + rng.uniform(0, 1e-12, len(spread))))[: 4 * k]
    x = np.log(cand[order])
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-9)
    s = spread[order]
    dist = np.full(len(order), np.inf)
    picked: list[int] = []
    for _ in range(k):
        score = s * np.minimum(dist, np.median(dist[np.isfinite(dist)]) if picked else 1.0)
        score[picked] = -np.inf
        j = int(np.argmax(score))
        picked.append(j)
        dist = np.minimum(dist, np.sqrt(((x - x[j]) ** 2).sum(axis=1)))
    return [int(order[j]) for j in picked]


def _spread(source, cand: np.ndarray, rng: np.random.Generator, members: int):
    if isinstance(source, LabelSet):
        if len(source) < MIN_LABELS_FOR_COMMITTEE:
            log.info("only %d measurements: proposing uniformly until %d", len(source),
                     MIN_LABELS_FOR_COMMITTEE)
            return None
        return committee_spread(source, cand, members, int(rng.integers(2**31 - 1)))
    models = getattr(source, "models", None)
    if models is None:
        raise PredictorError(f"propose_uncertain needs labels or a predictor, got {type(source).__name__}")
    # the FLOPs baseline is biased, not uncertain: leave it out of the committee
    committee = [m for k, m in models.items() if k != "flops_linear"]
    if len(committee) < 2:
        log.info("predictor holds one model: no committee, proposing uniformly")
        return None
    return np.stack([m.predict_log(cand) for m in committee]).std(axis=0)
