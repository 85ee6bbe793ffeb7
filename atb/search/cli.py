"""``atb-search``: the best architecture that is really ``--target-speedup`` times faster than
BERT-base on the target device.

A thin layer over :func:`atb.search.run_search`: parse, check, call, print (a table, or one
JSON object with ``--json``). Heavy modules are imported only when a search runs.
"""

from __future__ import annotations

import argparse
import logging

from atb import cli
from atb.errors import UsageError

log = logging.getLogger("atb.search.cli")

EPILOG = """\
window: a candidate's predicted speedup must lie in [1.02 T, 1.06 T] (just under the target
latency; see docs/architecture.md, "Search"); after measurement an arch is kept when its measured speedup is in
[0.95, 1.10] x T, otherwise it is dropped and replaced.

examples:
  atb-search --target-speedup 15
  atb-search --target-speedup 10 --algorithm fast --no-verify --json
  atb-search --target-speedup 8 12 16 --algorithm pareto
  atb-search --resume atb-workspace/runs/20260101-120000-evolution-15x
"""


def build_parser() -> argparse.ArgumentParser:
    p = cli.make_parser("atb-search", "The best architecture that is really --target-speedup times "
                        "faster than BERT-base on the target device (AutoTinyBERT Algorithm 2).")
    p.epilog = EPILOG
    cli.add_common(p)
    p.add_argument("--target-speedup", metavar="X", type=float, nargs="+",
                   help="speedup over BERT-base to reach (several with --algorithm pareto)")
    p.add_argument("--space", choices=("pretrain", "kd"), default=None,
                   help="search space (default: the one the supernet was trained for)")
    p.add_argument("--algorithm", default="evolution", metavar="{evolution,fast,random,pareto}",
                   help="evolution: Algorithm 2 (default); fast: AutoTinyBERT-Fast rule; "
                        "random: random search under the constraint; pareto: NSGA-II over several targets")
    p.add_argument("--generations", type=int, default=4, metavar="T", help="generations (default 4)")
    p.add_argument("--population", type=int, default=25, metavar="S",
                   help="archs per generation (default 25)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--top-k", type=int, default=3, metavar="K",
                   help="archs returned and measured (default 3)")
    p.add_argument("--no-verify", action="store_true", help="do not re-measure the top-k on the device")
    p.add_argument("--device-key", default=None,
                   help="use the predictor of this device key (default: the store's only one)")
    p.add_argument("--backend", default=None,
                   help="timing backend for re-measurement (default: the profiler's)")
    p.add_argument("--threads", type=int, default=None, help="threads for re-measurement")
    p.add_argument("--name", default=None, help="run directory name under <workspace>/runs")
    p.add_argument("--resume", metavar="RUN_DIR", default=None, help="continue an interrupted run")
    p.add_argument("--extract", action="store_true", help="write the best sub-model (atb-supernet extract)")
    p.add_argument("--fitness", default="loss", metavar="{loss,probe:TASK}",
                   help="loss: the supernet's held-out loss (default); probe:TASK: validation "
                        "accuracy of a linear probe of each sub-model on an atb-eval task, e.g. "
                        "probe:kjv-genre (seconds per candidate instead of a fraction of one)")
    return p


def _check(args: argparse.Namespace) -> None:
    from atb.search.api import ALGORITHMS  # light: numpy only

    if args.resume is None and not args.target_speedup:
        raise UsageError("--target-speedup is required (or --resume RUN_DIR)")
    if args.algorithm not in ALGORITHMS:
        raise UsageError(f"unknown algorithm {args.algorithm!r}", hint="use one of: " + ", ".join(ALGORITHMS))
    for t in args.target_speedup or []:
        if not t > 1:
            raise UsageError(f"target speedup {t:g} must be greater than 1",
                             hint="it is Lat(BERT-base) / Lat(arch), e.g. --target-speedup 15")
    if args.generations < 1 or args.population < 1 or args.top_k < 1:
        raise UsageError("--generations, --population and --top-k must be at least 1")
    if args.threads is not None and args.threads < 1:
        raise UsageError("--threads must be at least 1")
    from atb.search.fitness import parse_fitness

    parse_fitness(args.fitness)


def _print_human(result) -> None:
    d = result.to_dict()
    w = d["window"]
    print(f"target {d['target_speedup']:g}x over BERT-base on {d['device_key']}")
    print(f"window: predicted speedup in [{w['lo']:.2f}, {w['hi']:.2f}]; {d['evaluated']} archs evaluated "
          f"in {d['runtime_s']:.1f} s")
    rows = [{"rank": i, "arch": c["arch"], "fitness": f"{c['fitness']:.4f}",
             "pred": f"{c['predicted_speedup']:.2f}x",
             "meas": "-" if c["measured_speedup"] is None else f"{c['measured_speedup']:.2f}x"}
            for i, c in enumerate(d["top_k"], 1)]
    if rows:
        cli.print_table(rows, [("rank", "#"), ("arch", "arch"), ("fitness", "fitness"),
                               ("pred", "predicted"), ("meas", "measured")])
    else:
        print("no architecture met the target after measurement")
    for b in d["baselines"]:
        print(f"BERT-rule baseline: {b['arch']} fitness {b['fitness']:.4f}")
    print(f"run directory: {d['run_dir']} (report.md; plot with: atb-plot pareto --run {d['run_dir']})")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    cli.configure(args)

    def body() -> int:
        _check(args)
        from atb.search.api import run_search

        profile_options = {k: v for k, v in (("backend", args.backend), ("threads", args.threads)) if v}
        result = run_search(
            args.target_speedup or [], workspace=args.workspace, space=args.space,
            algorithm=args.algorithm, generations=args.generations, population=args.population,
            seed=args.seed, top_k=args.top_k, verify=not args.no_verify, device_key=args.device_key,
            profile_options=profile_options, run_name=args.name, resume=args.resume, extract=args.extract,
            fitness_spec=args.fitness,
        )
        if args.json:
            cli.print_json(result.to_dict())
        else:
            _print_human(result)
        return 0 if result.best is not None else 1

    return cli.run("atb-search", body)


if __name__ == "__main__":
    raise SystemExit(main())
