"""atb-eval: downstream accuracy of an encoder on a text-classification task.

examples:
  atb-eval --model tiny-bert --task kjv-next                 # linear probe, 3 seeds
  atb-eval --model tiny-bert --task kjv-next --method finetune --json   # lr picked on validation
  atb-eval --model tiny-bert --task kjv-next --method finetune --predictions preds.jsonl
  atb-eval compare --model a --model b --task kjv-next       # paired difference, 95% interval
  atb-eval baselines --task kjv-next --arch 4-256-1024-4-256 # majority, bag of words, random init
  atb-eval --model tiny-bert --task SST-2/train.tsv --test SST-2/dev.tsv
  atb-eval --model tiny-bert --task pairs.jsonl --text-column a --text-pair-column b
  atb-eval --model tiny-bert/model.int8-dynamic.onnx --task kjv-genre   # an ONNX graph (probe)
  atb-eval --list-tasks

A task is a built-in name (--list-tasks) or a CSV, TSV or JSONL file with a text column and a
label column; without --validation/--test files it is split 70/10/20 (stratified, --split-seed).
Every seed re-runs the method on the same split; scores are on the test split, with a 95%
interval (bootstrap over test examples and seeds). Fine-tuning picks its learning rate on the
validation split (one extra seed per rate of the grid) unless --lr is given; its runs train side
by side, one process per core (--jobs), and a seed learns the same model in any process.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from atb import cli
from atb.errors import UsageError
from atb.eval.api import METHODS, SEEDS, EvalConfig, evaluate, list_tasks, load_task
from atb.eval.files import TaskFiles
from atb.eval.encode import BATCH_SIZE, MAX_LENGTH
from atb.eval.finetune import FinetuneConfig
from atb.eval.models import POOLINGS

PROG = "atb-eval"
SUBCOMMANDS = ("compare", "baselines")
TUNED = FinetuneConfig()  # the defaults, for the help text
FINETUNE_ONLY = ("epochs", "lr", "pooling", "save", "jobs")
COMPARE_DOC = """atb-eval compare: is model A better than model B on a task?

