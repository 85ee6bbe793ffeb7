"""The paper's claim at small scale: searched archs beat the BERT rule at equal measured speedup.

Table 1 (small): for each speedup target, the BERT-rule arch of the supernet's space whose
predicted speedup is nearest the target is measured; the search then runs at that measured
speedup, and the rule arch and the searched top-k are timed again in **one** profiler call; the
best-fitness searched arch measured within 3% of the rule arch is paired with it. Both are
extracted from the same ``--init`` supernet, distilled further stand-alone for the same budget
(``--distill-steps``), and evaluated on the built-in task with ``probe`` and ``finetune`` over
``--seeds`` seeds.

Table 3 (small): pairwise ranking accuracy between supernet fitness and the fine-tuned task
accuracy of ``--ranking-archs`` archs extracted from the supernet (no further distillation).

    python bench/claim.py --workspace WS             # WS: data, an --init supernet, labels
    python bench/claim.py --workspace WS --sections pairs   # only the timed half, on an idle machine
    python bench/claim.py --workspace WS --quick     # smoke run, figures meaningless

WS needs ``atb-supernet data``, ``atb-supernet train --init minilm`` and ``atb-profile --super
minilm --samples N`` (``atb-demo``'s workspace has all three). The equal-speedup pairs are
timed (run that part on an idle machine) and kept in ``WS/bench-claim/pairs.json``, so the
training and evaluation part may run later, or again, without re-timing.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402

from atb.arch import Arch, array_to_archs  # noqa: E402
from atb.errors import AtbError  # noqa: E402
from atb.eval import FinetuneConfig, evaluate, load_task  # noqa: E402
from atb.predictor import load_or_fit  # noqa: E402
from atb.compose import run_search, search_measure  # noqa: E402
from atb.search.baselines import bert_rule_archs  # noqa: E402
from atb.supernet import FitnessEvaluator  # noqa: E402
from atb.supernet import checkpoint as ckpt  # noqa: E402
from atb.supernet.evaluate import pairwise_accuracy  # noqa: E402
from atb.supernet.alone import distill_alone  # noqa: E402
from atb.supernet.extract import extract  # noqa: E402
from atb.workspace import Workspace  # noqa: E402

log = logging.getLogger("bench.claim")
TASK = "kjv-genre"
EQUAL_SPEEDUP = 0.03  # the pair's measured speedups must agree within 3%


def equal_speedup_pair(ws: Workspace, target: float, predictor, evaluator, args) -> dict:
    """The BERT-rule arch nearest ``target`` and the best searched arch at its measured speedup.

    The predictor's error (a few %) can leave every searched top-k arch more than 3% away from
    the rule arch once both are measured; the search is then repeated with the next seeds
    (``--attempts`` in all) and the closest pair kept."""
    space = evaluator.space
    rule_archs = bert_rule_archs(space)
    predicted = predictor.predict_speedup(rule_archs)
    rule = array_to_archs(rule_archs[[np.argmin(np.abs(np.log(predicted / target)))]])[0]
    measure = search_measure(ws, predictor.device_key)  # archs timed together: same drift
    rule_speedup = measure([rule])[0]
    best = None
    for attempt in range(args.attempts):
        seed = args.seed + attempt
        result = run_search(rule_speedup, workspace=ws, seed=seed, device_key=predictor.device_key,
                            top_k=args.top_k, low_margin=-0.01, high_margin=0.03,
                            fitness=evaluator, run_name=f"claim-{target:g}x-seed{seed}")
        searched = [c.arch for c in result.top_k if c.arch != rule]
        speedups = measure([rule] + searched)
        gaps = [abs(s / speedups[0] - 1) for s in speedups[1:]]
        inside = [i for i, g in enumerate(gaps) if g <= EQUAL_SPEEDUP]  # top-k is best-first
        pick = inside[0] if inside else int(np.argmin(gaps))
        pair = {"target": target, "rule": rule, "searched": searched[pick],
                "rule_speedup": speedups[0], "searched_speedup": speedups[1 + pick],
                "within_3pct": bool(inside), "search_seed": seed, "run_dir": str(result.run_dir)}
        if best is None or abs(pair["searched_speedup"] / pair["rule_speedup"] - 1) < \
                abs(best["searched_speedup"] / best["rule_speedup"] - 1):
            best = pair
        if inside:
            break
    return best


def cached_pair(ws: Workspace, target: float, predictor, evaluator, args, root: Path) -> dict:
    """``equal_speedup_pair``, kept in ``root/pairs.json``: the timed half of Table 1 runs once,
    on an idle machine, and the training and evaluation half can run (or re-run) later."""
    path = root / "pairs.json"
    pairs = json.loads(path.read_text()) if path.is_file() else {}
    key = f"{predictor.device_key} {target:g} seed {args.seed} top {args.top_k}"
    if key not in pairs:
        pair = equal_speedup_pair(ws, target, predictor, evaluator, args)
        pairs[key] = {k: str(v) if isinstance(v, Arch) else v for k, v in pair.items()}
        root.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(pairs, indent=2))
    pair = dict(pairs[key])
    pair["rule"], pair["searched"] = Arch.parse(pair["rule"]), Arch.parse(pair["searched"])
    return pair


def distilled_model(ws: Workspace, supernet: Path, arch: Arch, args, root: Path) -> Path:
    """``arch`` cut out of the supernet, distilled alone for ``--distill-steps``, as a 🤗 dir."""
    return distill_alone(ws, supernet, arch, args.distill_steps, root)


def cached(root: Path, key: str, compute) -> dict:
    """``compute()``, kept in ``root/scores.json`` under ``key``: an interrupted benchmark
    resumes without evaluating a model twice."""
    path = root / "scores.json"
    def stored() -> dict:
        return json.loads(path.read_text()) if path.is_file() else {}

    scores = stored()
    if key not in scores:
        value = compute()
        scores = stored()  # read again: another section may have written meanwhile
        scores[key] = value
        path.write_text(json.dumps(scores, indent=2))
    return scores[key]


def scores(model_dir: Path, method: str, seeds: int, args) -> dict:
    """``atb-eval``'s result for ``model_dir``, cached next to it: the probe's key names the
    task and seeds, fine-tuning's also its lr and pooling, so changing them re-runs only it."""
    key = f"{model_dir.name} {method} seeds {seeds} {args.task_key}"
    if method == "finetune":
        key += f" {args.finetune_key}"
    return cached(model_dir.parent, key, lambda: evaluate(
        model_dir, args.task, method=method, seeds=seeds, finetune_config=args.finetune))


