"""Ground truth for the search (Table 3 at task level): within a latency window, which archs
fine-tune best on the reading task?

For each window (default 15x and 25x of the ``--init minilm`` space) archs of every depth that
reaches it are chosen by the predictor, timed in **one** profiler call under the predictor's
device key (1-thread ONNX Runtime: the most repeatable labels), and kept when their measured
speedup lies within +-5% of the target (``--margin``, none at the edge: +-4.5% by default). The
BERT-rule arch of the window is always among them. Each is cut out of the supernet, distilled
alone for ``--distill-steps`` (the same budget for all), then fine-tuned with atb-eval's
protocol on ``--task``: the learning rate is picked once per window on its rule arch (validation
split, one extra seed), then ``--seeds`` seeds of every arch train at that rate.

Every result is written as it completes, so the run resumes where it stopped, and later work can
re-score fitness functions without retraining:

* ``data/ranking-archs.csv``: window, arch, measured speedup, latency, device key, params;
* ``data/ranking-<task>.csv``: per arch and seed: accuracy, validation accuracy, lr, best
  epoch, distillation steps, supernet checkpoint and its steps, task version, commit;
* ``data/ranking-<task>-predictions.jsonl``: per arch and seed the test predictions
  (a string of class digits), so paired intervals can be recomputed.

    python bench/ranking.py --workspace WS --sections pick,time   # idle machine: it times
    python bench/ranking.py --workspace WS --sections train,eval   # hours of CPU, resumable
    python bench/ranking.py --workspace WS --sections report       # the table, from data/ only
    python bench/ranking.py --workspace WS --sections budget       # how much distillation moves accuracy
    python bench/ranking.py --workspace WS2 --sections depth --only ARCH ...   # WS2: a --depth spread supernet

WS needs ``atb-supernet data``, ``atb-supernet train --init minilm`` and ``atb-profile --super
minilm --threads 1 --samples N``.

``--sections depth`` asks which layers a shallow sub-model should keep: the ``--only`` archs of
the ground truth cut from WS2's supernet, trained with ``--depth spread`` (evenly spaced layers,
the last kept: DistilBERT / DynaBERT) where the ground truth's keeps the first lt (the paper's
rule), each given the ground truth's treatment (``fine_tune_rows``) into ``data/depth-<task>.csv``
and ``-predictions.jsonl``; ``depth-report`` (``data/`` only) pairs each with its ground-truth
self on the same test examples and seeds: spread - first.

``--sections separation`` asks whether the task separates reading from not reading, each gap a
paired 95% interval: the fine-tuned MiniLM (``data/teacher-<task>-predictions.jsonl``) and the
window's rule arch against the bag of words (deterministic: its predictions stand for every
seed) and against their shapes fine-tuned from random init. ``separation-train --only ARCH``
fine-tunes a random-init encoder of ARCH at the window's lr per missing seed into
``data/separation-<task>-predictions.jsonl``.

    python bench/ranking.py --workspace WS --sections separation-train --seeds 1 --only 4-320-1280-10-320
    python bench/ranking.py --workspace WS --sections separation   # data/ only
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402

from atb.arch import Arch, array_to_archs  # noqa: E402
from atb.errors import AtbError  # noqa: E402

log = logging.getLogger("bench.ranking")
ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
ARCHS_CSV = DATA / "ranking-archs.csv"
ARCH_FIELDS = ["window", "arch", "role", "lt", "dm", "df", "h", "dqkv", "params",
               "non_embedding_params", "predicted_speedup", "measured_speedup", "latency_ms",
               "inside", "device_key", "protocol_version", "measured_at"]
SCORE_FIELDS = ["window", "arch", "role", "seed", "accuracy", "validation_accuracy", "lr",
                "lr_chosen_by", "best_epoch", "epochs_run", "distill_steps", "supernet",
                "supernet_step", "task", "task_version", "protocol", "commit", "finished_at"]
PROTOCOL = "finetune v1: lr per window on its rule arch (validation, seed 1000), best " \
           "validation epoch of <= 3, patience 2, batch 32, mean pooling"


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def append_csv(path: Path, fields: list[str], row: dict) -> None:
    """One row, flushed at once: a crash loses nothing finished."""
    new = not path.is_file()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)


# -- pick and time ---------------------------------------------------------------------------

def pick_candidates(space, predictor, target: float, per_depth: int, rng) -> list[tuple]:
    """(arch, role, predicted speedup): the rule arch nearest ``target`` and, per depth that
    reaches the window, ``per_depth`` archs predicted within 2% of it, spread over widths."""
    from atb.search.baselines import bert_rule_archs

    rule = bert_rule_archs(space)
    rule_pred = predictor.predict_speedup(rule)
    best = int(np.argmin(np.abs(np.log(rule_pred / target))))
    out = [(array_to_archs(rule[[best]])[0], "rule", float(rule_pred[best]))]
    sample = space.sample_array(rng, 200_000)
    pred = predictor.predict_speedup(sample)
    near = np.abs(pred / target - 1) <= 0.02
    for lt in np.unique(sample[near, 0]):
        idx = np.flatnonzero(near & (sample[:, 0] == lt))
        idx = idx[np.argsort(sample[idx, 1], kind="stable")]  # by dm: spread over widths
        for i in idx[np.linspace(0, len(idx) - 1, min(per_depth, len(idx))).round().astype(int)]:
            arch = array_to_archs(sample[[i]])[0]
            if arch != out[0][0]:
                out.append((arch, "candidate", float(pred[i])))
    return out


def time_candidates(ws, predictor, args) -> None:
    """Time every window's candidates in one profiler call; write data/ranking-archs.csv."""
    from atb.arch import get_space
    from atb.compose import search_measure

    space = get_space("pretrain", "minilm")  # the --init minilm supernet's space
    rng = np.random.default_rng(args.seed)
    chosen = [(w, *c) for w in args.windows for c in pick_candidates(space, predictor, w,
                                                                     args.per_depth, rng)]
    log.info("timing %d candidates of %d windows in one profiler call", len(chosen),
             len(args.windows))
    speedups = search_measure(ws, predictor.device_key)([c[1] for c in chosen])
    labels = {a: (s, ms) for a, s, ms in _latest_labels(ws, predictor.device_key)}
    # One timing call makes a window's rows: never two processes' labels mixed inside a window.
    # Other windows keep theirs (a third window added later is compared only within itself).
    kept = [r for r in read_csv(ARCHS_CSV) if float(r["window"]) not in args.windows]
    if ARCHS_CSV.is_file():
        ARCHS_CSV.unlink()
    for row in kept:
        append_csv(ARCHS_CSV, ARCH_FIELDS, row)
    for window, arch, role, predicted in chosen:
        measured = speedups[[c[1] for c in chosen].index(arch)]
        inside = abs(measured / window - 1) <= args.margin
        append_csv(ARCHS_CSV, ARCH_FIELDS, {
            "window": window, "arch": arch, "role": role, **dict(zip("lt dm df h dqkv".split(),
                                                                      arch.as_tuple())),
            "params": arch.params(), "non_embedding_params": arch.non_embedding_params(),
            "predicted_speedup": f"{predicted:.3f}", "measured_speedup": f"{measured:.3f}",
            "latency_ms": f"{labels.get(str(arch), (0, float('nan')))[1]:.4f}",
            "inside": int(inside), "device_key": predictor.device_key,
            "protocol_version": predictor.protocol_version, "measured_at": int(time.time())})
        log.info("%gx %-9s %s predicted %.2fx measured %.2fx%s", window, role, arch, predicted,
                 measured, "" if inside else "  (outside: dropped)")


