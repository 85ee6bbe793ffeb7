"""The report of ``python -m bench.further``, from the committed ``data/further-*`` files alone:
the objective and corpus comparison, the budget curve with the default-budget rule, the layer
cut, and the paired intervals the further-training targets name."""

from __future__ import annotations

import numpy as np

from atb import predictions
from atb.stats import paired_difference
from bench.common import read_csv, section
from bench.further import (BUDGET_ARCHS, CORRECT_JSONL, FINETUNE_CSV, FINETUNE_JSONL, LAYER_CUT,
                           OBJECTIVE_ARCHS, PRECISION_CSV, PROBES_CSV, RULE_15, VARIANTS,
                           model_name, precision_name)

BF16_MARGIN = 0.01  # bf16 autocast is kept where its paired low end is no lower than -1 point
WITHIN = 0.01  # the default budget: the smallest whose mean mr probe is within 1 point of the largest


def _accuracy(rows, arch, steps, variant, task) -> float | None:
    for r in rows:
        if (r["arch"], int(r["steps"]), r["objective"], r["corpus"], r["task"]) == (
                arch, steps, *variant, task):
            return float(r["validation_accuracy"])
    return None


def _cell(value) -> str:
    return "-" if value is None else f"{value:.2%}"


def objective_table(rows) -> None:
    section("objective and corpus: validation probes at 1,000 steps")
    print(f"{'arch':>20} " + " ".join(f"{'/'.join(v) + ' ' + t:>28}" for v in VARIANTS
                                       for t in ("mr", "kjv-next")))
    for arch in OBJECTIVE_ARCHS:
        print(f"{arch:>20} " + " ".join(f"{_cell(_accuracy(rows, arch, 1000, v, t)):>28}"
                                       for v in VARIANTS for t in ("mr", "kjv-next")))


def objective_intervals() -> None:
    """Each alternative minus the supernet objective on the workspace's text, paired over the
    validation examples of each probe."""
    for arch in OBJECTIVE_ARCHS:
        base = model_name(arch, 1000, *VARIANTS[0])
        for variant in VARIANTS[1:]:
            for task in ("mr", "kjv-next"):
                paired_probe(model_name(arch, 1000, *variant), base, task)


def budget_table(rows, variant) -> int | None:
    """The budget curve; returns the default budget by the rule (None while incomplete)."""
    section(f"budget curve ({'/'.join(variant)}): validation probes and held-out loss")
    budgets = sorted({int(r["steps"]) for r in rows if (r["objective"], r["corpus"]) == variant})
    means = {}
    for task in ("mr", "kjv-next"):
        print(f"{task:>20} " + " ".join(f"{b:>8,}" for b in budgets))
        for arch in BUDGET_ARCHS:
            print(f"{arch:>20} " + " ".join(f"{_cell(_accuracy(rows, arch, b, variant, task)):>8}"
                                           for b in budgets))
        if task == "mr":
            for b in budgets:
                values = [_accuracy(rows, a, b, variant, task) for a in BUDGET_ARCHS]
                means[b] = None if None in values else float(np.mean(values))
            print(f"{'mean':>20} " + " ".join(f"{_cell(means[b]):>8}" for b in budgets))
    for arch in BUDGET_ARCHS:
        losses = {int(r["steps"]): float(r["heldout_loss_after"]) for r in rows
                  if r["arch"] == arch and (r["objective"], r["corpus"]) == variant
                  and r["task"] == "mr" and r["heldout_loss_after"]}
        print(f"{arch:>20} held-out loss " + " ".join(f"{b:,}: {v:.4f}" for b, v in sorted(losses.items())))
    complete = {b: m for b, m in means.items() if m is not None}
    if not complete or max(complete) == 0:
        return None
    top = complete[max(complete)]
    chosen = min(b for b, m in complete.items() if m >= top - WITHIN)
    print(f"default budget: {chosen:,} steps (mean mr probe within {WITHIN:.0%} of the "
          f"{max(complete):,}-step budget's {top:.2%})")
    return chosen


def paired_probe(name_a: str, name_b: str, task: str = "mr") -> None:
    lines, _ = predictions.read(CORRECT_JSONL)
    found = predictions.by_model_and_seed(lines, kind="correct", match={"task": task})
    if name_a not in found or name_b not in found:
        print(f"{name_a} - {name_b} ({task}): not measured yet")
        return
    diff = paired_difference(np.stack([found[name_a][0]]), np.stack([found[name_b][0]]))
    print(f"{name_a} - {name_b} ({task} validation probe): {diff.difference:+.2%} "
          f"[{diff.low:+.2%}, {diff.high:+.2%}]")


