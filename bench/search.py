"""atb-search on a real workspace (profiled store, fitted predictor, trained supernet): its wall
time per target, how many of the archs it returns are measured inside the accepted band, and
its best arch against the BERT-rule arch of the same window.

Prints, per target speedup (5x, 10x, 15x, 20x by default):

* wall time of the default search (Algorithm 2, T=4, S=25, top-3, re-measured on the device);
* the share of the returned top-k whose measured speedup lies in [0.95, 1.10] x target, and the
  first-try hit rate (accepted / all measured, dropped archs included: what the window alone
  achieves before replacement);
* the searched best arch against the BERT-rule baseline (dqkv = dm, df = 4 dm) under the same
  window, both measured in the same profiler call: fitness of each and the measured speedups.

A target outside the space (the ``small`` supernet reaches roughly 9x and up) is reported as
infeasible with its reachable range. Figures are measured, never assumed; run on a quiet host
(the profiler refuses to time while another timer runs).

    python -m bench.search --workspace atb-workspace [--quick] [--targets 10 15] [--json]
"""

from __future__ import annotations

import json
import logging
import sys
import time

from atb.compose import search_ports
from atb.errors import AtbError, InfeasibleTargetError
from atb.search import ACCEPT_BAND, SearchConfig, run_search
from atb.workspace import Workspace
from bench.common import parser as bench_parser


def bench_target(target: float, args) -> dict:
    t0 = time.perf_counter()
    try:
        config = SearchConfig(targets=target, generations=args.generations,
                              population=args.population, seed=args.seed, top_k=args.top_k)
        ws = Workspace.of(args.workspace)
        r = run_search(config, ws, search_ports(config, ws),
                       run_name=f"bench-{target:g}x-{time.strftime('%Y%m%d-%H%M%S')}")
    except InfeasibleTargetError as exc:
        return {"target": target, "infeasible": exc.one_line()}
    wall = time.perf_counter() - t0
    d = r.to_dict()
    lo, hi = ACCEPT_BAND[0] * target, ACCEPT_BAND[1] * target
    top = d["top_k"]
    measured_all = top + d["dropped"]
    in_band = [c for c in top if c["measured_speedup"] is not None and lo <= c["measured_speedup"] <= hi]
    base = d["baselines"][0] if d["baselines"] else None
    best = d["best"]
    return {
        "target": target,
        "wall_s": wall,
        "evaluated": d["evaluated"],
        "top_k": len(top),
        "top_k_in_band": len(in_band) / len(top) if top else None,
        "first_try_hit_rate": len(top) / len(measured_all) if measured_all else None,
        "best": best,
        "baseline": base,
        "fitness_gain_over_bert_rule": (best["fitness"] - base["fitness"]) if best and base else None,
        "run_dir": d["run_dir"],
    }


def _fmt(x, spec=".3f"):
    return "-" if x is None else format(x, spec)


def main(argv=None) -> int:
    p = bench_parser("bench.search", __doc__)
    p.add_argument("--workspace", default=None)
    p.add_argument("--targets", type=float, nargs="+", default=[5, 10, 15, 20])
    p.add_argument("--quick", action="store_true", help="T=2, S=10, top-2, targets 10 and 15")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    args.generations, args.population, args.top_k = (2, 10, 2) if args.quick else (4, 25, 3)
    if args.quick and args.targets == [5, 10, 15, 20]:
        args.targets = [10, 15]
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
    try:
        rows = [bench_target(t, args) for t in args.targets]
    except AtbError as exc:
        sys.stderr.write(f"bench.search: {exc.one_line()}\n")
        return 2
    if args.json:
        print(json.dumps({"generations": args.generations, "population": args.population, "rows": rows}, indent=2))
        return 0
    print(f"atb-search benchmark: T={args.generations}, S={args.population}, top-{args.top_k}, "
          f"accepted band {ACCEPT_BAND[0]}-{ACCEPT_BAND[1]} x target")
    header = ("target", "wall s", "evals", "top-k in band", "1st-try hits", "best arch (meas.)",
              "fitness", "BERT-rule arch (meas.)", "fitness", "gain")
    print(" | ".join(header))
    for r in rows:
        if "infeasible" in r:
            print(f"{r['target']:g}x | infeasible: {r['infeasible']}")
            continue
        b, base = r["best"] or {}, r["baseline"] or {}
        print(" | ".join([
            f"{r['target']:g}x", f"{r['wall_s']:.1f}", str(r["evaluated"]),
            _fmt(r["top_k_in_band"], ".0%"), _fmt(r["first_try_hit_rate"], ".0%"),
            f"{b.get('arch', '-')} ({_fmt(b.get('measured_speedup'), '.2f')}x)", _fmt(b.get("fitness"), ".4f"),
            f"{base.get('arch', '-')} ({_fmt(base.get('measured_speedup'), '.2f')}x)",
            _fmt(base.get("fitness"), ".4f"), _fmt(r["fitness_gain_over_bert_rule"], "+.4f"),
        ]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
