"""The built-in tasks: made offline from text that installed packages ship."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from atb.eval import kjv
from atb.eval.tasks import Task


@dataclass(frozen=True)
class BuiltinTask:
    name: str
    description: str
    build: Callable[[], Task]  # deterministic: the same task on every call


BUILTIN_TASKS = {t.name: t for t in (BuiltinTask(kjv.NAME, kjv.DESCRIPTION, kjv.build),)}


def builtin_task(name: str) -> Task | None:
    """The built-in task called ``name``, or None when there is none."""
    entry = BUILTIN_TASKS.get(name)
    return entry.build() if entry else None


def describe_builtin_tasks() -> list[dict]:
    """Name, classes, split sizes and description of every built-in task."""
    rows = []
    for entry in BUILTIN_TASKS.values():
        task = entry.build()
        rows.append({"name": entry.name, **task.sizes(), "classes": task.label_names,
                     "description": entry.description})
    return rows
