"""The run directory: configuration, every evaluated arch, per-generation checkpoints, reports.

Layout of ``<workspace>/runs/<name>/``::

    config.json        the run's SearchConfig (target, algorithm, space, T, S, seed, window
                       margins, device key, fitness, ...): a resumed run loads it
    evaluated.jsonl    one line per evaluated arch, appended as it happens; a later line for
                       the same arch (adding its measured speedup) supersedes an earlier one
    checkpoint.json    after every generation: its archs and fitness plus the random
                       generator's state, written atomically (a crash leaves the previous one)
    report.json        the result (the --json object plus details)
    report.md          the same for people

A run is resumed from ``config.json`` + ``evaluated.jsonl`` + ``checkpoint.json``: evaluated
archs are not evaluated again and evolution continues from the last finished generation with
the generator state it had then, so a resumed run ends where an uninterrupted one would.
:func:`open_run` resolves what a search starts from (the resumed run, its settings, the
workspace) once, for ``atb.compose`` and the engine alike.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from atb.errors import MissingInputError, UsageError
from atb.jsonl import append, read_log, write_atomic
from atb.search.config import SearchConfig
from atb.search.fitness_cache import Record
from atb.search.evolution import Generation
from atb.workspace import Workspace

log = logging.getLogger("atb.search.run")

CHECKPOINT_VERSION = 1


class RunDir:
    """One search run's directory."""

    def __init__(self, path: Path):
        self.path = Path(path)

    # -- creation and lookup ------------------------------------------------------------
    @classmethod
    def create(cls, runs_dir: Path, name: str | None, label: str) -> "RunDir":
        base = name or time.strftime("%Y%m%d-%H%M%S-") + label
        path = Path(runs_dir) / base
        n = 1
        while path.exists():  # never reuse a directory: runs are append-only records
            n += 1
            path = Path(runs_dir) / f"{base}-{n}"
        path.mkdir(parents=True)
        return cls(path)

    @classmethod
    def open(cls, path: str | os.PathLike) -> "RunDir":
        run = cls(Path(path))
        if not (run.path / "config.json").is_file():
            raise MissingInputError(
                f"{run.path} is not a search run directory (no config.json)",
                hint="pass a directory made by atb-search, e.g. atb-workspace/runs/<name>",
            )
        return run

    @classmethod
    def latest(cls, runs_dir: Path) -> "RunDir":
        """The most recent run with a report (for atb-plot pareto without --run)."""
        runs = sorted((p for p in Path(runs_dir).glob("*/report.json")), key=lambda p: p.stat().st_mtime)
        if not runs:
            raise MissingInputError(f"no finished search run under {runs_dir}", hint="run atb-search first")
        return cls(runs[-1].parent)

    # -- files ----------------------------------------------------------------------------
    @property
    def evaluated_path(self) -> Path:
        return self.path / "evaluated.jsonl"

    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoint.json"

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    def write_config(self, config: SearchConfig) -> None:
        write_atomic(self.config_path, json.dumps(config.to_dict(), indent=2) + "\n")

    def load_config(self) -> SearchConfig:
        """The run's :class:`SearchConfig` (what a resumed run searches)."""
        return SearchConfig.load(self.config_path)

    def append_record(self, record: Record) -> None:
        # no fsync: a record is rebuilt in milliseconds; kill -9 loses nothing written
        append(self.evaluated_path, record.to_dict())

    def read_records(self) -> list[Record]:
        """Every evaluated arch (last line per arch wins); a torn last line is skipped, a line
        that is not a record is skipped with a warning."""
        out: dict[str, Record] = {}
        for d in read_log(self.evaluated_path):
            try:
                out[d["arch"]] = Record(**d)
            except (TypeError, KeyError):
                log.warning("skipping a line of %s that is not an evaluated arch",
                            self.evaluated_path)
        return list(out.values())

    def save_checkpoint(self, gen: Generation, rng: np.random.Generator, history: list[dict]) -> None:
        state = {
            "version": CHECKPOINT_VERSION,
            "generation": gen.index,
            "last_generation": gen.to_dict(),
            "rng_state": rng.bit_generator.state,
            "history": history,
        }
        write_atomic(self.checkpoint_path, json.dumps(state) + "\n")

    def load_checkpoint(self) -> tuple[Generation, dict, list[dict]] | None:
        """(last finished generation, generator state, history) or None before generation 1."""
        if not self.checkpoint_path.is_file():
            return None
        try:
            d = json.loads(self.checkpoint_path.read_text())
        except ValueError as exc:
            raise UsageError(f"checkpoint {self.checkpoint_path} is unreadable: {exc}") from exc
        return Generation.from_dict(d["last_generation"]), d["rng_state"], d.get("history", [])

    def write_reports(self, report: dict) -> None:
        write_atomic(self.path / "report.json", json.dumps(report, indent=2) + "\n")
        write_atomic(self.path / "report.md", markdown_report(report))

    def read_report(self) -> dict:
        path = self.path / "report.json"
        if not path.is_file():
            raise MissingInputError(f"{self.path} has no report.json", hint="the run has not finished")
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as exc:  # ValueError: not JSON, or not UTF-8
            raise UsageError(f"cannot read the search report {path}: {exc}") from exc


