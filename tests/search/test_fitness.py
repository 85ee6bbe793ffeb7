"""``--fitness probe:TASK``: sub-models scored by a linear probe on a task's validation split."""

from __future__ import annotations

import types

import numpy as np
import pytest

from atb.arch import Arch, SearchSpace
from atb.errors import UsageError
from atb.compose import probe_fitness
from atb.search.fitness import ProbeFitness, parse_fitness


def test_parse_fitness():
    assert parse_fitness("loss") == ("loss", None)
    assert parse_fitness("probe:kjv-genre") == ("probe", "kjv-genre")
    for bad in ("probe", "probe:", "accuracy", "loss:x"):
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
