"""Drift correction: every run divided by the reference timed next to it.

Raw medians drift 5-15% between processes and move by 10% within a second on a shared
machine. A profiling run therefore times every model interleaved with a fixed *reference*
(:func:`atb.profiler.timing.measure_group`), and each run keeps its start time. For a model
timed in profiling run r:

* ``ref_r(s)``   the reference's run time around moment s: a rolling median over
                 :data:`SMOOTH_RUNS` consecutive reference runs, interpolated in time;
* ``ratio``      = median over the model's runs i of ``t_i / ref_r(s_i)`` -- each run is
                 compared with the machine's state at that moment;
* ``speedup``    = ``A / ratio``, where ``A`` = BERT-base / reference is the same kind of
                 ratio for BERT-base (Lat(BERT-base) / Lat(model) over the reference):
                 - protocol 4: ``A`` is pooled over every *anchor point* of the device key (the
                   median of all BERT-base timings of all its runs, each run timing BERT-base at
                   both ends and every ``ANCHOR_EVERY_S`` in between). One run's anchor moved by
                   4% (1 thread) to 27% (2 threads, two speed modes) against the next run's, and
                   every label of the run carried that error; pooled, the labels of all runs
                   share one anchor, whose own uncertainty :func:`anchor_estimate` reports;
                 - protocols 2-3: ``A`` of run r alone (the median of its two ends);
* ``latency_ms`` = ``ratio * anchor``, the anchor being the reference's median in the device
                 key's first run of the same protocol: every run is put on that run's scale.

Nothing here writes: corrections are derived from the immutable measurements whenever the
store is read, so the store stays append-only and a crash never leaves half-corrected rows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from atb.profiler.rows import MeasurementRow

SMOOTH_RUNS = 5  # reference runs per rolling median (about two bursts)
LABEL_ROLES = ("sampled", "requested", "verify", "sentinel")  # roles that get a corrected row
POOLED_ANCHOR_SINCE = 4  # the first protocol whose BERT-base anchor is pooled over runs


class ReferenceCurve:
    """The reference's run time as a function of (unix) time within one profiling run."""

    def __init__(self, refs: list[MeasurementRow]):
        starts = np.concatenate([r.starts for r in refs])
        times = np.concatenate([r.times for r in refs])
        order = np.argsort(starts)
        self.starts, times = starts[order], times[order]
        k = min(SMOOTH_RUNS, len(times))
        pad = np.pad(times, (k // 2, k - 1 - k // 2), mode="edge")
        self.levels = np.median(np.lib.stride_tricks.sliding_window_view(pad, k), axis=1)
        self.median = float(np.median(times))

    def at(self, moments: np.ndarray) -> np.ndarray:
        return np.interp(moments, self.starts, self.levels)

    def ratios(self, row: MeasurementRow) -> np.ndarray:
        """Each run of ``row`` divided by the reference level when it started."""
        return row.times / self.at(row.starts)


def runs_by_protocol(store, device_key: str) -> dict[int, dict[int, list[MeasurementRow]]]:
    """Protocol -> run -> the run's ok measurements of ``device_key``."""
    by_protocol: dict[int, dict[int, list[MeasurementRow]]] = defaultdict(lambda: defaultdict(list))
    for m in store.measurements(device_key):
        if m.ok:
            by_protocol[m.protocol_version][m.run_id].append(m)
    return by_protocol


def _reference_curves(by_run: dict[int, list[MeasurementRow]]) -> dict[int, ReferenceCurve]:
    return {rid: ReferenceCurve(refs) for rid, rows in by_run.items()
            if (refs := [m for m in rows if m.role == "reference"])}


def anchor_points(by_run: dict[int, list[MeasurementRow]],
                  curves: dict[int, ReferenceCurve]) -> dict[int, list[float]]:
    """Run -> the BERT-base / reference ratio of each of its BERT-base timings."""
    return {rid: points for rid, curve in curves.items()
            if (points := [float(np.median(curve.ratios(m))) for m in by_run[rid] if m.role == "bert_base"])}


def _run_anchors(by_run: dict[int, list[MeasurementRow]], curves: dict[int, ReferenceCurve]) -> dict[int, float]:
    """Run -> the BERT-base / reference ratio its speedups use (see the module docstring)."""
    points = anchor_points(by_run, curves)
    if not points:
        return {}
    protocol = next(iter(by_run.values()))[0].protocol_version
    if protocol >= POOLED_ANCHOR_SINCE:
        pooled = float(np.median(np.concatenate(list(points.values()))))
        return {rid: pooled for rid in curves}
    per_run = {rid: float(np.median(p)) for rid, p in points.items()}
    fallback = float(np.median(list(per_run.values())))  # a run cut short before its BERT-base
    return {rid: per_run.get(rid, fallback) for rid in curves}


@dataclass(frozen=True)
class AnchorEstimate:
    """How well the device key's BERT-base anchor is known (protocol 4 and later)."""

    ratio: float  # BERT-base / reference, pooled over every anchor point
    low: float  # 95% bootstrap interval of the pooled median (over points)
    high: float
    points: int
    runs: int
    run_spread: float | None  # (max - min) / median of the runs' own medians; None for one run

    @property
    def rel_halfwidth(self) -> float:
        """Half the interval's width relative to the ratio: the share of every speedup that is
        uncertain in common (it moves all labels of the key together, not their order)."""
        return (self.high - self.low) / 2 / self.ratio

    def to_dict(self) -> dict:
        return {"bert_base_over_reference": self.ratio, "ci95": [self.low, self.high], "points": self.points,
                "runs": self.runs, "run_spread": self.run_spread, "rel_halfwidth": self.rel_halfwidth}


def anchor_estimate(store, device_key: str, protocol_version: int, resamples: int = 2000) -> AnchorEstimate | None:
    """The pooled anchor of ``device_key`` under ``protocol_version`` with its 95% interval, or
    None when the key has no BERT-base timing yet.

    The interval resamples runs (then their points) once there are 3 runs: the points of one
    run share its process, and its speed mode on a two-mode machine; with fewer runs it
    resamples points, which understates what the next process may bring.
    """
    by_run = runs_by_protocol(store, device_key).get(protocol_version, {})
    points = anchor_points(by_run, _reference_curves(by_run))
    if not points:
        return None
    values = np.concatenate([np.asarray(p) for p in points.values()])
    rng = np.random.default_rng(0)
    if len(points) >= 3:
        runs = [np.asarray(p) for p in points.values()]
        boot = np.array([np.median(np.concatenate([rng.choice(runs[i], len(runs[i]))
                                                   for i in rng.integers(0, len(runs), len(runs))]))
                         for _ in range(resamples)])
    else:
        boot = np.median(rng.choice(values, size=(resamples, len(values))), axis=1)
    run_medians = [float(np.median(p)) for p in points.values()]
    spread = (max(run_medians) - min(run_medians)) / float(np.median(run_medians)) if len(points) > 1 else None
    low, high = np.percentile(boot, [2.5, 97.5])
    return AnchorEstimate(float(np.median(values)), float(low), float(high), len(values), len(points), spread)


def corrected_rows(store, device_key: str, run_id: int | None = None) -> list[dict]:
    """Drift-corrected label rows (dicts with the CSV columns of atb.profiler.labels) of the
    measurements in ``store``, a :class:`~atb.profiler.store.LatencyStore`.

    ``run_id`` limits the output to one profiling run, still on the device key's anchor scale.
    A run without reference timings (none should exist) keeps its raw values.
    """
    by_protocol = runs_by_protocol(store, device_key)
    # protocols time differently: each is put on the scale of its own first run
    return [row for protocol in sorted(by_protocol)
            for row in _corrected_protocol_rows(by_protocol[protocol], run_id)]


def _corrected_protocol_rows(by_run: dict[int, list[MeasurementRow]], run_id: int | None) -> list[dict]:
    """:func:`corrected_rows` for the runs of one protocol."""
    curves = _reference_curves(by_run)
    anchor = curves[min(curves)].median * 1e3 if curves else None  # ms
    bert_ratios = _run_anchors(by_run, curves)

    out = []
    for rid in sorted(by_run):
        if run_id is not None and rid != run_id:
            continue
        curve = curves.get(rid)
        for m in by_run[rid]:
            if m.role not in LABEL_ROLES:
                continue
            if curve is not None:
                runs_ms = curve.ratios(m) * anchor
                bert_ratio = bert_ratios.get(rid)
                bert_ms = bert_ratio * anchor if bert_ratio is not None else float("nan")
            else:
                runs_ms, bert_ms = m.times * 1e3, float("nan")
            latency = float(np.median(runs_ms))
            q10, q25, q75, q90 = np.percentile(runs_ms, [10, 25, 75, 90])
            out.append({
                "arch": m.arch, "device_key": m.device_key, "protocol_version": m.protocol_version,
                "source": m.role, "role": m.role, "space": m.space,
                "latency_ms": latency, "raw_ms": m.median_ms, "speedup": bert_ms / latency,
                "bert_base_ms": bert_ms, "p10_ms": q10, "p90_ms": q90, "iqr_ms": q75 - q25,
                "runs": len(m.times), "run_id": rid, "measured_at": m.finished_at, "setup_s": m.setup_s,
            })
    return out
