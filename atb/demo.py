"""atb-demo: the whole pipeline on a small default, end to end, in one workspace.

profile a sample of the MiniLM space -> fit the latency predictor -> build SuperPLM from the
bundled MiniLM (importance-reordered) and distil it from MiniLM briefly (reused when the
workspace has it) -> evolutionary search at the target speedup, re-measured on this CPU ->
the searched arch against the BERT-rule arch at the same measured speedup (fitness with its
evaluation noise, and a downstream probe on the built-in task) -> predictor parity plot and
Pareto plot.
"""

from __future__ import annotations

import logging
import time

from atb import cli

log = logging.getLogger("atb.demo")

DEMO_SUPER = "minilm"  # the bundled pretrained encoder, 6-384-1536-12-384
DEMO_TASK = "kjv-genre"  # atb-eval's built-in offline task


def run_demo(
    workspace: str = "atb-demo-workspace",
    samples: int = 150,
    train_steps: int = 200,
    target_speedup: float = 15.0,
    seed: int = 0,
    downstream: bool = True,
) -> dict:
    """Run every stage once and return what each produced (paths, metrics, the best arch)."""
    from atb.arch import get_space
    from atb.compose import run_search
    from atb.predictor import load_or_fit
    from atb.predictor.plots import plot_predictor_parity
    from atb.profiler import profile
    from atb.search import plot_pareto
    from atb.supernet import prepare_data, train_supernet
    from atb.supernet.checkpoint import STATE, checkpoint_dir
    from atb.workspace import Workspace

    ws = Workspace.resolve(workspace)
    if ws.store_path.is_file():  # a corrupt store fails now, not after a stage has started
        from atb.profiler.store import LatencyStore

        LatencyStore.open(ws.store_path, readonly=True).close()
    t0 = time.perf_counter()
    stages = {}

    log.info("[1/6] profiling %d archs of the MiniLM space (onnxruntime, 128 tokens)", samples)
    report = profile(ws, samples=samples, space="pretrain", super_config=DEMO_SUPER, seed=seed)
    stages["profile"] = {"device_key": report.device_key, "total": report.total, "new": report.new,
                         "bert_base_ms": report.bert_base_ms, "wall_s": time.perf_counter() - t0}

    log.info("[2/6] fitting the latency predictor")
    predictor = load_or_fit(ws, report.device_key)
    parity = plot_predictor_parity(predictor, ws.plots_dir / "predictor-parity.png")
    stages["predictor"] = {"chosen": predictor.chosen, "heldout": parity["metrics"],
                           "plot": parity["files"][0], "path": str(predictor.path)}

    log.info("[3/6] building SuperPLM from MiniLM and distilling it (%d steps)", train_steps)
    if not (ws.data_dir / "manifest.json").is_file():
        prepare_data(ws)
    checkpoint = checkpoint_dir(ws.supernet_dir, get_space("pretrain", DEMO_SUPER), DEMO_SUPER)
    trained = train_supernet(ws, space="pretrain", init=DEMO_SUPER, steps=train_steps,
                             resume=(checkpoint / STATE).is_file(), seed=seed)
    stages["supernet"] = {k: trained.get(k) for k in ("checkpoint", "step", "loss", "seconds", "init")}

    log.info("[4/6] searching for a %g x speedup and re-measuring the best archs", target_speedup)
    result = run_search(target_speedup, workspace=ws, seed=seed, device_key=report.device_key,
                        extract=True)
    stages["search"] = result.to_dict()

    log.info("[5/6] comparing the searched arch with the BERT-rule arch")
    stages["comparison"] = compare_with_rule(ws, result, downstream)

    log.info("[6/6] drawing the Pareto plot")
    plots = plot_pareto(result.run_dir, ws.plots_dir / "pareto.png", workspace=ws)
    stages["plots"] = [parity["files"][0]] + [str(p) for p in plots]
    stages["wall_s"] = time.perf_counter() - t0
    stages["workspace"] = str(ws.root)
    return stages


