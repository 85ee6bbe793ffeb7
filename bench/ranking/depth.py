"""Which layers a shallow sub-model should keep: archs of the ground truth cut from a supernet
trained with ``--depth spread`` (evenly spaced layers, the last kept: DistilBERT / DynaBERT)
where the ground truth's keeps the first lt (the paper's rule), each given the ground truth's
treatment, then paired with its ground-truth self on the same test examples and seeds."""

from __future__ import annotations

import json
from pathlib import Path

from atb.errors import AtbError
from atb.stats import paired_over_seeds
from bench.common import DATA, read_csv
from bench.ranking.training import fine_tune_rows
from bench.ranking.truth import ARCHS_CSV, lr_file, lr_key, read_predictions


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
    picks = json.loads(lr_file(args.task).read_text())
    for arch in args.only:
        window = float(rows[arch]["window"])
        fine_tune_rows(ws, supernet, window, [{"arch": arch, "role": rows[arch]["role"]}],
                       picks[lr_key(window, args.distill_steps)], args,
                       depth_files(args.task), root=ws.root / "bench-depth")


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
