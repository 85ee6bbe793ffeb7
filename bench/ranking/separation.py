"""Does the task separate reading from not reading? Each gap a paired 95% interval: the
fine-tuned MiniLM (``data/teacher-<task>-predictions.jsonl``) and the first window's rule arch
against the bag of words (deterministic: its predictions stand for every seed) and against
their shapes fine-tuned from random init (``data/separation-<task>-predictions.jsonl``)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from atb import jsonl, predictions
from atb.arch import Arch
from atb.errors import AtbError
from atb.stats import paired_over_seeds
from bench.common import DATA, commit
from bench.ranking.truth import lr_file, lr_key, read_predictions, rule_arch

log = logging.getLogger("bench.ranking")

TEACHER_ARCH = "6-384-1536-12-384"  # the full MiniLM


def separation_file(task_name: str) -> Path:
    return DATA / f"separation-{task_name}-predictions.jsonl"


def teacher_file(task_name: str) -> Path:
    """The fine-tuned teacher's test predictions (an ``atb-eval --predictions`` file)."""
    return DATA / f"teacher-{task_name}-predictions.jsonl"


def random_init_predictions(task_name: str) -> dict[str, dict[int, np.ndarray]]:
    """``{arch: {seed: test predictions}}`` of the random-init encoders fine-tuned so far."""
    return predictions.by_model_and_seed(predictions.read(separation_file(task_name))[0])


def separation_train(args) -> None:
    """A random-init encoder of every ``--only`` arch fine-tuned at the first window's lr, per
    seed ``0..--seeds-1`` not cached yet."""
    from atb.eval import EvalConfig, FinetuneConfig, load_task
    from atb.eval.baselines import random_encoder

    if not args.only:
        raise AtbError("--sections separation-train needs --only ARCH ...")
    task = load_task(args.task)
    window = args.windows[0]
    lr = json.loads(lr_file(task.name).read_text())[lr_key(window, args.distill_steps)]["lr"]
    for arch in args.only:
        done = random_init_predictions(task.name).get(arch, {})
        for seed in [s for s in range(args.seeds) if s not in done]:
            config = EvalConfig(method="finetune", seeds=(seed,), finetune=FinetuneConfig(lr=lr),
                                threads=1)
            result = random_encoder(task, Arch.parse(arch), config)
            jsonl.append(separation_file(task.name), predictions.line(
                arch, seed, "test", predicted=result["predictions"][0], extra={
                    "lr": lr, "init_seed": 0, "accuracy": result["accuracy"], "commit": commit()}),
                fsync=True)
            log.info("random-init %s seed %d: %.2f%%", arch, seed, 100 * result["accuracy"])


def separation(args) -> dict:
    """Per model (the fine-tuned teacher, the first window's rule arch): model - bag of words
    and model - its shape from random init, paired over test examples and shared seeds."""
    from atb.eval import load_task
    from atb.eval.baselines import bag_of_words
    from atb.eval.compare import read_predictions as read_atb_eval_predictions

    task = load_task(args.task)
    labels = task.test.labels
    teacher = read_atb_eval_predictions(teacher_file(task.name))
    (name,) = teacher["models"]
    window = args.windows[0]
    rule = rule_arch(window)
    if rule is None:
        raise AtbError(f"no ground truth for the {window:g}x window in data/")
    models = {"MiniLM fine-tuned": (TEACHER_ARCH, dict(zip(
                  teacher["models"][name]["seeds"], teacher["predictions"][name]))),
              f"{window:g}x rule arch": (rule, read_predictions(task.name, args.distill_steps)
                                         .get((window, rule), {}))}
    bow = np.asarray(bag_of_words(task)["predictions"]).reshape(-1)
    random = random_init_predictions(task.name)
    pairs = []
    for model, (arch, mine) in models.items():
        for baseline, theirs in (("bag of words, joined pair", {s: bow for s in mine}),
                                 (f"random-init {arch}", random.get(arch, {}))):
            paired = paired_over_seeds(mine, theirs, labels, ("model", "baseline"))
            if paired:
                pairs.append({"model": model, "baseline": baseline, **paired})
    return {"task": task.name, "pairs": pairs}


def print_separation(r: dict) -> None:
    print(f"task {r['task']}: model - baseline, paired 95% interval over test examples and seeds")
    for p in r["pairs"]:
        d = p["model_minus_baseline"]
        print(f"{p['model']:>18} {p['model_accuracy']:.2%} - {p['baseline']:<30} "
              f"{p['baseline_accuracy']:.2%} over {len(p['seeds'])} seed(s): "
              f"{d['difference']:+.2%} [{d['ci_low']:+.2%}, {d['ci_high']:+.2%}]")
