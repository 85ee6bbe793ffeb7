"""The ground truth's hours of CPU: every arch of a window distilled alone from the supernet
for the same budget, then fine-tuned with atb-eval's protocol at the window's learning rate
(picked once on its rule arch), each seed's score and test predictions appended as it is done;
and how much the distillation budget itself moves accuracy (``--sections budget``)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from atb import jsonl, predictions
from atb.arch import Arch
from bench.common import DATA, append_csv, commit, read_csv
from bench.ranking.truth import (PROTOCOL, SCORE_FIELDS, lr_file, lr_key, task_file_names,
                                 window_archs)

log = logging.getLogger("bench.ranking")


def evaluate_windows(ws, args) -> None:
    """Distil and fine-tune every arch of every window, caching each seed's result."""
    from atb.eval import FinetuneConfig, load_task
    from atb.supernet import checkpoint as ckpt
    from atb.supernet.alone import distill_alone

    supernet = ckpt.find_checkpoint(ws.supernet_dir)
    task = load_task(args.task)
    root = ws.root / "bench-ranking"
    config = FinetuneConfig(lr=args.lr)
    for window, archs in window_archs(args.windows, args.archs).items():
        if "train" in args.sections:
            for row in archs:
                if not args.only or row["arch"] in args.only:
                    distill_alone(ws, supernet, Arch.parse(row["arch"]), args.distill_steps, root)
        if "eval" not in args.sections:
            continue
        lr = window_lr(ws, supernet, window, archs[0], args, task, config)
        rows = [r for r in archs if not args.only or r["arch"] in args.only]
        fine_tune_rows(ws, supernet, window, rows, lr, args, task_file_names(task.name))


def fine_tune_rows(ws, supernet: Path, window: float, rows: list[dict], lr: dict, args,
                   files: tuple[Path, Path], root: Path | None = None) -> None:
    """Every row's arch (``arch``, ``role``) distilled alone for ``--distill-steps``, then
    fine-tuned at ``lr`` for seeds ``0..--seeds-1``; each seed's score and test predictions are
    appended to ``files`` (a CSV and a predictions file) as soon as it is done, and skipped
    when there."""
    import dataclasses

    from atb.eval import FinetuneConfig, load_task
    from atb.eval.finetune import finetune
    from atb.eval.models import load_tokenizer
    from atb.supernet import checkpoint as ckpt
    from atb.supernet.alone import distill_alone

    scores_csv, predictions_jsonl = files
    task, tokenizer = load_task(args.task), load_tokenizer()
    supernet_step = ckpt.read_state(supernet)["step"]
    done = {(r["arch"], int(r["seed"])) for r in read_csv(scores_csv)
            if float(r["window"]) == window and int(r["distill_steps"]) == args.distill_steps}
    for row in rows:
        model = distill_alone(ws, supernet, Arch.parse(row["arch"]), args.distill_steps,
                              root or ws.root / "bench-ranking")
        for seed in [s for s in range(args.seeds) if (row["arch"], s) not in done]:
            # one seed per call: each is written as soon as it is done
            _, (result,) = finetune(model, task, tokenizer, [seed],
                                    dataclasses.replace(FinetuneConfig(), lr=lr["lr"]))
            append_csv(scores_csv, SCORE_FIELDS, {
                "window": window, "arch": row["arch"], "role": row["role"], "seed": seed,
                "accuracy": f"{result['accuracy']:.5f}",
                "validation_accuracy": f"{result['validation_accuracy']:.5f}",
                "lr": lr["lr"], "lr_chosen_by": lr["chosen_by"],
                "best_epoch": result["best_epoch"], "epochs_run": result["epochs_run"],
                "distill_steps": args.distill_steps, "supernet": supernet.name,
                "supernet_step": supernet_step, "task": task.name,
                "task_version": task.source.get("version", ""), "protocol": PROTOCOL,
                "commit": commit(), "finished_at": int(time.time())})
            jsonl.append(predictions_jsonl, predictions.line(
                row["arch"], seed, "test", predicted=result["predictions"],
                extra={"window": window, "distill_steps": args.distill_steps}), fsync=True)
            log.info("%gx %s seed %d: %.2f%%", window, row["arch"], seed, 100 * result["accuracy"])


