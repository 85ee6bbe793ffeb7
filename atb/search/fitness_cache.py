"""Fitness with a memory: every arch is evaluated once and every evaluation is recorded.

The search algorithms (evolution, fast rule, NSGA-II, BERT-rule baselines) all go through one
:class:`Evaluator`, so a repeated arch costs nothing, the count of evaluated archs is exact,
and each new record reaches the run directory (``evaluated.jsonl``) as soon as it exists.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from atb.arch import array_to_archs
from atb.search.ports import FitnessModel, SpeedupModel

log = logging.getLogger("atb.search.fitness_cache")

# Record sources that are search results (may be returned); "bert-rule" records are baselines.
SEARCH_SOURCES = ("evolution", "fast", "random", "pareto", "replacement")


@dataclass
class Record:
    """One evaluated arch (a line of ``evaluated.jsonl``)."""

    arch: str
    fitness: float
    predicted_speedup: float
    generation: int  # -1 for archs outside the evolution (baselines, replacements)
    source: str  # one of SEARCH_SOURCES, or "bert-rule"
    measured_speedup: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class Evaluator:
    """Caches fitness by arch text and keeps a record per distinct arch."""

    def __init__(self, fitness: FitnessModel, latency: SpeedupModel,
                 on_record: Callable[[Record], None] | None = None):
        self.fitness_model = fitness
        self.latency = latency
        self.on_record = on_record
        self.records: dict[str, Record] = {}

    def preload(self, records: list[Record]) -> None:
        """Seed the cache (resume): these archs are not evaluated again."""
        for r in records:
            self.records[r.arch] = r

    def __len__(self) -> int:
        return len(self.records)

    def evaluate(self, archs: np.ndarray, generation: int = -1, source: str = "evolution",
                 predicted: np.ndarray | None = None) -> np.ndarray:
        """Fitness of each row of ``archs`` (n, 5); only unseen archs reach the model."""
        arch_objs = array_to_archs(archs)
        keys = [str(a) for a in arch_objs]
        new_idx = [i for i, k in enumerate(keys) if k not in self.records]
        # Deduplicate inside the batch too: one model call per distinct arch.
        first: dict[str, int] = {}
        for i in new_idx:
            first.setdefault(keys[i], i)
        todo = list(first.values())
        if todo:
            values = np.asarray(self.fitness_model.fitness([arch_objs[i] for i in todo]), dtype=np.float64)
            if predicted is None:
                pred = np.asarray(self.latency.predict_speedup(np.asarray(archs)[todo]), dtype=np.float64)
            else:
                pred = np.asarray(predicted, dtype=np.float64)[todo]
            for i, v, p in zip(todo, values, pred):
                rec = Record(keys[i], float(v), float(p), int(generation), source)
                self.records[keys[i]] = rec
                if self.on_record:
                    self.on_record(rec)
            log.debug("evaluated %d new archs (%d in total)", len(todo), len(self.records))
        return np.array([self.records[k].fitness for k in keys], dtype=np.float64)

    def ranked(self, sources: tuple[str, ...] | None = None) -> list[Record]:
        """Records by fitness, best first (ties: faster predicted first, then arch text)."""
        recs = [r for r in self.records.values() if sources is None or r.source in sources]
        return sorted(recs, key=lambda r: (-r.fitness if np.isfinite(r.fitness) else np.inf,
                                           -r.predicted_speedup, r.arch))
