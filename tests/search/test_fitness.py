"""``--fitness probe:TASK``: sub-models scored by a linear probe on a task's validation split."""

from __future__ import annotations

import types

import numpy as np
import pytest

from atb.arch import Arch, SearchSpace
from atb.errors import UsageError
from atb.compose import probe_fitness
from atb.search.fitness import CapacityFitness, ProbeFitness, RetentionFitness, parse_fitness


def test_parse_fitness():
    assert parse_fitness("loss") == ("loss", None)
    assert parse_fitness("params") == ("params", None)
    assert parse_fitness("retention") == ("retention", None)
    assert parse_fitness("probe:kjv-genre") == ("probe", "kjv-genre")
    for bad in ("probe", "probe:", "accuracy", "loss:x", "retention:x"):
        with pytest.raises(UsageError):
            parse_fitness(bad)


@pytest.fixture(scope="module")
def tiny_task(tmp_path_factory):
    """A separable two-class task: does the text speak of the sea or of bread?"""
    rng = np.random.default_rng(0)
    words = {0: ["sea", "ship", "waves", "water"], 1: ["bread", "wheat", "oven", "loaf"]}
    rows = ["text,label"]
    for i in range(120):
        label = i % 2
        rows.append(" ".join(rng.choice(words[label], 3)) + f" and day {i},{label}")
    path = tmp_path_factory.mktemp("task") / "tiny.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_probe_fitness_scores_sub_models_on_validation(tiny_task, tmp_path):
    import torch

    from atb.supernet.elastic import SuperPLM

    torch.manual_seed(0)
    space = SearchSpace("pretrain", Arch(2, 160, 192, 2, 128))
    stub = types.SimpleNamespace(space=space, supernet=SuperPLM(space).eval(), checkpoint=tmp_path)
    fitness = probe_fitness(stub, str(tiny_task))  # the composition root builds the probe
    assert isinstance(fitness, ProbeFitness)
    archs = [Arch(1, 128, 128, 1, 64), Arch(2, 160, 192, 2, 128)]
    first = fitness.fitness(archs)
    assert first.shape == (2,) and ((first >= 0) & (first <= 1)).all()
    assert (first > 0.5).all()  # the words separate the classes even through random weights
    np.testing.assert_array_equal(fitness.fitness(archs[::-1]), first[::-1])  # cached, same
    assert fitness.space is space


def test_search_cli_refuses_a_bad_fitness(capsys):
    from atb.search.cli import main

    code = main(["--target-speedup", "15", "--fitness", "probe"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "unknown fitness" in err and len(err.splitlines()) == 1


def test_retention_fitness_is_layers_times_width_with_parameters_breaking_ties():
    space = SearchSpace("pretrain", Arch(4, 384, 1536, 6, 384))
    fitness = RetentionFitness(space)
    archs = [Arch(2, 384, 1536, 6, 384),  # 768: the most parameters of all
             Arch(4, 256, 512, 2, 128),   # 1024: deeper beats wider
             Arch(3, 256, 512, 2, 128),   # 768, fewer parameters than the first
             Arch(1, 128, 128, 1, 64)]    # 128
    values = fitness.fitness(archs)
    assert list(np.argsort(-values)) == [1, 0, 2, 3]
    assert np.floor(values).tolist() == [768, 1024, 768, 128]  # parameters stay below 1
    assert archs[2].non_embedding_params() < archs[0].non_embedding_params()


@pytest.mark.parametrize("spec,kind", [("retention", RetentionFitness), ("params", CapacityFitness)])
def test_search_fitness_builds_the_cheap_fitnesses_over_the_supernets_space(monkeypatch, spec,
                                                                            kind):
    from atb import compose
    from atb.supernet.heldout_loss import FitnessEvaluator

    trained = SearchSpace("pretrain", Arch(2, 160, 192, 2, 128))
    monkeypatch.setattr(FitnessEvaluator, "from_workspace",
                        classmethod(lambda cls, ws, space=None: types.SimpleNamespace(space=trained)))
    fitness = compose.search_fitness(None, spec=spec)
    assert isinstance(fitness, kind) and fitness.space is trained
