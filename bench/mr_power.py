"""What a registered claim on ``mr`` can detect, from the noise measured on it (no new runs:
the committed files of ``bench.mr_separation`` and ``bench.mr_truth`` alone).

The claim compares the two-stage search's winner with the window's BERT-rule arch at equal
latency: S search seeds, each winner trained further and fine-tuned with 3 seeds, against the
rule arch's 3 seeds, paired on mr's test examples. Its noise has three parts, each measured:

* **examples**: the standard error of a paired difference between two ~14x archs (the 15x rule
  arch trained further, and MiniLM's first 3 layers) on the test examples, from one seed each
  (seed 0);
* **fine-tuning seeds**: one arch's accuracy spread over its 3 seeds (test; pooled over the two
  archs), and the pair's interval from all 3 seeds (the joint bootstrap of ``atb.stats``);
* **search seeds**: the spread of the winner over search seeds (each winner's mean validation
  accuracy over its 3 fine-tuning seeds, less what those seeds alone explain), per window of
  ``bench.mr_truth`` (14x and 21x; the example and fine-tuning parts are the 14x pair's).

The minimum detectable difference (two-sided 5%, power 80%) is ``(1.96 + 0.84) x SE`` with
``SE^2 = ex^2 + ft^2 / 3 + ft^2 / (3 S) + search^2 / S`` (the rule arch's 3 seeds, the winners'
3 S seeds, the search seeds; the test examples are shared, so their part does not shrink with
S), and the claim's CPU time is S x (a search + further training + 3 fine-tunes) plus the
rule arch's further training and 3 fine-tunes, from the seconds the runs took.

    python -m bench.mr_power
"""

from __future__ import annotations

import numpy as np

from atb import predictions
from bench.common import parser, read_csv, section
from bench.mr_separation import PREDICTIONS_JSONL as SEPARATION_JSONL
from bench.mr_truth import PREDICTIONS_JSONL as TRUTH_JSONL
from bench.mr_truth import SCORES_CSV as TRUTH_CSV
from bench.mr_truth import SEARCHES_CSV, WINDOWS

Z_LEVEL, Z_POWER = 1.959964, 0.841621  # two-sided 5%, power 80%
FINETUNE_SEEDS = 3
SEARCH_SEEDS = (3, 5, 8)
PAIR = ("rule-15", "cut-3")  # two ~14x archs of bench.mr_separation


def noise_from_separation() -> dict | None:
    """Example and fine-tuning noise of the pair, on test."""
    from atb.stats import paired_difference

    lines, labels = predictions.read(SEPARATION_JSONL)
    found = predictions.by_model_and_seed(lines, match={"split": "test"})
    if any(len(found.get(name, {})) < FINETUNE_SEEDS for name in PAIR):
        return None
    correct = {n: np.stack([found[n][s] == labels["test"] for s in sorted(found[n])])
               for n in PAIR}
    one_seed = paired_difference(correct[PAIR[0]][:1], correct[PAIR[1]][:1])
    all_seeds = paired_difference(correct[PAIR[0]], correct[PAIR[1]])
    seed_var = np.mean([c.mean(axis=1).var(ddof=1) for c in correct.values()])
    return {"examples_se": (one_seed.high - one_seed.low) / 2 / Z_LEVEL,
            "one_seed": one_seed, "all_seeds": all_seeds, "finetune_sd": float(np.sqrt(seed_var))}


def search_spread(window: int) -> dict | None:
    """The window's winners' validation means over search seeds, less the fine-tuning seeds'
    share."""
    lines, labels = predictions.read(TRUTH_JSONL)
    found = predictions.by_model_and_seed(lines, match={"split": "validation"})
    winners = {int(r["seed"]): r["winner"] for r in read_csv(SEARCHES_CSV)
               if int(r["window"]) == window}
    means, within = [], []
    for seed, arch in sorted(winners.items()):
        if len(found.get(arch, {})) < FINETUNE_SEEDS:
            return None
        per_seed = np.array([np.mean(p == labels["validation"]) for p in found[arch].values()])
        means.append(per_seed.mean())
        within.append(per_seed.var(ddof=1))
    if len(means) < 2:
        return None
    between = float(np.var(means, ddof=1))
    return {"winners": winners, "means": means,
            "search_sd": float(np.sqrt(max(0.0, between - np.mean(within) / FINETUNE_SEEDS)))}


