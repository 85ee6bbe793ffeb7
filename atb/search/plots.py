"""The Pareto plot (``atb-plot pareto``): speedup vs fitness of a search run (Figure 1 of the paper).

Drawn from the run directory alone (``evaluated.jsonl`` + ``report.json``), so plotting needs
neither the supernet nor the device: every evaluated arch (grey), the non-dominated front of
the searched archs (line), the BERT-rule baselines (``dqkv = dm``, ``df = 4 dm``) at the same
speedups (squares), the layer cut's speedup (a dotted line: the teacher's first layers have no
supernet fitness), the re-measured top-k (stars at the *measured* speedup, joined to their
predicted position), and the target window(s). Written as PNG and SVG.

A two-stage run (``atb-search --task``) adds a second figure (:func:`plot_task_scores`,
``task-<run>`` or, with ``out``, ``<out>-task``): the
re-ranked archs' validation accuracy on the task, with 95% intervals, against their measured
speedup, the BERT-rule arch and the winner marked.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from atb.errors import UsageError
from atb.search.fitness_cache import SEARCH_SOURCES
from atb.search.pareto import pareto_front
from atb.search.run import RunDir
from atb.workspace import Workspace

log = logging.getLogger("atb.search.plots")

FITNESS_LABELS = {"loss": "fitness: minus the supernet's held-out loss",
                  "params": "fitness: non-embedding parameters",
                  "retention": "fitness: layers x hidden width kept",
                  "probe": "fitness: probe validation accuracy"}


def _outputs(out: str | Path | None, default: Path) -> list[Path]:
    """PNG and SVG paths for ``-o``: FILE.png/FILE.svg give both, a bare stem gets both."""
    path = Path(out) if out else default
    if path.suffix.lower() not in ("", ".png", ".svg"):
        raise UsageError(f"unsupported plot format {path.suffix!r}",
                         hint="use .png or .svg (both are written)")
    stem = path.with_suffix("") if path.suffix else path
    try:
        stem.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # e.g. -o /proc/x.png, or a regular file where the directory goes
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return [stem.with_suffix(".png"), stem.with_suffix(".svg")]


def _save(fig, files: list[Path]) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    for f in files:
        fig.savefig(f)
    plt.close(fig)
    log.info("wrote %s", ", ".join(map(str, files)))


def plot_pareto(run_dir: str | Path, out: str | Path | None = None,
                workspace: Workspace | None = None) -> list[Path]:
    """Draw the run's speedup-fitness plot; returns the written PNG and SVG paths."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed; must precede pyplot
    import matplotlib.pyplot as plt

    run = RunDir.open(run_dir)
    report = run.read_report()
    records = [r for r in run.read_records() if np.isfinite(r.fitness)]
    searched = [r for r in records if r.source in SEARCH_SOURCES]
    rule = [r for r in records if r.source == "bert-rule"]
    ws = workspace or Workspace.resolve(run.path.parent.parent)
    files = _outputs(out, ws.plots_dir / f"pareto-{run.path.name}")

    fig, ax = plt.subplots(figsize=(7.5, 5.0), dpi=120)
    windows = [v["window"] for v in report.get("per_target", {}).values()] or [report["window"]]
    for i, w in enumerate(windows):
        ax.axvspan(w["lo"], w["hi"], color="tab:green", alpha=0.12,
                   label="latency window" if i == 0 else None)
        ax.axvline(w["target"], color="tab:green", lw=0.8, ls="--")
    if searched:
        pts = np.array([[r.predicted_speedup, r.fitness] for r in searched])
        ax.scatter(pts[:, 0], pts[:, 1], s=10, color="0.65", label=f"evaluated ({len(pts)})")
        front = pts[pareto_front(pts)][::-1]  # ascending speedup, descending fitness
        # The attained boundary: between two front points the faster one's fitness holds.
        ax.step(front[:, 0], front[:, 1], where="pre", color="tab:blue", lw=1.5,
                marker="o", ms=4, label="Pareto front (predicted)")
    if rule:
        ax.scatter([r.measured_speedup or r.predicted_speedup for r in rule], [r.fitness for r in rule],
                   marker="s", s=40, color="tab:red", label="BERT rule (dqkv=dm, df=4dm)")
    _draw_layer_cut(ax, report.get("layer_cut"))
    measured = [c for c in report.get("top_k", []) if c.get("measured_speedup")]
    for t in report.get("per_target", {}).values():
        measured += [c for c in t["top_k"] if c.get("measured_speedup") and c not in measured]
    if measured:
        for c in measured:
            ax.plot([c["predicted_speedup"], c["measured_speedup"]], [c["fitness"]] * 2,
                    color="tab:orange", lw=0.8)
        ax.scatter([c["measured_speedup"] for c in measured], [c["fitness"] for c in measured],
                   marker="*", s=120, color="tab:orange", edgecolor="k", lw=0.5, zorder=5,
                   label="top-k, measured speedup")
    best = report.get("best")
    if best:
        ax.annotate(best["arch"], (best["measured_speedup"] or best["predicted_speedup"], best["fitness"]),
                    textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_xlabel("speedup over BERT-base (x)")
    spec = (report.get("config") or {}).get("fitness_spec", "loss")
    ax.set_ylabel(FITNESS_LABELS.get(spec.split(":")[0], "fitness (higher is better)"))
    ax.set_title(f"{report['algorithm']} search, target {report['target_speedup']:g}x "
                 f"({report['evaluated']} archs)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    _save(fig, files)
    if report.get("reranking"):  # a two-stage run: its task figure beside the Pareto one
        task_out = (ws.plots_dir / f"task-{run.path.name}" if out is None
                    else files[0].with_name(files[0].stem + "-task"))
        files += plot_task_scores(run.path, task_out, workspace=ws)
    return files


def _draw_layer_cut(ax, cut: dict | None) -> None:
    """The layer cut at its measured speedup (predicted when not measured), across the plot."""
    if not cut:
        return
    measured = cut.get("measured_speedup")
    ax.axvline(measured or cut["predicted_speedup"], color="tab:purple", lw=1.2, ls=":",
               label=f"layer cut {cut['arch']} ({'measured' if measured else 'predicted'})")


def plot_task_scores(run_dir: str | Path, out: str | Path | None = None,
                     workspace: Workspace | None = None) -> list[Path]:
    """Task accuracy (validation, 95% interval) against measured speedup of a two-stage run's
    re-ranked archs and its BERT-rule arch; returns the written PNG and SVG paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = RunDir.open(run_dir)
    report = run.read_report()
    r = report.get("reranking")
    if not r:
        raise UsageError(f"{run.path} was not re-ranked on a task",
                         hint="search with --task TASK (a two-stage search)")
    ws = workspace or Workspace.resolve(run.path.parent.parent)
    files = _outputs(out, ws.plots_dir / f"task-{run.path.name}")
    fig, ax = plt.subplots(figsize=(7.5, 5.0), dpi=120)
    band = [b * report["target_speedup"] for b in report["accept_band"]]
    ax.axvspan(*band, color="tab:green", alpha=0.12, label="accepted measured speedup")
    groups = [("candidates", r["ranked"][1:], "o", "tab:blue"),
              ("winner", r["ranked"][:1], "*", "tab:orange"),
              ("BERT rule", [r["baseline"]] if r["baseline"] else [], "s", "tab:red")]
    for label, rows, marker, color in groups:
        rows = [s for s in rows if s.get("measured_speedup")]
        if not rows:
            continue
        x = [s["measured_speedup"] for s in rows]
        y = [s["validation_accuracy"] for s in rows]
        err = [[a - s["validation_ci"][0] for a, s in zip(y, rows)],
               [s["validation_ci"][1] - a for a, s in zip(y, rows)]]
        ax.errorbar(x, y, yerr=err, fmt=marker, ms=10 if marker == "*" else 6, color=color,
                    capsize=3, label=label)
        for s in rows:
            ax.annotate(s["arch"], (s["measured_speedup"], s["validation_accuracy"]),
                        textcoords="offset points", xytext=(5, 4), fontsize=7)
    ax.set_xlabel("measured speedup over BERT-base (x)")
    ax.set_ylabel(f"{r['task']} validation accuracy ({r['settings']})")
    c = r.get("winner_minus_baseline")
    title = f"re-ranked on {r['task']}, target {report['target_speedup']:g}x"
    if c:
        title += (f"\nwinner - rule {c['difference']:+.1%} [{c['ci_low']:+.1%}, "
                  f"{c['ci_high']:+.1%}]: {c['verdict']} (validation)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    _save(fig, files)
    return files
