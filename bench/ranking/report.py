"""The ground truth's table, from ``data/`` only: per window every arch's mean test accuracy
over its seeds with its 95% interval, best - worst as a paired interval, and how many pairs of
archs the paired interval separates (the resolution of the ground truth)."""

from __future__ import annotations

import numpy as np

from bench.common import read_csv
from bench.ranking.truth import ARCHS_CSV, read_predictions


def report(args) -> dict:
    """Per window: every arch's mean accuracy and interval, best - worst with its paired
    interval, and how many pairs the paired interval separates."""
    from atb.eval import load_task
    from atb.stats import accuracy_interval, paired_difference

    task = load_task(args.task)
    timed = {(float(r["window"]), r["arch"]): r for r in read_csv(ARCHS_CSV)}
    preds = read_predictions(task.name, args.distill_steps)
    labels = task.test.labels
    out = {"task": task.name, "distill_steps": args.distill_steps, "windows": []}
    for window in args.windows:
        rows = []
        for (w, arch), by_seed in sorted(preds.items()):
            if w != window:
                continue
            correct = np.stack([by_seed[s] == labels for s in sorted(by_seed)])
            low, high = accuracy_interval(correct)
            t = timed.get((w, arch), {})
            rows.append({"arch": arch, "role": t.get("role", "?"), "seeds": len(by_seed),
                         "speedup": float(t.get("measured_speedup", "nan")),
                         "non_embedding_params": int(t.get("non_embedding_params", 0)),
                         "accuracy": float(correct.mean()), "ci": [low, high],
                         "correct": correct})
        rows.sort(key=lambda r: -r["accuracy"])
        entry = {"window": window, "archs": rows}
        if len(rows) >= 2:
            spread = paired_difference(rows[0]["correct"], rows[-1]["correct"])
            diffs = [paired_difference(a["correct"], b["correct"])
                     for i, a in enumerate(rows) for b in rows[i + 1:]]
            entry.update(best_minus_worst=spread.as_dict(), pairs=len(diffs),
                         pairs_separated=sum(d.low > 0 or d.high < 0 for d in diffs),
                         # the resolution: half the width of a typical paired interval
                         median_half_width=float(np.median([(d.high - d.low) / 2 for d in diffs])))
        out["windows"].append(entry)
    return out


def print_report(r: dict) -> None:
    print(f"task {r['task']}, {r['distill_steps']} stand-alone distillation steps")
    for w in r["windows"]:
        print(f"\n{w['window']:g}x window")
        print(f"{'arch':>18} {'role':>9} {'speedup':>8} {'non-emb':>8} {'seeds':>5} "
              f"{'accuracy [95% CI]':>26}")
        for a in w["archs"]:
            print(f"{a['arch']:>18} {a['role']:>9} {a['speedup']:7.2f}x "
                  f"{a['non_embedding_params'] / 1e6:7.2f}M {a['seeds']:5d} "
                  f"{a['accuracy']:8.2%} [{a['ci'][0]:.2%}, {a['ci'][1]:.2%}]")
        if "best_minus_worst" in w:
            d = w["best_minus_worst"]
            print(f"best - worst: {d['difference']:+.2%} [{d['ci_low']:+.2%}, {d['ci_high']:+.2%}]"
                  f"; pairs separated by their paired 95% interval: {w['pairs_separated']} of "
                  f"{w['pairs']}; resolution (median half-width of a pair's interval) "
                  f"+-{w['median_half_width']:.2%}")