def _latest_labels(ws, device_key):
    from atb.profiler.store import LatencyStore

    with LatencyStore.open(ws.store_path, readonly=True) as store:
        labels = store.labels(device_key, roles=("sampled", "requested", "verify"))
    return zip(labels.arch_strings(), labels.speedup, labels.latency_ms)


def window_archs(args) -> dict[float, list[dict]]:
    """The timed archs inside each window, at most ``--archs`` each: the rule arch first, then
    one per depth, shallow to deep, then a second per depth, ... (every depth is covered)."""
    rows = [r for r in read_csv(ARCHS_CSV) if int(r["inside"])]
    out = {}
    for window in args.windows:
        mine = [r for r in rows if float(r["window"]) == window]
        rule = [r for r in mine if r["role"] == "rule"]
        by_depth: dict[int, list[dict]] = {}
        for r in sorted(mine, key=lambda r: (int(r["lt"]), int(r["dm"]))):
            if r["role"] != "rule":
                by_depth.setdefault(int(r["lt"]), []).append(r)
        rounds = [d[i] for i in range(max(map(len, by_depth.values()), default=0))
                  for d in by_depth.values() if i < len(d)]
        out[window] = (rule + rounds)[:args.archs]
    return out


# -- train and evaluate ----------------------------------------------------------------------

