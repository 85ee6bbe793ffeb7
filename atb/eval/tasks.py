"""Classification tasks: examples, label names and one fixed train/validation/test split.

A :class:`Task` is plain data (texts, optional second texts, integer labels per split); where
it comes from (a built-in task, a user's file) is the business of :mod:`atb.eval.builtin` and
:mod:`atb.eval.files`. Splits are fixed once the task is built, so every seed and every model
sees exactly the same examples.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from atb.errors import EvalError

SPLITS = ("train", "validation", "test")
# Shares carved out of one labelled file for each split it does not come with.
HELD_OUT_FRACTIONS = {"validation": 0.1, "test": 0.2}
MAX_CLASSES = 1000  # more distinct labels than this look like a regression target ...
MIN_EXAMPLES_PER_CLASS = 2  # ... and so do more than 20 labels with fewer examples than this


@dataclass(frozen=True)
class Split:
    """The examples of one split, in a fixed order."""

    texts: list[str]
    labels: np.ndarray  # int64 class indices in 0..K-1
    pairs: list[str] | None = None  # the second text of each pair, or None for single texts
    groups: list[str] | None = None  # source unit of each example (never shared by two splits)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices) -> "Split":
        """The examples at ``indices``, in that order."""
        idx = [int(i) for i in indices]
        pick = (lambda xs: None if xs is None else [xs[i] for i in idx])  # noqa: E731
        return Split([self.texts[i] for i in idx], self.labels[idx], pick(self.pairs),
                     pick(self.groups))


@dataclass(frozen=True)
class Task:
    """A labelled text-classification task with its train, validation and test splits."""

    name: str
    label_names: list[str]
    train: Split
    validation: Split
    test: Split
    description: str = ""
    source: dict = field(default_factory=dict)  # how it was made (files, columns, split seed)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    @property
    def is_pair_task(self) -> bool:
        return self.train.pairs is not None

    def split(self, name: str) -> Split:
        return {"train": self.train, "validation": self.validation, "test": self.test}[name]

    def sizes(self) -> dict:
        """``n_train``, ``n_validation``, ``n_test`` and ``num_classes``."""
        return {**{f"n_{s}": len(self.split(s)) for s in SPLITS}, "num_classes": self.num_classes}

    def subsample(self, per_class: int | dict[str, int], seed: int = 0) -> "Task":
        """The same task with at most ``per_class`` examples of each class in each split (or
        one cap per split name), drawn with ``seed``: a cheaper probe, e.g. for every
        candidate of a search."""
        rng = np.random.default_rng(seed)
        caps = per_class if isinstance(per_class, dict) else dict.fromkeys(SPLITS, per_class)
        splits = {name: _cap_per_class(self.split(name), caps.get(name), rng) for name in SPLITS}
        return check_task(replace(self, **splits))


def _cap_per_class(split: Split, cap: int | None, rng: np.random.Generator) -> Split:
    if cap is None:
        return split
    keep = [rng.permutation(np.flatnonzero(split.labels == c))[:cap]
            for c in np.unique(split.labels)]
    return split.subset(np.sort(np.concatenate(keep)))


def encode_labels(values: list, names: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Raw labels -> (class indices, class names).

    Without ``names`` the classes are the distinct values, sorted numerically when they are all
    integers (``"0"``, ``"1"`` in a CSV count as integers) and as text otherwise. With ``names``
    (the training split's classes) a value outside them is an error.
    """
    text = [str(v).strip() for v in values]
    if names is None:
        distinct = set(text)
        if all(_is_int(v) for v in distinct):
            names = sorted(distinct, key=int)
        else:
            names = sorted(distinct)
    index = {name: i for i, name in enumerate(names)}
    unknown = sorted(set(text) - set(index))
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:5])
        raise EvalError(f"label(s) {shown} do not occur in the training data",
                        hint=f"the training labels are {', '.join(names[:10])}")
    return np.array([index[v] for v in text], dtype=np.int64), list(names)


def _is_int(value: str) -> bool:
    return value.lstrip("+-").isdigit()


def stratified_split(labels: np.ndarray, fractions: dict[str, float],
                     seed: int) -> dict[str, np.ndarray]:
    """Indices per split: each class is shuffled (seeded) and cut by ``fractions``; the rest
    is ``train``. Indices stay in their original order inside a split."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in ("train", *fractions)}
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        start = 0
        for name, share in fractions.items():
            # at least one example of every class stays in train
            take = max(0, min(int(round(share * len(members))), len(members) - start - 1))
            parts[name].append(members[start:start + take])
            start += take
        parts["train"].append(members[start:])
    return {name: np.sort(np.concatenate(chunks)) for name, chunks in parts.items()}


def check_task(task: Task) -> Task:
    """Refuse a task that cannot be evaluated: one class, a continuous-looking label, an empty
    split."""
    present = np.unique(task.train.labels)
    if len(present) < 2:
        raise EvalError(f"task {task.name}: the training data has one class only "
                        f"({task.label_names[int(present[0])]!r})",
                        hint="a classifier needs at least two labels")
    sparse = task.num_classes > 20 and len(task.train) < MIN_EXAMPLES_PER_CLASS * task.num_classes
    if sparse or task.num_classes > MAX_CLASSES:
        raise EvalError(f"task {task.name}: {task.num_classes} distinct labels in "
                        f"{len(task.train)} training examples look like a continuous target",
                        hint="atb-eval does classification; bin the target into classes")
    for name in SPLITS:
        if len(task.split(name)) == 0:
            raise EvalError(f"task {task.name}: the {name} split has no examples",
                            hint="give more labelled examples or a --validation/--test file")
    return task
