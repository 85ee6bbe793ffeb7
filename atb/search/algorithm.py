"""The interface every search algorithm implements (``--algorithm``), Optuna's samplers being
the model: the engine runs whichever algorithm the registry (:mod:`.registry`) makes by name.

An algorithm proposes archs inside the latency window(s) and scores them only through the
:class:`~atb.search.fitness_cache.Evaluator` it is handed, so the fitness cache,
``evaluated.jsonl`` and resuming work alike for all of them. What follows the search proper (top-k, BERT-rule
baseline, re-measurement, reports) is the engine's (:mod:`.api`). Its own module so the
algorithms and the registry over them import it without a circle.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np

from atb.arch import SearchSpace
from atb.search.fitness_cache import Evaluator
from atb.search.ports import SpeedupModel
from atb.search.window import Window


class AlgorithmSettings(Protocol):
    """The run settings an algorithm is made from: a :class:`~atb.search.config.SearchConfig`
    (not imported: the config checks ``--algorithm`` against the registry)."""

    generations: int  # T
    population: int  # S
    mutation_prob: float  # pm
    explore_prob: float  # pe
    seed: int


class Checkpoints(Protocol):
    """Where a resumable algorithm keeps its resume point (the run's :class:`~atb.search.run.RunDir`)."""

    def save_checkpoint(self, gen, rng: np.random.Generator, history: list[dict]) -> None: ...

    def load_checkpoint(self):
        """``(last finished generation, generator state, history)``, or None before the first."""


@dataclass
class SearchProblem:
    """What a run hands its algorithm."""

    space: SearchSpace
    latency: SpeedupModel
    evaluator: Evaluator  # the only way to score an arch
    windows: list[Window]  # one per target; a single-target algorithm searches the first
    rng: np.random.Generator  # the run's one generator: a seed reproduces the run
    checkpoints: Checkpoints


class SearchAlgorithm(ABC):
    """One search algorithm. Subclasses set ``name`` and implement :meth:`run`."""

    name: ClassVar[str]  # the --algorithm value, and the source of the records it evaluates

    @classmethod
    def from_settings(cls, settings: AlgorithmSettings) -> "SearchAlgorithm":
        """The algorithm as a run's settings configure it (default: it takes none)."""
        return cls()

    @abstractmethod
    def run(self, problem: SearchProblem) -> list[dict]:
        """Evaluate archs of ``problem``; returns the history the report shows."""
