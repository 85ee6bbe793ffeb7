"""Parity plot of a predictor: predicted vs measured latency (ms) or speedup over BERT-base.

By default the points are the predictor's own held-out architectures (stored in the
artefact, never seen in fitting); given labels, or for a predictor without a held-out set
(a transferred one), it plots against measurements instead. A ±10 % band marks the target.
Speedups are what the search constrains and are free of the drift between profiling
sessions, so they are the ones to plot for labels from another session. The command line
(``atb-plot predictor``) lives in :mod:`atb.predictor.cli`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from atb.errors import MissingInputError, UsageError


def _metrics_text(metrics: dict, speedup: bool) -> str:
    p = "speedup_" if speedup else ""
    text = (f"n = {metrics['n']}\nMAPE {100 * metrics[p + 'mape']:.2f} %\n"
            f"within ±5 % {100 * metrics[p + 'within_5']:.1f} %\n"
            f"within ±10 % {100 * metrics[p + 'within_10']:.1f} %\n"
            f"Kendall τ {metrics[p + 'kendall_tau']:.3f}")
    return text if speedup else text + f"\nRMSE {metrics['rmse_ms']:.3g} ms"


def parity_plot(measured, predicted, path: str | Path, title: str = "",
                metrics: dict | None = None, speedup: bool = False) -> Path:
    """Write a log-log parity plot with the ±10 % band to ``path`` (PNG); returns the path.

    ``measured``/``predicted`` are latencies in ms, or speedups over BERT-base when
    ``speedup``; ``metrics`` (computed when omitted) must hold that family's keys.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, ScalarFormatter

    from atb.predictor.metrics import latency_metrics, speedup_metrics

    measured = np.asarray(measured, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    if metrics is None:
        metrics = (speedup_metrics if speedup else latency_metrics)(predicted, measured)
        metrics.setdefault("n", len(measured))
    what = "speedup over BERT-base (×)" if speedup else "latency (ms)"
    lo = 0.8 * min(measured.min(), predicted.min())
    hi = 1.25 * max(measured.max(), predicted.max())
    line = np.geomspace(lo, hi, 100)
    fig, ax = plt.subplots(figsize=(5.5, 5.5), dpi=120)
    ax.fill_between(line, line * 0.9, line * 1.1, color="tab:green", alpha=0.15, label="±10 %")
    ax.plot(line, line, color="black", lw=0.8, label="predicted = measured")
    ax.scatter(measured, predicted, s=6, alpha=0.6, color="tab:blue", lw=0)
    ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi),
           xlabel=f"measured {what}", ylabel=f"predicted {what}", title=title)
    ax.text(0.03, 0.97, _metrics_text(metrics, speedup), transform=ax.transAxes, va="top",
            fontsize=8, bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(True, which="both", lw=0.3, alpha=0.5)
    for axis in (ax.xaxis, ax.yaxis):  # plain numbers at 1-2-5 steps: default minor labels collide
        axis.set_major_formatter(ScalarFormatter())
        axis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
        axis.set_minor_formatter(ScalarFormatter())
    fig.tight_layout()
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    except OSError as exc:  # e.g. -o /proc/x.png, or a regular file where the directory goes
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        plt.close(fig)
    return path


def plot_predictor_parity(pred, out: str | Path, labels=None, speedup: bool = False) -> dict:
    """Parity plot of ``pred`` against ``labels`` (default: its own held-out archs), of
    latency in ms or, with ``speedup``, of speedup over BERT-base. Returns the written
    ``files``, ``quantity`` ("latency" or "speedup") and ``metrics`` of both families; with
    ``labels`` also :func:`~atb.predictor.fit.session_check`'s fields."""
    from atb.predictor.fit import session_check
    from atb.predictor.metrics import prediction_metrics

    session = {}
    if labels is not None:
        archs, measured_ms, measured_speedup = labels.archs, labels.latency_ms, labels.speedup
        session = session_check(pred, labels)
        what = "measurements" + ("" if session["same_session"] else " of another session")
    elif len(pred.heldout.get("archs", ())):
        archs, measured_ms = pred.heldout["archs"], pred.heldout["measured_ms"]
        # artefacts written before speedups were stored: same session, so its BERT-base holds
        measured_speedup = pred.heldout.get("measured_speedup", pred.bert_base_ms / measured_ms)
        what = "held-out archs"
    else:
        raise MissingInputError(f"predictor {pred.path} stores no held-out architectures",
                                hint="pass labels (--labels CSV) with measurements of its device key")
    predicted_ms = pred.predict_ms(archs)
    predicted_speedup = pred.bert_base_ms / predicted_ms
    metrics = prediction_metrics(predicted_ms, measured_ms, predicted_speedup, measured_speedup)
    title = f"{pred.chosen} on {what}\n{pred.device_key}"
    if speedup:
        path = parity_plot(measured_speedup, predicted_speedup, out, title, metrics, speedup=True)
    else:
        path = parity_plot(measured_ms, predicted_ms, out, title, metrics)
    return {"files": [str(path)], "predictor": str(pred.path), "device_key": pred.device_key,
            "quantity": "speedup" if speedup else "latency", "metrics": metrics, **session}
