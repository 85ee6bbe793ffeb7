"""A width-fair fidelity: how much of the teacher's last hidden states a sub-model can express.

The default fitness (:class:`~atb.supernet.heldout_loss.FitnessEvaluator`, ``loss``) compares a
sub-model's ``dm`` channels with the teacher's *leading* ``dm`` channels, so the channels a
narrow sub-model drops are never scored and cutting ``dm`` looks free. Here every teacher
channel counts: a ridge regression from the sub-model's last hidden states (``dm`` channels) to
the teacher's (all of them) is fitted on half of the held-out sequences and scored on the other
half; the fitness is the held-out R² (share of the teacher's token-state variance explained).

The teacher's states come from the evaluator's prepared batches (``self-kd`` and ``kd``
objectives carry them as ``target``); the same sequences score every arch.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from atb.arch import Arch
from atb.errors import UsageError

log = logging.getLogger("atb.supernet.fidelity")

RIDGE = 1e-2  # relative to the mean feature variance: a light, scale-free regulariser


class FidelityFitness:
    """Held-out ridge R² from a sub-model's last hidden states to the teacher's (cached by arch).

    Built on a :class:`~atb.supernet.heldout_loss.FitnessEvaluator` whose objective distils from a
    teacher (``self-kd`` or ``kd``); an MLM supernet has no teacher states to explain.
    """

    def __init__(self, evaluator, ridge: float = RIDGE):
        batches = evaluator._batches
        if not batches or "target" not in batches[0]:
            raise UsageError(f"fidelity needs a supernet distilled from a teacher; this one's "
                             f"objective is {evaluator.objective.name}",
                             hint="use --fitness loss, or train with --init minilm")
        self.space = evaluator.space
        self.supernet = evaluator.supernet
        self.ridge = ridge
        self._batches = batches
        # Even sequences fit the regression, odd ones score it (both spread over the text).
        self._target_halves = self._gather(lambda b: b["target"])
        self._cache: dict[Arch, float] = {}

    def _gather(self, states_of) -> tuple[np.ndarray, np.ndarray]:
        """Token states of the even and of the odd sequences, as two float64 arrays."""
        halves: tuple[list, list] = ([], [])
        with torch.inference_mode():
            for batch in self._batches:
                states = states_of(batch)
                mask = batch["attention_mask"].bool()
                for row in range(states.shape[0]):
                    halves[row % 2].append(states[row][mask[row]].double().numpy())
        return np.concatenate(halves[0]), np.concatenate(halves[1])

    def r2(self, arch: Arch) -> float:
        """Held-out R² of the teacher's states from ``arch``'s (1 is perfect, 0 the mean)."""
        arch = self.space.validate(arch)
        if arch not in self._cache:
            fit_x, test_x = self._gather(lambda b: self.supernet(
                b["input_ids"], b["attention_mask"], arch=arch)[0])
            fit_y, test_y = self._target_halves
            self._cache[arch] = ridge_r2(fit_x, fit_y, test_x, test_y, self.ridge)
        return self._cache[arch]

    def fitness(self, archs: list[Arch]) -> np.ndarray:
        return np.array([self.r2(a) for a in archs], dtype=np.float64)


def ridge_r2(fit_x: np.ndarray, fit_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
             ridge: float = RIDGE) -> float:
    """R² on (test_x, test_y) of a ridge regression fitted on (fit_x, fit_y), both centred by
    the fitting half's means; ``ridge`` scales with the mean feature variance."""
    mx, my = fit_x.mean(0), fit_y.mean(0)
    x, y = fit_x - mx, fit_y - my
    gram = x.T @ x
    penalty = ridge * np.trace(gram) / gram.shape[0]
    weights = np.linalg.solve(gram + penalty * np.eye(gram.shape[0]), x.T @ y)
    residual = (test_y - my) - (test_x - mx) @ weights
    total = test_y - test_y.mean(0)
    return float(1.0 - (residual ** 2).sum() / (total ** 2).sum())
