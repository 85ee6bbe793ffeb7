"""The built-in tasks: made offline from text that installed packages ship."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from atb.errors import MissingInputError
from atb.eval import kjv_genre, kjv_next, mr
from atb.eval.tasks import Task


@dataclass(frozen=True)
class BuiltinTask:
    name: str
    description: str
    tests: str  # what a good score on it shows
    build: Callable[[], Task]  # deterministic: the same task on every call
    # Test accuracy of the baselines and reference models, as measured by the command in
    # docs/results.md (atb-eval baselines / atb-eval --method finetune).
    reference: dict = field(default_factory=dict)


# Measured test accuracies (commands and dates: docs/results.md, "Evaluation").
REFERENCE_GENRE = {"majority": 0.125, "bag of words": 0.648, "MiniLM-L6 probe": 0.565,
                   "random-init 3-256-1024-4-256, probe": 0.49}
REFERENCE_NEXT = {"majority": 0.500, "bag of words, joined pair": 0.506,
                  "bag of words, side by side": 0.499, "MiniLM-L6 fine-tuned (3 seeds)": 0.694,
                  "random-init MiniLM-L6 shape, fine-tuned": 0.504}
# mr (task version 1); fine-tuned at lr 1e-4, 3 seeds (bench/mr_separation.py, 2026-12-07).
REFERENCE_MR = {"majority": 0.495, "bag of words": 0.763, "MiniLM-L6 fine-tuned (3 seeds)": 0.838,
                "its first 3 layers fine-tuned": 0.817, "its first 2 layers fine-tuned": 0.779,
                "random-init 3-layer shape, fine-tuned": 0.742}

BUILTIN_TASKS = {t.name: t for t in (
    BuiltinTask(kjv_next.NAME, kjv_next.DESCRIPTION,
                "reading: discourse order across two passages, which only the Transformer "
                "layers can see (the default task for comparing architectures)",
                kjv_next.build, REFERENCE_NEXT),
    BuiltinTask(kjv_genre.NAME, kjv_genre.DESCRIPTION,
                "vocabulary and style: a bag of words does well, so it favours wide embedding "
                "tables over what the layers compute", kjv_genre.build, REFERENCE_GENRE),
    BuiltinTask(mr.NAME, mr.DESCRIPTION,
                "sentiment of a public benchmark sentence (Pang & Lee's MR): a bag of words "
                "reaches 76%, so a model's margin over it is what reading adds; the public "
                "yardstick (needs atb[benchmarks])", mr.build, REFERENCE_MR),
)}


def builtin_task(name: str) -> Task | None:
    """The built-in task called ``name``, or None when there is none."""
    entry = BUILTIN_TASKS.get(name)
    return entry.build() if entry else None


def describe_builtin_tasks() -> list[dict]:
    """Name, classes, split sizes and description of every built-in task; a task whose data
    package is not installed is listed with ``unavailable`` (why, and what to install) and no
    sizes."""
    rows = []
    for entry in BUILTIN_TASKS.values():
        try:
            task = entry.build()
        except MissingInputError as exc:
            rows.append({"name": entry.name, "classes": [], "description": entry.description,
                         "tests": entry.tests, "reference": entry.reference,
                         "unavailable": exc.one_line()})
            continue
        rows.append({"name": entry.name, **task.sizes(), "classes": task.label_names,
                     "description": entry.description, "tests": entry.tests,
                     "reference": entry.reference})
    return rows
