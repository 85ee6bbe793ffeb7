"""Fitness of sub-models for the search: held-out quality inside the trained SuperPLM.

The evaluation set is fixed when the evaluator is built: the first ``eval_sequences``
held-out sequences of ``eval_seq_len`` tokens, masked once with a fixed seed (pretrain
space), or paired with the teacher's hidden states computed once (kd space). Every arch is
then scored on exactly the same inputs, and each score is cached by arch.

Fitness is the **negative held-out loss** (MLM cross-entropy, or distillation MSE): higher is
better. It ranks sub-models more finely than MLM accuracy, which ties often on a small
evaluation set; the accuracy is still reported by :meth:`FitnessEvaluator.evaluate`.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np
import torch

from atb.arch import Arch, SearchSpace
from atb.supernet import checkpoint as ckpt
from atb.supernet.data import as_workspace, load_split, make_sequences

log = logging.getLogger("atb.supernet.heldout_loss")

EVAL_SEQUENCES = 32  # the default evaluation set: 32 held-out sequences ...
EVAL_SEQ_LEN = 128  # ... of up to 128 tokens (~4k tokens, ~600 masked)
EVAL_BATCH = 16
EVAL_SEED = 1234


class FitnessEvaluator:
    """Scores architectures by their held-out loss when sliced from a trained SuperPLM.

    Build with :meth:`from_workspace` (or :meth:`from_checkpoint`); ``space`` is the
    :class:`~atb.arch.SearchSpace` the checkpoint was trained on.
    """

    def __init__(self, trainable: torch.nn.ModuleDict, state: dict, batches: list[dict],
                 checkpoint: Path | None = None):
        self.supernet = trainable["supernet"].eval()
        self.objective = trainable["objective"].eval()
        self.state = state
        self.space: SearchSpace = self.supernet.space
        self.checkpoint = checkpoint
        self._batches = batches
        self._cache: dict[Arch, dict] = {}

    @classmethod
    def from_checkpoint(cls, path: Path, workspace=None, eval_sequences: int = EVAL_SEQUENCES,
                        eval_seq_len: int = EVAL_SEQ_LEN) -> "FitnessEvaluator":
        """An evaluator for the checkpoint directory ``path`` on ``workspace``'s held-out data."""
        trainable, state = ckpt.load_trainable(Path(path))
        positions = trainable["supernet"].embeddings.position_embeddings.num_embeddings
        ids, mask = make_sequences(load_split(workspace, "heldout"), min(eval_seq_len, positions))
        ids, mask = ids[:eval_sequences], mask[:eval_sequences]
        generator = torch.Generator().manual_seed(EVAL_SEED)
        batches = []
        with torch.inference_mode():
            for start in range(0, len(ids), EVAL_BATCH):
                rows = slice(start, start + EVAL_BATCH)
                length = int(mask[rows].sum(1).max())  # trim padding columns
                batch = {"input_ids": torch.from_numpy(ids[rows, :length]),
                         "attention_mask": torch.from_numpy(mask[rows, :length])}
                batches.append(trainable["objective"].prepare(batch, generator))
        log.debug("evaluation set: %d sequences of <= %d tokens", len(ids), eval_seq_len)
        return cls(trainable, state, batches, checkpoint=Path(path))

    @classmethod
    def from_workspace(cls, workspace=None, space: str | None = None,
                       eval_sequences: int = EVAL_SEQUENCES,
                       eval_seq_len: int = EVAL_SEQ_LEN) -> "FitnessEvaluator":
        """The evaluator of the workspace's supernet checkpoint (of ``space`` if given), as
        :meth:`from_checkpoint` builds it.

        Raises :class:`~atb.errors.MissingInputError` naming ``atb-supernet train`` when the
        workspace has no checkpoint, or ``atb-supernet data`` when it has no held-out data.
        """
        ws = as_workspace(workspace)
        path = ckpt.find_checkpoint(ws.supernet_dir, space=space)
        return cls.from_checkpoint(path, ws, eval_sequences, eval_seq_len)

    def evaluate(self, arch: Arch | str) -> dict:
        """Held-out ``loss``, ``accuracy`` (MLM only, else ``None``) and ``fitness`` of ``arch``.

        Raises :class:`~atb.errors.ArchSpecError` when ``arch`` is outside :attr:`space`.
        """
        arch = self.space.validate(arch)
        if arch not in self._cache:
            sums, counts, correct = [], [], 0
            with torch.inference_mode():
                for batch in self._batches:
                    _, stats = self.objective.loss(self.supernet, batch, arch)
                    sums.append(stats["sequence_loss_sums"].numpy())
                    counts.append(stats["sequence_tokens"].numpy())
                    correct += stats["correct"]
            tokens = int(np.concatenate(counts).sum())
            loss = float(np.concatenate(sums).sum()) / max(tokens, 1)
            self._cache[arch] = {
                "arch": str(arch), "space": self.space.strategy, "objective": self.objective.name,
                "loss": loss,
                "accuracy": correct / max(tokens, 1) if self.objective.name == "mlm" else None,
                "fitness": -loss, "tokens": tokens,
            }
        return dict(self._cache[arch])

    def fitness(self, archs: list[Arch]) -> np.ndarray:
        """Negative held-out loss of every arch (float64 array, higher is better), cached."""
        return np.array([self.evaluate(a)["fitness"] for a in archs], dtype=np.float64)


def pairwise_accuracy(a, b) -> float:
    """Share of pairs that ``a`` and ``b`` order the same way (ties count as disagreement):
    the paper's ranking accuracy of supernet fitness against stand-alone training."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    pairs = list(itertools.combinations(range(len(a)), 2))
    agree = sum(np.sign(a[i] - a[j]) == np.sign(b[i] - b[j]) != 0 for i, j in pairs)
    return agree / len(pairs)
