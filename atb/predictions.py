"""Per-example predictions, one format for every writer: the search's re-ranking (validation
examples), ``atb-eval --predictions`` (test examples) and the benchmarks' per-seed results.

A predictions file is JSON Lines (an append-only log of :mod:`atb.jsonl`, or a file written
whole), one line per model, seed and split::

    {"model": "4-320-1280-10-320", "seed": 0, "split": "test", "predicted": "0110...", ...}

``predicted`` holds every example's class, in the split's order: a string of digits when every
class is below 10, else a list of ints. A writer that knows only whether each example was
right writes ``correct`` instead ("1" right, "0" wrong). ``seed`` may be null (a deterministic
model). Any other key (window, lr, commit, ...: a line's ``extra``) rides along, for readers
to select lines by.
A line with ``labels`` in place of ``model`` holds a split's true classes: with it a file alone
is enough to recompute accuracies and paired intervals (:mod:`atb.stats`).

Older files stay readable: lines that name the model ``arch`` (the benchmarks' and the
re-ranking's before this format) and the first format of ``atb-eval --predictions`` (a head
line naming ``models``, then one line per example), which :func:`read` converts.
"""

from __future__ import annotations

import os

import numpy as np

from atb.errors import UsageError
from atb.jsonl import read_log

KINDS = ("predicted", "correct")


def encode(values) -> str | list[int]:
    """Per-example classes (or bools) as a line stores them: digits when every one is < 10."""
    ints = [int(v) for v in np.asarray(values).reshape(-1)]
    if all(0 <= v < 10 for v in ints):
        return "".join(map(str, ints))
    return ints


def decode(stored: str | list[int], kind: str = "predicted") -> np.ndarray:
    """:func:`encode`'s inverse: int64 classes, or a bool array for ``kind="correct"``."""
    if isinstance(stored, str):
        values = np.frombuffer(stored.encode(), dtype=np.uint8).astype(np.int64) - ord("0")
    else:
        values = np.asarray(stored, dtype=np.int64)
    return values == 1 if kind == "correct" else values


def line(model: str, seed: int | None, split: str, *, predicted=None, correct=None,
         extra: dict | None = None) -> dict:
    """One line of a predictions file: ``model``'s per-example ``predicted`` classes (or
    ``correct`` bools) for ``seed`` on ``split``, then the ``extra`` keys."""
    if (predicted is None) == (correct is None):
        raise UsageError("a predictions line holds either predicted classes or correctness")
    kind, values = ("predicted", predicted) if predicted is not None else ("correct", correct)
    return {"model": model, "seed": seed, "split": split, **(extra or {}), kind: encode(values)}


def labels_line(split: str, labels, extra: dict | None = None) -> dict:
    """The line that holds ``split``'s true classes (then the ``extra`` keys)."""
    return {"split": split, **(extra or {}), "labels": encode(labels)}


def read(path: str | os.PathLike) -> tuple[list[dict], dict[str, np.ndarray]]:
    """``(lines, labels)`` of a predictions file (an empty list when it does not exist): every
    model line with its ``predicted`` or ``correct`` decoded to an array and the model named
    ``model``, in file order; ``labels``: split -> true classes, from the labels lines."""
    rows = read_log(path)
    if rows and isinstance(rows[0], dict) and "models" in rows[0] and "model" not in rows[0]:
        rows = _from_first_eval_format(rows)
    lines, labels = [], {}
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise UsageError(f"{path}: record {n} is not a JSON object")
        if "labels" in row:
            labels[row.get("split", "test")] = decode(row["labels"])
            continue
        row = dict(row)
        if "model" not in row and "arch" in row:
            row["model"] = row.pop("arch")
        kinds = [k for k in KINDS if k in row]
        if "model" not in row or len(kinds) != 1:
            raise UsageError(f"{path}: record {n} is not a predictions line "
                             "(a model with predicted classes or correctness)")
        row[kinds[0]] = decode(row[kinds[0]], kinds[0])
        lines.append(row)
    return lines, labels


def by_model_and_seed(lines: list[dict], kind: str = "predicted",
                      match: dict | None = None) -> dict[str, dict[int, np.ndarray]]:
    """``{model: {seed: array}}`` of the ``lines`` whose keys equal those of ``match`` (a
    later line of the same model and seed wins)."""
    out: dict[str, dict[int, np.ndarray]] = {}
    for row in lines:
        if kind in row and all(row.get(k) == v for k, v in (match or {}).items()):
            out.setdefault(row["model"], {})[row["seed"]] = row[kind]
    return out


def _from_first_eval_format(rows: list) -> list[dict]:
    """``atb-eval --predictions``' first format (a head line naming the task, method and
    models with their seeds, then one line per test example) as lines of this one."""
    head, examples = rows[0], rows[1:]
    common = {k: head[k] for k in ("task", "method") if k in head}
    try:
        out = [labels_line("test", [e["label"] for e in examples], common)]
        for name, model in head["models"].items():
            matrix = np.array([e["predicted"][name] for e in examples], dtype=np.int64).T
            for seed, predicted in zip(model["seeds"], matrix.reshape(len(model["seeds"]), -1)):
                out.append(line(name, seed, "test", predicted=predicted,
                                extra={"path": model["model"], **common}))
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise UsageError(f"a predictions file of atb-eval's first format that does not hold "
                         f"together ({type(exc).__name__}: {exc})") from exc
    return out