def task_scores(model_dir: Path, args) -> dict:
    probe, tuned = (scores(model_dir, method, args.seeds, args) for method in ("probe", "finetune"))
    log.info("%s: probe %.1f%%, finetune %.1f%%", model_dir.name, 100 * probe["accuracy"],
             100 * tuned["accuracy"])
    return {"probe": probe["accuracy"], "probe_std": probe["accuracy_std"],
            "finetune": tuned["accuracy"], "finetune_std": tuned["accuracy_std"],
            "finetune_seeds": [s["accuracy"] for s in tuned["seeds"]]}


def ranking(ws: Workspace, supernet: Path, evaluator, args, root: Path) -> dict:
    """Supernet fitness against the fine-tuned (and the probed) accuracy of the same archs,
    extracted."""
    rng = np.random.default_rng(args.seed)
    archs = sorted(set(evaluator.space.sample(rng, args.ranking_archs * 4)),
                   key=lambda a: a.params())
    archs = [archs[i] for i in np.linspace(0, len(archs) - 1, args.ranking_archs).round().astype(int)]
    fitness = evaluator.fitness(archs)
    accuracy = {"finetune": [], "probe": []}
    for arch in archs:
        out = root / f"ranking-{arch}"
        extract(ws, arch, out, checkpoint=supernet)
        for method, seeds in (("finetune", 1), ("probe", args.seeds)):
            accuracy[method].append(scores(out, method, seeds, args)["accuracy"])
        log.info("%s: fitness %.4f, finetune %.1f%%, probe %.1f%%", arch,
                 fitness[len(accuracy["probe"]) - 1], 100 * accuracy["finetune"][-1],
                 100 * accuracy["probe"][-1])
    return {"archs": [str(a) for a in archs], "fitness": fitness.tolist(), **accuracy,
            "pairwise_accuracy": pairwise_accuracy(fitness, accuracy["finetune"]),
            "pairwise_accuracy_probe": pairwise_accuracy(fitness, accuracy["probe"])}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspace", required=True, metavar="DIR")
    parser.add_argument("--targets", type=float, nargs="+", default=[8.0, 15.0, 25.0])
    parser.add_argument("--distill-steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--ranking-archs", type=int, default=8)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--attempts", type=int, default=3,
                        help="searches (seeds --seed, --seed+1, ...) until a pair lies within 3%%")
    parser.add_argument("--sections", default="table1,table3",
                        help="comma-separated: pairs (only time the equal-speedup pairs, "
                             "kept for table1), table1, table3")
    parser.add_argument("--per-class", type=int, default=None, metavar="N",
                        help=f"cap every class of every {TASK} split at N examples (cheaper)")
    parser.add_argument("--finetune-lr", type=float, default=None,
                        help="fine-tuning lr of every model (default: atb-eval's)")
    parser.add_argument("--pooling", choices=("mean", "cls"), default=None,
                        help="what the fine-tuned head reads (default: atb-eval's, mean)")
    parser.add_argument("--quick", action="store_true", help="one target, tiny budgets")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if args.quick:
        args.targets, args.distill_steps, args.seeds, args.ranking_archs = args.targets[:1], 2, 1, 3
        args.per_class = args.per_class or 10
    args.task = load_task(TASK)
    if args.per_class:
        args.task = args.task.subsample(args.per_class)
    args.finetune = FinetuneConfig(**({"lr": args.finetune_lr} if args.finetune_lr else {}),
                                   pooling=args.pooling)
    args.task_key = f"per-class {args.per_class}"
    args.finetune_key = f"lr {args.finetune.lr} pooling {args.pooling or 'mean'}"
    sections = set(args.sections.split(","))
    try:
        ws = Workspace.resolve(args.workspace, create=False)
        supernet = ckpt.find_checkpoint(ws.supernet_dir)
        if ckpt.read_state(supernet).get("objective") != "self-kd":
            raise AtbError(f"{supernet} is not an --init supernet",
                           hint="run atb-supernet train --init minilm")
        evaluator = FitnessEvaluator.from_checkpoint(supernet, ws)
        predictor = load_or_fit(ws)
    except AtbError as exc:
        print(f"bench/claim.py: {exc.one_line()}", file=sys.stderr)
        return 2
    root = ws.root / "bench-claim"
    t0 = time.perf_counter()
    report = {"supernet": str(supernet), "device_key": predictor.device_key,
              "task": f"{TASK} ({args.task.sizes()})", "pooling": args.pooling or "mean",
              "distill_steps": args.distill_steps, "seeds": args.seeds, "rows": []}
    if "pairs" in sections:
        for target in args.targets:
            pair = cached_pair(ws, target, predictor, evaluator, args, root)
            print(f"{target:g}x: rule {pair['rule']} {pair['rule_speedup']:.2f}x, searched "
                  f"{pair['searched']} {pair['searched_speedup']:.2f}x", file=sys.stderr)
    if "table1" in sections:
        for target in args.targets:
            pair = cached_pair(ws, target, predictor, evaluator, args, root)
            for role in ("searched", "rule"):
                arch = pair[role]
                model = distilled_model(ws, supernet, arch, args, root)
                report["rows"].append({"target": target, "role": role, "arch": str(arch),
                                       "measured_speedup": pair[f"{role}_speedup"],
                                       "params": arch.params(), "within_3pct": pair["within_3pct"],
                                       **task_scores(model, args)})
    if "table3" in sections:
        report["ranking"] = ranking(ws, supernet, evaluator, args, root)
    report["seconds"] = time.perf_counter() - t0
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        _print(report)
    return 0