def seconds(window: int) -> dict:
    """Median CPU seconds (one core) of the window's searches and fine-tunes, and of a
    300-step further training (bench.further's four archs, 15x and 25x)."""
    from bench.further import PROBES_CSV

    searches = [float(r["runtime_s"]) for r in read_csv(SEARCHES_CSV)
                if int(r["window"]) == window]
    finetunes = [float(r["seconds"]) for r in read_csv(TRUTH_CSV)
                 if int(r["window"]) == window and r.get("seconds") not in (None, "", "nan")]
    further = [float(r["train_seconds"]) for r in read_csv(PROBES_CSV)
               if r["steps"] == "300" and r["task"] == "mr" and r["train_seconds"]]
    return {k: float(np.median(v)) if v else float("nan")
            for k, v in (("search", searches), ("further", further), ("finetune", finetunes))}


def mdd_table(window: int, noise: dict, search_sd: float | None, cost: dict) -> None:
    section(f"minimum detectable difference of a claim at {window}x (5% two-sided, power 80%)")
    ex, ft = noise["examples_se"], noise["finetune_sd"]
    sds = [search_sd] if search_sd is not None else [0.0, 0.01, 0.02, 0.03]
    if search_sd is None:
        print("search-seed spread not measured yet: rows for assumed spreads of 0-3 points")
    per_seed = cost["search"] + cost["further"] + FINETUNE_SEEDS * cost["finetune"]
    rule = cost["further"] + FINETUNE_SEEDS * cost["finetune"]
    for sd in sds:
        for s in SEARCH_SEEDS:
            se = np.sqrt(ex ** 2 + ft ** 2 / FINETUNE_SEEDS + ft ** 2 / (FINETUNE_SEEDS * s)
                         + sd ** 2 / s)
            hours = (s * per_seed + rule) / 3600
            print(f"search sd {sd:.2%}  S = {s}: SE {se:.2%}, detectable {(Z_LEVEL + Z_POWER) * se:.2%}"
                  f"  (CPU {hours:.1f} core-hours)")


def main(argv=None) -> int:
    parser("bench.mr_power", __doc__).parse_args(argv)
    noise = noise_from_separation()
    if noise is None:
        print(f"{' and '.join(PAIR)}: not all {FINETUNE_SEEDS} seeds fine-tuned yet "
              "(python -m bench.mr_separation)")
        return 0
    section(f"noise between two ~14x archs on mr's test split ({PAIR[0]} - {PAIR[1]})")
    for label, d in (("test examples alone (seed 0 each)", noise["one_seed"]),
                     (f"examples x {FINETUNE_SEEDS} fine-tuning seeds", noise["all_seeds"])):
        print(f"{label}: {d.difference:+.2%} [{d.low:+.2%}, {d.high:+.2%}], "
              f"half-width {(d.high - d.low) / 2:.2%}")
    print(f"one arch's fine-tuning seed sd (pooled): {noise['finetune_sd']:.2%}")
    for window in WINDOWS:
        spread = search_spread(window)
        section(f"search seeds at {window}x")
        if spread is not None:
            print("winners by search seed (validation mean of 3 fine-tuning seeds): "
                  + ", ".join(f"s{s} {spread['winners'][s]} {m:.2%}"
                              for s, m in zip(sorted(spread["winners"]), spread["means"])))
            print(f"search-seed sd beyond the fine-tuning seeds: {spread['search_sd']:.2%}")
        cost = seconds(window)
        print("CPU seconds (median, one core beside another job): "
              + ", ".join(f"{k} {v:.0f}" for k, v in cost.items()))
        mdd_table(window, noise, spread and spread["search_sd"], cost)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
