"""The second stage of ``atb-search --task``: the screened candidates re-ranked on the task.

The first stage (the search proper) orders archs by a cheap fitness; it can tell a sub-model
that will learn from one that will not, but not which of the good ones reads best. The paper
scored its candidates by their fine-tuned task results, so this stage does the same, for a few:
the measured top candidates (spread over depths, :func:`depth_spread`, since depth is what a
cheap fitness judges worst) and the window's BERT-rule arch are each fine-tuned briefly on the
task (a :class:`~atb.search.ports.TaskScore`), and ranked by validation accuracy (ties: the
lower validation loss). The winner is compared with the rule arch on the same validation
examples: the paired difference and its 95% bootstrap interval (:mod:`atb.stats`). That
interval covers the draw of examples; a fine-tuning score's one seed is not in it (a probe's
convex fit has no seed noise). A verdict on validation is a reason to confirm on the test split
(``atb-eval compare``), not the confirmation.

Every score is appended to the run's ``screened.jsonl`` as it completes, so a resumed run
re-ranks only what is missing.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from atb import progress
from atb.arch import Arch
from atb.search.evaluate import Record
from atb.search.ports import TaskScore
from atb.stats import accuracy_interval, paired_difference

log = logging.getLogger("atb.search.rerank")


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
    """A target's second stage: candidates best first, the rule arch, and winner - rule."""

    task: str
    settings: str
    ranked: list[Screened]
    baseline: Screened | None
    comparison: dict | None  # paired difference of validation accuracy, winner - rule

    @property
    def winner(self) -> Screened | None:
        return self.ranked[0] if self.ranked else None

    def to_dict(self) -> dict:
        return {"task": self.task, "settings": self.settings,
                "winner": self.winner.to_dict() if self.winner else None,
                "ranked": [s.to_dict() for s in self.ranked],
                "baseline": self.baseline.to_dict() if self.baseline else None,
                "winner_minus_baseline": self.comparison}


def depth_spread(records: list[Record]) -> list[Record]:
    """``records`` (best first) reordered round-robin over depths: the best of every depth,
    then the second best of every depth, ... (depths in the order of their best record)."""
    by_depth: dict[int, list[Record]] = {}
    for r in records:
        by_depth.setdefault(Arch.parse(r.arch).lt, []).append(r)
    rounds = max((len(v) for v in by_depth.values()), default=0)
    return [v[i] for i in range(rounds) for v in by_depth.values() if i < len(v)]


class ScreenedLog:
    """``screened.jsonl`` of a run directory: one line per (target, arch) scored."""

    def __init__(self, run_path: Path):
        self.path = Path(run_path) / "screened.jsonl"

    def read(self, target: float, settings: str) -> dict[str, dict]:
        if not self.path.is_file():
            return {}
        out = {}
        for line in self.path.read_text().splitlines():
            try:
                d = json.loads(line)
            except ValueError:
                log.warning("skipping a damaged line of %s", self.path)
                continue
            if d.get("target") == target and d.get("settings") == settings:
                out[d["arch"]] = d
        return out

    def append(self, line: dict) -> None:
        with self.path.open("a") as fh:
            fh.write(json.dumps(line) + "\n")
            fh.flush()


def rerank(target: float, candidates: list[Record], baseline: Record | None, score: TaskScore,
           run_path: Path) -> Reranking:
    """Score ``candidates`` and ``baseline`` with ``score`` (cached in the run directory),
    rank the candidates, and compare the winner with the baseline on the same examples."""
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
            line = {"target": target, "settings": score.settings, "arch": record.arch,
                    "role": role, "validation_accuracy": float(result["validation_accuracy"]),
                    "validation_loss": float(result["validation_loss"]),
                    "seconds": float(result.get("seconds", time.perf_counter() - start)),
                    "correct": "".join("1" if c else "0" for c in result["correct"])}
            cache.append(line)
            done[record.arch] = line
            log.info("%s %s: validation accuracy %.2f%%, loss %.4f (%.0f s)", role, record.arch,
                     100 * line["validation_accuracy"], line["validation_loss"], line["seconds"])
            bar.update(1)

    def screened(record: Record, role: str) -> Screened:
        d = done[record.arch]
        return Screened(record.arch, role, record.fitness, record.predicted_speedup,
                        record.measured_speedup, d["validation_accuracy"], d["validation_loss"],
                        d["seconds"], np.frombuffer(d["correct"].encode(), np.uint8) == ord("1"))

    ranked = sorted((screened(c, "candidate") for c in candidates),
                    key=lambda s: (-s.validation_accuracy, s.validation_loss, s.arch))
    rule = screened(baseline, "bert-rule") if baseline else None
    comparison = None
    if ranked and rule is not None:
        diff = paired_difference(ranked[0].correct[None], rule.correct[None])
        # The interval covers which examples were drawn; a fine-tuning score's seed is not in it.
        comparison = {**diff.as_dict(), "split": "validation", "seeds": 1}
    return Reranking(score.task, score.settings, ranked, rule, comparison)
