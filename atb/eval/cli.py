"""atb-eval: downstream accuracy of an encoder on a text-classification task.

examples:
  atb-eval --model tiny-bert --task kjv-genre                 # linear probe, 3 seeds
  atb-eval --model tiny-bert --task kjv-genre --method finetune --json
  atb-eval --model tiny-bert --task SST-2/train.tsv --test SST-2/dev.tsv
  atb-eval --model tiny-bert --task pairs.jsonl --text-column a --text-pair-column b
  atb-eval --model tiny-bert/model.int8-dynamic.onnx --task kjv-genre   # an ONNX graph (probe)
  atb-eval --list-tasks

A task is a built-in name (--list-tasks) or a CSV, TSV or JSONL file with a text column and a
label column; without --validation/--test files it is split 70/10/20 (stratified, --split-seed).
Every seed re-runs the method on the same split; scores are on the test split.
"""

from __future__ import annotations

import argparse
import sys

from atb import cli
from atb.errors import UsageError
from atb.eval.api import METHODS, SEEDS, evaluate, list_tasks, load_task
from atb.eval.encode import BATCH_SIZE, MAX_LENGTH
from atb.eval.finetune import FinetuneConfig
from atb.eval.models import POOLINGS

PROG = "atb-eval"
TUNED = FinetuneConfig()  # the defaults, for the help text
FINETUNE_ONLY = ("epochs", "lr", "pooling", "save")


def build_parser() -> argparse.ArgumentParser:
    parser = cli.make_parser(PROG, __doc__)
    add = parser.add_argument
    add("--model", metavar="DIR", help="🤗 model directory (e.g. from atb-supernet extract), or "
        "an encoder's .onnx file (fp32 or INT8, probed with ONNX Runtime)")
    add("--task", metavar="TASK", help="built-in task name or a .csv/.tsv/.jsonl file")
    add("--method", choices=METHODS, default="probe",
        help="probe: frozen embeddings + logistic regression (default); "
             "finetune: train a classification head end to end")
    add("--seeds", type=int, default=SEEDS, metavar="N",
        help=f"runs with seeds 0..N-1 on the same split (default {SEEDS})")
    add("--list-tasks", action="store_true", help="list the built-in tasks and exit")
    add("--max-length", type=int, default=MAX_LENGTH, metavar="T",
        help=f"tokens per example, longer ones are cut (default {MAX_LENGTH})")
    add("--batch-size", type=int, metavar="B", help=f"probe: inference batch (default "
        f"{BATCH_SIZE}); finetune: training batch (default {TUNED.batch_size})")
    add("--threads", type=int, metavar="N", help="torch threads (default: torch's, one per core)")
    cli.add_common(parser, workspace=False)

    files = parser.add_argument_group("task files").add_argument
    files("--text-column", metavar="NAME", help="text column (default: text, or a GLUE layout)")
    files("--text-pair-column", metavar="NAME", help="second text of a pair (optional)")
    files("--label-column", metavar="NAME", help="label column (default: label)")
    files("--validation", metavar="FILE", help="validation file (default: 10%% of --task)")
    files("--test", metavar="FILE", help="test file (default: 20%% of --task)")
    files("--split-seed", type=cli.seed_int, default=0, metavar="S",
          help="seed of the stratified split of --task (default 0)")

    tune = parser.add_argument_group("fine-tuning").add_argument
    tune("--epochs", type=int, metavar="E",
         help=f"at most E epochs, early-stopped (default {TUNED.epochs})")
    tune("--lr", type=float, help=f"peak AdamW learning rate (default {TUNED.lr:g})")
    tune("--pooling", choices=POOLINGS,
         help="what the head reads: mean of the last hidden states (default for bert and "
              "atb-bert) or the family's own [CLS] pooler (default for other encoders)")
    tune("--save", metavar="DIR", help="write the best seed's classifier as a 🤗 directory")
    return parser


