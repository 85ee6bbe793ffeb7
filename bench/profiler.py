"""The profiler: its overhead and throughput, test-retest drift of its labels, agreement with
each backend's deployed configuration and with benchmark_app, and direct-graph vs torch-export
latency.

Run it on an idle machine:

    python -m bench.profiler                 # full: 300 archs, 20-arch retest at 2 and 1 threads,
                                            # deployment (~25 min on 2 cores)
    python -m bench.profiler --sections deployment   # atb vs the deployed loops (~8 min)
    python -m bench.profiler --sections retest,pairs # protocol 4's repeatability (~10 min)
    python -m bench.profiler --quick         # a smoke run of every section

Everything is printed side by side in one run; nothing here asserts.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from atb.arch import BERT_BASE, Arch, get_space
from atb.devices import DeviceSetting, get_backend
from atb.profiler.lock import HostLock
from atb.profiler.onnx_graph import INPUT_NAMES, WeightPool, build_onnx, example_inputs, state_dict_weights
from atb.profiler.drift import corrected_rows
from atb.profiler.session import REFERENCE_ARCH
from atb.profiler.store import LatencyStore
from atb.profiler.timing import CAREFUL_RULE, TimingRule, measure, measure_group
from bench.common import ROOT, atb_profile, section
from bench.common import parser as bench_parser


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
        # the labels as the store gives them after both runs: under protocol 4 both share the
        # key's pooled anchor, which the first process could not know yet
        a, b = (stored_labels(ws, r["device_key"], r["run_id"]) for r in (first, second))

        def err(field: str) -> np.ndarray:
            x = np.array([a[k][field] for k in archs])
            y = np.array([b[k][field] for k in archs])
            return np.abs(x - y) / ((x + y) / 2)

        columns[threads] = {
            "raw latency": err("raw_ms"), "drift-corrected latency": err("latency_ms"),
            "speedup": err("speedup"),
            "shift": np.median([b[k]["raw_ms"] / a[k]["raw_ms"] for k in archs]),
            "noisy": np.mean([r["noisy"] for r in first["results"] + second["results"]]),
            "anchor": second["anchor"],
        }
    heads = "".join(f"{f't{t} median':>12}{f't{t} p90':>10}" for t in columns)
    print(f"{'':24}{heads}")
    for name in ("raw latency", "drift-corrected latency", "speedup"):
        cells = "".join(f"{100 * np.median(c[name]):11.2f}%{100 * np.percentile(c[name], 90):9.2f}%"
                        for c in columns.values())
        print(f"{name:24}{cells}")
    print(f"{'raw shift (p2 / p1)':24}" + "".join(f"{c['shift']:12.3f}{'':10}" for c in columns.values()))
    print(f"{'noisy labels':24}" + "".join(f"{100 * c['noisy']:11.0f}%{'':10}" for c in columns.values()))
    print(f"{'anchor runs apart':24}" + "".join(
        f"{100 * (c['anchor'] or {}).get('run_spread', float('nan')):11.2f}%{'':10}" for c in columns.values()))


def stored_labels(ws: Path, device_key: str, run_id: int) -> dict[str, dict]:
    """Arch -> the drift-corrected label of one run, read from the store now."""
    with LatencyStore.open(ws / "latency.sqlite", readonly=True) as store:
        return {r["arch"]: r for r in corrected_rows(store, device_key, run_id=run_id) if r["role"] == "requested"}


# the space's sizes, smallest to largest, with the models the issue measured the ORT bias on
DEPLOYMENT_ARCHS = ["1-128-512-2-128", "2-256-1024-4-256", "3-256-1024-4-256", "2-384-1536-6-384",
                    "4-512-2048-8-512", "6-512-2048-8-512", "8-640-2560-10-640"]


def deployed_runner(backend: str, graph: Path, threads: int):
    """``run()`` of the loop a user writes from the backend's documentation: ONNX Runtime's
    default session options with only the thread count set, ``session.run`` on numpy inputs;
    OpenVINO's ``PERFORMANCE_HINT=LATENCY`` with the thread count and f32 set (the hint alone
    would pick all cores and, on some CPUs, bf16), ``infer_request.infer(inputs)``."""
    feeds = example_inputs()
    if backend == "onnxruntime":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        return lambda: session.run(None, feeds)
    import openvino

    core = openvino.Core()
    compiled = core.compile_model(core.read_model(str(graph)), "CPU", {
        "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": str(threads), "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    return lambda: request.infer(feeds)


def block_times(run, seconds: float, min_runs: int = 3) -> list[float]:
    """Run times (s) of ``run`` in one block: two untimed runs, then at least ``min_runs``
    timed ones and ``seconds``."""
    run(), run()
    times, end = [], time.perf_counter() + seconds
    while len(times) < min_runs or time.perf_counter() < end:
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return times


def paired_medians(atb_run, deployed_run, rounds: int, block_s: float, fine: bool,
                   gap_s: float = 0.02) -> tuple[float, float]:
    """Median ms of atb's runner and the deployed loop of one model, timed alternately.

    ``fine``: in 30 ms bursts (``measure_group``), which cancels the VM's drift best. Otherwise
    in blocks (ABBA...) of two untimed runs, then runs for ``block_s`` (at least 3), then a
    pause of ``gap_s``: a default ORT session with several threads leaves its workers spinning
    after a run, which in 30 ms bursts would take the CPU from whatever runs next (measured
    20-55% at 2 threads), so there the two must not follow each other closely."""
    if fine:
        rule = TimingRule(min_runs=20, min_s=rounds * block_s, max_s=2 * rounds * block_s,
                          target_rel_se=0.002, max_runs=100_000)
        (a, b), _ = measure_group([atb_run, deployed_run], None, rule)
        return a.median_ms, b.median_ms
    times = ([], [])
    for r in range(rounds):
        for which in ((0, 1) if r % 2 == 0 else (1, 0)):
            times[which].extend(block_times((atb_run, deployed_run)[which], block_s))
            time.sleep(gap_s)
    return 1e3 * float(np.median(times[0])), 1e3 * float(np.median(times[1]))


def deployment(root: Path, archs: list[str], thread_counts: list[int], rounds: int, block_s: float) -> dict:
    """atb's speedups against each backend's deployed loop, for every backend and thread count.

    Drift moves a 2-vCPU VM by 10% within a second, so the configurations are compared pairwise:
    per model, atb's runner and the deployed loop alternate in blocks, giving the ratio
    r = atb / deployed of that model; the error of atb's speedup against the deployed one is then
    r(BERT-base) / r(model) - 1, free of the drift between models. Alternation is in 30 ms
    bursts, except for ONNX Runtime's default session at several threads (see
    :func:`paired_medians`)."""
    section(f"deployment: atb vs each backend's deployed loop, {len(archs)} archs, "
            f"alternating ({rounds} x {block_s} s each), one process")
    print("deployed = ONNX Runtime: default SessionOptions + intra_op_num_threads, session.run(None, feeds);")
    print("           OpenVINO: PERFORMANCE_HINT=LATENCY + INFERENCE_NUM_THREADS + f32, infer_request.infer(feeds)")
    print("atb/depl = raw latency ratio, paired; config err = atb's speedup / the deployed loop's - 1, paired;")
    print("label x  = the speedup atb-profile stores (own process, drift-corrected); label err = label x / depl x - 1")
    pool = WeightPool(root)
    models = [BERT_BASE] + [Arch.parse(a) for a in archs]
    graphs = {m: pool.save(build_onnx(m, weights=pool), f"deploy-{m}") for m in models}
    summary = {}
    for backend in ("onnxruntime", "openvino"):
        for threads in thread_counts:
            labels = atb_profile(sum((["--arch", a] for a in archs), []) + [
                "--backend", backend, "--threads", str(threads), "--workspace", str(root / f"deploy-{backend}-t{threads}")])
            label_speedup = {r["arch"]: r["speedup"] for r in labels["results"]}
            setting = DeviceSetting(backend=backend, threads=threads).resolve()
            spinning = backend == "onnxruntime" and threads > 1  # the default session's workers
            ms = {}
            with HostLock("bench.profiler deployment"):
                for m in models:
                    with get_backend(backend).load(m, graphs[m], setting, example_inputs()) as runner:
                        ms[m] = paired_medians(runner.run, deployed_runner(backend, graphs[m], threads), rounds,
                                               block_s, fine=not spinning)
            bert_atb, bert_deployed = ms[BERT_BASE]
            print(f"\n{backend}, {threads} thread{'s' if threads > 1 else ''}: BERT-base atb {bert_atb:.1f} ms, "
                  f"deployed {bert_deployed:.1f} ms ({100 * (bert_atb / bert_deployed - 1):+.1f}%)")
            print(f"{'arch':22} {'atb ms':>8} {'depl ms':>8} {'atb/depl':>9} {'atb x':>7} {'depl x':>7} "
                  f"{'config err':>10} {'label x':>8} {'label err':>9}")
            config_errors, label_errors = [], []
            for m in models[1:]:
                atb_ms, deployed_ms = ms[m]
                config_errors.append((bert_atb / bert_deployed) / (atb_ms / deployed_ms) - 1)
                deployed_x = bert_deployed / deployed_ms
                label = label_speedup.get(str(m), float("nan"))
                label_errors.append(label / deployed_x - 1)
                print(f"{str(m):22} {atb_ms:8.2f} {deployed_ms:8.2f} {atb_ms / deployed_ms:9.3f} "
                      f"{bert_atb / atb_ms:7.2f} {deployed_x:7.2f} {100 * config_errors[-1]:+9.1f}% "
                      f"{label:8.2f} {100 * label_errors[-1]:+8.1f}%")
            worst = (float(np.max(np.abs(config_errors))), float(np.max(np.abs(label_errors))))
            print(f"{'worst |error|':22} config {100 * worst[0]:.1f}%, label {100 * worst[1]:.1f}%")
            summary[(backend, threads)] = worst
    return summary


# the BERT rule (dqkv = dm, df = 4 dm, heads of 64) from small to mid-size
RULE_ARCHS = ["1-128-512-2-128", "2-256-1024-4-256", "4-512-2048-8-512", "6-512-2048-8-512"]


def deployed_loop_process(backend: str, graph_dir: Path, threads: int, models: list[str], rounds: int = 4,
                          block_s: float = 0.5) -> dict[str, float]:
    """Median ms of each model as a user's service times it: in its own process, the backend's
    deployed loop per model (:func:`deployed_runner`); the models alternate in blocks (after two
    untimed runs each) so that a drift of the machine during the process hits all of them."""
    runs = {m: deployed_runner(backend, graph_dir / f"{m}.onnx", threads) for m in models}
    times: dict[str, list[float]] = {m: [] for m in models}
    for r in range(rounds):
        for m in (models if r % 2 == 0 else models[::-1]):
            times[m].extend(block_times(runs[m], block_s))
            time.sleep(0.02)  # a default session's workers spin on after a run
    return {m: 1e3 * float(np.median(t)) for m, t in times.items()}


def process_pairs(root: Path, settings: list[tuple[str, int]], pairs: int, archs: list[str]) -> None:
    """atb's stored speedups against a deployed loop in another process, over process pairs.

    Each pair: one ``atb-profile --arch`` call (all pairs into one workspace, as a user's store
    grows) and one separate process running the deployed loop. Reported per arch: the stored
    label of each atb run (read from the store at the end: protocol 4 anchors them all on the
    key's pooled anchor), the deployed loop's speedup in each process, and their medians; the
    deployed loop's own spread between processes is the floor any label can be held to."""
    section(f"process pairs: atb labels vs the deployed loop in a separate process, {pairs} pairs per setting")
    graph_dir = root / "pairs-graphs"
    graph_dir.mkdir(parents=True, exist_ok=True)
    pool = WeightPool(graph_dir)  # graphs point into the pool next to them
    models = [str(BERT_BASE)] + archs
    for m in models:
        pool.save(build_onnx(Arch.parse(m), weights=pool), m)
    for backend, threads in settings:
        ws = root / f"pairs-{backend}-t{threads}"
        run_ids, deployed = [], []
        for _ in range(pairs):
            result = atb_profile(sum((["--arch", a] for a in archs), []) + [
                "--backend", backend, "--threads", str(threads), "--workspace", str(ws)])
            run_ids.append((result["device_key"], result["run_id"]))
            out = subprocess.run([sys.executable, "-m", "bench.profiler", "--deployed-loop", backend,
                                  str(graph_dir), str(threads), *models], capture_output=True, text=True,
                                  cwd=ROOT)
            if out.returncode:
                sys.exit(f"deployed loop failed: {out.stderr.strip()}")
            deployed.append(json.loads(out.stdout))
        stored = [stored_labels(ws, key, rid) for key, rid in run_ids]
        bert = [d[str(BERT_BASE)] for d in deployed]
        print(f"\n{backend}, {threads} thread{'s' if threads > 1 else ''}: deployed BERT-base per process (ms): "
              + " ".join(f"{b:.1f}" for b in bert) + f"  (max/min {max(bert) / min(bert):.3f})")
        print(f"{'arch':20} {'atb x per run':>34} {'deployed x per process':>40} {'atb med':>8} {'depl med':>8}"
              f" {'error':>7} {'depl spread':>11}")
        errors, spreads = [], []
        for a in archs:
            atb_x = np.array([s[a]["speedup"] for s in stored])
            depl_x = np.array([d[str(BERT_BASE)] / d[a] for d in deployed])
            error = np.median(atb_x) / np.median(depl_x) - 1
            spread = (depl_x.max() - depl_x.min()) / np.median(depl_x)
            errors.append(error)
            spreads.append(spread)
            print(f"{a:20} {' '.join(f'{x:5.2f}' for x in atb_x):>34} {' '.join(f'{x:5.2f}' for x in depl_x):>40} "
                  f"{np.median(atb_x):8.2f} {np.median(depl_x):8.2f} {100 * error:+6.1f}% {100 * spread:10.1f}%")
        print(f"worst |atb median / deployed median - 1| {100 * max(map(abs, errors)):.1f}%; the deployed loop's own "
              f"spread between processes (max - min) / median: {100 * min(spreads):.1f}-{100 * max(spreads):.1f}%")


def block_median_ms(run, seconds: float) -> float:
    """Median ms of ``run`` in one steady block."""
    return 1e3 * float(np.median(block_times(run, seconds)))


def bursts_vs_blocks(root: Path, backends: list[str], reps: int, arch: str = "2-256-1024-4-256") -> None:
    """One arch's speedup as atb times it (BERT-base under the careful rule, the arch under the
    default rule, each with the reference in short bursts) against steady blocks, in one
    process: what interleaving itself does to a speedup, per backend."""
    section(f"bursts vs blocks: {arch}'s speedup over BERT-base, atb's interleaving against steady blocks, 1 thread")
    pool = WeightPool(root)
    models = (BERT_BASE, REFERENCE_ARCH, Arch.parse(arch))
    graphs = {m: pool.save(build_onnx(m, weights=pool), f"bursts-{m}") for m in models}
    with HostLock("bench.profiler bursts"):
        for backend in backends:
            setting = DeviceSetting(backend=backend, threads=1).resolve()
            runners = {m: get_backend(backend).load(m, graphs[m], setting, example_inputs()) for m in models}
            bert, ref, small = (runners[m].run for m in models)
            for rep in range(reps):
                b, r, a = block_median_ms(bert, 2.0), block_median_ms(ref, 1.0), block_median_ms(small, 1.0)
                rng = np.random.default_rng(rep)
                (mb,), rb = measure_group([bert], ref, CAREFUL_RULE, rng)
                (ma,), ra = measure_group([small], ref, TimingRule(), rng)
                interleaved = (mb.median_ms / rb.median_ms) / (ma.median_ms / ra.median_ms)
                print(f"{backend:12} rep {rep}: blocks {b / a:6.2f}x (BERT/ref {b / r:5.2f}, arch/ref {a / r:.3f}) | "
                      f"atb-style {interleaved:6.2f}x (BERT/ref {mb.median_ms / rb.median_ms:5.2f}, arch/ref "
                      f"{ma.median_ms / ra.median_ms:.3f}) -> {100 * (interleaved / (b / a) - 1):+.1f}%")
            for runner in runners.values():
                runner.close()


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
    p = bench_parser("bench.profiler", __doc__)
    p.add_argument("--quick", action="store_true", help="tiny sizes: check that every section runs")
    p.add_argument("--archs", type=int, default=300, help="archs for the throughput section")
    p.add_argument("--retest", type=int, default=20, help="archs for the test-retest section")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--retest-threads", default="2,1",
                   help="comma-separated thread counts for the test-retest section (default: 2,1)")
    p.add_argument("--deployment-threads", default="1,2",
                   help="comma-separated thread counts for the deployment section (default: 1,2)")
    p.add_argument("--rounds", type=int, default=10, help="alternating blocks per configuration in the deployment section")
    p.add_argument("--pairs", type=int, default=6, help="process pairs per setting (section pairs)")
    p.add_argument("--pairs-settings", default="onnxruntime:1,onnxruntime:2,openvino:1",
                   help="BACKEND:THREADS,... for the pairs section")
    p.add_argument("--sections", default="throughput,retest,deployment,pairs,bursts,benchmark_app,export",
                   help="comma-separated subset of: throughput, retest, deployment, pairs, bursts, benchmark_app, "
                        "export")
    p.add_argument("--deployed-loop", nargs="+", metavar="ARG", help=argparse.SUPPRESS)  # BACKEND GRAPHS THREADS MODEL...
    args = p.parse_args()
    if args.deployed_loop:  # one process of the pairs section
        backend, graphs, threads, *models = args.deployed_loop
        print(json.dumps(deployed_loop_process(backend, Path(graphs), int(threads), models)))
        return
    sections = set(args.sections.split(","))
    n, k, secs, rounds = (args.archs, args.retest, 5, 3) if not args.quick else (6, 4, 2, 1)
    root = Path(tempfile.mkdtemp(prefix="atb-bench-"))
    print(f"workspaces under {root}")
    if "throughput" in sections:
        throughput(root, n, args.threads)
    if "retest" in sections:
        retest(root, k, [int(t) for t in args.retest_threads.split(',')])
    if "deployment" in sections:
        deployment(root, DEPLOYMENT_ARCHS if not args.quick else DEPLOYMENT_ARCHS[:2],
                   [int(t) for t in args.deployment_threads.split(",")],
                   args.rounds if not args.quick else 1, 0.25 if not args.quick else 0.01)
    if "pairs" in sections:
        settings = [(b, int(t)) for b, t in (item.split(":") for item in args.pairs_settings.split(","))]
        process_pairs(root, settings, args.pairs if not args.quick else 2, RULE_ARCHS if not args.quick else RULE_ARCHS[:1])
    if "bursts" in sections:
        bursts_vs_blocks(root, ["openvino", "onnxruntime"], 3 if not args.quick else 1)
    with HostLock("bench.profiler"):  # the sections below time in this process
        if "benchmark_app" in sections:
            benchmark_app(root, args.threads, secs, rounds)
        if "export" in sections:
            export_parity(args.threads, ["4-512-2048-8-512", "2-256-1024-4-256", "6-768-3072-12-768"][: 3 if not args.quick else 1], 4.0 if not args.quick else 0.2)


if __name__ == "__main__":
    main()
