"""The BERT-rule baseline: the rule arch a user would pick by hand for the target."""

import numpy as np
import pytest

from atb.arch import get_space
from atb.search.baselines import (RuleArch, bert_rule_archs, bert_rule_baseline, bert_rule_candidate,
                                  layer_cut, layer_cuts)
from atb.search.fitness_cache import Evaluator
from atb.search.window import ACCEPT_BAND, Window
from tests.search.synthetic import SyntheticFitness, SyntheticLatency

SPACE = get_space("pretrain")


def _rule_speedups():
    rule = bert_rule_archs(SPACE)
    return rule, SyntheticLatency().predict_speedup(rule)


@pytest.mark.parametrize("target", [6.0, 8.0, 15.0, 25.0])
def test_the_baseline_is_the_rule_arch_predicted_nearest_the_target(target):
    rule, speedups = _rule_speedups()
    archs, predicted = bert_rule_candidate(SPACE, SyntheticLatency(), Window.for_target(target))
    band = (speedups >= ACCEPT_BAND[0] * target) & (speedups <= ACCEPT_BAND[1] * target)
    assert band.any() and archs.shape == (1, 5)
    nearest = np.argmin(np.where(band, np.abs(np.log(speedups / target)), np.inf))
    assert archs[0].tolist() == rule[nearest].tolist() and predicted[0] == speedups[nearest]
    assert archs[0, 2] == 4 * archs[0, 1] and archs[0, 4] == archs[0, 1]


def test_the_fitness_does_not_choose_the_baseline():
    window = Window.for_target(8.0)
    expected, _ = bert_rule_candidate(SPACE, SyntheticLatency(), window)
    for fitness in (SyntheticFitness(SPACE), _Reversed(SPACE)):
        record = bert_rule_baseline(SPACE, SyntheticLatency(), Evaluator(fitness,
                                                                         SyntheticLatency()),
                                    window)
        assert record.arch == "-".join(map(str, expected[0])) and np.isfinite(record.fitness)


def test_between_two_rule_archs_the_baseline_is_the_slowest_faster_one():
    rule, speedups = _rule_speedups()
    ordered = np.sort(speedups)
    gap = int(np.argmax(ordered[1:] / ordered[:-1]))  # the widest gap of the rule's grid
    low, high = ordered[gap], ordered[gap + 1]
    target = (low / ACCEPT_BAND[0] + high / ACCEPT_BAND[1]) / 2
    assert low < ACCEPT_BAND[0] * target and ACCEPT_BAND[1] * target < high  # no rule arch in it
    archs, predicted = bert_rule_candidate(SPACE, SyntheticLatency(), Window.for_target(target))
    assert predicted[0] == high


def test_a_target_the_rule_cannot_reach_has_no_baseline():
    _, speedups = _rule_speedups()
    window = Window.for_target(float(speedups.max()) * 2)
    archs, _ = bert_rule_candidate(SPACE, SyntheticLatency(), window)
    assert len(archs) == 0
    assert bert_rule_baseline(SPACE, SyntheticLatency(),
                              Evaluator(SyntheticFitness(SPACE), SyntheticLatency()),
                              window) is None


def test_the_next_rule_arch_is_the_nearest_expected_in_the_band_not_measured_yet():
    rule, speedups = _rule_speedups()
    window = Window.for_target(15.0)
    picker = RuleArch(SPACE, SyntheticLatency(), Evaluator(SyntheticFitness(SPACE),
                                                           SyntheticLatency()), window)
    first = picker.first()
    for scale in (1.0, 0.93):  # 0.93: the device measures 7% slower than predicted
        expected = speedups * scale
        band = (expected >= ACCEPT_BAND[0] * 15) & (expected <= ACCEPT_BAND[1] * 15)
        names = ["-".join(map(str, r)) for r in rule]
        order = sorted((abs(np.log(expected[i] / 15)), names[i]) for i in np.flatnonzero(band)
                       if names[i] != first.arch)
        picked = picker.next({first.arch}, scale)
        assert picked.arch == order[0][1] and picked.source == "bert-rule"
        assert np.isfinite(picked.fitness) and picked.predicted_speedup == speedups[names.index(picked.arch)]
    assert picker.next(set(names), 1.0) is None  # every rule arch measured: none left


@pytest.mark.parametrize("target", [4.0, 9.0, 14.3, 21.0, 60.0])
def test_the_layer_cut_is_the_full_width_depth_predicted_nearest_the_target(target):
    space = get_space("pretrain", "minilm")
    cuts = layer_cuts(space)
    assert [f"{k}-384-1536-12-384" for k in range(1, 7)] == ["-".join(map(str, c)) for c in cuts]
    speedups = SyntheticLatency().predict_speedup(cuts)
    cut = layer_cut(space, SyntheticLatency(), target)
    k = int(np.argmin(np.abs(np.log(speedups / target)))) + 1
    assert cut.arch == f"{k}-384-1536-12-384" and cut.layers == k
    assert cut.predicted_speedup == speedups[k - 1] and cut.measured_speedup is None
    assert cut.to_dict()["in_band"] is None  # not measured


class _Reversed(SyntheticFitness):
    """Prefers small archs: the opposite of SyntheticFitness."""

    def fitness(self, archs):
        return -super().fitness(archs)
