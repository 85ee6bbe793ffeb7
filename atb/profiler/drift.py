"""Drift correction: every run divided by the reference timed next to it.

Raw medians drift 5-15% between processes and move by 10% within a second on a shared
machine. A profiling run therefore times every model interleaved with a fixed *reference*
(:func:`atb.profiler.timing.measure_group`), and each run keeps its start time. For a model
timed in profiling run r:

* ``ref_r(s)``   the reference's run time around moment s: a rolling median over
                 :data:`SMOOTH_RUNS` consecutive reference runs, interpolated in time;
* ``ratio``      = median over the model's runs i of ``t_i / ref_r(s_i)`` -- each run is
                 compared with the machine's state at that moment;
* ``speedup``    = ``[BERT-base / ref]_r / ratio``, where ``[BERT-base / ref]_r`` is the same
                 kind of ratio for BERT-base, timed with the reference at the run's start and end
                 (median of the two): Lat(BERT-base) / Lat(model) in the same time window;
* ``latency_ms`` = ``ratio * anchor``, the anchor being the reference's median in the device
                 key's first run of the same protocol: every run is put on that run's scale.

Nothing here writes: corrections are derived from the immutable measurements whenever the
store is read, so the store stays append-only and a crash never leaves half-corrected rows.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from atb.profiler.rows import MeasurementRow

SMOOTH_RUNS = 5  # reference runs per rolling median (about two bursts)
LABEL_ROLES = ("sampled", "requested", "verify")


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


def corrected_rows(store, device_key: str, run_id: int | None = None) -> list[dict]:
    """Drift-corrected label rows (dicts with the CSV columns of atb.profiler.labels) of the
    measurements in ``store``, a :class:`~atb.profiler.store.LatencyStore`.

    ``run_id`` limits the output to one profiling run, still on the device key's anchor scale.
    A run without reference timings (none should exist) keeps its raw values.
    """
    by_protocol: dict[int, dict[int, list[MeasurementRow]]] = defaultdict(lambda: defaultdict(list))
    for m in store.measurements(device_key):
        if m.ok:
            by_protocol[m.protocol_version][m.run_id].append(m)
    # protocols time differently: each is put on the scale of its own first run
    return [row for protocol in sorted(by_protocol)
            for row in _corrected_protocol_rows(by_protocol[protocol], run_id)]


def _corrected_protocol_rows(by_run: dict[int, list[MeasurementRow]], run_id: int | None) -> list[dict]:
    """:func:`corrected_rows` for the runs of one protocol."""
    curves = {rid: ReferenceCurve(refs) for rid, rows in by_run.items()
              if (refs := [m for m in rows if m.role == "reference"])}
    anchor = curves[min(curves)].median * 1e3 if curves else None  # ms

    bert_ratios = {}  # run -> BERT-base / reference within that run
    for rid, curve in curves.items():
        berts = [m for m in by_run[rid] if m.role == "bert_base"]
        if berts:
            bert_ratios[rid] = float(np.median([np.median(curve.ratios(b)) for b in berts]))
    fallback = float(np.median(list(bert_ratios.values()))) if bert_ratios else None

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
                bert_ratio = bert_ratios.get(rid, fallback)
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
