"""Which archs a window's ground truth holds: candidates picked by the predictor, every depth
that reaches the window, then timed in **one** profiler call (the idle machine's part)."""

from __future__ import annotations

import logging
import time

import numpy as np

from atb.arch import array_to_archs
from bench.common import read_csv, write_csv
from bench.ranking.truth import ARCH_FIELDS, ARCHS_CSV

log = logging.getLogger("bench.ranking")


def pick_candidates(space, predictor, target: float, per_depth: int, rng) -> list[tuple]:
    """(arch, role, predicted speedup): the rule arch nearest ``target`` and, per depth that
    reaches the window, ``per_depth`` archs predicted within 2% of it, spread over widths."""
    from atb.search.baselines import bert_rule_archs

    rule = bert_rule_archs(space)
    rule_pred = predictor.predict_speedup(rule)
    best = int(np.argmin(np.abs(np.log(rule_pred / target))))
    out = [(array_to_archs(rule[[best]])[0], "rule", float(rule_pred[best]))]
    sample = space.sample_array(rng, 200_000)
    pred = predictor.predict_speedup(sample)
    near = np.abs(pred / target - 1) <= 0.02
    for lt in np.unique(sample[near, 0]):
        idx = np.flatnonzero(near & (sample[:, 0] == lt))
        idx = idx[np.argsort(sample[idx, 1], kind="stable")]  # by dm: spread over widths
        for i in idx[np.linspace(0, len(idx) - 1, min(per_depth, len(idx))).round().astype(int)]:
            arch = array_to_archs(sample[[i]])[0]
            if arch != out[0][0]:
                out.append((arch, "candidate", float(pred[i])))
    return out


def time_candidates(ws, predictor, args) -> None:
    """Time every window's candidates in one profiler call; write data/ranking-archs.csv."""
    from atb.arch import get_space
    from atb.compose import search_measure

    space = get_space("pretrain", "minilm")  # the --init minilm supernet's space
    rng = np.random.default_rng(args.seed)
    chosen = [(w, *c) for w in args.windows for c in pick_candidates(space, predictor, w,
                                                                     args.per_depth, rng)]
    log.info("timing %d candidates of %d windows in one profiler call", len(chosen),
             len(args.windows))
    speedups = search_measure(ws, predictor.device_key)([c[1] for c in chosen])
    labels = {a: (s, ms) for a, s, ms in _latest_labels(ws, predictor.device_key)}
    # One timing call makes a window's rows: never two processes' labels mixed inside a window.
    # Other windows keep theirs (a third window added later is compared only within itself).
    rows = [r for r in read_csv(ARCHS_CSV) if float(r["window"]) not in args.windows]
    for window, arch, role, predicted in chosen:
        measured = speedups[[c[1] for c in chosen].index(arch)]
        inside = abs(measured / window - 1) <= args.margin
        rows.append({
            "window": window, "arch": arch, "role": role, **dict(zip("lt dm df h dqkv".split(),
                                                                      arch.as_tuple())),
            "params": arch.params(), "non_embedding_params": arch.non_embedding_params(),
            "predicted_speedup": f"{predicted:.3f}", "measured_speedup": f"{measured:.3f}",
            "latency_ms": f"{labels.get(str(arch), (0, float('nan')))[1]:.4f}",
            "inside": int(inside), "device_key": predictor.device_key,
            "protocol_version": predictor.protocol_version, "measured_at": int(time.time())})
        log.info("%gx %-9s %s predicted %.2fx measured %.2fx%s", window, role, arch, predicted,
                 measured, "" if inside else "  (outside: dropped)")
    write_csv(ARCHS_CSV, ARCH_FIELDS, rows)  # in one step: the old file or the new one


def _latest_labels(ws, device_key):
    from atb.profiler.store import LatencyStore

    with LatencyStore.open(ws.store_path, readonly=True) as store:
        labels = store.labels(device_key, roles=("sampled", "requested", "verify"))
    return zip(labels.arch_strings(), labels.speedup, labels.latency_ms)
