"""The two-stage search: measured top candidates spread over depths, scored on a task (cached
in the run directory: a resumed run scores nothing twice), the first stage's favourite kept
unless a candidate is significantly better on validation, winner vs the rule arch."""

import json
import zlib

import numpy as np
import pytest

from atb.arch import Arch
from atb.errors import UsageError
from atb.search.config import TASK_FITNESS
from atb.search.fitness_cache import Record
from atb.search.fitness import CapacityFitness, RetentionFitness, parse_fitness
from atb.search.rerank import FAVOURITE_KEPT, depth_spread, rerank

from tests.search.synthetic import SyntheticFitness, SyntheticLatency, SyntheticMeasure, search_with
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


def test_rerank_overturns_a_clearly_worse_favourite_and_compares_with_the_rule(tmp_path):
    candidates = [record("4-128-512-2-128", 3.0), record("2-384-1536-6-384", 2.0)]
    rule = Record("3-256-1024-4-256", 1.0, 15.0, -1, "bert-rule", 15.1)
    score = FakeTaskScore()
    result = rerank(15.0, candidates, rule, score, tmp_path)
    # ~52% vs ~76% on 400 examples: the task overturns the first stage's favourite
    assert result.favourite == "4-128-512-2-128" and result.overturned
    assert result.winner.arch == "2-384-1536-6-384"
    assert result.chosen_by.startswith("overturned: 2-384-1536-6-384 better on validation by +")
    assert result.chosen_by.endswith("than the first-stage favourite 4-128-512-2-128")
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


class PatternScore:
    """Validation results fixed per arch: which of N examples it gets right."""

    task = "pattern-task"
    settings = "fixed"
    N = 400

    def __init__(self, right: dict[str, np.ndarray], fail_after: int | None = None):
        self.right, self.fail_after, self.scored = right, fail_after, []

    def __call__(self, arch: Arch) -> dict:
        if self.fail_after is not None and len(self.scored) >= self.fail_after:
            raise RuntimeError("simulated crash")
        self.scored.append(str(arch))
        correct = np.zeros(self.N, bool)
        correct[self.right[str(arch)]] = True
        return {"validation_accuracy": float(correct.mean()),
                "validation_loss": float(1 - correct.mean()), "correct": correct, "seconds": 0.01}


FAV, A, B, C = "4-256-1024-4-256", "2-384-1536-6-384", "3-320-1024-4-256", "5-192-768-3-192"
BASE = np.arange(200)  # the favourite: right on examples 0..199 (50%)


def plus(n: int) -> np.ndarray:
    """The favourite's examples and ``n`` more (only gains: every differing example favours it)."""
    return np.arange(200 + n)


def test_the_favourite_is_kept_when_no_candidate_is_significantly_better(tmp_path):
    # A is higher on validation (+2 examples of 400) but its paired interval reaches 0;
    # the favourite is the highest first-stage fitness, not the first in the list.
    score = PatternScore({FAV: BASE, A: plus(2)})
    result = rerank(15.0, [record(A, 1.0), record(FAV, 3.0)], None, score, tmp_path)
    assert result.favourite == FAV and result.winner.arch == FAV and not result.overturned
    assert result.chosen_by == FAVOURITE_KEPT
    assert [s.arch for s in result.ranked] == [FAV, A]
    vs = result.to_dict()["versus_favourite"]
    assert [v["arch"] for v in vs] == [A]
    assert vs[0]["difference"] == pytest.approx(2 / 400) and vs[0]["ci_low"] <= 0
    assert result.ranked[1].validation_accuracy > result.winner.validation_accuracy


def test_a_significantly_better_candidate_overturns_the_favourite(tmp_path):
    score = PatternScore({FAV: BASE, A: plus(40)})  # +10 points, all 40 differences its way
    result = rerank(15.0, [record(FAV, 3.0), record(A, 1.0)], None, score, tmp_path)
    assert result.winner.arch == A and result.favourite == FAV and result.overturned
    assert result.chosen_by.startswith(f"overturned: {A} better on validation by +10.0 [+")
    assert result.chosen_by.endswith(f"points than the first-stage favourite {FAV}")
    d = result.to_dict()
    assert d["favourite"] == FAV and d["chosen_by"] == result.chosen_by
    assert d["versus_favourite"][0]["ci_low"] > 0


def test_only_significant_candidates_can_win_and_the_most_accurate_of_them_does(tmp_path):
    # A: +15 net but over 105 differing examples (60 gains, 45 losses): higher, not clearly.
    # B: +10 and C: +20, every difference their way: both significantly better.
    a = np.concatenate([np.arange(45, 200), np.arange(200, 260)])
    score = PatternScore({FAV: BASE, A: a, B: plus(10), C: plus(20)})
    candidates = [record(FAV, 4.0), record(A, 3.0), record(B, 2.0), record(C, 1.0)]
    result = rerank(15.0, candidates, None, score, tmp_path)
    vs = {v["arch"]: v for v in result.versus_favourite}
    assert vs[A]["difference"] == pytest.approx(15 / 400) and vs[A]["ci_low"] <= 0
    assert vs[B]["ci_low"] > 0 and vs[C]["ci_low"] > 0
    assert result.winner.arch == C  # the most accurate significant one, not the fitter B
    assert [s.arch for s in result.ranked] == [C, A, B, FAV]  # then by validation accuracy
    only_b = PatternScore({FAV: BASE, A: a, B: plus(10)})
    (tmp_path / "b").mkdir()
    result = rerank(15.0, candidates[:3], None, only_b, tmp_path / "b")
    assert result.winner.arch == B  # A is more accurate than B, but not clearly better than FAV
    assert [s.arch for s in result.ranked] == [B, A, FAV]