def task_file_names(task_name: str) -> tuple[Path, Path]:
    return DATA / f"ranking-{task_name}.csv", DATA / f"ranking-{task_name}-predictions.jsonl"


def evaluate_windows(ws, args) -> None:
    """Distil and fine-tune every arch of every window, caching each seed's result."""
    from atb.eval import FinetuneConfig, load_task
    from atb.eval.encode import tokenize
    from atb.eval.models import load_tokenizer
    from atb.eval.tasks import SPLITS
    from atb.supernet import checkpoint as ckpt
    from atb.supernet.alone import distill_alone

    supernet = ckpt.find_checkpoint(ws.supernet_dir)
    task = load_task(args.task)
    root = ws.root / "bench-ranking"
    tokenizer = load_tokenizer()
    tokenized = {n: tokenize(task.split(n), tokenizer) for n in SPLITS}
    config = FinetuneConfig(lr=args.lr)
    for window, archs in window_archs(args).items():
        if "train" in args.sections:
            for row in archs:
                if not args.only or row["arch"] in args.only:
                    distill_alone(ws, supernet, Arch.parse(row["arch"]), args.distill_steps, root)
        if "eval" not in args.sections:
            continue
        lr = _window_lr(root, window, archs[0], args, task, tokenized, config, supernet, ws)
        rows = [r for r in archs if not args.only or r["arch"] in args.only]
        fine_tune_rows(ws, supernet, window, rows, lr, args, task_file_names(task.name))


def fine_tune_rows(ws, supernet: Path, window: float, rows: list[dict], lr: dict, args,
                   files: tuple[Path, Path], root: Path | None = None) -> None:
    """Every row's arch (``arch``, ``role``) distilled alone for ``--distill-steps``, then
    fine-tuned at ``lr`` for seeds ``0..--seeds-1``; each seed's score and test predictions are
    appended to ``files`` (a CSV and a JSONL) as soon as it is done, and skipped when there."""
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
            with predictions_jsonl.open("a") as f:
                f.write(json.dumps({"window": window, "arch": row["arch"], "seed": seed,
                                    "distill_steps": args.distill_steps,
                                    "predicted": "".join(map(str, result["predictions"]))})
                        + "\n")
            log.info("%gx %s seed %d: %.2f%%", window, row["arch"], seed, 100 * result["accuracy"])


def _window_lr(root, window, rule_row, args, task, tokenized, config, supernet, ws) -> dict:
    """The window's learning rate, picked once on its rule arch and kept in a JSON file."""
    from atb.eval.finetune import pick_lr
    from atb.supernet.alone import distill_alone

    path = DATA / f"ranking-{task.name}-lr.json"
    picks = json.loads(path.read_text()) if path.is_file() else {}
    key = f"{window:g}x distill {args.distill_steps}"
    if key not in picks:
        model = distill_alone(ws, supernet, Arch.parse(rule_row["arch"]), args.distill_steps, root)
        picks[key] = {**pick_lr(model, tokenized, task, config), "arch": rule_row["arch"]}
        path.write_text(json.dumps(picks, indent=2))
    return picks[key]


# -- report ----------------------------------------------------------------------------------