def _print(report: dict) -> None:
    print(f"supernet {report['supernet']}, {report['device_key']}, task {report['task']}, "
          f"{report['distill_steps']} further distillation steps, {report['seeds']} seeds, "
          f"fine-tuned on {report['pooling']} pooling")
    rows = report["rows"]
    if rows:
        print(f"{'target':>6} {'role':>8} {'arch':>18} {'measured':>9} {'params':>7} "
              f"{'probe':>13} {'finetune':>13} {'diff':>7}  beyond spread")
    for searched, rule in zip(rows[::2], rows[1::2]):
        for r in (searched, rule):
            diff = searched["finetune"] - rule["finetune"]
            spread = max(searched["finetune_std"], rule["finetune_std"])
            tail = (f"{diff:+7.1%}  {'yes' if abs(diff) > spread else 'no'} (spread {spread:.1%})"
                    if r is searched else "")
            print(f"{r['target']:6g} {r['role']:>8} {r['arch']:>18} {r['measured_speedup']:8.2f}x "
                  f"{r['params'] / 1e6:6.1f}M {r['probe']:6.1%}±{r['probe_std']:5.1%} "
                  f"{r['finetune']:6.1%}±{r['finetune_std']:5.1%} {tail}")
        if not searched["within_3pct"]:
            print(f"       (no searched arch measured within 3% of the rule arch at {searched['target']:g}x)")
    if "ranking" in report:
        rk = report["ranking"]
        print(f"ranking: supernet fitness vs task accuracy of {len(rk['archs'])} extracted archs: "
              f"pairwise accuracy {rk['pairwise_accuracy']:.1%} against fine-tuned (target >= 85%), "
              f"{rk['pairwise_accuracy_probe']:.1%} against probed")
        for a, f, tuned, probed in zip(rk["archs"], rk["fitness"], rk["finetune"], rk["probe"]):
            print(f"  {a:>18}  fitness {f:9.4f}  finetune {tuned:6.1%}  probe {probed:6.1%}")
    print(f"total {report['seconds']:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
