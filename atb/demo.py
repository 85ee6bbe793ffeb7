"""atb-demo: the whole pipeline on a small default, end to end, in one workspace.

profile a sample of the MiniLM space -> fit the latency predictor -> build SuperPLM from the
bundled MiniLM (importance-reordered) and distil it from MiniLM briefly (reused when the
workspace has it) -> two-stage search at the target speedup: evolution with a cheap fitness,
the top candidates re-measured on this CPU and re-ranked by a linear probe on the built-in
reading task -> the winner against the BERT-rule arch at the same measured speedup and
against the layer cut (MiniLM's own first layers, untrained, written as a 🤗 directory beside
the run; task scores with their paired 95% interval) -> predictor parity, Pareto and task
figures.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from atb import cli
from atb.stats import named_verdict

log = logging.getLogger("atb.demo")

DEMO_SUPER = "minilm"  # the bundled pretrained encoder, 6-384-1536-12-384
DEMO_TASK = "kjv-next"  # atb-eval's built-in reading task
DEMO_RERANK = 3  # candidates re-ranked on the task by a probe (plus the rule arch): ~1 min each
DEMO_MAX_SAMPLES = 300  # --samples auto stopped at 150-250 in the MiniLM space; this keeps ~10 min


@dataclass(frozen=True)
class DemoConfig:
    """What ``atb-demo`` runs; the defaults take about ten minutes on two cores."""

    samples: int | str = "auto"  # archs to profile; auto: until the predictor stops improving
    max_samples: int = DEMO_MAX_SAMPLES  # the most archs samples="auto" profiles
    train_steps: int = 200  # supernet distillation steps
    target_speedup: float = 15.0
    seed: int = 0
    downstream: bool = True  # re-rank the search's candidates on DEMO_TASK (two stages)


def run_demo(workspace: str = "atb-demo-workspace", config: DemoConfig | None = None) -> dict:
    """Run every stage once and return what each produced (paths, metrics, the best arch)."""
    from atb.search import plot_pareto

    config, ws = config or DemoConfig(), _open_workspace(workspace)
    t0 = time.perf_counter()
    stages = {}
    log.info("[1/6] profiling the MiniLM space (onnxruntime, 128 tokens): %s",
             f"until more labels no longer help the predictor (at most {config.max_samples} archs)"
             if config.samples == "auto" else f"{config.samples} archs")
    stages["profile"] = _profile(ws, config)
    stages["profile"]["wall_s"] = time.perf_counter() - t0
    log.info("[2/6] fitting the latency predictor")
    stages["predictor"] = _predictor(ws, stages["profile"]["device_key"])
    log.info("[3/6] building SuperPLM from MiniLM and distilling it (%d steps)", config.train_steps)
    stages["supernet"] = _supernet(ws, config)
    log.info("[4/6] searching for a %g x speedup, re-measuring the best archs%s",
             config.target_speedup, f" and re-ranking them on {DEMO_TASK}" if config.downstream else "")
    result = _search(ws, config, stages["profile"]["device_key"])
    stages["search"] = result.to_dict()
    log.info("[5/6] comparing the searched arch with the BERT-rule arch and the layer cut")
    stages["comparison"] = compare_with_rule(result)
    if stages["comparison"] is not None:
        stages["comparison"]["layer_cut"] = _layer_cut(ws, result)
    stages["further_training"] = _further_training_hint(ws, result)
    log.info("[6/6] drawing the Pareto plot")
    plots = plot_pareto(result.run_dir, ws.plots_dir / "pareto.png", workspace=ws)
    stages["plots"] = [stages["predictor"]["plot"]] + [str(p) for p in plots]
    stages["wall_s"] = time.perf_counter() - t0
    stages["workspace"] = str(ws.root)
    return stages


def _open_workspace(workspace):
    """The workspace; a corrupt store fails now, not after a stage has started."""
    from atb.workspace import Workspace

    ws = Workspace.resolve(workspace)
    if ws.store_path.is_file():
        from atb.profiler.store import LatencyStore

        LatencyStore.open(ws.store_path, readonly=True).close()
    return ws


def _profile(ws, config: DemoConfig) -> dict:
    """Stage 1: labels of the MiniLM space on this CPU (the default setting)."""
    from dataclasses import replace

    from atb.compose import profile
    from atb.profiler.api import ProfileConfig
    from atb.profiler.repeatability import report_warning

    profiling = ProfileConfig(samples=config.samples, space="pretrain", super_config=DEMO_SUPER,
                              seed=config.seed)
    if config.samples == "auto":
        profiling = replace(profiling, max_samples=config.max_samples)
    report = profile(profiling, ws)
    return {"device_key": report.device_key, "total": report.total, "new": report.new,
            "bert_base_ms": report.bert_base_ms, "wall_s": None, "auto": report.auto,
            "repeatability": report.key_repeatability, "anchor": report.anchor,
            "warning": report_warning(report)}


def _predictor(ws, device_key: str) -> dict:
    """Stage 2: the latency predictor of the key, fitted (or reused) and its parity plot."""
    from atb.predictor import load_or_fit
    from atb.predictor.plots import plot_predictor_parity

    predictor = load_or_fit(ws, device_key)
    parity = plot_predictor_parity(predictor, ws.plots_dir / "predictor-parity.png")
    return {"chosen": predictor.chosen, "heldout": parity["metrics"], "plot": parity["files"][0],
            "path": str(predictor.path)}


def _supernet(ws, config: DemoConfig) -> dict:
    """Stage 3: SuperPLM from the bundled MiniLM, distilled (a checkpoint there is resumed)."""
    from atb.arch import get_space
    from atb.supernet import prepare_data, train_supernet
    from atb.supernet.checkpoint import STATE, checkpoint_dir
    from atb.supernet.config import TrainConfig, TrainTarget

    if not (ws.data_dir / "manifest.json").is_file():
        prepare_data(ws)
    checkpoint = checkpoint_dir(ws.supernet_dir, get_space("pretrain", DEMO_SUPER), DEMO_SUPER)
    training = TrainConfig(steps=config.train_steps, seed=config.seed, init=DEMO_SUPER)
    trained = train_supernet(ws, training, TrainTarget(space="pretrain"),
                             resume=(checkpoint / STATE).is_file())
    return {k: trained.get(k) for k in ("checkpoint", "step", "loss", "seconds", "init")}


def _search(ws, config: DemoConfig, device_key: str):
    """Stage 4: the search at the target under the profiled key, the best extracted."""
    from atb.compose import search_ports
    from atb.search import SearchConfig, run_search

    task = {"task": DEMO_TASK, "rerank": DEMO_RERANK} if config.downstream else {}
    searching = SearchConfig(targets=config.target_speedup, seed=config.seed,
                             device_key=device_key, extract=True, **task)
    return run_search(searching, ws, search_ports(searching, ws))


def compare_with_rule(result) -> dict | None:
    """Searched best vs the BERT-rule baseline of the same window, both measured in the same
    verification (the rule arch re-picked until it measures in the band): speedups, fitness
    and, after a re-ranking, their task scores on the same validation examples with the paired
    95% interval of the difference."""
    best, rule = result.best, result.primary.baseline
    if best is None or rule is None:
        return None
    out = {"searched": best.to_dict(), "bert_rule": rule.to_dict()}
    reranking = result.primary.reranking
    if reranking is not None and reranking.baseline is not None:
        ranked = reranking.to_dict()
        out["task"] = reranking.task
        out["searched"].update({k: ranked["winner"][k] for k in ("validation_accuracy",
                                                                  "validation_ci")})
        out["bert_rule"].update({k: ranked["baseline"][k] for k in ("validation_accuracy",
                                                                     "validation_ci")})
        out["difference"] = ranked["winner_minus_baseline"]
    return out


def _layer_cut(ws, result) -> dict | None:
    """The layer cut the search measured beside its winner, written from the teacher (its
    first k layers, untrained) to ``<run>/layer-cut``; after a re-ranking, scored on the
    task's validation split by the re-ranking's probe, with searched - cut on the same
    examples (paired 95% interval)."""
    from pathlib import Path

    from atb.stats import accuracy_interval, paired_difference
    from atb.supernet.layer_cut import save_layer_cut

    cut, reranking = result.primary.layer_cut, result.primary.reranking
    if cut is None:
        return None
    saved = save_layer_cut(cut.layers, result.run_dir / "layer-cut", teacher=DEMO_SUPER)
    out = {**cut.to_dict(), "model_dir": saved["out_dir"], "teacher": DEMO_SUPER}
    if reranking is None or reranking.winner is None:
        return out
    from atb.compose import SubmodelProbe

    score = SubmodelProbe(ws, DEMO_TASK).score_model(Path(saved["out_dir"]))
    correct = np.asarray(score["correct"], dtype=bool)
    diff = paired_difference(reranking.winner.correct[None], correct[None])
    out.update(validation_accuracy=float(score["validation_accuracy"]),
               validation_ci=list(accuracy_interval(correct[None])),
               difference={**diff.as_dict(), "split": "validation", "seeds": 1})
    return out


def _further_training_hint(ws, result) -> dict | None:
    """The next step a user takes, not run here (it outlasts the demo): the command that trains
    the winner and the rule arch further (the paper's §3.6) and what it would take, timed on
    three real steps of each."""
    from atb.supernet.further import DEFAULT_STEPS, estimate_seconds

    if result.best is None:
        return None
    archs = [result.best.arch] + ([result.primary.baseline.arch] if result.primary.baseline else [])
    seconds = sum(estimate_seconds(ws, arch) for arch in dict.fromkeys(archs))
    return {"command": f"atb-search --workspace {ws.root} --resume {result.run_dir} --train-further",
            "steps": DEFAULT_STEPS, "archs": [str(a) for a in dict.fromkeys(archs)],
            "estimated_minutes": round(seconds / 60, 1)}


def _fmt(x, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def _print(result: dict) -> None:
    prof, pred, search = result["profile"], result["predictor"], result["search"]
    best = search.get("best") or {}
    print(f"workspace        {result['workspace']}")
    print(f"profiled         {prof['new']} new archs ({prof['total']} in the store), device key "
          f"{prof['device_key']}, BERT-base {_fmt(prof['bert_base_ms'], '.1f')} ms")
    if prof.get("auto"):
        print(f"profiling stop   {prof['auto']['reason']}")
    if rep := prof.get("repeatability"):
        print(f"label noise      re-timed archs differ by {100 * rep['median']:.1f}% (median of {rep['n']}, "
              f"{rep['scope']})")
    if prof.get("warning"):
        print(f"                 {prof['warning']}")
    print(f"predictor        {pred['chosen']}: held-out MAPE {100 * pred['heldout']['mape']:.2f}%, "
          f"within ±10% {100 * pred['heldout']['within_10']:.1f}%, Kendall τ {pred['heldout']['kendall_tau']:.3f}")
    sup = result["supernet"]
    print(f"supernet         from {sup['init']}, {sup['step']} steps of self-distillation, "
          f"loss {_fmt(sup['loss'], '.4f')}")
    print(f"search           target {search['target_speedup']}x: best {best.get('arch', 'none')}, "
          f"fitness {_fmt(best.get('fitness'), '.6g')}, predicted {_fmt(best.get('predicted_speedup'))}x, "
          f"measured {_fmt(best.get('measured_speedup'))}x ({search['evaluated']} archs evaluated)")
    print(f"search run       {search['run_dir']}")
    if search.get("extracted"):
        print(f"best model       {search['extracted']} (transformers.AutoModel; carries "
              f"its code when dqkv differs from dm: trust_remote_code=True, or import atb)")
    if result.get("comparison"):
        _print_comparison(result["comparison"])
    if hint := result.get("further_training"):
        print(f"next             train {' and '.join(hint['archs'])} further "
              f"({hint['steps']:,} steps each, about {hint['estimated_minutes']:.0f} min here): "
              f"{hint['command']}")
    for path in result["plots"]:
        print(f"plot             {path}")
    print(f"took             {result['wall_s'] / 60:.1f} min")


def _print_comparison(cmp: dict) -> None:
    """The searched arch, the BERT-rule arch and the layer cut, and searched - each."""
    rows = (("searched", "searched"), ("bert_rule", "BERT rule"), ("layer_cut", "layer cut"))
    band = {None: "not measured", True: "inside the band", False: "outside the band"}
    for name, label in rows:
        c = cmp.get(name)
        if not c:
            continue
        task = (f", {cmp.get('task', DEMO_TASK)} validation accuracy "
                f"{c['validation_accuracy']:.1%} [{c['validation_ci'][0]:.1%}, "
                f"{c['validation_ci'][1]:.1%}]" if "validation_accuracy" in c else "")
        what = (f"fitness {c['fitness']:.4g}" if name != "layer_cut" else
                f"{band[c['in_band']]}; {c['teacher']}'s first {c['layers']} layers, untrained, "
                f"in {c['model_dir']}")
        print(f"{label:<16} {c['arch']}: measured {_fmt(c['measured_speedup'])}x, {what}{task}")
    cut = cmp.get("layer_cut") or {}
    for d, short, name in ((cmp.get("difference"), "rule", "rule"),
                           (cut.get("difference"), "cut", "layer cut")):
        if d:
            print(f"{'searched - ' + short:<16} {d['difference']:+.1%} [{d['ci_low']:+.1%}, "
                  f"{d['ci_high']:+.1%}] on the same {d['n_examples']} validation examples "
                  f"(paired bootstrap over examples, 95%): "
                  f"{named_verdict(d['verdict'], 'searched', name)}")


def main(argv: list[str] | None = None) -> int:
    p = cli.make_parser("atb-demo", __doc__)
    p.add_argument("--workspace", default="atb-demo-workspace", metavar="DIR")
    p.add_argument("--samples", type=cli.count_or_auto, default="auto", metavar="N|auto",
                   help="archs to profile (default: auto, until the latency predictor stops improving)")
    p.add_argument("--max-samples", type=cli.positive_int, default=DEMO_MAX_SAMPLES, metavar="N",
                   help=f"the most archs --samples auto profiles (default: {DEMO_MAX_SAMPLES})")
    p.add_argument("--train-steps", type=int, default=200,
                   help="supernet distillation steps (default: 200)")
    p.add_argument("--target-speedup", type=float, default=15.0)
    p.add_argument("--no-downstream", dest="downstream", action="store_false",
                   help=f"skip the re-ranking on {DEMO_TASK} (a one-stage search)")
    p.add_argument("--seed", type=cli.seed_int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    cli.configure(args)
    # check what would otherwise fail only after minutes of profiling and training
    if args.samples != "auto" and args.samples < 30:
        p.error(f"--samples {args.samples} is too few to fit a predictor (at least 30)")
    if args.max_samples < 30:
        p.error(f"--max-samples {args.max_samples} is too few to fit a predictor (at least 30)")
    if args.train_steps < 0:
        p.error("--train-steps must be at least 0")
    if not args.target_speedup > 1:
        p.error(f"--target-speedup {args.target_speedup} must be greater than 1")

    def body() -> int:
        config = DemoConfig(args.samples, args.max_samples, args.train_steps, args.target_speedup,
                            args.seed, args.downstream)
        result = run_demo(args.workspace, config)
        cli.print_json(result) if args.json else _print(result)
        return 0

    return cli.run("atb-demo", body)


if __name__ == "__main__":
    raise SystemExit(main())
