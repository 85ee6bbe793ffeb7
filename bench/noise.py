"""Run-to-run noise of ONNX Runtime on this machine, per thread count and spin policy.

For a few models, sessions with each (threads, spin policy) are timed in alternating ~30 ms
bursts, so drift hits all alike, and the spread of single runs is printed side by side:
IQR / median and p90 / p10. A bimodal two-thread distribution (one vCPU intermittently gone)
shows up as a large IQR at 2 threads and a small one at 1 thread.

    python -m bench.noise                 # ~1 minute; idle machine
    python -m bench.noise --seconds 3     # shorter

Spin policies: "park" is what protocol 2 used (workers block between parallel sections,
``session.intra_op.allow_spinning=0``); "spin+stop", protocol 3's, spins inside a run and
stops when it returns (``allow_spinning=1`` with ``session.force_spinning_stop=1``).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from atb.arch import Arch
from atb.devices import DeviceSetting
from atb.devices.backends.ort import OrtRunner
from atb.errors import AtbError
from atb.profiler.lock import HostLock
from atb.profiler.onnx_graph import build_onnx, default_pool, example_inputs
from bench.common import parser as bench_parser

MODELS = ["1-128-256-2-128", "2-384-1536-6-384", "4-512-2048-8-512", "12-768-3072-12-768"]
SPIN_IN_RUN = {"park": False, "spin+stop": True}


def interleaved_times(runners: dict, seconds: float, burst_s: float = 0.03) -> dict[str, np.ndarray]:
    times = {name: [] for name in runners}
    for run in runners.values():  # warm-up
        for _ in range(3):
            run()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for name, run in runners.items():
            burst_end = time.perf_counter() + burst_s
            while True:
                t0 = time.perf_counter()
                run()
                t1 = time.perf_counter()
                times[name].append(t1 - t0)
                if t1 > burst_end:
                    break
    return {name: np.array(t) * 1e3 for name, t in times.items()}


def main() -> None:
    parser = bench_parser("bench.noise", __doc__)
    parser.add_argument("--seconds", type=float, default=12.0, help="timing per model (all settings together)")
    args = parser.parse_args()
    pool = default_pool()
    settings = [(1, "spin+stop"), (2, "park"), (2, "spin+stop")]
    lock = HostLock("bench.noise")
    try:
        lock.__enter__()
    except AtbError as exc:  # another timer holds the machine: timing now would be worthless
        print(f"bench.noise: {exc}", file=sys.stderr)
        sys.exit(2)
    try:
        print(f"{'model':>20} {'setting':>14} {'runs':>6} {'median ms':>10} {'IQR/median':>11} {'p90/p10':>8}")
        for text in MODELS:
            graph = pool.save(build_onnx(Arch.parse(text), weights=pool), f"noise-{text}")
            runners = {f"t{t} {p}": OrtRunner(graph, DeviceSetting(threads=t).resolve(), example_inputs(),
                                              SPIN_IN_RUN[p]).run
                       for t, p in settings}
            for name, t in interleaved_times(runners, args.seconds).items():
                q10, q25, q50, q75, q90 = np.percentile(t, [10, 25, 50, 75, 90])
                print(f"{text:>20} {name:>14} {len(t):6d} {q50:10.3f} {100 * (q75 - q25) / q50:10.1f}% "
                      f"{q90 / q10:8.3f}", flush=True)
    finally:
        lock.__exit__(None, None, None)


if __name__ == "__main__":
    main()
