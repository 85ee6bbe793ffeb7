"""``SearchConfig``: everything that decides a search run; it is also the run's ``config.json``.

A new run writes ``SearchConfig.to_dict()`` to its directory (with the space, super arch and
device key it found filled in); ``--resume`` loads it back, so the resumed run searches what
the interrupted one did. Only :data:`RESUME_OVERRIDES` -- what happens after the search
proper -- may change on resume; another field given with a different value is a
``UsageError`` naming the field and its saved value.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Mapping

from atb.errors import UsageError
from atb.search.fitness import parse_fitness
from atb.search.registry import ALGORITHMS
from atb.search.window import DEFAULT_HIGH_MARGIN, DEFAULT_LOW_MARGIN, Window

CONFIG_VERSION = 1
# What may change when a run resumes: none of it changes which archs were evaluated.
RESUME_OVERRIDES = ("verify", "top_k", "max_verify_rounds", "extract")
_DERIVED_KEYS = ("version", "windows")
# The first stage's fitness when a task re-ranks: of the cheap fitnesses it ranked the archs of
# a latency window most like their fine-tuned test accuracy on both ground-truth windows (15x
# and 25x; at 25x the only one to pick the one arch that learns), where "loss" ranked them
# backwards (bench/fitness.py; docs/results.md, "Which fitness").
TASK_FITNESS = "retention"
# How the second stage scores a candidate on the task: a linear probe of its frozen states
# ranked the 15x window's archs better than 150 steps of fine-tuning, at a fraction of the cost.
RERANK_KINDS = ("probe", "finetune")  # written for readers, recomputed on load


@dataclass(frozen=True)
class SearchConfig:
    """One search run's settings (defaults: Algorithm 2 with T=4, S=25, pm=pe=1/2)."""

    targets: tuple[float, ...] = ()  # speedups over BERT-base; the first is the primary one
    algorithm: str = "evolution"  # evolution, fast, random or pareto (several targets)
    space: str | None = None  # head strategy; None: the supernet's (filled in when the run starts)
    super_arch: str | None = None  # the space's super arch (filled in when the run starts)
    generations: int = 4  # T
    population: int = 25  # S
    seed: int = 0
    top_k: int = 3  # archs returned and, with verify, re-measured
    verify: bool = True  # re-measure the top-k under the predictor's device key
    low_margin: float = DEFAULT_LOW_MARGIN  # window: predicted speedup in [T(1+low), T(1+high)]
    high_margin: float = DEFAULT_HIGH_MARGIN
    mutation_prob: float = 0.5  # pm
    explore_prob: float = 0.5  # pe
    max_verify_rounds: int = 3  # measurement calls per target at most
    # loss, params, retention or probe:TASK (config.json before version 1: "fitness"); None:
    # loss, or TASK_FITNESS with a task (the cheap fitness that screens for a re-ranking)
    fitness_spec: str | None = None
    task: str | None = None  # re-rank the measured top candidates on this task (two-stage search)
    rerank: int = 6  # candidates re-ranked on the task (the BERT-rule arch comes on top)
    rerank_by: str = "probe"  # probe (a linear probe) or finetune (a short fine-tuning run)
    screen_steps: int = 150  # fine-tuning steps of one re-ranking score
    screen_lr: float = 3e-4  # its peak learning rate
    device_key: str | None = None  # the predictor's; None: the store's only one
    extract: bool = False  # write the best sub-model as a 🤗 directory

    def __post_init__(self):
        targets = self.targets
        if isinstance(targets, (int, float)):
            targets = (targets,)
        try:
            object.__setattr__(self, "targets", tuple(float(t) for t in targets or ()))
        except (TypeError, ValueError):
            raise UsageError(f"target speedups must be numbers (got {self.targets!r})") from None
        if self.fitness_spec is None:
            object.__setattr__(self, "fitness_spec", "loss" if self.task is None else TASK_FITNESS)

    # -- building -----------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def given(self) -> dict:
        """The fields that hold a value (None: not given), as :meth:`resumed_with` takes them."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def validate(self) -> "SearchConfig":
        """Raise ``UsageError`` for settings no search can run with; returns self."""
        if self.algorithm not in ALGORITHMS:
            raise UsageError(f"unknown algorithm {self.algorithm!r}", hint="use one of: " + ", ".join(ALGORITHMS))
        if self.generations < 1 or self.population < 1:
            raise UsageError(f"generations ({self.generations}) and population ({self.population}) must be >= 1")
        if self.top_k < 1:
            raise UsageError(f"top-k ({self.top_k}) must be >= 1")
        if self.max_verify_rounds < 1:
            raise UsageError(f"max_verify_rounds ({self.max_verify_rounds}) must be >= 1")
        if not (0 <= self.mutation_prob <= 1 and 0 <= self.explore_prob <= 1):
            raise UsageError("mutation_prob and explore_prob must lie in [0, 1]")
        if not self.targets:
            raise UsageError("no target speedup given")
        if len(self.targets) > 1 and self.algorithm != "pareto":
            raise UsageError("several target speedups need --algorithm pareto")
        if len(set(self.targets)) != len(self.targets):
            raise UsageError("target speedups must be distinct")
        parse_fitness(self.fitness_spec)
        if self.rerank < 1 or self.screen_steps < 1 or not self.screen_lr > 0:
            raise UsageError(f"re-ranking needs --rerank >= 1, screening steps >= 1 and a rate > 0 "
                             f"(got {self.rerank}, {self.screen_steps}, {self.screen_lr})")
        if self.rerank_by not in RERANK_KINDS:
            raise UsageError(f"unknown re-ranking {self.rerank_by!r}",
                             hint="use " + " or ".join(RERANK_KINDS))
        if self.task is not None and not str(self.task).strip():
            raise UsageError("--task needs a task name or file")
        self.windows()  # checks every target and the margins
        return self

    def windows(self) -> dict[float, Window]:
        return {t: Window.for_target(t, self.low_margin, self.high_margin) for t in self.targets}

    # -- config.json ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = {"version": CONFIG_VERSION, **asdict(self)}
        d["targets"] = list(self.targets)
        try:
            d["windows"] = [w.as_dict() for w in self.windows().values()]
        except UsageError:  # an unvalidated config is still writable
            pass
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str = "the search configuration") -> "SearchConfig":
        values = {k: v for k, v in d.items() if k not in _DERIVED_KEYS}
        if "fitness" in values and "fitness_spec" not in values:  # written before version 1
            values["fitness_spec"] = values.pop("fitness")
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise UsageError(f"{where} has unknown fields: {', '.join(unknown)}",
                             hint="was it written by a newer atb?")
        return cls(**values)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "SearchConfig":
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read the search configuration {path}: {exc}") from exc
        if not isinstance(d, dict):
            raise UsageError(f"{path} is not a search configuration")
        return cls.from_dict(d, where=str(path))

    # -- resuming -----------------------------------------------------------------------------
    def resumed_with(self, given: Mapping[str, object]) -> "SearchConfig":
        """This (saved) configuration with ``given`` (field name -> value) applied where a
        resumed run allows it.

        A value equal to the saved one, or None (not given), is fine for every field; a
        different value is allowed for :data:`RESUME_OVERRIDES` only.
        """
        changes = {}
        for name, value in given.items():
            if name not in self.field_names():
                raise UsageError(f"unknown search option: {name}")
            saved = getattr(self, name)
            if name == "targets" and value is not None:
                value = SearchConfig(targets=value).targets
            if value is None or value == saved:
                continue
            if name not in RESUME_OVERRIDES:
                shown = list(saved) if isinstance(saved, tuple) else saved
                raise UsageError(
                    f"a resumed run keeps its {name} ({shown} in its config.json); got {value}",
                    hint="only " + ", ".join(RESUME_OVERRIDES) + " may change on resume; "
                         "start a new run for other settings",
                )
            changes[name] = value
        return replace(self, **changes).validate()


def resolve_config(given: Mapping[str, object], saved: SearchConfig | None = None) -> SearchConfig:
    """The configuration a run uses, from the settings ``given`` by name (a command line's
    flags; None means "not given"): ``saved`` (a resumed run's) with what may change, or the
    defaults with ``given`` applied."""
    given = {k: v for k, v in given.items() if v is not None}
    if saved is not None:
        return saved.resumed_with(given)
    unknown = sorted(set(given) - set(SearchConfig.field_names()))
    if unknown:
        raise UsageError(f"unknown search option(s): {', '.join(unknown)}",
                         hint="options are the fields of atb.search.SearchConfig")
    return SearchConfig(**given).validate()
