"""Confidence intervals of test accuracy, alone and as a paired difference of two models.

Both come from a bootstrap over the two sources of chance in a fine-tuned score: which test
examples were drawn (resampled with replacement, the same draw for both models of a pair, which
is what makes the difference *paired*: examples that both models find easy or hard cancel) and
which training seeds were run (resampled with replacement, each model's own seeds, since two
models' seed ``i`` share nothing but a number). The probe's fit is convex, so its seeds agree
and only the examples count.

Two effects pull in opposite directions and were checked on synthetic models
(``tests/test_stats.py``): a bootstrap of 3 seeds sees only 2/3 of their spread, while
resampling seeds on top of examples counts part of the examples' noise a second time (a seed's
accuracy already varies with its per-example luck). The single-model interval covers the true
accuracy at about the stated rate; the paired one errs wide (it covered the true difference in
every one of 150 synthetic trials), so a difference it calls significant is one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atb.errors import UsageError

LEVEL = 0.95
RESAMPLES = 2000
VERDICTS = ("A better", "B better", "no difference at this size")


def named_verdict(verdict: str, a: str, b: str) -> str:
    """A verdict with the two sides named for a reader: ``"A better"`` -> ``"<a> better"``."""
    return {VERDICTS[0]: f"{a} better", VERDICTS[1]: f"{b} better"}.get(verdict, verdict)


def correctness(predictions, labels) -> np.ndarray:
    """(seeds, examples) bool matrix: seed ``s`` predicted example ``i`` right."""
    predicted = np.atleast_2d(np.asarray(predictions))
    labels = np.asarray(labels)
    if predicted.shape[1] != labels.shape[0]:
        raise UsageError(f"{predicted.shape[1]} predictions for {labels.shape[0]} test examples")
    return predicted == labels[None, :]


def _seed_means(correct: np.ndarray, examples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per bootstrap draw: accuracy over resampled seeds of the example-resampled matrix."""
    n_seeds = correct.shape[0]
    per_seed = correct[:, examples].mean(axis=2)  # (seeds, resamples)
    pick = rng.integers(0, n_seeds, size=(n_seeds, examples.shape[0]))
    return np.take_along_axis(per_seed, pick, axis=0).mean(axis=0)


def _example_draws(n: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, n, size=(resamples, n))


def _bounds(values: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high)


def accuracy_interval(correct: np.ndarray, level: float = LEVEL, resamples: int = RESAMPLES,
                      seed: int = 0) -> tuple[float, float]:
    """Bootstrap interval of the mean accuracy over seeds of a (seeds, examples) matrix."""
    rng = np.random.default_rng(seed)
    draws = _example_draws(correct.shape[1], resamples, rng)
    return _bounds(_seed_means(np.asarray(correct, dtype=np.float32), draws, rng), level)


@dataclass(frozen=True)
class PairedDifference:
    """Accuracy of A minus accuracy of B on the same test examples, with its interval."""

    difference: float
    low: float
    high: float
    level: float
    n_examples: int

    @property
    def verdict(self) -> str:
        if self.low > 0:
            return VERDICTS[0]
        if self.high < 0:
            return VERDICTS[1]
        return VERDICTS[2]

    def as_dict(self) -> dict:
        return {"difference": self.difference, "ci_low": self.low, "ci_high": self.high,
                "level": self.level, "n_examples": self.n_examples, "verdict": self.verdict}


def paired_difference(correct_a: np.ndarray, correct_b: np.ndarray, level: float = LEVEL,
                      resamples: int = RESAMPLES, seed: int = 0) -> PairedDifference:
    """Paired bootstrap of mean accuracy(A) - mean accuracy(B); both matrices are (seeds,
    examples) over the same examples in the same order (their seed counts may differ)."""
    a = np.asarray(correct_a, dtype=np.float32)
    b = np.asarray(correct_b, dtype=np.float32)
    if a.shape[1] != b.shape[1]:
        raise UsageError(f"the two models were scored on {a.shape[1]} and {b.shape[1]} test "
                         "examples: a paired difference needs the same examples")
    rng = np.random.default_rng(seed)
    draws = _example_draws(a.shape[1], resamples, rng)  # the same examples for both: paired
    diffs = _seed_means(a, draws, rng) - _seed_means(b, draws, rng)
    low, high = _bounds(diffs, level)
    return PairedDifference(float(a.mean() - b.mean()), low, high, level, a.shape[1])


def paired_over_seeds(mine: dict[int, np.ndarray], theirs: dict[int, np.ndarray],
                      labels: np.ndarray, names: tuple[str, str]) -> dict | None:
    """Two models' test predictions (``{seed: classes}``) paired over the seeds both have,
    keyed by ``names`` (mine, theirs): ``seeds``, ``<mine>_accuracy``, ``<theirs>_accuracy``
    and ``<mine>_minus_<theirs>``, the paired 95% interval (:func:`paired_difference`'s
    ``as_dict``); None when no seed is shared."""
    seeds = sorted(set(mine) & set(theirs))
    if not seeds:
        return None
    a = np.stack([mine[s] == labels for s in seeds])
    b = np.stack([theirs[s] == labels for s in seeds])
    first, second = names
    return {"seeds": seeds, f"{first}_accuracy": float(a.mean()),
            f"{second}_accuracy": float(b.mean()),
            f"{first}_minus_{second}": paired_difference(a, b).as_dict()}


def split_by_share(x: float, shares: dict[str, float]) -> str:
    """The split whose cumulative share first exceeds ``x`` (a hash mapped to [0, 1)); the
    last one when rounding leaves ``x`` past them all. How hashed task splits are drawn."""
    edge = 0.0
    for name, share in shares.items():
        edge += share
        if x < edge:
            return name
    return list(shares)[-1]
