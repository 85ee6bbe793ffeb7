"""Text -> token ids -> mean-pooled sentence embeddings (frozen encoder, batched, fast).

An *encoder* is any callable that takes ``input_ids``, ``attention_mask`` and, when the
tokenizer makes them, ``token_type_ids`` (keyword tensors of shape (b, s)) and returns the last
hidden states: a tensor (b, s, d), a tuple whose first item is that tensor (SuperPLM), or a 🤗
output with ``last_hidden_state``. A loaded ``AutoModel``, an :class:`atb.modeling.AtbBertModel`
and ``functools.partial(supernet, arch=arch)`` all qualify.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from atb import progress
from atb.eval.tasks import Split

MAX_LENGTH = 128
BATCH_SIZE = 64


@dataclass(frozen=True)
class Tokenized:
    """The token ids of a split, one list per example (no padding)."""

    features: list[dict[str, list[int]]]  # input_ids, attention_mask[, token_type_ids]
    pad_id: int

    def __len__(self) -> int:
        return len(self.features)

    def lengths(self) -> np.ndarray:
        return np.array([len(f["input_ids"]) for f in self.features])


def tokenize(split: Split, tokenizer, max_length: int = MAX_LENGTH) -> Tokenized:
    """Token ids of every example (pairs encoded as pairs), truncated to ``max_length``."""
    encoded = tokenizer(split.texts, split.pairs, truncation=True, max_length=max_length)
    names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
    features = [{k: encoded[k][i] for k in names} for i in range(len(split))]
    return Tokenized(features, tokenizer.pad_token_id or 0)


def collate(tokenized: Tokenized, indices) -> dict:
    """The examples at ``indices`` as padded (b, s) long tensors, s = their longest length."""
    import torch

    rows = [tokenized.features[int(i)] for i in indices]
    width = max(len(r["input_ids"]) for r in rows)
    batch = {}
    for name in rows[0]:
        pad = tokenized.pad_id if name == "input_ids" else 0
        batch[name] = torch.tensor([r[name] + [pad] * (width - len(r[name])) for r in rows])
    return batch


def sorted_batches(tokenized: Tokenized, batch_size: int) -> Iterator[np.ndarray]:
    """Index batches, longest examples first: little padding, and the peak memory comes early."""
    order = np.argsort(-tokenized.lengths(), kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


def last_hidden_state(output):
    """The (b, s, d) last hidden states out of whatever an encoder returns."""
    if hasattr(output, "last_hidden_state"):
        return output.last_hidden_state
    if isinstance(output, (tuple, list)):
        return output[0]
    return output


def embed(encoder: Callable, tokenized: Tokenized, batch_size: int = BATCH_SIZE,
          desc: str = "encoding") -> np.ndarray:
    """Mean of the last hidden states over the attended tokens, (n, d) float32 in example order.

    Runs under ``torch.inference_mode``; a module in training mode is switched to eval mode for
    the call (dropout off) and switched back afterwards.
    """
    import torch

    from atb.modeling import mean_pool

    was_training = bool(getattr(encoder, "training", False))
    if was_training:
        encoder.eval()
    out: np.ndarray | None = None
    try:
        with torch.inference_mode(), progress.progress(len(tokenized), desc, unit="ex") as bar:
            for indices in sorted_batches(tokenized, batch_size):
                batch = collate(tokenized, indices)
                hidden = last_hidden_state(encoder(**batch)).float()  # (b, s, d)
                pooled = mean_pool(hidden, batch["attention_mask"])  # (b, d), as the head's
                if out is None:
                    out = np.empty((len(tokenized), pooled.shape[-1]), dtype=np.float32)
                out[indices] = pooled.numpy()
                bar.update(len(indices))
    finally:
        if was_training:
            encoder.train()
    assert out is not None, "embed() needs at least one example"
    return out
