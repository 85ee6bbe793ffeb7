"""Profiler benchmark: overhead, throughput, test-retest drift, benchmark_app agreement,
and direct-graph vs torch-export latency. Run it on an idle machine:

    python bench/profile.py                 # full: 300 archs, 20-arch retest at 2 and 1 threads
                                            # (~18 min on 2 cores)
    python bench/profile.py --quick         # a smoke run of every section

Everything is printed side by side in one run; nothing here asserts.
"""

from __future__ import annotations

import sys
from pathlib import Path

# this file is named profile.py: keep its folder off sys.path so that `import profile`
# (cProfile, via torch.distributed) finds the standard library, not this script
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import io
import json
import re
import shutil
import subprocess
import tempfile
import time

import numpy as np

from atb.arch import BERT_BASE, Arch, get_space
from atb.devices import DeviceSetting, get_backend
from atb.profiler.lock import HostLock
from atb.profiler.onnx_graph import INPUT_NAMES, WeightPool, build_onnx, example_inputs, state_dict_weights
from atb.profiler.session import REFERENCE_ARCH
from atb.profiler.timing import CAREFUL_RULE, TimingRule, measure, measure_group

PROFILE = [sys.executable, "-m", "atb.profiler.cli"]


def atb_profile(args: list[str]) -> dict:
    out = subprocess.run(PROFILE + args + ["--json"], capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"atb-profile failed: {out.stderr.strip()}")
    return json.loads(out.stdout)


def section(title: str) -> None:
    print(f"\n== {title} ==", flush=True)


def throughput(root: Path, n: int, threads: int) -> None:
    section(f"throughput: {n} sampled archs, onnxruntime, {threads} threads, one process")
    t0 = time.perf_counter()
    result = atb_profile(["--samples", str(n), "--threads", str(threads), "--workspace", str(root / "tp")])
    wall = time.perf_counter() - t0
    s = result["stats"]
    print(f"archs timed              {result['new']}")
    print(f"process wall             {wall:.1f} s (profiling loop {s['wall_s']:.1f} s)")
    print(f"timed inference          {s['timed_s']:.1f} s (archs alone {s['arch_timed_s']:.1f} s), "
          f"graph build + load {s['setup_s']:.1f} s")
    print(f"overhead ratio           {s['wall_s'] / s['timed_s']:.3f}  (loop wall / all timed runs)")
    print(f"overhead ratio, strict   {s['wall_s'] / s['arch_timed_s']:.3f}  (loop wall / the archs' timed runs)")
    per_hour = 3600 * result["new"] / wall
    print(f"archs per hour           {per_hour:.0f} (process wall) -> 10,000 archs in {10000 / per_hour:.2f} h")


def retest(root: Path, n: int, thread_counts: list[int]) -> None:
    """The same archs in two processes per thread count; errors side by side."""
    section(f"test-retest: the same {n} archs in two separate processes, per thread count")
    archs = [str(a) for a in get_space("pretrain").sample(np.random.default_rng(123), n)]
    flags = sum((["--arch", a] for a in archs), [])
    columns = {}
    for threads in thread_counts:
        ws = root / f"retest-t{threads}"
        first = atb_profile(flags + ["--threads", str(threads), "--workspace", str(ws), "--seed", "1"])
        second = atb_profile(flags + ["--threads", str(threads), "--workspace", str(ws), "--seed", "2"])
        a = {r["arch"]: r for r in first["results"]}
        b = {r["arch"]: r for r in second["results"]}

        def err(field: str) -> np.ndarray:
            x = np.array([a[k][field] for k in archs])
            y = np.array([b[k][field] for k in archs])
            return np.abs(x - y) / ((x + y) / 2)

        columns[threads] = {
            "raw latency": err("raw_ms"), "drift-corrected latency": err("latency_ms"),
            "speedup": err("speedup"),
            "shift": np.median([b[k]["raw_ms"] / a[k]["raw_ms"] for k in archs]),
            "noisy": np.mean([r["noisy"] for r in first["results"] + second["results"]]),
        }
    heads = "".join(f"{f't{t} median':>12}{f't{t} p90':>10}" for t in columns)
    print(f"{'':24}{heads}")
    for name in ("raw latency", "drift-corrected latency", "speedup"):
        cells = "".join(f"{100 * np.median(c[name]):11.2f}%{100 * np.percentile(c[name], 90):9.2f}%"
                        for c in columns.values())
        print(f"{name:24}{cells}")
    print(f"{'raw shift (p2 / p1)':24}" + "".join(f"{c['shift']:12.3f}{'':10}" for c in columns.values()))
    print(f"{'noisy labels':24}" + "".join(f"{100 * c['noisy']:11.0f}%{'':10}" for c in columns.values()))


def _ov_median_ms(graph: Path, threads: int) -> float:
    setting = DeviceSetting(backend="openvino", threads=threads).resolve()
    with get_backend("openvino").load(None, graph, setting, example_inputs()) as runner:
        return measure(runner.run, CAREFUL_RULE).median_ms


