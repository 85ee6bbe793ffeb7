"""What the search is handed: the speedup model, the fitness, ``measure``, ``extract_model``
and, with a task, the re-ranking ``TaskScore``; :class:`SearchPorts` carries them together.

The search imports no other atb package (docs/architecture.md, "Layer order"): these are
built by ``atb.compose.search_ports`` (from the predictor, the supernet, the profiler) or by
tests and notebooks, and checked only by shape. Defined here, once, so every search module
names the same thing the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from atb.arch import Arch, SearchSpace


class SpeedupModel(Protocol):
    """Predicted speedups over BERT-base on one device key (atb.predictor.LatencyPredictor).

    Not ``atb.predictor.base.LatencyModel``: that one predicts log latency and is fitted;
    the search only asks for speedups.
    """

    device_key: str

    def predict_speedup(self, archs: np.ndarray) -> np.ndarray:
        """Predicted speedup of each row of ``archs`` (n, 5) int64; float64 (n,)."""


class FitnessModel(Protocol):
    """What the search maximises (atb.supernet.FitnessEvaluator, search.fitness.ProbeFitness)."""

    space: SearchSpace  # the space searched: the one the supernet was trained on

    def fitness(self, archs: list[Arch]) -> np.ndarray:
        """Fitness of each arch, higher is better; float64 (n,)."""


class Measure(Protocol):
    """Archs timed on the device under the predictor's key; needed when ``verify`` is set."""

    def __call__(self, archs: list[Arch], /) -> list[float]:
        """Measured speedup of each arch (NaN or None where timing failed)."""


class ExtractModel(Protocol):
    """A sub-model written as a 🤗 directory; needed when ``extract`` is set."""

    def __call__(self, arch: Arch, out_dir: Path, /) -> str:
        """Where the model was written."""


class TaskScore(Protocol):
    """A sub-model scored on a task's *validation* split by a short fine-tuning run (the
    re-ranking stage of ``atb-search --task``; built by atb.compose from atb.eval.screen)."""

    task: str  # the task's name
    settings: str  # what decides the score (steps, rate, seed): a resumed run must match it

    def __call__(self, arch: Arch, /) -> dict:
        """``validation_accuracy``, ``validation_loss``, ``correct`` (a bool array over the
        validation examples, for paired comparisons) and ``seconds``."""


@dataclass(frozen=True)
class SearchPorts:
    """The collaborators of one search, each None until given; which ones a run needs
    follows from its settings (``atb.search.run_search`` names a missing one)."""

    latency: SpeedupModel | None = None  # always
    fitness: FitnessModel | None = None  # always
    measure: Measure | None = None  # with verify
    extract_model: ExtractModel | None = None  # with extract
    task_score: TaskScore | None = None  # with a task
