"""The second stage of ``atb-search --task``: the screened candidates re-ranked on the task.

The first stage (the search proper) orders archs by a cheap fitness (``retention`` by default);
it can tell a sub-model that will learn from one that will not, but not always which of the
good ones reads best. This stage checks it on the task, for a few: the measured top candidates
(spread over depths, :func:`depth_spread`, since depth is what a cheap fitness judges worst)
and the window's BERT-rule arch are each scored on the task's validation split (a
:class:`~atb.search.ports.TaskScore`: a linear probe or a brief fine-tuning run).

The decision rule is "the prior holds unless the task overturns it" (:func:`decide`): the
winner is the first stage's favourite (the re-ranked candidate of highest first-stage
fitness) unless another candidate is better on validation accuracy with a paired 95%
bootstrap interval (candidate - favourite, :func:`atb.stats.paired_difference`) wholly above
zero; among such candidates the one of highest validation accuracy wins. The cheap fitness
was validated against fine-tuned *test* accuracy on held-out windows, while a one-shot
validation score is noisy: at 25x the probe preferred an arch that does not learn by ~3
points (docs/results.md, "Which fitness"). So a validation score may overturn the prior only
when it is clearly better, not merely higher.

The winner is compared with the rule arch on the same validation examples: the paired
difference and its 95% bootstrap interval (:mod:`atb.stats`). That interval covers the draw
of examples; a fine-tuning score's one seed is not in it (a probe's convex fit has no seed
noise). A verdict on validation is a reason to confirm on the test split (``atb-eval
compare``), not the confirmation.

Every score is appended to the run's ``screened.jsonl`` (a predictions file of
:mod:`atb.predictions`: each arch's validation correctness) as it completes, so a resumed run
re-ranks only what is missing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from atb import jsonl, predictions, progress
from atb.arch import Arch
from atb.search.fitness_cache import Record
from atb.search.ports import TaskScore
from atb.stats import accuracy_interval, paired_difference

log = logging.getLogger("atb.search.rerank")

FAVOURITE_KEPT = "first-stage fitness (no candidate better on validation)"


@dataclass
class Screened:
    """One arch's re-ranking score (a line of ``screened.jsonl``, with its target)."""

    arch: str
    role: str  # "candidate" or "bert-rule"
    fitness: float  # the first stage's
    predicted_speedup: float
    measured_speedup: float | None
    validation_accuracy: float
    validation_loss: float
    seconds: float
    correct: np.ndarray = field(repr=False)  # over the validation examples
    validation_ci: tuple[float, float] = field(init=False)  # 95% bootstrap over the examples

    def __post_init__(self):
        self.validation_ci = accuracy_interval(self.correct[None])

    def to_dict(self) -> dict:
        return {"arch": self.arch, "role": self.role, "fitness": self.fitness,
                "predicted_speedup": self.predicted_speedup,
                "measured_speedup": self.measured_speedup,
                "validation_accuracy": self.validation_accuracy,
                "validation_ci": list(self.validation_ci),
                "validation_loss": self.validation_loss, "seconds": self.seconds}


@dataclass
class Reranking:
    """A target's second stage: the winner, then the other candidates by validation accuracy;
    the rule arch; winner - rule; and how the winner was chosen (:func:`decide`)."""

    task: str
    settings: str
    ranked: list[Screened]
    baseline: Screened | None
    comparison: dict | None  # paired difference of validation accuracy, winner - rule
    favourite: str | None = None  # the candidate of highest first-stage fitness
    chosen_by: str = ""  # why the winner won (see decide)
    versus_favourite: list[dict] = field(default_factory=list)  # every other candidate - favourite

    @property
    def winner(self) -> Screened | None:
        return self.ranked[0] if self.ranked else None

    @property
    def overturned(self) -> bool:
        return self.winner is not None and self.winner.arch != self.favourite

    def to_dict(self) -> dict:
        return {"task": self.task, "settings": self.settings,
                "winner": self.winner.to_dict() if self.winner else None,
                "favourite": self.favourite, "chosen_by": self.chosen_by,
                "versus_favourite": self.versus_favourite,
                "ranked": [s.to_dict() for s in self.ranked],
                "baseline": self.baseline.to_dict() if self.baseline else None,
                "winner_minus_baseline": self.comparison}


def _by_validation(s: Screened) -> tuple:
    return (-s.validation_accuracy, s.validation_loss, s.arch)


def _points(x: float) -> str:
    return f"{100 * x:+.1f}"