def _benchmark_app_median_ms(exe: str, graph: Path, threads: int, seconds: int) -> float | None:
    out = subprocess.run(
        [exe, "-m", str(graph), "-d", "CPU", "-hint", "none", "-nstreams", "1", "-nthreads", str(threads),
         "-api", "sync", "-t", str(seconds), "-infer_precision", "f32"],
        capture_output=True, text=True,
    )
    match = re.search(r"Median:\s*([\d.]+)\s*ms", out.stdout)
    if not match:
        print(f"benchmark_app failed: {out.stderr.strip()[-300:]}")
    return float(match.group(1)) if match else None


def benchmark_app(root: Path, threads: int, seconds: int, rounds: int) -> None:
    section(f"agreement with OpenVINO benchmark_app (-hint none -nstreams 1 -nthreads {threads} -api sync), "
            f"{rounds} alternating rounds each")
    exe = shutil.which("benchmark_app") or str(Path(sys.executable).with_name("benchmark_app"))
    pool = WeightPool(root)
    print(f"{'model':22} {'atb ms':>9} {'benchmark_app ms':>17} {'diff':>7}")
    for arch in (REFERENCE_ARCH, Arch(4, 512, 2048, 8, 512), BERT_BASE):
        graph = pool.save(build_onnx(arch, weights=pool), f"bench-{arch}")
        ours, theirs = [], []
        for _ in range(rounds):  # alternate, so that drift hits both alike
            ours.append(_ov_median_ms(graph, threads))
            theirs.append(_benchmark_app_median_ms(exe, graph, threads, seconds))
        if None in theirs:
            continue
        a, b = float(np.median(ours)), float(np.median(theirs))
        print(f"{str(arch):22} {a:9.2f} {b:17.2f} {100 * (a / b - 1):+6.1f}%")


def export_parity(threads: int, archs: list[str], seconds: float) -> None:
    import onnx
    import torch

    from atb.modeling import build_model

    section("direct graph vs torch.onnx.export of atb.modeling (onnxruntime, interleaved bursts)")
    setting = DeviceSetting(threads=threads).resolve()
    ort = get_backend("onnxruntime")
    inputs = example_inputs()
    rule = TimingRule(min_runs=20, min_s=seconds, max_s=2 * seconds, target_rel_se=0.002)
    tmp = Path(tempfile.mkdtemp())
    print(f"{'arch':22} {'direct ms':>10} {'export ms':>10} {'ratio':>7}")
    for text in archs:
        arch = Arch.parse(text)
        model = build_model(arch)
        direct = tmp / "direct.onnx"
        direct.write_bytes(build_onnx(arch, weights=state_dict_weights(model)).SerializeToString())
        f = io.BytesIO()
        torch.onnx.export(model, tuple(torch.from_numpy(inputs[k]) for k in INPUT_NAMES), f, dynamo=False,
                          opset_version=17, input_names=list(INPUT_NAMES),
                          output_names=["last_hidden_state", "pooler_output"])
        exported = tmp / "export.onnx"
        onnx.save(onnx.load_from_string(f.getvalue()), exported)
        runners = [ort.load(arch, p, setting, inputs) for p in (direct, exported)]
        # both timed in alternating bursts, so that drift hits both alike
        both, _ = measure_group([r.run for r in runners], None, rule)
        d, e = both[0].median_ms, both[1].median_ms
        print(f"{text:22} {d:10.2f} {e:10.2f} {d / e:7.3f}   (relative SE {100 * both[0].rel_se:.1f}%, "
              f"{100 * both[1].rel_se:.1f}%)")
    shutil.rmtree(tmp)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes: check that every section runs")
    p.add_argument("--archs", type=int, default=300, help="archs for the throughput section")
    p.add_argument("--retest", type=int, default=20, help="archs for the test-retest section")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--retest-threads", default="2,1",
                   help="comma-separated thread counts for the test-retest section (default: 2,1)")
    p.add_argument("--sections", default="throughput,retest,benchmark_app,export",
                   help="comma-separated subset of: throughput, retest, benchmark_app, export")
    args = p.parse_args()
    sections = set(args.sections.split(","))
    n, k, secs, rounds = (args.archs, args.retest, 5, 3) if not args.quick else (6, 4, 2, 1)
    root = Path(tempfile.mkdtemp(prefix="atb-bench-"))
    print(f"workspaces under {root}")
    if "throughput" in sections:
        throughput(root, n, args.threads)
    if "retest" in sections:
        retest(root, k, [int(t) for t in args.retest_threads.split(',')])
    with HostLock("bench/profile.py"):  # the sections below time in this process
        if "benchmark_app" in sections:
            benchmark_app(root, args.threads, secs, rounds)
        if "export" in sections:
            export_parity(args.threads, ["4-512-2048-8-512", "2-256-1024-4-256", "6-768-3072-12-768"][: 3 if not args.quick else 1], 4.0 if not args.quick else 0.2)


if __name__ == "__main__":
    main()