def open_run(config: SearchConfig, workspace: str | Path | Workspace | None = None, *,
             run_name: str | None = None, resume: str | os.PathLike | None = None,
             ) -> tuple[RunDir | None, SearchConfig, Workspace]:
    """What a search starts from, resolved once: ``(the resumed run or None, its settings, its
    workspace)``.

    The settings are ``config``, checked; or, resuming, the run's ``config.json`` with what
    ``config`` may change (:meth:`~atb.search.config.SearchConfig.resumed_with`: its other
    values must agree). The workspace is the given one, or the one a resumed run lives in
    (:func:`run_workspace`). A new run's directory is made later, once its target is known
    to be reachable.
    """
    run = RunDir.open(resume) if resume is not None else None
    if run is not None and run_name is not None:
        raise UsageError("a resumed run keeps its directory", hint="leave out the run name")
    cfg = run.load_config().resumed_with(config.given()) if run else config.validate()
    return run, cfg, run_workspace(workspace, run)  # after the settings are checked: it may create a directory


def run_workspace(workspace: str | Path | Workspace | None, run: RunDir | None) -> Workspace:
    """``workspace``, or when it is None the one ``run`` lives in (``<workspace>/runs/<name>``)."""
    if workspace is None and run is not None:
        workspace = run.path.resolve().parent.parent
    return Workspace.of(workspace)


def _fmt(x, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def markdown_report(report: dict) -> str:
    """The human report: target, window, best archs, baselines, runtime."""
    w = report["window"]
    lines = [
        f"# atb-search: {report['target_speedup']:g}x faster than BERT-base",
        "",
        f"- algorithm: {report['algorithm']} ({report['space']})",
        f"- device key: `{report.get('device_key')}`",
        f"- window: predicted speedup in [{w['lo']:.2f}, {w['hi']:.2f}]; a measured speedup in "
        f"[{report['accept_band'][0]:.2f}, {report['accept_band'][1]:.2f}] x target is accepted",
        f"- reachable (predicted): {report['reachable'][0]:.2f}x to {report['reachable'][1]:.2f}x",
        f"- evaluated archs: {report['evaluated']}; runtime {report['runtime_s']:.1f} s",
        f"- verified on the device: {'yes' if report['verified'] else 'no'}",
        "",
        "## Best architectures",
        "",
        "| rank | arch | fitness | predicted speedup | measured speedup |",
        "|---|---|---|---|---|",
    ]
    for i, c in enumerate(report["top_k"], 1):
        lines.append(f"| {i} | `{c['arch']}` | {_fmt(c['fitness'], '.6g')} | "
                     f"{_fmt(c['predicted_speedup'])} | {_fmt(c['measured_speedup'])} |")
    if report.get("dropped"):
        lines += ["", "## Dropped after measurement (outside the accepted band)", ""]
        lines += [f"- `{c['arch']}`: predicted {_fmt(c['predicted_speedup'])}x, measured "
                  f"{_fmt(c['measured_speedup'])}x" for c in report["dropped"]]
    if report.get("baselines"):
        lines += ["", "## BERT-rule baseline (dqkv = dm, df = 4 dm) under the same window", ""]
        lines += [f"- `{c['arch']}`: fitness {_fmt(c['fitness'], '.6g')}, predicted "
                  f"{_fmt(c['predicted_speedup'])}x, measured {_fmt(c['measured_speedup'])}x"
                  for c in report["baselines"]]
    if cut := report.get("layer_cut"):
        band = {None: "not measured", True: "inside the band", False: "outside the band"}
        lines += ["", "## Layer cut (the teacher's first layers at full width, untrained)", "",
                  f"- `{cut['arch']}`: predicted {_fmt(cut['predicted_speedup'])}x, measured "
                  f"{_fmt(cut['measured_speedup'])}x ({band[cut['in_band']]}; not re-picked)"]
    if report.get("per_target"):
        lines += ["", "## Per target (Pareto search)", "",
                  "| target | best arch | fitness | predicted | measured |", "|---|---|---|---|---|"]
        for t, c in report["per_target"].items():
            b = c.get("best") or {}
            lines.append(f"| {t} | `{b.get('arch', '-')}` | {_fmt(b.get('fitness'), '.6g')} | "
                         f"{_fmt(b.get('predicted_speedup'))} | {_fmt(b.get('measured_speedup'))} |")
    if report.get("front"):
        ref = report.get("hv_reference") or [float("nan")] * 2
        lines += ["", f"Pareto front (predicted speedup, fitness): {len(report['front'])} archs; "
                  f"hypervolume {report.get('hypervolume', 0):.4g} above the evaluated nadir "
                  f"({ref[0]:.2f}x, {ref[1]:.4f})"]
    if report.get("extracted"):
        lines += ["", f"Extracted best sub-model: `{report['extracted']}`"]
    return "\n".join(lines) + "\n"