def test_a_resumed_rerank_decides_like_an_uninterrupted_one(tmp_path):
    right = {FAV: BASE, A: plus(40), B: plus(2)}
    candidates = [record(FAV, 3.0), record(A, 2.0), record(B, 1.0)]
    for name in ("whole", "resumed"):
        (tmp_path / name).mkdir()
    whole = rerank(15.0, candidates, None, PatternScore(right), tmp_path / "whole")
    crashed = PatternScore(right, fail_after=2)
    with pytest.raises(RuntimeError):
        rerank(15.0, candidates, None, crashed, tmp_path / "resumed")
    resumed_score = PatternScore(right)
    resumed = rerank(15.0, candidates, None, resumed_score, tmp_path / "resumed")
    assert resumed_score.scored == [B] and crashed.scored == [FAV, A]  # only the missing one
    assert resumed.to_dict() == whole.to_dict() and resumed.winner.arch == A


def test_two_stage_search_returns_the_reranked_winner(tmp_path, small_space):
    score = FakeTaskScore()
    result = search(tmp_path, small_space, task="fake-task", rerank=4, task_score=score)
    d = result.to_dict()
    r = d["reranking"]
    assert len(r["ranked"]) == 4 and r["baseline"]["role"] == "bert-rule"
    assert d["best"]["arch"] == r["winner"]["arch"] == r["ranked"][0]["arch"]
    assert [c["arch"] for c in d["top_k"]] == [s["arch"] for s in r["ranked"][:len(d["top_k"])]]
    fitnesses = {s["arch"]: s["fitness"] for s in r["ranked"]}
    assert fitnesses[r["favourite"]] == max(fitnesses.values())
    accuracies = [s["validation_accuracy"] for s in r["ranked"][1:]]  # after the winner
    assert accuracies == sorted(accuracies, reverse=True)
    if r["winner"]["arch"] == r["favourite"]:
        assert r["chosen_by"] == FAVOURITE_KEPT
    else:
        assert r["chosen_by"].startswith(f"overturned: {r['winner']['arch']} ")
        beaten = {v["arch"]: v for v in r["versus_favourite"]}[r["winner"]["arch"]]
        assert beaten["ci_low"] > 0
    assert len(score.scored) == 5  # 4 candidates + the rule arch
    assert all(s["measured_speedup"] is not None for s in r["ranked"])
    assert (result.run_dir / "screened.jsonl").is_file()


def test_two_stage_search_resumes_without_scoring_again(tmp_path, small_space):
    crashed = FakeTaskScore(fail_after=2)
    with pytest.raises(RuntimeError):
        search(tmp_path, small_space, task="fake-task", rerank=4, task_score=crashed,
               run_name="r")
    resumed = FakeTaskScore()
    result = search_with(None, resume=tmp_path / "ws" / "runs" / "r",
                         latency=SyntheticLatency(), fitness=SyntheticFitness(small_space),
                         measure=SyntheticMeasure(), task_score=resumed)
    assert len(resumed.scored) == 3 and not set(resumed.scored) & set(crashed.scored)
    r = result.to_dict()["reranking"]
    assert len(r["ranked"]) == 4
    whole = search(tmp_path / "whole", small_space, task="fake-task", rerank=4,
                   task_score=FakeTaskScore(), run_name="r")
    assert r == whole.to_dict()["reranking"]  # the same decision as an uninterrupted run


def test_a_task_needs_a_score_and_defaults_the_first_stage_to_retention(tmp_path, small_space):
    with pytest.raises(UsageError, match="task_score"):
        search(tmp_path, small_space, task="fake-task")
    from atb.search.config import resolve_config

    assert resolve_config({"targets": 15, "task": "kjv-next"}).fitness_spec == TASK_FITNESS == "retention"
    assert resolve_config({"targets": 15, "task": "kjv-next", "fitness_spec": "loss"}).fitness_spec == "loss"
    assert resolve_config({"targets": 15}).fitness_spec == "loss"


@pytest.mark.parametrize("kw", [{"rerank": 0}, {"screen_steps": 0}, {"screen_lr": 0.0},
                                {"task": " "}, {"rerank_by": "votes"}])
def test_bad_rerank_settings(tmp_path, small_space, kw):
    with pytest.raises(UsageError):
        search(tmp_path, small_space, task_score=FakeTaskScore(), **{"task": "t", **kw})


def test_retention_fitness_orders_by_layers_times_width_then_parameters(small_space):
    assert parse_fitness("retention") == ("retention", None)
    fitness = RetentionFitness(small_space)
    deep = Arch.parse("4-256-512-2-128")  # lt * dm = 1024, few parameters
    wide = Arch.parse("2-384-1536-6-384")  # 768, many more parameters
    tie_small = Arch.parse("2-256-512-2-128")  # 512
    tie_big = Arch.parse("2-256-1024-4-256")  # 512, more parameters
    assert deep.non_embedding_params() < wide.non_embedding_params()
    assert tie_small.non_embedding_params() < tie_big.non_embedding_params()
    values = fitness.fitness([deep, wide, tie_small, tie_big])
    assert list(np.argsort(-values)) == [0, 1, 3, 2]
    assert values[2] != values[3] and int(values[3]) == int(values[2]) == 512
    assert fitness.space is small_space


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
