"""The two-stage search: measured top candidates spread over depths, re-ranked on a task score,
cached in the run directory (a resumed run scores nothing twice), winner vs the rule arch."""

import json
import zlib

import numpy as np
import pytest

from atb.arch import Arch
from atb.errors import UsageError
from atb.search import run_search
from atb.search.config import TASK_FITNESS
from atb.search.evaluate import Record
from atb.search.fitness import CapacityFitness, parse_fitness
from atb.search.rerank import depth_spread, rerank

from tests.search.synthetic import SyntheticFitness, SyntheticLatency, SyntheticMeasure
from tests.search.test_api import search

EXAMPLES = 400


class FakeTaskScore:
    """Validation accuracy that favours shallow, wide archs, with seeded per-arch noise."""

    task = "fake-task"
    settings = "fake 1 step"

    def __init__(self, fail_after: int | None = None):
        self.scored: list[str] = []
        self.fail_after = fail_after

    def accuracy(self, arch: Arch) -> float:
        return 0.5 + 0.3 * arch.dm / 384 - 0.02 * arch.lt

    def __call__(self, arch: Arch) -> dict:
        if self.fail_after is not None and len(self.scored) >= self.fail_after:
            raise RuntimeError("simulated crash")
        self.scored.append(str(arch))
        rng = np.random.default_rng(zlib.crc32(str(arch).encode()))
        correct = rng.random(EXAMPLES) < self.accuracy(arch)
        return {"validation_accuracy": float(correct.mean()),
                "validation_loss": float(1 - correct.mean()), "correct": correct, "seconds": 0.01}


def record(arch: str, fitness: float) -> Record:
    return Record(arch, fitness, 15.0, 0, "evolution", 15.2)


def test_depth_spread_takes_the_best_of_every_depth_first():
    records = [record("4-256-1024-4-256", 5), record("4-256-768-4-256", 4),
               record("2-384-1536-6-384", 3), record("3-320-1024-4-256", 2),
               record("2-384-1024-6-384", 1)]
    order = [r.arch for r in depth_spread(records)]
    assert order == ["4-256-1024-4-256", "2-384-1536-6-384", "3-320-1024-4-256",
                     "4-256-768-4-256", "2-384-1024-6-384"]


def test_rerank_orders_by_validation_accuracy_and_compares_with_the_rule(tmp_path):
    candidates = [record("4-128-512-2-128", 3.0), record("2-384-1536-6-384", 2.0)]
    rule = Record("3-256-1024-4-256", 1.0, 15.0, -1, "bert-rule", 15.1)
    score = FakeTaskScore()
    result = rerank(15.0, candidates, rule, score, tmp_path)
    assert result.winner.arch == "2-384-1536-6-384"  # the score's order, not the fitness's
    c = result.comparison
    assert c["n_examples"] == EXAMPLES and c["ci_low"] <= c["difference"] <= c["ci_high"]
    assert c["difference"] == pytest.approx(result.winner.validation_accuracy
                                            - result.baseline.validation_accuracy)
    json.dumps(result.to_dict())
    again = rerank(15.0, candidates, rule, score, tmp_path)  # cached: nothing scored twice
    assert len(score.scored) == 3 and again.to_dict() == result.to_dict()
    other = FakeTaskScore()
    other.settings = "fake 2 steps"  # other settings: scored anew
    rerank(15.0, candidates, rule, other, tmp_path)
    assert len(other.scored) == 3


def test_two_stage_search_returns_the_reranked_winner(tmp_path, small_space):
    score = FakeTaskScore()
    result = search(tmp_path, small_space, task="fake-task", rerank=4, task_score=score)
    d = result.to_dict()
    r = d["reranking"]
    assert len(r["ranked"]) == 4 and r["baseline"]["role"] == "bert-rule"
    assert d["best"]["arch"] == r["winner"]["arch"] == r["ranked"][0]["arch"]
    accuracies = [s["validation_accuracy"] for s in r["ranked"]]
    assert accuracies == sorted(accuracies, reverse=True)
    assert len(score.scored) == 5  # 4 candidates + the rule arch
    assert all(s["measured_speedup"] is not None for s in r["ranked"])
    assert (result.run_dir / "screened.jsonl").is_file()


def test_two_stage_search_resumes_without_scoring_again(tmp_path, small_space):
    crashed = FakeTaskScore(fail_after=2)
    with pytest.raises(RuntimeError):
        search(tmp_path, small_space, task="fake-task", rerank=4, task_score=crashed,
               run_name="r")
    resumed = FakeTaskScore()
    result = run_search(workspace=tmp_path / "ws", resume=tmp_path / "ws" / "runs" / "r",
                        latency=SyntheticLatency(), fitness=SyntheticFitness(small_space),
                        measure=SyntheticMeasure(), task_score=resumed)
    assert len(resumed.scored) == 3 and not set(resumed.scored) & set(crashed.scored)
    assert len(result.to_dict()["reranking"]["ranked"]) == 4


def test_a_task_needs_a_score_and_defaults_the_first_stage_to_capacity(tmp_path, small_space):
    with pytest.raises(UsageError, match="task_score"):
        search(tmp_path, small_space, task="fake-task")
    from atb.search.config import resolve_config

    assert resolve_config(15, task="kjv-next").fitness_spec == TASK_FITNESS == "params"
    assert resolve_config(15, task="kjv-next", fitness_spec="loss").fitness_spec == "loss"
    assert resolve_config(15).fitness_spec == "loss"


@pytest.mark.parametrize("kw", [{"rerank": 0}, {"screen_steps": 0}, {"screen_lr": 0.0},
                                {"task": " "}, {"rerank_by": "votes"}])
def test_bad_rerank_settings(tmp_path, small_space, kw):
    with pytest.raises(UsageError):
        search(tmp_path, small_space, task_score=FakeTaskScore(), **{"task": "t", **kw})


def test_capacity_fitness_counts_non_embedding_parameters(small_space):
    assert parse_fitness("params") == ("params", None)
    fitness = CapacityFitness(small_space)
    wide, narrow = Arch.parse("2-384-1536-6-384"), Arch.parse("4-128-512-2-128")
    values = fitness.fitness([wide, narrow])
    assert values[0] == wide.non_embedding_params() > values[1] == narrow.non_embedding_params()
    # 4 dm dqkv + 3 dqkv + 2 dm df + df + 6 dm per layer
    assert narrow.non_embedding_params() == 4 * (4 * 128 * 128 + 3 * 128 + 2 * 128 * 512 + 512
                                                 + 6 * 128)


def test_two_stage_run_draws_the_task_figure(tmp_path, small_space):
    from atb.search.plots import plot_pareto

    result = search(tmp_path, small_space, task="fake-task", rerank=3, task_score=FakeTaskScore())
    files = plot_pareto(result.run_dir)
    names = [f.name for f in files]
    assert any(n.startswith("task-") and n.endswith(".png") for n in names)
    assert all(f.stat().st_size > 0 for f in files)
