"""``atb-search``: the best architecture that is really ``--target-speedup`` times faster than
BERT-base on the target device; and ``atb-plot pareto`` (:func:`add_plot_subcommand`).

A thin layer over :func:`atb.search.run_search` with the workspace's collaborators
(:func:`atb.compose.search_ports`): parse, check, build the typed settings, call, print (a
table, or one JSON object with ``--json``). Heavy modules are imported only when a search
runs. Options left out are not set, so a resumed run keeps its saved settings.
"""

from __future__ import annotations

import argparse
import logging

from atb import cli
from atb.errors import UsageError
from atb.stats import named_verdict

log = logging.getLogger("atb.search.cli")

EPILOG = """\
window: a candidate's predicted speedup must lie in [1.02 T, 1.06 T] (just under the target
latency; see docs/search.md, "The latency window"); after measurement an arch is kept when its measured speedup is in
[0.95, 1.10] x T, otherwise it is dropped and replaced.

device key: the top-k are re-measured under exactly the predictor's device key (backend,
threads, precision, sequence length, machine); --backend/--threads pick the key of that
setting when the store holds several, and a value that contradicts the predictor's key is an
error. Re-measured archs are stored as verification labels, which the predictor does not
train on unless fitted with atb-predictor fit --include-verification.

resume: --resume RUN_DIR continues with the run's config.json; only --top-k, --no-verify and
--extract may change.

task: --task TASK searches with the retention fitness (unless --fitness says otherwise), then
scores the measured top --rerank candidates (spread over depths) and the window's BERT-rule
arch on the task's validation split (--rerank-by probe: a linear probe of the frozen
sub-model, the default; finetune: a short fine-tuning run). The first stage's favourite wins
unless another candidate is better on validation with a paired 95% interval above zero; the
winner is printed against the rule arch with the paired 95% interval. --fitness probe:TASK is
the one-stage version: every candidate of the search is probed.

examples:
  atb-search --target-speedup 15
  atb-search --target-speedup 15 --task kjv-next
  atb-search --target-speedup 10 --algorithm fast --no-verify --json
  atb-search --target-speedup 8 12 16 --algorithm pareto
  atb-search --resume atb-workspace/runs/20260101-120000-evolution-15x
  atb-search --target-speedup 15 --task mr --train-further        # the models you take home
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
    p.add_argument("--algorithm", default=None, metavar="{evolution,fast,random,pareto}",
                   help="evolution: Algorithm 2 (default); fast: AutoTinyBERT-Fast rule; "
                        "random: random search under the constraint; pareto: NSGA-II over several targets")
    p.add_argument("--generations", type=int, default=None, metavar="T", help="generations (default 4)")
    p.add_argument("--population", type=int, default=None, metavar="S",
                   help="archs per generation (default 25)")
    p.add_argument("--seed", type=cli.seed_int, default=None, help="random seed (default 0)")
    p.add_argument("--top-k", type=int, default=None, metavar="K",
                   help="archs returned and measured (default 3)")
    p.add_argument("--no-verify", dest="verify", action="store_false", default=None,
                   help="do not re-measure the top-k on the device")
    p.add_argument("--device-key", default=None,
                   help="use the predictor of this device key (default: the store's only one)")
    p.add_argument("--backend", default=None,
                   help="pick the store's device key of this backend; must agree with the predictor's")
    p.add_argument("--threads", type=int, default=None,
                   help="pick the store's device key of this thread count; must agree with the predictor's")
    p.add_argument("--name", default=None, help="run directory name under <workspace>/runs")
    p.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue an interrupted run with its saved configuration")
    p.add_argument("--extract", action="store_true", default=None,
                   help="write the best sub-model (atb-supernet extract)")
    p.add_argument("--train-further", type=int, nargs="?", const=-1, default=None, metavar="N",
                   help="after the search, train the winner and the BERT-rule arch of its window "
                        "further on their own for N steps each (default: atb-supernet distill's) "
                        "into RUN_DIR/models/<arch>, and score both before and after")
    p.add_argument("--fitness", default=None, metavar="{loss,params,retention,probe:TASK}",
                   help="what the search maximises: loss, the supernet's held-out loss (default "
                        "without --task); params, non-embedding parameters; retention, layers x "
                        "hidden width kept, ties broken by params (default with --task); "
                        "probe:TASK, a linear probe's validation accuracy on an atb-eval task")
    p.add_argument("--task", default=None, metavar="TASK",
                   help="two-stage search: re-rank the measured top candidates on this atb-eval "
                        "task (a built-in name or a file; validation split, see --rerank-by) "
                        "and compare the winner with the BERT-rule arch")
    p.add_argument("--rerank", type=int, default=None, metavar="N",
                   help="candidates re-ranked on --task, spread over depths (default 6)")
    p.add_argument("--rerank-by", default=None, choices=("probe", "finetune"),
                   help="how --task scores a candidate on its validation split: probe, a linear "
                        "probe of the frozen sub-model (default, ~1 min per arch); finetune, a "
                        "short fine-tuning run (--screen-steps at --screen-lr, a few min per arch)")
    p.add_argument("--screen-steps", type=int, default=None, metavar="N",
                   help="with --rerank-by finetune: fine-tuning steps per candidate (default 150)")
    p.add_argument("--screen-lr", type=float, default=None, metavar="LR",
                   help="with --rerank-by finetune: peak learning rate (default 3e-4)")
    return p


def _check(args: argparse.Namespace) -> None:
    """Mistakes found before anything is loaded (the library checks the rest)."""
    if args.resume is None and not args.target_speedup:
        raise UsageError("--target-speedup is required (or --resume RUN_DIR)")
    if args.resume is not None and args.name is not None:
        raise UsageError("--name and --resume do not go together", hint="a resumed run keeps its directory")
    for t in args.target_speedup or []:
        if not t > 1:
            raise UsageError(f"target speedup {t:g} must be greater than 1",
                             hint="it is Lat(BERT-base) / Lat(arch), e.g. --target-speedup 15")
    if args.task is None and any(v is not None for v in (args.rerank, args.rerank_by,
                                                           args.screen_steps, args.screen_lr)):
        raise UsageError("--rerank, --rerank-by, --screen-steps and --screen-lr need --task")
    if args.train_further is not None and args.train_further != -1 and args.train_further < 1:
        raise UsageError(f"--train-further must be at least 1 step (got {args.train_further})")
    if args.screen_lr is not None and not args.screen_lr > 0:
        raise UsageError(f"--screen-lr must be greater than 0 (got {args.screen_lr:g})")
    for flag in ("generations", "population", "top_k", "threads", "rerank", "screen_steps"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be at least 1 (got {value})")


def search_options(args: argparse.Namespace) -> dict:
    """The SearchConfig fields given on the command line (left-out ones stay unset)."""
    return {"targets": args.target_speedup,
            "algorithm": args.algorithm, "space": args.space, "generations": args.generations,
            "population": args.population, "seed": args.seed, "top_k": args.top_k,
            "verify": args.verify, "device_key": args.device_key, "extract": args.extract,
            "fitness_spec": args.fitness, "task": args.task, "rerank": args.rerank,
            "rerank_by": args.rerank_by,
            "screen_steps": args.screen_steps, "screen_lr": args.screen_lr}


def search_config(args: argparse.Namespace):
    """``(the run's SearchConfig, its workspace)``: the flags given, or a resumed run's saved
    settings with the flags that may change (a flag left out keeps the saved value)."""
    from atb.search.config import resolve_config
    from atb.search.run import RunDir, run_workspace

    run = RunDir.open(args.resume) if args.resume is not None else None
    config = resolve_config(search_options(args), run.load_config() if run else None)
    return config, run_workspace(args.workspace, run)


def _print_human(result) -> None:
    d = result.to_dict()
    w = d["window"]
    print(f"target {d['target_speedup']:g}x over BERT-base on {d['device_key']}")
    print(f"window: predicted speedup in [{w['lo']:.2f}, {w['hi']:.2f}]; {d['evaluated']} archs evaluated "
          f"in {d['runtime_s']:.1f} s")
    rows = [{"rank": i, "arch": c["arch"], "fitness": f"{c['fitness']:.6g}",
             "pred": f"{c['predicted_speedup']:.2f}x",
             "meas": "-" if c["measured_speedup"] is None else f"{c['measured_speedup']:.2f}x"}
            for i, c in enumerate(d["top_k"], 1)]
    if rows:
        cli.print_table(rows, [("rank", "#"), ("arch", "arch"), ("fitness", "fitness"),
                               ("pred", "predicted"), ("meas", "measured")])
    else:
        print("no architecture met the target after measurement")
    _print_baselines(d)
    if d.get("reranking"):
        _print_reranking(d["reranking"])
    print(f"run directory: {d['run_dir']} (report.md; plot with: atb-plot pareto --run {d['run_dir']})")


def _speed(x) -> str:
    return "-" if x is None else f"{x:.2f}x"


def _print_baselines(d: dict) -> None:
    """The rule arch and the layer cut, what a user would take without atb."""
    for b in d["baselines"]:
        print(f"BERT-rule baseline: {b['arch']} fitness {b['fitness']:.6g}, measured "
              f"{_speed(b['measured_speedup'])}")
    cut = d.get("layer_cut")
    if cut:
        lo, hi = d["accept_band"]
        band = {None: "not measured", True: "inside the band",
                False: f"outside {lo:.2f}-{hi:.2f} x target: what the depth grid gives"}
        print(f"layer cut (the teacher's first {cut['layers']} layers, full width): {cut['arch']}, "
              f"predicted {_speed(cut['predicted_speedup'])}, measured "
              f"{_speed(cut['measured_speedup'])} ({band[cut['in_band']]})")


def _print_reranking(r: dict) -> None:
    print(f"\nre-ranked on {r['task']} ({r['settings']}; validation split):")
    favourite = r.get("favourite")
    rows = [{"arch": s["arch"], "role": "favourite" if s["arch"] == favourite else s["role"],
             "fit": f"{s['fitness']:.6g}", "meas": _speed(s["measured_speedup"]),
             "acc": f"{s['validation_accuracy']:.2%}", "loss": f"{s['validation_loss']:.4f}"}
            for s in r["ranked"] + ([r["baseline"]] if r["baseline"] else [])]
    cli.print_table(rows, [("arch", "arch"), ("role", "role"), ("fit", "fitness"),
                           ("meas", "measured"), ("acc", "accuracy"), ("loss", "loss")])
    c, w, b = r["winner_minus_baseline"], r["winner"], r["baseline"]
    if w and r.get("chosen_by"):
        print(f"winner {w['arch']}: {r['chosen_by']}")
    if c and w and b:
        print(f"winner {w['arch']} ({_speed(w['measured_speedup'])}) vs BERT rule {b['arch']} "
              f"({_speed(b['measured_speedup'])}): {c['difference']:+.2%} "
              f"[{c['ci_low']:+.2%}, {c['ci_high']:+.2%}] on {c['n_examples']} validation "
              f"examples: {named_verdict(c['verdict'], 'winner', 'rule')} (validation split; "
              f"confirm on the test split with "
              f"atb-eval compare)")


def _train_further(args, result, workspace, task_score) -> dict | None:
    """``--train-further``: the winner and its rule arch trained further (None without it)."""
    if args.train_further is None or result.best is None:
        return None
    from atb.compose import train_further_after_search
    from atb.supernet.further import DEFAULT_STEPS

    steps = DEFAULT_STEPS if args.train_further == -1 else args.train_further
    return train_further_after_search(result, workspace, steps, task_score)


def _print_further(f: dict) -> None:
    task = f" on {f['task']} (validation)" if f["task"] else ""
    print(f"\ntrained further, {f['steps']:,} steps each{task}:")
    rows = [{"arch": m["arch"], "role": m["role"],
             "loss": f"{m['heldout_loss_before']:.4f} -> {m['heldout_loss_after']:.4f}",
             "acc": (f"{m['validation_before']:.2%} -> {m['validation_after']:.2%}"
                     if "validation_after" in m else "-"), "out": m["out_dir"]}
            for m in f["models"]]
    cli.print_table(rows, [("arch", "arch"), ("role", "role"), ("loss", "held-out loss"),
                           ("acc", "accuracy"), ("out", "model directory")])


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    cli.configure(args)

    def body() -> int:
        _check(args)
        from atb.compose import search_ports
        from atb.search.api import run_search

        config, workspace = search_config(args)
        ports = search_ports(config, workspace, backend=args.backend, threads=args.threads)
        result = run_search(config, workspace, ports, run_name=args.name, resume=args.resume)
        if result.extracted:  # the card of the model a user takes home says what the search saw
            from atb.compose import search_card

            search_card(result, str(result.best.arch)).write(result.extracted)
        further = _train_further(args, result, workspace, ports.task_score)
        if args.json:
            cli.print_json({**result.to_dict(), **({"further_training": further} if further else {})})
        else:
            _print_human(result)
            if further:
                _print_further(further)
        return 0 if result.best is not None else 1

    return cli.run("atb-search", body)


# -- atb-plot pareto ---------------------------------------------------------------------------
PARETO_HELP = """Speedup vs fitness of a search run: every evaluated arch, the Pareto front of
the searched ones, the BERT-rule baselines, the re-measured top-k at their measured speedups
and the target window(s). Written as PNG and SVG from the run directory alone."""


def _plot_pareto(args) -> dict:
    from atb.search.plots import plot_pareto
    from atb.search.run import RunDir
    from atb.workspace import Workspace

    ws = Workspace.resolve(args.workspace)
    run = RunDir.open(args.run) if args.run else RunDir.latest(ws.runs_dir)
    files = plot_pareto(run.path, args.output, ws)
    return {"run_dir": str(run.path), "files": [str(f) for f in files]}


def add_plot_subcommand(subparsers) -> None:
    """Register ``atb-plot pareto``."""
    p = subparsers.add_parser("pareto", help="speedup vs fitness of a search run, with the Pareto front",
                              description=PARETO_HELP)
    cli.add_common(p)
    p.add_argument("--run", metavar="RUN_DIR", default=None,
                   help="search run directory (default: the latest finished run of the workspace)")
    p.add_argument("-o", "--output", metavar="FILE", default=None,
                   help="output path; PNG and SVG are both written (default: <workspace>/plots/pareto-<run>)")
    p.set_defaults(func=_plot_pareto)


if __name__ == "__main__":
    raise SystemExit(main())
