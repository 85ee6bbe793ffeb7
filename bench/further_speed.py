"""Throughput of further training (``atb-supernet distill``): token positions per second of one
process (all cores) against ``torchrun --nproc_per_node 2`` (one core each, gloo), on one arch,
side by side in one run, and what the default budget then costs. Each figure is a fresh
process on its own scratch run (a seed no other run uses), so nothing is reused. Run it on an
idle machine: any other load makes every figure worthless.

    python -m bench.further_speed --workspace WS [--arch 4-320-1280-10-320] [--steps 60]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from bench.common import parser, section

RULE_15 = "4-320-1280-10-320"


def distill(workspace: str, arch: str, steps: int, seed: int, processes: int, out: str) -> dict:
    """One ``distill`` run in a child process; its JSON summary."""
    flags = ["distill", "--workspace", workspace, "--arch", arch, "--steps", str(steps),
             "--seed", str(seed), "--save-every", str(steps), "-o", out, "--json"]
    if processes == 1:
        command = [sys.executable, "-m", "atb.supernet.cli", *flags]
    else:
        command = [os.path.join(os.path.dirname(sys.executable), "torchrun"), "--standalone",
                   f"--nproc_per_node={processes}", "-m", "atb.supernet", *flags]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"distill failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout)


def main(argv=None) -> int:
    from atb.supernet.further import DEFAULT_STEPS

    p = parser("bench.further_speed", __doc__)
    p.add_argument("--workspace", required=True, help="a workspace with an --init supernet")
    p.add_argument("--arch", default=RULE_15)
    p.add_argument("--steps", type=int, default=60, help="steps per measured run")
    p.add_argument("--seed", type=int, default=9000, help="first scratch seed (never reused)")
    args = p.parse_args(argv)
    section(f"further training of {args.arch}, {args.steps} steps per run")
    rows = []
    with tempfile.TemporaryDirectory(prefix="atb-further-speed-") as tmp:
        for i, processes in enumerate((1, 2)):
            summary = distill(args.workspace, args.arch, args.steps, args.seed + i, processes,
                              os.path.join(tmp, str(processes)))
            rate = summary["tokens_per_s"]  # all processes' tokens (all-reduced), padding excluded
            rows.append((processes, rate, summary["seconds"]))
            print(f"{processes} process(es): {rate:,.0f} tokens/s "
                  f"({summary['seconds']:.1f} s for {args.steps} steps, training only)", flush=True)
    one, two = rows[0][1], rows[1][1]
    print(f"torchrun x2 / one process: {two / one:.2f}x")
    seconds_per_step = min(rows[0][2], rows[1][2]) / args.steps
    print(f"the default budget ({DEFAULT_STEPS:,} steps) at the faster rate: "
          f"{DEFAULT_STEPS * seconds_per_step / 60:.1f} min of training")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