def read_predictions(task_name: str, distill_steps: int,
                     predictions_jsonl: Path | None = None) -> dict[tuple, dict[int, np.ndarray]]:
    """The committed test predictions (the ground truth's, or ``predictions_jsonl``'s):
    ``{(window, arch): {seed: predicted classes}}``."""
    predictions_jsonl = predictions_jsonl or task_file_names(task_name)[1]
    preds: dict[tuple, dict[int, np.ndarray]] = {}
    if predictions_jsonl.is_file():
        for line in predictions_jsonl.read_text().splitlines():
            p = json.loads(line)
            if p["distill_steps"] == distill_steps:
                preds.setdefault((float(p["window"]), p["arch"]), {})[p["seed"]] = \
                    np.frombuffer(p["predicted"].encode(), dtype=np.uint8) - ord("0")
    return preds


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


# -- distillation budget ---------------------------------------------------------------------

def budget(ws, args) -> dict:
    """Fine-tuned accuracy of two archs of the first window after 100, 300 and 600 stand-alone
    distillation steps (the window's lr, ``--seeds`` seeds): how much the budget moves it."""
    import dataclasses

    from atb.eval import FinetuneConfig, load_task
    from atb.eval.encode import tokenize
    from atb.eval.finetune import finetune
    from atb.eval.models import load_tokenizer
    from atb.stats import correctness, paired_difference
    from atb.eval.tasks import SPLITS
    from atb.supernet import checkpoint as ckpt
    from atb.supernet.alone import distill_alone

    supernet = ckpt.find_checkpoint(ws.supernet_dir)
    task = load_task(args.task)
    tokenizer = load_tokenizer()
    tokenized = {n: tokenize(task.split(n), tokenizer) for n in SPLITS}
    window = args.windows[0]
    archs = window_archs(args)[window][:2]
    lr = _window_lr(ws.root / "bench-ranking", window, archs[0], args, task, tokenized,
                    FinetuneConfig(), supernet, ws)
    cache = DATA / f"ranking-{task.name}-budget.json"
    done = json.loads(cache.read_text()) if cache.is_file() else {}
    out = {"window": window, "lr": lr["lr"], "rows": []}
    for row in archs:
        base = None
        for steps in args.budgets:
            key = f"{row['arch']} {steps} seeds {args.seeds} lr {lr['lr']}"
            if key not in done:
                model = distill_alone(ws, supernet, Arch.parse(row["arch"]), steps,
                                      ws.root / "bench-ranking")
                _, results = finetune(model, task, tokenizer, list(range(args.seeds)),
                                      dataclasses.replace(FinetuneConfig(), lr=lr["lr"]))
                done[key] = [r["predictions"].tolist() for r in results]
                cache.write_text(json.dumps(done))
            correct = correctness(np.array(done[key]), task.test.labels)
            moved = paired_difference(correct, base).as_dict() if base is not None else None
            base = correct if base is None else base
            out["rows"].append({"arch": row["arch"], "steps": steps,
                                "accuracy": float(correct.mean()), "vs_first": moved})
            print(f"{row['arch']:>18} {steps:4d} steps: {correct.mean():.2%}"
                  + (f"  vs {args.budgets[0]}: {moved['difference']:+.2%} "
                     f"[{moved['ci_low']:+.2%}, {moved['ci_high']:+.2%}]" if moved else ""))
    return out


# -- which layers a shallow sub-model keeps ----------------------------------------------------

def depth_files(task_name: str) -> tuple[Path, Path]:
    return DATA / f"depth-{task_name}.csv", DATA / f"depth-{task_name}-predictions.jsonl"


def depth_train(ws, args) -> None:
    """Each ``--only`` arch of the ground truth distilled alone from ``ws``'s spread supernet and
    fine-tuned at its window's lr, like the ground truth."""
    from atb.supernet import checkpoint as ckpt

    supernet = ckpt.find_checkpoint(ws.supernet_dir)
    depth = ckpt.read_state(supernet).get("config", {}).get("depth", "first")
    if depth != "spread":
        raise AtbError(f"the supernet of {ws.root} keeps layers by depth {depth!r}, not 'spread'",
                       hint="train one with atb-supernet train --init minilm --depth spread")
    rows = {r["arch"]: r for r in read_csv(ARCHS_CSV) if int(r["inside"])}
    missing = [a for a in args.only if a not in rows]
    if not args.only or missing:
        raise AtbError("--sections depth needs --only archs of the ground truth"
                       + (f"; not in it: {', '.join(missing)}" if missing else ""),
                       hint="pick archs of data/ranking-archs.csv")
    picks = json.loads((DATA / f"ranking-{args.task}-lr.json").read_text())
    for arch in args.only:
        window = float(rows[arch]["window"])
        fine_tune_rows(ws, supernet, window, [{"arch": arch, "role": rows[arch]["role"]}],
                       picks[f"{window:g}x distill {args.distill_steps}"], args,
                       depth_files(args.task), root=ws.root / "bench-depth")


