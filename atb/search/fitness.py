"""What the search maximises: the supernet's held-out loss, or a downstream probe.

``loss`` (default): the negative held-out loss of the sub-model sliced from SuperPLM
(:class:`atb.supernet.FitnessEvaluator`). ``probe:TASK``: the validation accuracy of a linear
probe (:class:`atb.eval.Probe`) on the sliced sub-model's mean-pooled embeddings, for a
built-in task (``kjv-genre``) or a task file. The task is tokenised once; each candidate costs
one forward pass over the task's examples plus a few small logistic-regression fits. The
probe's *validation* split scores candidates, so its test split stays unseen by the search.
"""

from __future__ import annotations

import functools
import logging

import numpy as np

from atb.arch import Arch
from atb.errors import UsageError

log = logging.getLogger("atb.search.fitness")

FITNESS_KINDS = ("loss", "probe:TASK")


def parse_fitness(spec: str) -> tuple[str, str | None]:
    """``"loss"`` -> ("loss", None); ``"probe:kjv-genre"`` -> ("probe", "kjv-genre")."""
    kind, _, task = str(spec).partition(":")
    if kind == "loss" and not task:
        return "loss", None
    if kind == "probe" and task:
        return "probe", task
    raise UsageError(f"unknown fitness {spec!r}", hint="use loss or probe:TASK (e.g. probe:kjv-genre)")


class ProbeFitness:
    """Scores archs by a linear probe of the sliced sub-model (cached by arch)."""

    def __init__(self, evaluator, task: str, seed: int = 0):
        from atb.eval import Probe, load_task, load_tokenizer
        from atb.supernet.checkpoint import tokenizer_source

        self.space = evaluator.space
        self.supernet = evaluator.supernet
        self.task = load_task(task)
        self.probe = Probe(self.task, load_tokenizer(tokenizer_source(evaluator.checkpoint)))
        self.seed = seed
        self._cache: dict[Arch, float] = {}

    def evaluate(self, arch: Arch) -> dict:
        """The probe's full result for ``arch`` (validation accuracy is the fitness)."""
        encoder = functools.partial(self.supernet, arch=self.space.validate(arch))
        return self.probe(encoder, seeds=[self.seed])

    def fitness(self, archs: list[Arch]) -> np.ndarray:
        for arch in archs:
            if arch not in self._cache:
                result = self.evaluate(arch)
                self._cache[arch] = result["seeds"][0]["validation_accuracy"]
                log.debug("%s: %s validation accuracy %.4f (%.1f s)", arch, self.task.name,
                          self._cache[arch], result["seconds"])
        return np.array([self._cache[a] for a in archs], dtype=np.float64)


def make_fitness(workspace, space: str | None, spec: str = "loss"):
    """The fitness object the search calls (``.fitness(archs)``, ``.space``)."""
    from atb.supernet import FitnessEvaluator

    kind, task = parse_fitness(spec)
    evaluator = FitnessEvaluator.from_workspace(workspace, space=space)
    return evaluator if kind == "loss" else ProbeFitness(evaluator, task)
