"""Scores of a classifier on a split, the majority baseline, and the summary over seeds."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from atb.errors import UsageError


def scores(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> dict:
    """Accuracy and macro-F1 (every class counts, a class never predicted scores F1 0)."""
    from sklearn.metrics import f1_score

    return {"accuracy": float(np.mean(labels == predicted)),
            "macro_f1": float(f1_score(labels, predicted, labels=list(range(num_classes)),
                                       average="macro", zero_division=0))}


def majority_baseline(train_labels: np.ndarray, test_labels: np.ndarray, num_classes: int) -> dict:
    """Scores on the test split of always answering the most frequent training class."""
    majority = int(np.argmax(np.bincount(train_labels, minlength=num_classes)))
    result = scores(test_labels, np.full_like(test_labels, majority), num_classes)
    return {"majority_class": majority, "majority_accuracy": result["accuracy"],
            "majority_macro_f1": result["macro_f1"]}


def summarise(per_seed: list[dict]) -> dict:
    """Mean and standard deviation (sample, 0 for one seed) of accuracy and macro-F1."""
    out = {}
    for key in ("accuracy", "macro_f1"):
        values = np.array([r[key] for r in per_seed], dtype=np.float64)
        out[key] = float(values.mean())
        out[f"{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return out


def seed_list(seeds: int | Sequence[int]) -> list[int]:
    """``N`` -> seeds 0..N-1; a sequence of seeds as it is. At least one seed."""
    out = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not out or min(out) < 0:
        raise UsageError(f"seeds must be a positive count or a list of seeds >= 0, not {seeds!r}")
    return out


PER_EXAMPLE = ("predictions", "validation_predictions", "validation_correct")  # left out of reports


def report(task, per_seed: list[dict]) -> dict:
    """What every method reports: the summary over seeds, its 95% interval (bootstrap over test
    examples and seeds, :mod:`atb.stats`), the majority baseline, the seeds, and
    ``predictions`` (seeds x test examples, the predicted classes; :func:`public` drops them)."""
    from atb.stats import LEVEL, accuracy_interval, correctness

    predictions = np.stack([np.asarray(r["predictions"]) for r in per_seed])
    low, high = accuracy_interval(correctness(predictions, task.test.labels))
    return {**summarise(per_seed), "accuracy_ci": [low, high], "ci_level": LEVEL,
            **majority_baseline(task.train.labels, task.test.labels, task.num_classes),
            "seeds": [{k: v for k, v in r.items() if k not in PER_EXAMPLE} for r in per_seed],
            "predictions": predictions}


def public(result: dict) -> dict:
    """A result without its per-example predictions (what ``--json`` prints)."""
    return {k: v for k, v in result.items() if k != "predictions"}
