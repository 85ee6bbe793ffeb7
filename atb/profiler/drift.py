"""Drift correction: every label expressed against a reference timed in the same window.

Raw medians drift 5-15% between processes (frequency, cache and scheduler state), while
within one series of runs they move 1-4%. So a run interleaves a fixed *reference* model:
it is timed carefully at the start and end and again every few tens of seconds. For an arch
timed at time t in run r:

* ``ref_r(t)``   reference latency at t, linearly interpolated between the reference timings
                 of run r (nearest one outside them);
* ``ratio``      = raw(arch) / ref_r(t)   -- drift-free within the run;
* ``speedup``    = [BERT-base / ref]_r / ratio, where [BERT-base / ref]_r is measured back to
                 back at the run's start and end (median of the pairs), so
                 speedup = Lat(BERT-base) / Lat(arch) in the same time window;
* ``latency_ms`` = ratio * anchor, where the anchor is the reference latency of the device key's
                 first run: every run is put on the scale of that first one.

Nothing here writes: corrections are derived from the immutable measurements each time the
store is read, so the store stays append-only and a crash never leaves half-corrected rows.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from atb.profiler.store import LatencyStore, MeasurementRow


def _reference_curve(refs: list[MeasurementRow]):
    times = np.array([r.midpoint for r in refs])
    values = np.array([r.median_ms for r in refs])
    order = np.argsort(times)
    return times[order], values[order]


def corrected_rows(store: LatencyStore, device_key: str, run_id: int | None = None) -> list[dict]:
    """Drift-corrected label rows (dicts with the CSV columns of atb.profiler.labels).

    Runs without a reference timing (none should exist) fall back to raw values. ``run_id``
    limits the output to one run, still on the device key's anchor scale.
    """
    by_run: dict[int, list[MeasurementRow]] = defaultdict(list)
    for m in store.measurements(device_key):
        if m.ok:
            by_run[m.run_id].append(m)
    anchor = None
    for rid in sorted(by_run):
        refs = [m for m in by_run[rid] if m.role == "reference"]
        if refs:
            anchor = float(np.median([m.median_ms for m in refs]))
            break

    ratios = {}  # run -> BERT-base / reference in that run
    curves = {}
    for rid, rows in by_run.items():
        refs = [m for m in rows if m.role == "reference"]
        if refs and anchor is not None:
            curves[rid] = _reference_curve(refs)
            berts = [m for m in rows if m.role == "bert_base"]
            if berts:
                ratios[rid] = float(np.median([b.median_ms / _level(curves[rid], b.midpoint) for b in berts]))
    fallback_ratio = float(np.median(list(ratios.values()))) if ratios else None

    out = []
    for rid in sorted(by_run):
        if run_id is not None and rid != run_id:
            continue
        for m in by_run[rid]:
            if m.role in ("reference", "bert_base"):
                continue
            if rid in curves:
                scale = anchor / _level(curves[rid], m.midpoint)
                bert_ratio = ratios.get(rid, fallback_ratio)
            else:  # no reference in this run: raw values, honestly labelled by raw_ms == latency_ms
                scale, bert_ratio = 1.0, None
            latency = m.median_ms * scale
            bert_ms = bert_ratio * anchor if bert_ratio is not None else float("nan")
            times_ms = m.times * 1e3 * scale
            out.append({
                "arch": m.arch,
                "device_key": m.device_key,
                "protocol_version": m.protocol_version,
                "source": m.role,
                "role": m.role,
                "space": m.space,
                "latency_ms": latency,
                "raw_ms": m.median_ms,
                "speedup": bert_ms / latency,
                "bert_base_ms": bert_ms,
                "p10_ms": float(np.percentile(times_ms, 10)),
                "p90_ms": float(np.percentile(times_ms, 90)),
                "iqr_ms": float(np.subtract(*np.percentile(times_ms, [75, 25]))),
                "runs": len(m.times),
                "run_id": rid,
                "measured_at": m.finished_at,
                "setup_s": m.setup_s,
            })
    return out


def _level(curve: tuple[np.ndarray, np.ndarray], t: float) -> float:
    times, values = curve
    return float(np.interp(t, times, values))
