"""Draws the README's figure from committed data files only: the ground truth of the search on
kjv-next, every timed arch's measured speedup against its fine-tuned test accuracy.

Each point is one arch of ``data/ranking-archs.csv`` (its measured speedup, timed in one profiler
call per window) joined by window and arch with its per-seed test accuracies in
``data/ranking-kjv-next.csv`` (the mean over seeds, the bar from the lowest to the highest seed);
BERT-rule archs are marked, and the fine-tuned teacher's accuracy
(``data/teacher-kjv-next.json``, the full MiniLM) is a horizontal line. Nothing is trained or
timed, so the figure is redrawn in a second.

    python -m bench.figures                      # docs/figures/ground-truth.png
    python -m bench.figures -o /tmp/truth.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.common import DATA, ROOT, parser, read_csv

OUT = ROOT / "docs" / "figures" / "ground-truth.png"
DISTILL_STEPS = 300  # the ground truth's stand-alone distillation budget (bench/ranking/)
WINDOW_COLOURS = {8.0: "#4c72b0", 15.0: "#55a868", 18.6: "#c44e52", 25.0: "#8172b2"}


def ground_truth_points(task: str = "kjv-next") -> list[dict]:
    """One point per (window, arch) with scores: ``window``, ``arch``, ``role``, ``speedup``
    (measured), ``accuracy`` (mean over seeds), ``low`` / ``high`` (the seed range), ``seeds``."""
    timed = {(float(r["window"]), r["arch"]): r for r in read_csv(DATA / "ranking-archs.csv")}
    seeds: dict[tuple, list[float]] = {}
    for row in read_csv(DATA / f"ranking-{task}.csv"):
        if int(row["distill_steps"]) == DISTILL_STEPS:
            seeds.setdefault((float(row["window"]), row["arch"]), []).append(float(row["accuracy"]))
    points = []
    for (window, arch), accuracies in sorted(seeds.items()):
        arch_row = timed.get((window, arch))
        if arch_row is None:  # scored but never timed: no speedup to place it at
            continue
        points.append({"window": window, "arch": arch, "role": arch_row["role"],
                       "speedup": float(arch_row["measured_speedup"]),
                       "accuracy": sum(accuracies) / len(accuracies),
                       "low": min(accuracies), "high": max(accuracies), "seeds": len(accuracies)})
    return points


def teacher_accuracy(task: str = "kjv-next") -> float:
    """The fine-tuned teacher's mean test accuracy over its seeds (``atb-eval --json``)."""
    return json.loads((DATA / f"teacher-{task}.json").read_text())["accuracy"]


def draw(points: list[dict], teacher: float, out: Path) -> Path:
    """Speedup (x) against accuracy (y, percent), one colour per window, rule archs as squares."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed; must precede pyplot
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    for window in sorted({p["window"] for p in points}):
        colour, labelled = WINDOW_COLOURS.get(window, "#555555"), False
        for role, marker, size in (("candidate", "o", 6), ("rule", "s", 8)):
            mine = [p for p in points if p["window"] == window and p["role"] == role]
            if not mine:
                continue
            ax.errorbar([p["speedup"] for p in mine], [100 * p["accuracy"] for p in mine],
                        yerr=[[100 * (p["accuracy"] - p["low"]) for p in mine],
                              [100 * (p["high"] - p["accuracy"]) for p in mine]],
                        fmt=marker, ms=size, color=colour, capsize=2, lw=1,
                        mfc=colour if role == "rule" else "white", mew=1.5,
                        label=None if labelled else f"{window:g}x window")
            labelled = True
    ax.plot([], [], "s", color="#555555", ms=8, label="BERT-rule arch (filled)")
    ax.set_ylim(48.5, 100 * teacher + 2.5)
    left = ax.get_xlim()[0]
    ax.axhline(100 * teacher, color="black", ls="--", lw=1)
    ax.text(left + 0.3, 100 * teacher + 0.3, f"teacher (full MiniLM) fine-tuned: "
            f"{100 * teacher:.1f}%", ha="left", va="bottom", fontsize=8)
    ax.axhline(50, color="grey", ls=":", lw=1)
    ax.text(22, 50.3, "chance: 50%", ha="center", va="bottom", fontsize=8, color="grey")
    ax.set_xlabel("measured speedup over BERT-base (x; ONNX Runtime, 1 thread)")
    ax.set_ylabel("kjv-next test accuracy (%)")
    ax.set_title("Ground truth: archs inside four latency windows, fine-tuned\n"
                 "(mean over seeds; bars: lowest to highest seed)", fontsize=10)
    ax.legend(fontsize=8, loc="lower left", frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main() -> int:
    p = parser("bench.figures", __doc__)
    p.add_argument("-o", "--output", type=Path, default=OUT, help=f"PNG to write (default {OUT})")
    args = p.parse_args()
    points = ground_truth_points()
    if not points:
        print("bench.figures: no ground-truth rows in data/", file=sys.stderr)
        return 2
    print(draw(points, teacher_accuracy(), args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