def _check(args: argparse.Namespace) -> None:
    if args.list_tasks:
        if args.model or args.task:
            raise UsageError("--list-tasks takes no --model or --task")
        return
    if not args.model or not args.task:
        raise UsageError("give --model DIR and --task TASK (or --list-tasks)")
    if args.seeds < 1:
        raise UsageError(f"--seeds must be at least 1, not {args.seeds}")
    if args.method != "finetune":
        given = [f"--{name}" for name in FINETUNE_ONLY if getattr(args, name) is not None]
        if given:
            raise UsageError(f"{', '.join(given)} only apply to --method finetune")


def _finetune_config(args: argparse.Namespace) -> FinetuneConfig:
    overrides = {name: getattr(args, name) for name in ("epochs", "lr", "pooling")}
    return FinetuneConfig(**{k: v for k, v in overrides.items() if v is not None})


def _print_tasks(rows: list[dict]) -> None:
    table = [{**r, "classes": r["num_classes"]} for r in rows]
    cli.print_table(table, [("name", "task"), ("classes", "classes"), ("n_train", "train"),
                            ("n_validation", "validation"), ("n_test", "test")])
    for r in rows:
        print(f"\n{r['name']}: {r['description']}\n  classes: {', '.join(r['classes'])}")


def _print_result(r: dict) -> None:
    head = f" on {r['pooling']} pooling" if r.get("pooling") else ""
    kind = r["model_type"]
    if r.get("model_format") == "onnx":
        kind = f"ONNX, INT8 {r['quantization']}" if r.get("quantization") else "ONNX, float"
    print(f"{r['task']} · {r['method']}{head} · {r['model']} ({kind})")
    print(f"{r['num_classes']} classes; {r['n_train']} train, {r['n_validation']} validation, "
          f"{r['n_test']} test examples\n")
    extra = ("C", "C") if r["method"] == "probe" else ("best_epoch", "best epoch")
    rows = [{"seed": s["seed"], "accuracy": f"{s['accuracy']:.4f}",
             "macro_f1": f"{s['macro_f1']:.4f}", "validation": f"{s['validation_accuracy']:.4f}",
             extra[0]: f"{s[extra[0]]:g}"} for s in r["seeds"]]
    if len(rows) > 1:
        rows.append({"seed": "mean", "accuracy": f"{r['accuracy']:.4f} ± {r['accuracy_std']:.4f}",
                     "macro_f1": f"{r['macro_f1']:.4f} ± {r['macro_f1_std']:.4f}"})
    cli.print_table(rows, [("seed", "seed"), ("accuracy", "test accuracy"),
                           ("macro_f1", "macro-F1"), ("validation", "validation acc."), extra])
    majority = r["label_names"][r["majority_class"]]
    print(f"\nmajority baseline ({majority}): accuracy {r['majority_accuracy']:.4f}, "
          f"macro-F1 {r['majority_macro_f1']:.4f}")
    encoding = f" (encoding {r['encode_seconds']:.1f} s)" if "encode_seconds" in r else ""
    print(f"wall time {r['seconds']:.1f} s{encoding}")
    if r.get("saved"):
        print(f"classifier saved to {r['saved']}")


def main(argv: list[str] | None = None) -> int:
    """Console entry point of ``atb-eval``."""
    args = build_parser().parse_args(argv)
    cli.configure(args)

    def body() -> int:
        _check(args)
        if args.list_tasks:
            rows = list_tasks()
            if args.json:
                cli.print_json({"tasks": rows})
            else:
                _print_tasks(rows)
            return 0
        task = load_task(args.task, validation=args.validation, test=args.test,
                         text_column=args.text_column, text_pair_column=args.text_pair_column,
                         label_column=args.label_column, split_seed=args.split_seed)
        tune = _finetune_config(args) if args.method == "finetune" else None
        result = evaluate(args.model, task, method=args.method, seeds=args.seeds,
                          max_length=args.max_length, batch_size=args.batch_size,
                          finetune_config=tune, save_dir=args.save, threads=args.threads)
        if args.json:
            cli.print_json(result)
        else:
            _print_result(result)
        return 0

    return cli.run(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