def decide(screened: list[Screened]) -> tuple[list[Screened], str | None, str, list[dict]]:
    """The winner by "the prior holds unless the task overturns it".

    ``screened``: the re-ranked candidates in the first stage's order. The favourite is the
    one of highest first-stage fitness (ties: the earlier). Every other candidate is compared
    with it on the same validation examples (paired 95% bootstrap interval of candidate -
    favourite); those whose interval lies wholly above zero are *significantly better*. The
    winner is the favourite when there are none, else the significantly better candidate of
    highest validation accuracy (ties: the lower loss). Why not simply the highest validation
    accuracy: the first-stage fitness was checked against fine-tuned test accuracy on held-out
    windows, a one-shot validation score was not, and at 25x the probe preferred an arch that
    does not learn by ~3 points (docs/results.md, "Which fitness").

    Returns (ranked: the winner, then the others by validation accuracy; the favourite's
    arch; chosen_by, one line; each other candidate's difference from the favourite).
    """
    if not screened:
        return [], None, "", []
    favourite = max(screened, key=lambda s: s.fitness if np.isfinite(s.fitness) else -np.inf)
    versus, better = [], []
    for s in screened:
        if s is favourite:
            continue
        diff = paired_difference(s.correct[None], favourite.correct[None])
        versus.append({"arch": s.arch, **diff.as_dict()})
        if diff.low > 0:
            better.append((s, diff))
    if better:
        winner, diff = min(better, key=lambda sd: _by_validation(sd[0]))
        chosen_by = (f"overturned: {winner.arch} better on validation by "
                     f"{_points(diff.difference)} [{_points(diff.low)}, {_points(diff.high)}] "
                     f"points than the first-stage favourite {favourite.arch}")
    else:
        winner = favourite
        chosen_by = FAVOURITE_KEPT
    rest = sorted((s for s in screened if s is not winner), key=_by_validation)
    return [winner, *rest], favourite.arch, chosen_by, versus


def depth_spread(records: list[Record]) -> list[Record]:
    """``records`` (best first) reordered round-robin over depths: the best of every depth,
    then the second best of every depth, ... (depths in the order of their best record)."""
    by_depth: dict[int, list[Record]] = {}
    for r in records:
        by_depth.setdefault(Arch.parse(r.arch).lt, []).append(r)
    rounds = max((len(v) for v in by_depth.values()), default=0)
    return [v[i] for i in range(rounds) for v in by_depth.values() if i < len(v)]


class ScreenedLog:
    """``screened.jsonl`` of a run directory: a predictions file (:mod:`atb.predictions`) of
    one line per (target, arch) scored, its validation correctness with the scores."""

    def __init__(self, run_path: Path):
        self.path = Path(run_path) / "screened.jsonl"

    def read(self, target: float, settings: str) -> dict[str, dict]:
        """arch -> its line for ``target`` and ``settings``, ``correct`` decoded (bools)."""
        lines, _ = predictions.read(self.path)
        return {d["model"]: d for d in lines
                if d.get("target") == target and d.get("settings") == settings}

    def append(self, arch: str, correct, scores: dict) -> dict:
        """Log ``arch``'s validation ``correct`` with ``scores`` (target, settings, role,
        accuracy, loss, seconds); the line as :meth:`read` gives it."""
        jsonl.append(self.path, predictions.line(arch, None, "validation", correct=correct,
                                                 extra=scores))
        return {"model": arch, "seed": None, "split": "validation", **scores,
                "correct": np.asarray(correct, dtype=bool)}


def rerank(target: float, candidates: list[Record], baseline: Record | None, score: TaskScore,
           run_path: Path) -> Reranking:
    """Score ``candidates`` and ``baseline`` with ``score`` (cached in the run directory),
    pick the winner (:func:`decide`), and compare it with the baseline on the same examples."""
    cache = ScreenedLog(run_path)
    done = cache.read(target, score.settings)
    todo = [(r, role) for r, role in [(c, "candidate") for c in candidates]
            + ([(baseline, "bert-rule")] if baseline else []) if r.arch not in done]
    if todo:
        log.info("re-ranking %d archs on %s (%s)%s", len(todo), score.task, score.settings,
                 f"; {len(done)} already scored" if done else "")
    with progress.progress(len(todo), f"re-ranking on {score.task}", unit="arch") as bar:
        for record, role in todo:
            start = time.perf_counter()
            result = score(Arch.parse(record.arch))
            line = cache.append(record.arch, result["correct"], {
                "target": target, "settings": score.settings, "role": role,
                "validation_accuracy": float(result["validation_accuracy"]),
                "validation_loss": float(result["validation_loss"]),
                "seconds": float(result.get("seconds", time.perf_counter() - start))})
            done[record.arch] = line
            log.info("%s %s: validation accuracy %.2f%%, loss %.4f (%.0f s)", role, record.arch,
                     100 * line["validation_accuracy"], line["validation_loss"], line["seconds"])
            bar.update(1)

    def screened(record: Record, role: str) -> Screened:
        d = done[record.arch]
        return Screened(record.arch, role, record.fitness, record.predicted_speedup,
                        record.measured_speedup, d["validation_accuracy"], d["validation_loss"],
                        d["seconds"], d["correct"])

    ranked, favourite, chosen_by, versus = decide([screened(c, "candidate") for c in candidates])
    log.info("winner %s: %s", ranked[0].arch if ranked else None, chosen_by)
    rule = screened(baseline, "bert-rule") if baseline else None
    comparison = None
    if ranked and rule is not None:
        diff = paired_difference(ranked[0].correct[None], rule.correct[None])
        # The interval covers which examples were drawn; a fine-tuning score's seed is not in it.
        comparison = {**diff.as_dict(), "split": "validation", "seeds": 1}
    return Reranking(score.task, score.settings, ranked, rule, comparison, favourite, chosen_by,
                     versus)
