"""The ground truth's committed files and how they read: the timed archs of every window
(``data/ranking-archs.csv``), each arch's per-seed scores (``data/ranking-<task>.csv``) and test
predictions (``data/ranking-<task>-predictions.jsonl``, :mod:`atb.predictions`), and the
learning rate picked per window (``data/ranking-<task>-lr.json``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from atb import predictions
from bench.common import DATA, read_csv

ARCHS_CSV = DATA / "ranking-archs.csv"
ARCH_FIELDS = ["window", "arch", "role", "lt", "dm", "df", "h", "dqkv", "params",
               "non_embedding_params", "predicted_speedup", "measured_speedup", "latency_ms",
               "inside", "device_key", "protocol_version", "measured_at"]
SCORE_FIELDS = ["window", "arch", "role", "seed", "accuracy", "validation_accuracy", "lr",
                "lr_chosen_by", "best_epoch", "epochs_run", "distill_steps", "supernet",
                "supernet_step", "task", "task_version", "protocol", "commit", "finished_at"]
PROTOCOL = "finetune v1: lr per window on its rule arch (validation, seed 1000), best " \
           "validation epoch of <= 3, patience 2, batch 32, mean pooling"


def task_file_names(task_name: str) -> tuple[Path, Path]:
    """The ground truth's scores CSV and predictions file of a task."""
    return DATA / f"ranking-{task_name}.csv", DATA / f"ranking-{task_name}-predictions.jsonl"


def lr_file(task_name: str) -> Path:
    """The learning rate picked per window and distillation budget (``{window:g}x distill N``)."""
    return DATA / f"ranking-{task_name}-lr.json"


def lr_key(window: float, distill_steps: int) -> str:
    return f"{window:g}x distill {distill_steps}"


def read_predictions(task_name: str, distill_steps: int,
                     predictions_jsonl: Path | None = None) -> dict[tuple, dict[int, np.ndarray]]:
    """The committed test predictions (the ground truth's, or ``predictions_jsonl``'s) of
    ``distill_steps``: ``{(window, arch): {seed: predicted classes}}``."""
    lines, _ = predictions.read(predictions_jsonl or task_file_names(task_name)[1])
    preds: dict[tuple, dict[int, np.ndarray]] = {}
    for row in lines:
        if row["distill_steps"] == distill_steps:
            preds.setdefault((float(row["window"]), row["model"]), {})[row["seed"]] = \
                row["predicted"]
    return preds


def window_archs(windows: list[float], limit: int) -> dict[float, list[dict]]:
    """The timed archs inside each window, at most ``limit`` each: the rule arch first, then
    one per depth, shallow to deep, then a second per depth, ... (every depth is covered)."""
    rows = [r for r in read_csv(ARCHS_CSV) if int(r["inside"])]
    out = {}
    for window in windows:
        mine = [r for r in rows if float(r["window"]) == window]
        rule = [r for r in mine if r["role"] == "rule"]
        by_depth: dict[int, list[dict]] = {}
        for r in sorted(mine, key=lambda r: (int(r["lt"]), int(r["dm"]))):
            if r["role"] != "rule":
                by_depth.setdefault(int(r["lt"]), []).append(r)
        rounds = [d[i] for i in range(max(map(len, by_depth.values()), default=0))
                  for d in by_depth.values() if i < len(d)]
        out[window] = (rule + rounds)[:limit]
    return out


def rule_arch(window: float) -> str | None:
    """The window's BERT-rule arch in the ground truth, None when the window has none."""
    return next((r["arch"] for r in read_csv(ARCHS_CSV)
                 if float(r["window"]) == window and r["role"] == "rule"), None)