def paired_over_seeds(mine: dict[int, np.ndarray], theirs: dict[int, np.ndarray],
                      labels: np.ndarray, names: tuple[str, str]) -> dict | None:
    """Two archs' test predictions (``{seed: classes}``) paired over the seeds both have, keyed
    by ``names`` (mine, theirs): ``seeds``, ``<mine>_accuracy``, ``<theirs>_accuracy`` and
    ``<mine>_minus_<theirs>``, the paired 95% interval; None when no seed is shared."""
    from atb.stats import paired_difference

    seeds = sorted(set(mine) & set(theirs))
    if not seeds:
        return None
    a = np.stack([mine[s] == labels for s in seeds])
    b = np.stack([theirs[s] == labels for s in seeds])
    first, second = names
    return {"seeds": seeds, f"{first}_accuracy": float(a.mean()),
            f"{second}_accuracy": float(b.mean()),
            f"{first}_minus_{second}": paired_difference(a, b).as_dict()}


def depth_report(args) -> dict:
    """Per arch trained from the spread supernet: both accuracies over the seeds both have and
    the paired interval of spread - first."""
    from atb.eval import load_task

    task = load_task(args.task)
    first = read_predictions(task.name, args.distill_steps)
    spread = read_predictions(task.name, args.distill_steps, depth_files(task.name)[1])
    out = {"task": task.name, "distill_steps": args.distill_steps, "archs": []}
    for (window, arch), mine in sorted(spread.items()):
        paired = paired_over_seeds(mine, first.get((window, arch), {}), task.test.labels,
                                   ("spread", "first"))
        if paired:
            out["archs"].append({"window": window, "arch": arch, **paired})
    return out


def print_depth_report(r: dict) -> None:
    from atb.stats import named_verdict

    print(f"task {r['task']}, {r['distill_steps']} stand-alone distillation steps; spread - "
          "first: paired 95% interval over test examples and seeds")
    for e in r["archs"]:
        d = e["spread_minus_first"]
        print(f"{e['window']:g}x {e['arch']:>20}: spread {e['spread_accuracy']:.2%} vs first "
              f"{e['first_accuracy']:.2%} over {len(e['seeds'])} seed(s): {d['difference']:+.2%} "
              f"[{d['ci_low']:+.2%}, {d['ci_high']:+.2%}] "
              f"{named_verdict(d['verdict'], 'spread', 'first')}")


# -- separation: reading against not reading --------------------------------------------------

TEACHER_ARCH = "6-384-1536-12-384"  # the full MiniLM


def separation_file(task_name: str) -> Path:
    return DATA / f"separation-{task_name}-predictions.jsonl"


def random_init_predictions(task_name: str) -> dict[str, dict[int, np.ndarray]]:
    """``{arch: {seed: test predictions}}`` of the random-init encoders fine-tuned so far."""
    out: dict[str, dict[int, np.ndarray]] = {}
    path = separation_file(task_name)
    if path.is_file():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            out.setdefault(row["arch"], {})[row["seed"]] = \
                np.frombuffer(row["predicted"].encode(), dtype=np.uint8) - ord("0")
    return out