Both models are evaluated on the same splits with the same seeds (fine-tuning by default, each
model's learning rate picked on validation unless --lr is given); the report gives each
accuracy with its 95% interval and the paired difference A - B with its 95% bootstrap interval
(over test examples, the same for both, and each model's seeds), and a verdict: "A better",
"B better" or "no difference at this size".

examples:
  atb-eval compare --model searched --model rule --task kjv-next
  atb-eval compare --model RUN/best-model --model RUN/layer-cut --task kjv-next   # atb-demo
  atb-eval compare --model a --model b --task kjv-next --method probe --json
  atb-eval compare --model a --model b --task kjv-next --workspace ws   # + latency labels
"""
BASELINES_DOC = """atb-eval baselines: what a task gives away without reading.

majority class; bag of words (TF-IDF of word uni- and bigrams + logistic regression; for a
pair task over the joined pair and over the two texts side by side); and with --arch an
encoder of that arch with random weights, evaluated like a model (--method, default finetune).

examples:
  atb-eval baselines --task kjv-next
  atb-eval baselines --task kjv-next --arch 6-384-1536-12-384 --json
"""


def _add_evaluation_options(parser, method_default: str) -> None:
    """Task, method, seeds and the fine-tuning group: what every evaluation takes."""
    add = parser.add_argument
    add("--task", metavar="TASK", help="built-in task name or a .csv/.tsv/.jsonl file")
    add("--method", choices=METHODS, default=method_default,
        help="probe: frozen embeddings + logistic regression; finetune: train a "
             f"classification head end to end (default {method_default})")
    add("--seeds", type=int, default=SEEDS, metavar="N",
        help=f"runs with seeds 0..N-1 on the same split (default {SEEDS})")
    add("--max-length", type=int, default=MAX_LENGTH, metavar="T",
        help=f"tokens per example, longer ones are cut (default {MAX_LENGTH})")
    add("--batch-size", type=int, metavar="B", help=f"probe: inference batch (default "
        f"{BATCH_SIZE}); finetune: training batch (default {TUNED.batch_size})")
    add("--threads", type=int, metavar="N",
        help="threads in all (default: one per core); fine-tuning shares them among --jobs")
    tune = parser.add_argument_group("fine-tuning").add_argument
    tune("--epochs", type=int, metavar="E",
         help=f"at most E epochs; the best validation epoch is kept (default {TUNED.epochs})")
    tune("--lr", type=float, help="peak AdamW learning rate (default: picked on the validation "
         f"split from {', '.join(f'{r:g}' for r in TUNED.lr_grid)} with one extra seed)")
    tune("--jobs", type=int, metavar="J",
         help="fine-tuning runs trained side by side, one process each (default: one per "
              "thread of --threads, at most the runs of a stage; 1: one after another)")
    tune("--pooling", choices=POOLINGS,
         help="what the head reads: mean of the last hidden states (default for bert and "
              "atb-bert) or the family's own [CLS] pooler (default for other encoders)")


def build_parser() -> argparse.ArgumentParser:
    parser = cli.make_parser(PROG, __doc__ + "\nsub-commands: compare (two models, paired), "
                             "baselines (majority, bag of words, random init); see "
                             "atb-eval compare --help")
    parser.add_argument("--model", metavar="DIR", help="🤗 model directory (e.g. from "
                        "atb-supernet extract), or an encoder's .onnx file (fp32 or INT8, "
                        "probed with ONNX Runtime)")
    parser.add_argument("--list-tasks", action="store_true",
                        help="list the built-in tasks and exit")
    _add_evaluation_options(parser, "probe")
    parser.add_argument("--predictions", metavar="FILE",
                        help="write every test example's predicted class per seed (JSON Lines)")
    cli.add_common(parser, workspace=False)
    _add_file_options(parser)
    parser.add_argument_group("fine-tuning").add_argument(
        "--save", metavar="DIR", help="write the best seed's classifier as a 🤗 directory")
    return parser


def build_compare_parser() -> argparse.ArgumentParser:
    parser = cli.make_parser(f"{PROG} compare", COMPARE_DOC)
    parser.add_argument("--model", metavar="DIR", action="append", default=[],
                        help="a model (give --model twice: A, then B)")
    _add_evaluation_options(parser, "finetune")
    parser.add_argument("--predictions", metavar="FILE",
                        help="write both models' test predictions per seed (JSON Lines)")
    parser.add_argument("--latency", action="store_true",
                        help="add each arch's latency labels from --workspace's store")
    cli.add_common(parser, workspace=True)
    _add_file_options(parser)
    return parser


def build_baselines_parser() -> argparse.ArgumentParser:
    parser = cli.make_parser(f"{PROG} baselines", BASELINES_DOC)
    parser.add_argument("--arch", metavar="ARCH",
                        help="also a random-init encoder of this arch (lt-dm-df-h-dqkv)")
    _add_evaluation_options(parser, "finetune")
    cli.add_common(parser, workspace=False)
    _add_file_options(parser)
    return parser


def _add_file_options(parser) -> None:
    files = parser.add_argument_group("task files").add_argument
    files("--text-column", metavar="NAME", help="text column (default: text, or a GLUE layout)")
    files("--text-pair-column", metavar="NAME", help="second text of a pair (optional)")
    files("--label-column", metavar="NAME", help="label column (default: label)")
    files("--validation", metavar="FILE", help="validation file (default: 10%% of --task)")
    files("--test", metavar="FILE", help="test file (default: 20%% of --task)")
    files("--split-seed", type=cli.seed_int, default=0, metavar="S",
          help="seed of the stratified split of --task (default 0)")


def _check(args: argparse.Namespace) -> None:
    if getattr(args, "list_tasks", False):
        if args.model or args.task:
            raise UsageError("--list-tasks takes no --model or --task")
        return
    if hasattr(args, "list_tasks") and (not args.model or not args.task):
        raise UsageError("give --model DIR and --task TASK (or --list-tasks)")
    if not args.task:
        raise UsageError("give --task TASK")
    if args.seeds < 1:
        raise UsageError(f"--seeds must be at least 1, not {args.seeds}")
    if args.method != "finetune":
        given = [f"--{name}" for name in FINETUNE_ONLY if getattr(args, name, None) is not None]
        if given:
            raise UsageError(f"{', '.join(given)} only apply to --method finetune")
    if args.lr is not None and not args.lr > 0:
        raise UsageError(f"--lr must be greater than 0, not {args.lr:g}")
    if getattr(args, "jobs", None) is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, not {args.jobs}")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be at least 1, not {args.threads}")
    if args.epochs is not None and args.epochs < 1:
        raise UsageError(f"--epochs must be at least 1, not {args.epochs}")
    if getattr(args, "predictions", None):  # fail now, not after the training
        from atb.eval.compare import check_writable

        check_writable(args.predictions)


def _finetune_config(args: argparse.Namespace) -> FinetuneConfig:
    overrides = {name: getattr(args, name) for name in ("epochs", "lr", "pooling")}
    return FinetuneConfig(**{k: v for k, v in overrides.items() if v is not None})


def _print_tasks(rows: list[dict]) -> None:
    table = [{**r, "classes": r.get("num_classes", "-")} for r in rows]
    cli.print_table(table, [("name", "task"), ("classes", "classes"), ("n_train", "train"),
                            ("n_validation", "validation"), ("n_test", "test")])
    for r in rows:
        print(f"\n{r['name']}: {r['description']}\n  tests: {r['tests']}\n  classes: "
              f"{', '.join(r['classes'])}")
        if r.get("unavailable"):
            print(f"  unavailable: {r['unavailable']}")
        if r["reference"]:
            print("  measured: " + ", ".join(f"{k} {v:.1%}" for k, v in r["reference"].items()))


def _print_result(r: dict) -> None:
    head = f" on {r['pooling']} pooling" if r.get("pooling") else ""
    kind = r["model_type"]
    if r.get("model_format") == "onnx":
        kind = f"ONNX, INT8 {r['quantization']}" if r.get("quantization") else "ONNX, float"
    print(f"{r['task']} · {r['method']}{head} · {r['model']} ({kind})")
    print(f"{r['num_classes']} classes; {r['n_train']} train, {r['n_validation']} validation, "
          f"{r['n_test']} test examples\n")
    extra = ("C", "C") if r["method"] == "probe" else ("best_epoch", "best epoch")
    if r.get("lr"):
        lr = r["lr"]
        grid = ", ".join(f"{g['lr']:g}: {g['validation_accuracy']:.4f}" for g in lr["grid"])
        print(f"learning rate {lr['lr']:g} ({lr['chosen_by']}{'; ' + grid if grid else ''})")
    rows = [{"seed": s["seed"], "accuracy": f"{s['accuracy']:.4f}",
             "macro_f1": f"{s['macro_f1']:.4f}", "validation": f"{s['validation_accuracy']:.4f}",
             extra[0]: f"{s[extra[0]]:g}"} for s in r["seeds"]]
    if len(rows) > 1:
        rows.append({"seed": "mean", "accuracy": f"{r['accuracy']:.4f} ± {r['accuracy_std']:.4f}",
                     "macro_f1": f"{r['macro_f1']:.4f} ± {r['macro_f1_std']:.4f}"})
    cli.print_table(rows, [("seed", "seed"), ("accuracy", "test accuracy"),
                           ("macro_f1", "macro-F1"), ("validation", "validation acc."), extra])
    low, high = r["accuracy_ci"]
    print(f"\ntest accuracy {r['accuracy']:.4f}, 95% CI [{low:.4f}, {high:.4f}] (bootstrap over "
          f"test examples and seeds)")
    majority = r["label_names"][r["majority_class"]]
    print(f"majority baseline ({majority}): accuracy {r['majority_accuracy']:.4f}, "
          f"macro-F1 {r['majority_macro_f1']:.4f}")
    encoding = f" (encoding {r['encode_seconds']:.1f} s)" if "encode_seconds" in r else ""
    print(f"wall time {r['seconds']:.1f} s{encoding}")
    if r.get("saved"):
        print(f"classifier saved to {r['saved']}")
    if r.get("predictions_file"):
        print(f"predictions written to {r['predictions_file']}")


def _load(args: argparse.Namespace):
    return load_task(args.task, TaskFiles(
        text_column=args.text_column, text_pair_column=args.text_pair_column,
        label_column=args.label_column, validation=args.validation, test=args.test,
        split_seed=args.split_seed))


def _eval_config(args: argparse.Namespace, save: str | None = None,
                 predictions: bool = False) -> EvalConfig:
    """The :class:`EvalConfig` of the evaluation options."""
    config = EvalConfig(method=args.method, seeds=args.seeds, max_length=args.max_length,
                        batch_size=args.batch_size, threads=args.threads, save_dir=save,
                        predictions=predictions)
    if args.method != "finetune":
        return config
    from atb.eval.runs import available_cores

    return replace(config, finetune=_finetune_config(args),
                   jobs=args.jobs or args.threads or available_cores())


def _fmt_ci(r: dict) -> str:
    low, high = r["accuracy_ci"]
    return f"{r['accuracy']:.4f} [{low:.4f}, {high:.4f}]"


def _evaluate(args: argparse.Namespace) -> int:
    from atb.eval.compare import write_predictions

    if args.list_tasks:
        rows = list_tasks()
        cli.print_json({"tasks": rows}) if args.json else _print_tasks(rows)
        return 0
    task = _load(args)
    result = evaluate(args.model, task, _eval_config(args, args.save, args.predictions is not None))
    if args.predictions:
        write_predictions(args.predictions, result)
        result = {k: v for k, v in result.items() if k not in ("predictions", "test_labels")}
        result["predictions_file"] = args.predictions
    cli.print_json(result) if args.json else _print_result(result)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from atb.eval.compare import compare, write_predictions

    if len(args.model) != 2:
        raise UsageError(f"compare takes exactly two models (--model A --model B), "
                         f"not {len(args.model)}")
    if args.latency and not args.workspace:
        raise UsageError("--latency reads the labels of a workspace: give --workspace DIR")
    task = _load(args)
    result = compare(args.model[0], args.model[1], task, _eval_config(args),
                     args.workspace if args.latency else None)
    if args.predictions:
        write_predictions(args.predictions, result)
        result["predictions_file"] = args.predictions
    result = {k: v for k, v in result.items() if k not in ("predictions", "test_labels")}
    cli.print_json(result) if args.json else _print_comparison(result)
    return 0


def _baselines(args: argparse.Namespace) -> int:
    from atb.arch import Arch
    from atb.eval.baselines import baselines

    arch = None
    if args.arch:
        try:
            arch = Arch.parse(args.arch)
        except ValueError as exc:
            raise UsageError(f"--arch {args.arch!r}: {exc}",
                             hint="an arch is lt-dm-df-h-dqkv, e.g. 4-256-1024-4-256") from exc
    result = baselines(_load(args), arch, _eval_config(args))
    cli.print_json(result) if args.json else _print_baselines(result)
    return 0


def _print_comparison(r: dict) -> None:
    print(f"{r['task']} · {r['method']} · paired over {r['difference']['n_examples']} test "
          "examples and the same seeds\n")
    rows = []
    for m in r["models"]:
        model = f"{m['model']} ({m['origin']})" if m.get("origin") else m["model"]
        row = {"name": m["name"], "model": model, "accuracy": _fmt_ci(m),
               "seeds": " ".join(f"{s['accuracy']:.4f}" for s in m["seeds"])}
        if "lr" in m:
            row["lr"] = f"{m['lr']['lr']:g}"
        lat = m.get("latency")
        if "latency" in m:
            row["speedup"] = f"{lat['speedup']:.2f}x" if lat else "not profiled"
            row["latency"] = f"{lat['latency_ms']:.2f} ms" if lat else ""
        rows.append(row)
    columns = [("name", ""), ("model", "model"), ("accuracy", "accuracy [95% CI]"),
               ("seeds", "per seed")]
    columns += [(k, k) for k in ("lr", "speedup", "latency") if k in rows[0]]
    cli.print_table(rows, columns)
    d = r["difference"]
    print(f"\nA - B: {d['difference']:+.4f}  95% CI [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]"
          f"  ->  {d['verdict']}")
    if r.get("predictions_file"):
        print(f"predictions written to {r['predictions_file']}")


def _print_baselines(r: dict) -> None:
    print(f"{r['task']}: {r['n_train']} train, {r['n_validation']} validation, "
          f"{r['n_test']} test examples, {r['num_classes']} classes\n")
    rows = [{"name": b["name"], "accuracy": _fmt_ci(b), "macro_f1": f"{b['macro_f1']:.4f}"}
            for b in r["baselines"]]
    cli.print_table(rows, [("name", "baseline"), ("accuracy", "test accuracy [95% CI]"),
                           ("macro_f1", "macro-F1")])


def main(argv: list[str] | None = None) -> int:
    """Console entry point of ``atb-eval`` (and its ``compare`` and ``baselines``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    builders = {None: build_parser, "compare": build_compare_parser,
                "baselines": build_baselines_parser}
    bodies = {None: _evaluate, "compare": _compare, "baselines": _baselines}
    args = builders[command]().parse_args(argv[1:] if command else argv)
    cli.configure(args)

    def body() -> int:
        _check(args)
        return bodies[command](args)

    return cli.run(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