def compare_with_rule(ws, result, downstream: bool = True) -> dict | None:
    """Searched best vs the BERT-rule baseline of the same window: measured speedups, the
    fitness gap with its evaluation noise, and (``downstream``) a linear probe of both
    extracted models on the built-in task."""
    from atb.supernet import FitnessEvaluator
    from atb.supernet.extract import extract

    best, rule = result.best, result.primary.baseline
    if best is None or rule is None:
        return None
    evaluator = FitnessEvaluator.from_workspace(ws)
    out = {"searched": best.to_dict(), "bert_rule": rule.to_dict(),
           "fitness_gap": evaluator.fitness_gap(best.arch, rule.arch)}
    if downstream:
        from atb.eval import evaluate

        rule_dir = result.run_dir / "bert-rule-model"
        extract(ws, rule.arch, rule_dir)
        for name, model_dir in (("searched", result.extracted), ("bert_rule", rule_dir)):
            probe = evaluate(model_dir, DEMO_TASK, method="probe", seeds=1)
            out[name]["probe_accuracy"] = probe["accuracy"]
        out["task"] = DEMO_TASK
    return out


def _fmt(x, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def _print(result: dict) -> None:
    prof, pred, search = result["profile"], result["predictor"], result["search"]
    best = search.get("best") or {}
    print(f"workspace        {result['workspace']}")
    print(f"profiled         {prof['new']} new archs ({prof['total']} in the store), device key "
          f"{prof['device_key']}, BERT-base {_fmt(prof['bert_base_ms'], '.1f')} ms")
    print(f"predictor        {pred['chosen']}: held-out MAPE {100 * pred['heldout']['mape']:.2f}%, "
          f"within ±10% {100 * pred['heldout']['within_10']:.1f}%, Kendall τ {pred['heldout']['kendall_tau']:.3f}")
    sup = result["supernet"]
    print(f"supernet         from {sup['init']}, {sup['step']} steps of self-distillation, "
          f"loss {_fmt(sup['loss'], '.4f')}")
    print(f"search           target {search['target_speedup']}x: best {best.get('arch', 'none')}, "
          f"fitness {_fmt(best.get('fitness'), '.4f')}, predicted {_fmt(best.get('predicted_speedup'))}x, "
          f"measured {_fmt(best.get('measured_speedup'))}x ({search['evaluated']} archs evaluated)")
    print(f"search run       {search['run_dir']}")
    if search.get("extracted"):
        print(f"best model       {search['extracted']} (transformers.AutoModel; carries "
              f"its code when dqkv differs from dm: trust_remote_code=True, or import atb)")
    cmp = result.get("comparison")
    if cmp:
        gap = cmp["fitness_gap"]
        for name, label in (("searched", "searched"), ("bert_rule", "BERT rule")):
            c = cmp[name]
            probe = (f", {cmp['task']} probe accuracy {100 * c['probe_accuracy']:.1f}%"
                     if "probe_accuracy" in c else "")
            print(f"{label:<16} {c['arch']}: measured {_fmt(c['measured_speedup'])}x, "
                  f"fitness {c['fitness']:.4f}{probe}")
        verdict = "larger than" if gap["ratio"] > 2 else "within 2x of"
        print(f"fitness gap      {gap['gap']:+.4f} (evaluation noise ±{gap['noise']:.4f}: paired "
              f"bootstrap over {gap['sequences']} held-out sequences; the gap is {verdict} "
              f"twice the noise)")
    for path in result["plots"]:
        print(f"plot             {path}")
    print(f"took             {result['wall_s'] / 60:.1f} min")


def main(argv: list[str] | None = None) -> int:
    p = cli.make_parser("atb-demo", __doc__)
    p.add_argument("--workspace", default="atb-demo-workspace", metavar="DIR")
    p.add_argument("--samples", type=int, default=150, help="archs to profile (default: 150)")
    p.add_argument("--train-steps", type=int, default=200,
                   help="supernet distillation steps (default: 200)")
    p.add_argument("--target-speedup", type=float, default=15.0)
    p.add_argument("--no-downstream", dest="downstream", action="store_false",
                   help=f"skip the {DEMO_TASK} probe of the searched and BERT-rule models")
    p.add_argument("--seed", type=cli.seed_int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    cli.configure(args)
    # check what would otherwise fail only after minutes of profiling and training
    if args.samples < 30:
        p.error(f"--samples {args.samples} is too few to fit a predictor (at least 30)")
    if args.train_steps < 0:
        p.error("--train-steps must be at least 0")
    if not args.target_speedup > 1:
        p.error(f"--target-speedup {args.target_speedup} must be greater than 1")

    def body() -> int:
        result = run_demo(args.workspace, args.samples, args.train_steps, args.target_speedup,
                          args.seed, args.downstream)
        cli.print_json(result) if args.json else _print(result)
        return 0

    return cli.run("atb-demo", body)


if __name__ == "__main__":
    raise SystemExit(main())
