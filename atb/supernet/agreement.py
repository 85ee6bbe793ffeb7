"""Teacher agreement: does a sub-model relate sentences to each other as the teacher does?

For a fixed set of held-out sentences, the score is the Spearman correlation between the
sub-model's and the teacher's pairwise cosine similarities of mean-pooled (non-padding)
last hidden states. It needs no task labels and no projection, and it is invariant to any
permutation or rotation of the hidden channels, so the sub-models of a reordered supernet, of
a from-scratch one and the teacher itself are all compared on the same footing.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from atb.supernet.data import load_split, make_sequences

AGREEMENT_SENTENCES = 200
AGREEMENT_SEQ_LEN = 64  # about two verses of held-out text per "sentence"
Forward = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (ids, mask) -> (b, s, d)


def heldout_sentences(workspace, n: int = AGREEMENT_SENTENCES,
                      seq_len: int = AGREEMENT_SEQ_LEN) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` held-out sequences spread evenly over the held-out split (ids, mask)."""
    ids, mask = make_sequences(load_split(workspace, "heldout"), seq_len)
    rows = np.linspace(0, len(ids) - 1, min(n, len(ids))).round().astype(np.int64)
    return torch.from_numpy(ids[rows]), torch.from_numpy(mask[rows])


@torch.inference_mode()
def mean_pooled(forward: Forward, ids: torch.Tensor, mask: torch.Tensor,
                batch_size: int = 50) -> torch.Tensor:
    """Mean of the last hidden states over non-padding tokens, one row per sequence."""
    out = []
    for start in range(0, len(ids), batch_size):
        i, m = ids[start:start + batch_size], mask[start:start + batch_size]
        length = int(m.sum(1).max())
        i, m = i[:, :length], m[:, :length]
        hidden = forward(i, m).float()  # (b, s, d)
        weights = m.unsqueeze(-1).float()
        out.append((hidden * weights).sum(1) / weights.sum(1))
    return torch.cat(out)


def pairwise_cosines(embeddings: torch.Tensor) -> np.ndarray:
    """The upper-triangular pairwise cosine similarities, flattened."""
    unit = torch.nn.functional.normalize(embeddings.double(), dim=-1)
    sims = (unit @ unit.T).numpy()
    return sims[np.triu_indices(len(sims), k=1)]


class TeacherAgreement:
    """Scores encoders against the teacher's similarity structure on fixed sentences."""

    def __init__(self, teacher: Forward, ids: torch.Tensor, mask: torch.Tensor):
        self.ids, self.mask = ids, mask
        self.teacher_sims = pairwise_cosines(mean_pooled(teacher, ids, mask))

    def __call__(self, forward: Forward) -> float:
        """Spearman correlation of ``forward``'s pairwise cosines with the teacher's."""
        from scipy.stats import spearmanr

        sims = pairwise_cosines(mean_pooled(forward, self.ids, self.mask))
        return float(spearmanr(sims, self.teacher_sims).statistic)
