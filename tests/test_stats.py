"""The bootstrap intervals hold the true value at their stated rate, and a model compared with
itself shows no difference."""

from __future__ import annotations

import numpy as np
import pytest

from atb.errors import UsageError
from atb.stats import accuracy_interval, correctness, paired_difference, paired_over_seeds


def _simulate(rng, difficulty, seeds, shift=0.0, seed_sd=0.01):
    """(seeds, examples) correctness: each example right with its own probability, each seed
    drawing its own luck on top (a seed-level offset of ``seed_sd``)."""
    offset = rng.normal(0, seed_sd, size=(seeds, 1))
    p = np.clip(difficulty[None, :] + shift + offset, 0, 1)
    return rng.random(p.shape) < p


# One seed cannot show the seed spread (a deterministic probe has none); three seeds can.
@pytest.mark.parametrize("seeds, seed_sd", [(1, 0.0), (3, 0.01)])
def test_accuracy_interval_covers_the_true_accuracy(seeds, seed_sd):
    rng = np.random.default_rng(0)
    trials, hits = 150, 0
    for t in range(trials):
        difficulty = rng.beta(3, 1.5, size=400)  # a fresh test split drawn from the population
        truth = 3 / 4.5  # the population's mean accuracy (Beta(3, 1.5))
        correct = _simulate(rng, difficulty, seeds, seed_sd=seed_sd)
        low, high = accuracy_interval(correct, resamples=400, seed=t)
        hits += low <= truth <= high
    assert 0.88 <= hits / trials <= 0.995


def test_paired_interval_covers_the_true_difference_and_is_narrower_than_unpaired():
    rng = np.random.default_rng(1)
    trials, hits, widths = 150, 0, []
    for t in range(trials):
        difficulty = rng.beta(3, 1.5, size=400)
        a = _simulate(rng, difficulty, 3, shift=0.03)
        b = _simulate(rng, difficulty, 3)
        d = paired_difference(a, b, resamples=400, seed=t)
        # the true difference: 0.03 on every example, less where clipping at 1 bites
        truth = float(np.mean(np.clip(difficulty + 0.03, 0, 1) - difficulty))
        hits += d.low <= truth <= d.high
        widths.append(d.high - d.low)
    # at least the stated rate: resampling seeds on top of examples counts part of the
    # examples' noise twice, so the paired interval errs wide (docs: "Evaluation")
    assert hits / trials >= 0.9
    # unpaired, each accuracy's interval alone is about as wide as the paired difference's:
    # pairing removes the examples' shared difficulty
    low, high = accuracy_interval(a, resamples=400)
    assert np.mean(widths) < 2 * (high - low)


def test_a_model_against_itself_shows_no_difference():
    rng = np.random.default_rng(2)
    correct = rng.random((3, 500)) < 0.7
    d = paired_difference(correct, correct)
    assert d.difference == 0 and d.low <= 0 <= d.high
    assert d.verdict == "no difference at this size"


def test_verdicts_follow_the_interval():
    rng = np.random.default_rng(3)
    difficulty = rng.beta(3, 1.5, size=3000)
    better = _simulate(rng, difficulty, 3, shift=0.1)
    worse = _simulate(rng, difficulty, 3)
    assert paired_difference(better, worse).verdict == "A better"
    assert paired_difference(worse, better).verdict == "B better"


def test_shapes_are_checked():
    with pytest.raises(UsageError):
        correctness([[0, 1, 1]], [0, 1])
    with pytest.raises(UsageError):
        paired_difference(np.ones((2, 5)), np.ones((2, 6)))


def test_paired_over_seeds_pairs_only_the_shared_seeds():
    labels = np.array([0, 1, 1, 0])
    mine = {0: np.array([0, 1, 1, 0]), 1: np.array([0, 1, 1, 1]), 5: np.array([1, 1, 1, 1])}
    theirs = {1: np.array([1, 0, 1, 0]), 0: np.array([0, 0, 0, 0]), 2: np.array([0, 1, 1, 0])}
    r = paired_over_seeds(mine, theirs, labels, ("searched", "rule"))
    assert r["seeds"] == [0, 1]  # seeds 2 and 5 have no partner
    assert r["searched_accuracy"] == pytest.approx(7 / 8)
    assert r["rule_accuracy"] == pytest.approx(4 / 8)
    d = r["searched_minus_rule"]
    assert d["difference"] == pytest.approx(3 / 8) and d["n_examples"] == 4
    assert paired_over_seeds(mine, {9: labels}, labels, ("a", "b")) is None
