"""Parity plot of a predictor (``atb-plot predictor``): predicted vs measured latency.

By default the points are the predictor's own held-out architectures (stored in the
artefact, never seen in fitting); ``--labels CSV`` or a predictor without a held-out set
(a transferred one) plots against measurements instead. A ±10 % band marks the target.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from atb import cli
from atb.errors import MissingInputError


def parity_plot(measured_ms, predicted_ms, path: str | Path, title: str = "",
                metrics: dict | None = None) -> Path:
    """Write a log-log parity plot with the ±10 % band to ``path`` (PNG); returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from atb.predictor.metrics import latency_metrics

    measured = np.asarray(measured_ms, dtype=np.float64)
    predicted = np.asarray(predicted_ms, dtype=np.float64)
    metrics = metrics or latency_metrics(predicted, measured)
    lo = 0.8 * min(measured.min(), predicted.min())
    hi = 1.25 * max(measured.max(), predicted.max())
    line = np.geomspace(lo, hi, 100)
    fig, ax = plt.subplots(figsize=(5.5, 5.5), dpi=120)
    ax.fill_between(line, line * 0.9, line * 1.1, color="tab:green", alpha=0.15, label="±10 %")
    ax.plot(line, line, color="black", lw=0.8, label="predicted = measured")
    ax.scatter(measured, predicted, s=6, alpha=0.6, color="tab:blue", lw=0)
    ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi),
           xlabel="measured latency (ms)", ylabel="predicted latency (ms)", title=title)
    text = (f"n = {metrics['n']}\nMAPE {100 * metrics['mape']:.2f} %\n"
            f"within ±5 % {100 * metrics['within_5']:.1f} %\nwithin ±10 % {100 * metrics['within_10']:.1f} %\n"
            f"Kendall τ {metrics['kendall_tau']:.3f}\nRMSE {metrics['rmse_ms']:.3g} ms")
    ax.text(0.03, 0.97, text, transform=ax.transAxes, va="top", fontsize=8,
            bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(True, which="both", lw=0.3, alpha=0.5)
    from matplotlib.ticker import LogLocator, ScalarFormatter

    for axis in (ax.xaxis, ax.yaxis):  # plain numbers at 1-2-5 steps: default minor labels collide
        axis.set_major_formatter(ScalarFormatter())
        axis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
        axis.set_minor_formatter(ScalarFormatter())
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_predictor_parity(pred, out: str | Path, labels=None) -> dict:
    """Parity plot of ``pred`` against ``labels`` (default: its own held-out archs)."""
    from atb.predictor.metrics import latency_metrics

    if labels is not None:
        archs, measured, what = labels.archs, labels.latency_ms, "measurements"
    elif len(pred.heldout.get("archs", ())):
        archs, measured, what = pred.heldout["archs"], pred.heldout["measured_ms"], "held-out archs"
    else:
        raise MissingInputError(f"predictor {pred.path} stores no held-out architectures",
                                hint="pass --labels CSV with measurements of its device key")
    predicted = pred.predict_ms(archs)
    metrics = latency_metrics(predicted, measured)
    title = f"{pred.chosen} on {what}\n{pred.device_key}"
    path = parity_plot(measured, predicted, out, title=title, metrics=metrics)
    return {"files": [str(path)], "predictor": str(pred.path), "device_key": pred.device_key,
            "metrics": metrics}


def plot_predictor(args: argparse.Namespace) -> dict:
    """Body of ``atb-plot predictor``; returns ``{"files": [...], "metrics": {...}}``."""
    from atb.predictor.predictor import LatencyPredictor
    from atb.workspace import Workspace

    if args.predictor:
        pred = LatencyPredictor.load(args.predictor)
    else:
        from atb.predictor.auto import load_or_fit

        pred = load_or_fit(args.workspace, args.device_key)
    labels = None
    if args.labels:
        from atb.profiler.labels import LabelSet

        labels = LabelSet.from_csv(args.labels, pred.device_key)
    out = Path(args.output) if args.output else (
        Workspace.resolve(args.workspace).plots_dir / f"predictor-{pred.device_key}.png")
    return plot_predictor_parity(pred, out, labels)


def add_plot_subcommand(subparsers) -> None:
    """Register ``atb-plot predictor`` (called by :mod:`atb.plot_cli`)."""
    p = subparsers.add_parser("predictor", help="parity plot of a latency predictor")
    cli.add_common(p)
    p.add_argument("--predictor", metavar="FILE", help="artefact (default: the workspace's)")
    p.add_argument("--device-key", metavar="K", help="which of the workspace's predictors")
    p.add_argument("--labels", metavar="CSV", help="plot against these measurements")
    p.add_argument("-o", "--output", metavar="FILE.png", help="output PNG (default: workspace plots/)")
    p.set_defaults(func=plot_predictor)