def separation_train(args) -> None:
    """A random-init encoder of every ``--only`` arch fine-tuned at the first window's lr, per
    seed ``0..--seeds-1`` not cached yet."""
    from atb.eval import FinetuneConfig, load_task
    from atb.eval.baselines import random_encoder

    if not args.only:
        raise AtbError("--sections separation-train needs --only ARCH ...")
    task = load_task(args.task)
    window = args.windows[0]
    lr = json.loads((DATA / f"ranking-{task.name}-lr.json").read_text())[
        f"{window:g}x distill {args.distill_steps}"]["lr"]
    for arch in args.only:
        done = random_init_predictions(task.name).get(arch, {})
        for seed in [s for s in range(args.seeds) if s not in done]:
            result = random_encoder(task, Arch.parse(arch), "finetune", [seed],
                                    finetune_config=FinetuneConfig(lr=lr), threads=1)
            with separation_file(task.name).open("a") as f:
                f.write(json.dumps({"arch": arch, "seed": seed, "lr": lr, "init_seed": 0,
                                    "accuracy": result["accuracy"], "commit": commit(),
                                    "predicted": "".join(map(str, result["predictions"][0]))})
                        + "\n")
            log.info("random-init %s seed %d: %.2f%%", arch, seed, 100 * result["accuracy"])


def separation(args) -> dict:
    """Per model (the fine-tuned teacher, the first window's rule arch): model - bag of words
    and model - its shape from random init, paired over test examples and shared seeds."""
    from atb.eval import load_task
    from atb.eval.baselines import bag_of_words
    from atb.eval.compare import read_predictions as read_atb_eval_predictions

    task = load_task(args.task)
    labels = task.test.labels
    teacher_file = read_atb_eval_predictions(DATA / f"teacher-{task.name}-predictions.jsonl")
    (name,) = teacher_file["models"]
    window = args.windows[0]
    rule = next(r["arch"] for r in read_csv(ARCHS_CSV)
                if float(r["window"]) == window and r["role"] == "rule")
    models = {"MiniLM fine-tuned": (TEACHER_ARCH, dict(zip(
                  teacher_file["models"][name]["seeds"], teacher_file["predictions"][name]))),
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspace", required=True, metavar="DIR")
    parser.add_argument("--windows", type=float, nargs="+", default=[15.0, 25.0])
    parser.add_argument("--task", default="kjv-next")
    parser.add_argument("--archs", type=int, default=6, help="archs per window, rule included")
    parser.add_argument("--per-depth", type=int, default=2, help="candidates timed per depth")
    parser.add_argument("--margin", type=float, default=0.045,
                        help="measured speedup within this share of the target (default 4.5%%)")
    parser.add_argument("--distill-steps", type=int, default=300)
    parser.add_argument("--budgets", type=int, nargs="+", default=[100, 300, 600])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--lr", type=float,
                        help="a new window's learning rate, given instead of picked on its rule arch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", metavar="ARCH", default=[],
                        help="train/evaluate only these archs of the windows (e.g. a second "
                             "process on the other core takes the last archs)")
    parser.add_argument("--sections", default="report",
                        help="comma-separated: pick,time (idle machine), train, eval, report, "
                             "budget, depth, depth-report, separation-train, separation")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    args.sections = set(args.sections.split(","))
    known = {"pick", "time", "train", "eval", "report", "budget", "depth", "depth-report",
             "separation-train", "separation"}
    if unknown := args.sections - known:
        print(f"bench/ranking.py: unknown section(s) {', '.join(sorted(unknown))}; use "
              f"{', '.join(sorted(known))}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    from atb.workspace import Workspace

    try:
        ws = Workspace.resolve(args.workspace, create=False)
        if args.sections & {"pick", "time"}:
            from atb.predictor import load_or_fit

            time_candidates(ws, load_or_fit(ws), args)
        if args.sections & {"train", "eval"}:
            evaluate_windows(ws, args)
        if "budget" in args.sections:
            budget(ws, args)
        if "depth" in args.sections:
            depth_train(ws, args)
        if "separation-train" in args.sections:
            separation_train(args)
        if "separation" in args.sections:
            result = separation(args)
            print(json.dumps(result, indent=2)) if args.json else print_separation(result)
        if "depth-report" in args.sections:
            result = depth_report(args)
            if args.json:
                print(json.dumps(result, indent=2))
            else:
                print_depth_report(result)
        if "report" in args.sections:
            result = report(args)
            if args.json:
                for w in result["windows"]:
                    for a in w["archs"]:
                        a.pop("correct")
                print(json.dumps(result, indent=2))
            else:
                print_report(result)
    except AtbError as exc:
        print(f"bench/ranking.py: {exc.one_line()}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
