"""Throughput of further training (``atb-supernet distill``): token positions per second of one
process (all cores) against ``torchrun --nproc_per_node 2`` (one core each, gloo) and, where the
device has bf16 arithmetic, one process under bf16 autocast (``--precision bf16``), on one arch,
side by side in one run, and what the default budget then costs. Each figure is a fresh
process on its own scratch run (a seed no other run uses; a run found finished is refused, so a
repeat needs another ``--seed``). Run it on an idle machine: any other load makes every figure
worthless.

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


def distill(workspace: str, arch: str, steps: int, seed: int, processes: int, out: str,
            precision: str = "fp32") -> dict:
    """One ``distill`` run in a child process; its JSON summary."""
    flags = ["distill", "--workspace", workspace, "--arch", arch, "--steps", str(steps),
             "--seed", str(seed), "--save-every", str(steps), "--precision", precision, "-o", out,
             "--json"]
    if processes == 1:
        command = [sys.executable, "-m", "atb.supernet.cli", *flags]
    else:
        command = [os.path.join(os.path.dirname(sys.executable), "torchrun"), "--standalone",
                   f"--nproc_per_node={processes}", "-m", "atb.supernet", *flags]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"distill failed: {done.stderr.strip()[-2000:]}")
    summary = json.loads(done.stdout)
    if summary["reused"]:  # a user mistake: one line, exit 2
        print(f"error: seed {seed} was measured before (its run is reused): pass another --seed",
              file=sys.stderr)
        sys.exit(2)
    return summary


def main(argv=None) -> int:
    import torch

    from atb.supernet.further import DEFAULT_STEPS
    from atb.supernet.train import bf16_support

    p = parser("bench.further_speed", __doc__)
    p.add_argument("--workspace", required=True, help="a workspace with an --init supernet")
    p.add_argument("--arch", default=RULE_15)
    p.add_argument("--steps", type=int, default=60, help="steps per measured run")
    p.add_argument("--seed", type=int, default=9100,
                   help="first scratch seed (each variant takes the next; never reused)")
    args = p.parse_args(argv)
    section(f"further training of {args.arch}, {args.steps} steps per run")
    variants = [(1, "fp32"), (2, "fp32")]
    if bf16_support(torch.device("cpu")) is None:
        variants.append((1, "bf16"))
    rows = {}
    with tempfile.TemporaryDirectory(prefix="atb-further-speed-") as tmp:
        for i, (processes, precision) in enumerate(variants):
            summary = distill(args.workspace, args.arch, args.steps, args.seed + i, processes,
                              os.path.join(tmp, str(i)), precision)
            rate = summary["tokens_per_s"]  # all processes' tokens (all-reduced), padding excluded
            rows[processes, precision] = (rate, summary["seconds"])
            print(f"{processes} process(es), {precision}: {rate:,.0f} tokens/s "
                  f"({summary['seconds']:.1f} s for {args.steps} steps, training only)", flush=True)
    one = rows[1, "fp32"][0]
    print(f"torchrun x2 / one process: {rows[2, 'fp32'][0] / one:.2f}x")
    if (1, "bf16") in rows:
        print(f"bf16 autocast / fp32, one process: {rows[1, 'bf16'][0] / one:.2f}x")
    for (processes, precision), (_, seconds) in rows.items():
        print(f"the default budget ({DEFAULT_STEPS:,} steps), {processes} process(es) {precision}: "
              f"{DEFAULT_STEPS * seconds / args.steps / 60:.1f} min of training")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
