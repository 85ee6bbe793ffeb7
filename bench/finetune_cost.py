"""What the default fine-tuning protocol costs on this machine, one process or several.

Every figure comes from ``atb-eval ... --method finetune --json`` in a fresh process (its own
``seconds``, loading included), on an idle machine:

- ``runs``: one 3-epoch run alone on every core (``--jobs 1``), then two runs side by side,
  one process and one thread each (``--seeds 2 --jobs 2``), at a given learning rate. The
  throughput ratio is 2 x (one run alone) / (two side by side). Seed 0 trains in both, so its
  accuracy shows that where a run trains does not change what it learns.
- ``protocol``: the default protocol end to end (the learning rate picked from the grid, then
  3 seeds; ``--jobs`` left to its default), next to what the same runs cost one after another
  (estimated from ``runs``: grid size + seeds, times one run alone).

    python -m bench.finetune_cost --model DIR                      # ~30 min for a 15x arch
    python -m bench.finetune_cost --model DIR --sections runs --json
"""

from __future__ import annotations

import json
import subprocess
import sys

from atb.errors import AtbError
from atb.eval.finetune import LR_GRID
from bench.common import parser as bench_parser

SECTIONS = ("runs", "protocol")


def atb_eval(model: str, task: str, *options: str) -> dict:
    """One ``atb-eval --method finetune --json`` call in its own process; its JSON result."""
    command = ["atb-eval", "--model", model, "--task", task, "--method", "finetune", "--json",
               *options]
    print("$ " + " ".join(command), file=sys.stderr, flush=True)
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise AtbError(f"atb-eval failed ({done.returncode}): "
                       f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ''}")
    return json.loads(done.stdout)


def measure_runs(model: str, task: str, lr: float) -> dict:
    alone = atb_eval(model, task, "--lr", f"{lr:g}", "--seeds", "1", "--jobs", "1")
    side = atb_eval(model, task, "--lr", f"{lr:g}", "--seeds", "2", "--jobs", "2")
    return {"lr": lr, "alone_s": alone["seconds"], "side_by_side_s": side["seconds"],
            "throughput_ratio": 2 * alone["seconds"] / side["seconds"],
            "seed0_alone": alone["seeds"][0]["accuracy"],
            "seed0_side_by_side": side["seeds"][0]["accuracy"]}


def measure_protocol(model: str, task: str) -> dict:
    result = atb_eval(model, task)
    return {"seconds": result["seconds"], "lr": result["lr"]["lr"],
            "chosen_by": result["lr"]["chosen_by"], "runs": len(LR_GRID) + len(result["seeds"]),
            "accuracy": result["accuracy"], "accuracy_ci": result["accuracy_ci"],
            "seeds": [s["accuracy"] for s in result["seeds"]]}


def main() -> int:
    parser = bench_parser("bench.finetune_cost", __doc__)
    parser.add_argument("--model", required=True, help="🤗 directory of the encoder to fine-tune")
    parser.add_argument("--task", default="kjv-next")
    parser.add_argument("--lr", type=float, default=1e-4, help="the rate of section runs")
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sections = args.sections.split(",")
    if unknown := [s for s in sections if s not in SECTIONS]:
        print(f"bench.finetune_cost: unknown section(s) {', '.join(unknown)}; choose from "
              f"{', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    out = {"model": args.model, "task": args.task}
    try:
        if "runs" in sections:
            out["runs"] = measure_runs(args.model, args.task, args.lr)
        if "protocol" in sections:
            out["protocol"] = measure_protocol(args.model, args.task)
    except AtbError as exc:
        print(f"bench.finetune_cost: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    if r := out.get("runs"):
        print(f"one run alone (every core)       {r['alone_s']:7.0f} s   seed 0 "
              f"{r['seed0_alone']:.4f}")
        print(f"two runs side by side (1 thread) {r['side_by_side_s']:7.0f} s   seed 0 "
              f"{r['seed0_side_by_side']:.4f}")
        print(f"throughput side by side / alone  {r['throughput_ratio']:7.2f}x")
    if p := out.get("protocol"):
        print(f"default protocol ({p['runs']} runs)       {p['seconds']:7.0f} s = "
              f"{p['seconds'] / 60:.1f} min; lr {p['lr']:g} ({p['chosen_by']}); accuracy "
              f"{p['accuracy']:.4f} [{p['accuracy_ci'][0]:.4f}, {p['accuracy_ci'][1]:.4f}]")
        if r := out.get("runs"):
            print(f"the same runs one after another  {p['runs'] * r['alone_s']:7.0f} s = "
                  f"{p['runs'] * r['alone_s'] / 60:.1f} min (estimated: runs x one run alone)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
