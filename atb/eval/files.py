"""A user's task from local files: CSV, TSV or JSONL with a text and a label column.

Columns: ``text`` and ``label`` by default (``--text-column``, ``--text-pair-column``,
``--label-column``). When the file has no ``text`` column and none was named, the column
layouts of the GLUE TSVs are recognised (SST-2's ``sentence``, MRPC's ``sentence1``/
``sentence2``, ...), so a GLUE ``train.tsv`` works as it is. Without ``--validation`` and
``--test`` files the main file is split (stratified, seeded): 10% validation, 20% test.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

from atb.errors import EvalError, MissingInputError
from atb.jsonl import json_lines
from atb.eval.tasks import (
    HELD_OUT_FRACTIONS,
    Split,
    Task,
    check_task,
    encode_labels,
    stratified_split,
)

log = logging.getLogger("atb.eval.files")

FORMATS = (".csv", ".tsv", ".jsonl")
# (text, pair) columns of the GLUE files, tried in this order when there is no "text" column.
GLUE_COLUMNS = (
    ("sentence1", "sentence2"),  # MRPC, RTE, STS-B, WNLI
    ("question1", "question2"),  # QQP
    ("question", "sentence"),  # QNLI
    ("premise", "hypothesis"),  # MNLI
    ("sentence", None),  # SST-2, CoLA
)
DEFAULT_TEXT, DEFAULT_LABEL = "text", "label"


@dataclass(frozen=True)
class Columns:
    """Which columns hold the text, the optional second text and the label."""

    text: str
    pair: str | None
    label: str


def read_rows(path: Path) -> tuple[list[str], list[dict]]:
    """(column names, rows as dicts) of a CSV, TSV or JSONL file."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"task file {path} does not exist", hint="give a CSV, TSV or "
                                "JSONL file, or a built-in task (--list-tasks)")
    if path.suffix.lower() not in FORMATS:
        raise EvalError(f"{path}: unsupported file type {path.suffix or '(none)'!r}",
                        hint="use .csv, .tsv or .jsonl")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalError(f"cannot read {path} as UTF-8 text: {exc}") from exc
    if path.suffix.lower() == ".jsonl":
        header, rows = _jsonl_rows(path, text)
    else:
        tsv = path.suffix.lower() == ".tsv"
        # GLUE TSVs contain bare quotes inside sentences: TSV fields are never quoted.
        options = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if tsv else {}
        reader = csv.DictReader(text.splitlines(), **options)
        header = list(reader.fieldnames or [])
        rows = list(reader)
    if not rows:
        raise EvalError(f"{path} has no examples")
    return header, rows


def _jsonl_rows(path: Path, text: str) -> tuple[list[str], list[dict]]:
    rows = []
    for n, obj in json_lines(path, text, EvalError):
        if not isinstance(obj, dict):
            raise EvalError(f"{path}:{n}: expected one JSON object per line")
        rows.append(obj)
    header = list(dict.fromkeys(key for row in rows for key in row))  # every key, first seen first
    return header, rows


def resolve_columns(header: list[str], path: Path, text: str | None, pair: str | None,
                    label: str | None) -> Columns:
    """The columns to use, checked against ``header``; GLUE names stand in for ``text``."""
    label = label or DEFAULT_LABEL
    if text is None and pair is None and DEFAULT_TEXT not in header:
        for glue_text, glue_pair in GLUE_COLUMNS:
            if glue_text in header and (glue_pair is None or glue_pair in header):
                text, pair = glue_text, glue_pair
                log.info("%s: using the GLUE column(s) %s", path.name,
                         " + ".join(c for c in (text, pair) if c))
                break
    columns = Columns(text or DEFAULT_TEXT, pair, label)
    for flag, name in (("--text-column", columns.text), ("--text-pair-column", columns.pair),
                       ("--label-column", columns.label)):
        if name is not None and name not in header:
            raise EvalError(f"{path} has no column {name!r}",
                            hint=f"its columns are {', '.join(header) or '(none)'}; set {flag}")
    return columns


def read_examples(path: Path, columns: Columns | None = None, *, text: str | None = None,
                  pair: str | None = None, label: str | None = None) -> tuple[Columns, dict]:
    """The examples of one file: (columns used, {"texts", "pairs", "labels"}) with raw labels."""
    path = Path(path)
    header, rows = read_rows(path)
    if columns is None:
        columns = resolve_columns(header, path, text, pair, label)
    else:  # a validation or test file must have the main file's columns
        resolve_columns(header, path, columns.text, columns.pair, columns.label)
    wanted = [c for c in (columns.text, columns.pair, columns.label) if c]
    values: dict[str, list] = {c: [] for c in wanted}
    for n, row in enumerate(rows, 1):
        for column in wanted:
            value = row.get(column)
            if value is None or (column == columns.label and str(value).strip() == ""):
                raise EvalError(f"{path}: example {n} has no value in column {column!r}")
            values[column].append(value if isinstance(value, str) else str(value))
    examples = {"texts": values[columns.text],
                "pairs": values[columns.pair] if columns.pair else None,
                "labels": values[columns.label]}
    return columns, examples


@dataclass(frozen=True)
class TaskFiles:
    """How a task file is read: its columns, and where its held-out splits come from."""

    text_column: str | None = None  # default: text, or a GLUE layout such as SST-2's sentence
    text_pair_column: str | None = None  # the second text of a pair task
    label_column: str | None = None  # default: label
    validation: Path | None = None  # a file; None: 10% carved out of the main file
    test: Path | None = None  # a file; None: 20% carved out of the main file
    split_seed: int = 0  # seeds the stratified carving


def task_from_files(path: Path, files: TaskFiles | None = None) -> Task:
    """A :class:`Task` from a labelled file, plus optional validation and test files.

    Splits not given as files (``files``, a :class:`TaskFiles`) are carved out of ``path`` by
    :func:`stratified_split` (validation 10%, test 20%, seeded by ``files.split_seed``; every
    class keeps an example in train). Labels are mapped to 0..K-1 with the classes of the main
    file; a class that only the validation or test file has is an error.
    """
    path, files = Path(path), files or TaskFiles()
    split_seed = files.split_seed
    columns, main = read_examples(path, text=files.text_column, pair=files.text_pair_column,
                                  label=files.label_column)
    given = {name: f for name, f in (("validation", files.validation), ("test", files.test))
             if f is not None}
    carve = {name: share for name, share in HELD_OUT_FRACTIONS.items() if name not in given}
    labels, names = encode_labels(main["labels"])
    indices = stratified_split(labels, carve, split_seed)
    whole = Split(main["texts"], labels, main["pairs"])
    splits = {name: whole.subset(idx) for name, idx in indices.items()}
    for name, file in given.items():
        _, extra = read_examples(Path(file), columns)
        extra_labels, _ = encode_labels(extra["labels"], names)
        splits[name] = Split(extra["texts"], extra_labels, extra["pairs"])
    source = {"file": str(path), "text_column": columns.text, "text_pair_column": columns.pair,
              "label_column": columns.label, "split_seed": split_seed,
              **{f"{name}_file": str(f) for name, f in given.items()}}
    task = Task(str(path), names, splits["train"], splits["validation"], splits["test"],
                description=f"labelled examples from {path.name}", source=source)
    return check_task(task)
