"""Fitness evaluator: fixed evaluation set, cache, errors that name the missing command."""

from __future__ import annotations

import numpy as np
import pytest

from atb.arch import Arch
from atb.errors import ArchSpecError, MissingInputError
from atb.supernet import FitnessEvaluator


@pytest.fixture(scope="module")
def evaluator(trained_ws):
    return FitnessEvaluator.from_workspace(trained_ws, eval_sequences=8, eval_seq_len=32)


def test_fitness_is_negative_heldout_loss_and_cached(evaluator, monkeypatch):
    archs = [Arch(1, 128, 128, 1, 64), Arch(2, 160, 192, 2, 128), Arch(1, 128, 128, 1, 64)]
    scored = []  # the arch of every batch the objective scores
    loss = evaluator.objective.loss

    def counted(net, batch, arch):
        scored.append(arch)
        return loss(net, batch, arch)

    monkeypatch.setattr(evaluator.objective, "loss", counted)
    fit = evaluator.fitness(archs)
    assert fit.dtype == np.float64 and fit.shape == (3,)
    assert fit[0] == fit[2] and scored.count(archs[0]) == scored.count(archs[1]) > 0  # the repeat is cached
    calls = len(scored)
    assert evaluator.fitness(archs[:1])[0] == fit[0] and len(scored) == calls
    detail = evaluator.evaluate(archs[1])
    assert detail["fitness"] == pytest.approx(-detail["loss"]) == pytest.approx(fit[1])
    assert 0.0 <= detail["accuracy"] <= 1.0 and detail["tokens"] > 0
    assert evaluator.space.super_arch == Arch(2, 160, 192, 2, 128)


def test_same_scores_from_a_fresh_evaluator(evaluator, trained_ws):
    again = FitnessEvaluator.from_workspace(trained_ws, space="pretrain", eval_sequences=8, eval_seq_len=32)
    arch = Arch(2, 140, 160, 1, 64)
    assert again.evaluate(arch)["loss"] == evaluator.evaluate(arch)["loss"]


def test_arch_outside_space(evaluator):
    with pytest.raises(ArchSpecError, match="outside"):
        evaluator.evaluate("2-160-192-3-192")


def test_missing_checkpoint_names_train(data_ws, tmp_path):
    with pytest.raises(MissingInputError) as err:
        FitnessEvaluator.from_workspace(tmp_path)
    assert "atb-supernet train" in err.value.one_line()
    with pytest.raises(MissingInputError):
        FitnessEvaluator.from_workspace(data_ws, space="kd")  # only a pretrain checkpoint there