def window_lr(ws, supernet: Path, window: float, rule_row: dict, args, task, config) -> dict:
    """The window's learning rate, picked once on its rule arch and kept in a JSON file."""
    from atb.eval.encode import tokenize
    from atb.eval.finetune import pick_lr
    from atb.eval.models import load_tokenizer
    from atb.eval.tasks import SPLITS
    from atb.supernet.alone import distill_alone

    path = lr_file(task.name)
    picks = json.loads(path.read_text()) if path.is_file() else {}
    key = lr_key(window, args.distill_steps)
    if key not in picks:
        tokenizer = load_tokenizer()
        tokenized = {n: tokenize(task.split(n), tokenizer) for n in SPLITS}
        model = distill_alone(ws, supernet, Arch.parse(rule_row["arch"]), args.distill_steps,
                              ws.root / "bench-ranking")
        picks[key] = {**pick_lr(model, tokenized, task, config), "arch": rule_row["arch"]}
        jsonl.write_atomic(path, json.dumps(picks, indent=2), fsync=True)
    return picks[key]


def budget_file(task_name: str) -> Path:
    """The budget section's test predictions, per arch, distillation steps and seed."""
    return DATA / f"ranking-{task_name}-budget-predictions.jsonl"


def budget(ws, args) -> dict:
    """Fine-tuned accuracy of two archs of the first window after 100, 300 and 600 stand-alone
    distillation steps (the window's lr, ``--seeds`` seeds): how much the budget moves it."""
    import dataclasses

    import numpy as np

    from atb.eval import FinetuneConfig, load_task
    from atb.eval.finetune import finetune
    from atb.eval.models import load_tokenizer
    from atb.stats import correctness, paired_difference
    from atb.supernet import checkpoint as ckpt
    from atb.supernet.alone import distill_alone

    supernet = ckpt.find_checkpoint(ws.supernet_dir)
    task = load_task(args.task)
    tokenizer = load_tokenizer()
    window = args.windows[0]
    archs = window_archs(args.windows, args.archs)[window][:2]
    lr = window_lr(ws, supernet, window, archs[0], args, task, FinetuneConfig())
    path = budget_file(task.name)
    out = {"window": window, "lr": lr["lr"], "rows": []}
    for row in archs:
        base = None
        for steps in args.budgets:
            done = predictions.by_model_and_seed(predictions.read(path)[0], match={
                "distill_steps": steps, "lr": lr["lr"]}).get(row["arch"], {})
            if any(s not in done for s in range(args.seeds)):
                model = distill_alone(ws, supernet, Arch.parse(row["arch"]), steps,
                                      ws.root / "bench-ranking")
                _, results = finetune(model, task, tokenizer, list(range(args.seeds)),
                                      dataclasses.replace(FinetuneConfig(), lr=lr["lr"]))
                for seed, result in enumerate(results):
                    line = predictions.line(row["arch"], seed, "test",
                                            predicted=result["predictions"], extra={
                                                "window": window, "distill_steps": steps,
                                                "lr": lr["lr"]})
                    jsonl.append(path, line, fsync=True)
                    done[seed] = np.asarray(result["predictions"])
            correct = correctness(np.stack([done[s] for s in range(args.seeds)]),
                                  task.test.labels)
            moved = paired_difference(correct, base).as_dict() if base is not None else None
            base = correct if base is None else base
            out["rows"].append({"arch": row["arch"], "steps": steps,
                                "accuracy": float(correct.mean()), "vs_first": moved})
            print(f"{row['arch']:>18} {steps:4d} steps: {correct.mean():.2%}"
                  + (f"  vs {args.budgets[0]}: {moved['difference']:+.2%} "
                     f"[{moved['ci_low']:+.2%}, {moved['ci_high']:+.2%}]" if moved else ""))
    return out