def finetune_table(variant) -> None:
    section("kjv-next fine-tuning of the 15x rule arch (3 seeds, lr 1e-4, test; 0 steps: the slice)")
    rows = [r for r in read_csv(FINETUNE_CSV) if (r["objective"], r["corpus"]) == variant]
    for steps in sorted({int(r["steps"]) for r in rows}):
        accs = [float(r["accuracy"]) for r in rows if int(r["steps"]) == steps]
        print(f"{steps:5d} steps: " + " / ".join(f"{a:.2%}" for a in accs)
              + f"  mean {np.mean(accs):.2%}")
    lines, labels = predictions.read(FINETUNE_JSONL)
    found = predictions.by_model_and_seed(lines)
    budgets = sorted({int(r["steps"]) for r in rows})
    pairs = [(b, 0) for b in budgets if b > 0 and 0 in budgets]  # what training further buys
    if 300 in budgets and budgets[-1] > 300:
        pairs.append((budgets[-1], 300))
    for longer, shorter in pairs:
        a, b = (found.get(model_name(RULE_15, s, *variant), {}) for s in (longer, shorter))
        seeds = sorted(set(a) & set(b))
        if seeds and "test" in labels:
            diff = paired_difference(np.stack([a[s] == labels["test"] for s in seeds]),
                                     np.stack([b[s] == labels["test"] for s in seeds]))
            print(f"{longer} - {shorter} steps: {diff.difference:+.2%} "
                  f"[{diff.low:+.2%}, {diff.high:+.2%}] (seeds {seeds})")


def precision_table() -> None:
    """bf16 autocast against fp32: each seed's probes, and the difference paired over the
    validation examples and the seeds both have (bf16 is kept where the low end is >= -1 point)."""
    rows = read_csv(PRECISION_CSV)
    if not rows:
        return
    section(f"precision: {RULE_15} trained further in fp32 and bf16 (validation probes)")
    lines, _ = predictions.read(CORRECT_JSONL)
    for steps in sorted({int(r["steps"]) for r in rows}):
        for task in ("mr", "kjv-next"):
            for precision in ("fp32", "bf16"):
                accs = [float(r["validation_accuracy"]) for r in rows if r["task"] == task
                        and r["precision"] == precision and int(r["steps"]) == steps]
                print(f"{steps:5d} steps {task:>9} {precision}: "
                      + " / ".join(f"{a:.2%}" for a in accs))
            found = predictions.by_model_and_seed(lines, kind="correct", match={"task": task})
            a, b = (found.get(precision_name(p, steps), {}) for p in ("bf16", "fp32"))
            seeds = sorted(set(a) & set(b))
            if seeds:
                diff = paired_difference(np.stack([a[s] for s in seeds]),
                                         np.stack([b[s] for s in seeds]))
                verdict = "keeps" if diff.low >= -BF16_MARGIN else "fails"
                print(f"{steps:5d} steps {task:>9} bf16 - fp32: {diff.difference:+.2%} "
                      f"[{diff.low:+.2%}, {diff.high:+.2%}] (seeds {seeds}; {verdict} the "
                      f"-{BF16_MARGIN:.0%} bound)")


def report(variant=("supernet", "workspace")) -> None:
    rows = read_csv(PROBES_CSV)
    objective_table(rows)
    objective_intervals()
    budget_table(rows, variant)
    section("each arch's longest budget minus its slice (validation probes, paired)")
    for arch in BUDGET_ARCHS:
        budgets = sorted({int(r["steps"]) for r in rows if r["arch"] == arch
                          and (r["objective"], r["corpus"]) == variant})
        if len(budgets) > 1:
            for task in ("mr", "kjv-next"):
                paired_probe(model_name(arch, budgets[-1], *variant),
                             model_name(arch, 0, *variant), task)
    section("the layer cut and the untrained slice (mr validation probe, paired)")
    cut = model_name(LAYER_CUT, 0, "cut", "none")
    trained = {int(r["steps"]) for r in rows if r["arch"] == RULE_15
               and (r["objective"], r["corpus"]) == variant}
    for steps in sorted(trained - {0}):
        name = model_name(RULE_15, steps, *variant)
        paired_probe(name, model_name(RULE_15, 0, *variant))
        paired_probe(name, cut)
    finetune_table(variant)
    precision_table()
