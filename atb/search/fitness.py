"""What the search maximises: the supernet's held-out loss, capacity, or a downstream probe.

``loss`` (default): the negative held-out loss of the sub-model sliced from SuperPLM
(:class:`atb.supernet.FitnessEvaluator`). ``params``: the sub-model's non-embedding parameters
(:class:`CapacityFitness`), the capacity that costs latency; inside one latency window it
ranked archs like their fine-tuned task accuracy where ``loss`` ranked them backwards
(``bench/fitness.py``, docs/results.md). ``retention``: how many of the pretrained teacher's
hidden states the sub-model keeps, layers x hidden width (:class:`RetentionFitness`), ties
broken by non-embedding parameters. ``probe:TASK``: the validation accuracy of a linear
probe (:class:`atb.eval.Probe`) on the sliced sub-model's mean-pooled embeddings, for a
built-in task (``kjv-genre``) or a task file. The task is tokenised once; each candidate costs
one forward pass over the task's examples plus a few small logistic-regression fits. The
probe's *validation* split scores candidates, so its test split stays unseen by the search.

The search imports neither package: ``atb.compose.search_fitness`` builds the evaluator and
the probe and hands them in.
"""

from __future__ import annotations

import functools
import logging

import numpy as np

from atb.arch import Arch
from atb.errors import UsageError

log = logging.getLogger("atb.search.fitness")


def parse_fitness(spec: str) -> tuple[str, str | None]:
    """``"loss"`` -> ("loss", None); ``"probe:kjv-genre"`` -> ("probe", "kjv-genre")."""
    kind, _, task = str(spec).partition(":")
    if (kind == "loss" or kind in ARCH_FITNESSES) and not task:
        return kind, None
    if kind == "probe" and task:
        return "probe", task
    raise UsageError(f"unknown fitness {spec!r}", hint="use loss, params, retention or probe:TASK (e.g. probe:kjv-genre)")


class _ArchFitness:
    """A fitness computed from the arch alone: no model, costs nothing. ``space`` is the
    searched space (the supernet's), so the search and its extraction stay inside what the
    supernet can cut out."""

    def __init__(self, space):
        self.space = space

    def fitness(self, archs: list[Arch]) -> np.ndarray:
        return np.array([self.score(a) for a in archs], dtype=np.float64)


class CapacityFitness(_ArchFitness):
    """Scores archs by their non-embedding parameters (:meth:`atb.arch.Arch.non_embedding_params`)."""

    @staticmethod
    def score(arch: Arch) -> float:
        return float(arch.non_embedding_params())


class RetentionFitness(_ArchFitness):
    """Scores archs by the teacher's hidden states they keep: layers x hidden width (lt * dm).

    A sub-model cut from a pretrained supernet keeps the teacher's first ``dm`` residual channels
    in each of its ``lt`` layers. Every layer reads and writes that residual stream, so cutting
    ``dm`` damages all of them, while attention heads and FFN neurons are the parts pruning
    studies find redundant. Ties (same ``lt * dm``) go to more non-embedding parameters, so the
    latency left over is spent on heads and FFN rather than given away.
    """

    @staticmethod
    def score(arch: Arch) -> float:
        # Parameters scaled below 1 so they only ever break ties of lt * dm (integers).
        return arch.lt * arch.dm + arch.non_embedding_params() * 1e-9


ARCH_FITNESSES = {"params": CapacityFitness, "retention": RetentionFitness}


class ProbeFitness:
    """Scores archs by a linear probe of the sliced sub-model (cached by arch).

    ``evaluator`` has ``.space`` and ``.supernet`` (a ``FitnessEvaluator``); ``probe`` is
    called as ``probe(encoder, seeds=[seed])`` and has ``.task.name`` (an ``atb.eval.Probe``).
    """

    def __init__(self, evaluator, probe, seed: int = 0):
        self.space = evaluator.space
        self.supernet = evaluator.supernet
        self.probe = probe
        self.task = probe.task
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
