"""How far labels can be trusted, end to end: ``--samples auto`` on a new key, a larger
predictor of the same key, both scored on archs timed by a *later* ``atb-profile`` call, and
the sentinels' repeatability next to it.

Run it on an idle machine, one thread count per call:

    python -m bench.trust --workspace /tmp/trust-t1 --threads 1            # ~20 min at 1 thread
    python -m bench.trust --workspace /tmp/trust-t2 --threads 2 --extend 500 --no-auto

Sections (each resumable: a finished one is read back from WORKSPACE/trust-*.json):

* ``auto``    ``atb-profile --samples auto`` into a new workspace; the predictor fitted on
              its labels right after (``predictor-auto.json``);
* ``extend``  ``atb-profile --samples N`` in a second process (default 1000); predictors on the
              first 500 and on all N labels, fitted before anything else is timed;
* ``eval``    ``--eval`` uniform archs of another seed, timed by a third process;
* ``report``  each predictor's speedup MAPE and share within ±10% on those archs, as fitted
              (the BERT-base anchor of the labels it saw) and on the key's current pooled
              anchor (what ``load_or_fit`` serves once later runs moved it), its latency MAPE,
              the sentinels' repeatability, and the auto run's wall time and reason.

Nothing here asserts.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from atb.arch import get_space
from atb.jsonl import write_atomic
from atb.predictor.fit import evaluate_predictor, fit_predictor
from atb.predictor.predictor import LatencyPredictor
from atb.profiler.api import label_noise
from atb.profiler.drift import corrected_rows
from atb.profiler.labels import LabelSet
from atb.profiler.store import LatencyStore
from bench import common
from bench.common import parser as bench_parser

EVAL_SEED = 777


def atb_profile(ws: Path, name: str, args: list[str]) -> dict:
    """Run ``atb-profile ARGS --json`` once; its output and wall time cached as trust-NAME.json."""
    cache = ws / f"trust-{name}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    t0 = time.perf_counter()
    result = {**common.atb_profile(args + ["--workspace", str(ws)]),
              "process_wall_s": time.perf_counter() - t0}
    ws.mkdir(parents=True, exist_ok=True)
    write_atomic(cache, json.dumps(result))
    return result


def fit_saved(ws: Path, name: str, labels: LabelSet) -> LatencyPredictor:
    path = ws / f"predictor-{name}.json"
    if not path.is_file():
        fit_predictor(labels, source=f"bench.trust {name}").save(path)
    return LatencyPredictor.load(path)


def sampled_labels(ws: Path, key: str, run_ids: set[int] | None = None, first: int | None = None) -> LabelSet:
    with LatencyStore.open(ws / "latency.sqlite", readonly=True) as store:
        rows = [r for r in corrected_rows(store, key) if r["role"] == "sampled"
                and (run_ids is None or r["run_id"] in run_ids)]
    rows.sort(key=lambda r: (r["run_id"], r["measured_at"]))
    return LabelSet.from_rows(rows[:first] if first else rows, key)


def main() -> None:
    p = bench_parser("bench.trust", __doc__)
    p.add_argument("--workspace", type=Path, required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--extend", type=int, default=1000, help="sampled archs of the larger predictor")
    p.add_argument("--eval", type=int, default=150, help="uniform archs timed by a later process")
    p.add_argument("--no-auto", action="store_true", help="skip --samples auto")
    p.add_argument("--seed", type=int, default=2026, help="the sampled stream (data/README.md: 2026)")
    args = p.parse_args()
    ws, threads = args.workspace, ["--threads", str(args.threads), "--seed", str(args.seed)]
    fitted: dict[str, LatencyPredictor] = {}
    runs: dict[str, dict] = {}
    if not args.no_auto:
        runs["auto"] = atb_profile(ws, "auto", ["--samples", "auto"] + threads)
        key = runs["auto"]["device_key"]
        fitted[f"auto ({runs['auto']['total']})"] = fit_saved(ws, "auto", sampled_labels(ws, key))
    runs["extend"] = atb_profile(ws, "extend", ["--samples", str(args.extend)] + threads)
    key = runs["extend"]["device_key"]
    fitted["first 500"] = fit_saved(ws, "500", sampled_labels(ws, key, first=500))
    fitted[f"all {args.extend}"] = fit_saved(ws, str(args.extend), sampled_labels(ws, key))
    archs = [str(a) for a in get_space("pretrain").sample(np.random.default_rng(EVAL_SEED), args.eval)]
    runs["eval"] = atb_profile(ws, "eval", sum((["--arch", a] for a in archs), []) + threads[:2])
    with LatencyStore.open(ws / "latency.sqlite", readonly=True) as store:
        rows = [r for r in corrected_rows(store, key) if r["run_id"] == runs["eval"]["run_id"]
                and r["role"] == "requested"]
        noise = label_noise(store, key)
    evaluation = LabelSet.from_rows(rows, key)

    print(f"device key {key}; {len(evaluation)} uniform archs timed by a later process (seed {EVAL_SEED})")
    if "auto" in runs:
        a = runs["auto"]
        print(f"--samples auto: {a['total']} archs in {a['process_wall_s'] / 60:.1f} min (process wall); "
              f"{a['auto']['reason']}")
    print(f"\n{'predictor':16}{'kind':>10}{'CV MAPE x':>10}{'BERT ms':>9}{'MAPE x':>8}{'±10% x':>8}{'±5% x':>8}"
          f"   on today's anchor:{'MAPE x':>7}{'±10% x':>8}{'MAPE ms':>9}")
    for name, pred in fitted.items():
        m = evaluate_predictor(pred, evaluation)
        now = evaluate_predictor(pred.reanchored(evaluation.bert_base_ms), evaluation)
        cv = pred.cv_scores[pred.chosen]["speedup_mape"]
        print(f"{name:16}{pred.chosen:>10}{100 * cv:9.2f}%{pred.bert_base_ms:9.1f}{100 * m['speedup_mape']:7.2f}%"
              f"{100 * m['speedup_within_10']:7.1f}%{100 * m['speedup_within_5']:7.1f}%{'':20}"
              f"{100 * now['speedup_mape']:6.2f}%{100 * now['speedup_within_10']:7.1f}%{100 * now['mape']:8.2f}%")
    print(f"(today's anchor: BERT-base {evaluation.bert_base_ms:.1f} ms, pooled over every run of the key)")
    print()
    for name, r in runs.items():
        rep, anchor = r.get("repeatability"), r.get("anchor") or {}
        rep_text = (f"{100 * rep['median']:.2f}% median, {100 * rep['p90']:.2f}% p90 over {rep['n']} "
                    f"({rep['scope']})" if rep else "no sentinels")
        print(f"run {name:7} id {r['run_id']:3}: sentinels {rep_text}; anchor ±{100 * anchor.get('rel_halfwidth', 0):.1f}%"
              f" from {anchor.get('points')} points in {anchor.get('runs')} runs")
    if noise:
        print(f"the key's sentinels: {noise.describe()}")


if __name__ == "__main__":
    main()
