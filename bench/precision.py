"""INT8 against fp32 on ONNX Runtime and OpenVINO: latency per arch, how the INT8 gain varies
with width and depth, profiling throughput, and the 15x search under each precision. Prints
measured figures side by side; asserts nothing.

Run it on an idle machine:

    python -m bench.precision                        # latency + dims: 25 archs, both backends, 1 thread
    python -m bench.precision --sections latency,dims,throughput --throughput-archs 200
    python -m bench.precision --sections search --workspace WS   # WS: supernet + fp32 and int8 predictors
    python -m bench.precision --quick                # smoke: 4 archs, short rule, tiny throughput run
    python -m bench.precision --json                 # one JSON object on stdout

Sections:
  latency     every arch and BERT-base built four ways (ORT fp32, ORT int8 = dynamic, OpenVINO
              fp32, OpenVINO int8 = static QDQ) and loaded together; the four are timed
              interleaved with the profiler's reference model (atb.profiler.timing.measure_group),
              so the INT8 gain fp32/int8 of one arch is a ratio of one time window, free of drift
              between archs; each median is divided by the reference's to compare archs. Prints
              per arch the INT8 gain and its speedups over BERT-base in the same precision (what
              an INT8 label stores) and over fp32 BERT-base.
  dims        the INT8 gain grouped by dm, lt and df/dm (median per level), from the latency data.
  throughput  `atb-profile --samples N` once in fp32 and once in int8 per backend, same N, fresh
              workspaces: archs per hour (target: int8 within 1.2x of fp32).
  search      `atb.search.run_search` at --target (15) under the fp32 key and the int8 key of
              the same backend and threads (the workspace needs a supernet and both keys'
              labels or predictors); each result is then re-measured under the other key:
              do the precisions pick different archs, and what does each pick give in the other?

Predictor accuracy on INT8 labels and fp32 -> INT8 transfer reuse bench.predictor:

    atb-profile --samples 2000 --precision int8 --threads 1 --workspace ws-int8
    atb-profile export --workspace ws-int8 -o int8-ort-t1.csv
    python -m bench.predictor --data int8-ort-t1.csv --transfer-data '' --sections models
    python -m bench.predictor --data data/reference-ort-t1.csv --transfer-data int8-ort-t1.csv \\
        --sections models,transfer          # fp32 predictor -> INT8 key from 10..200 (50) samples

(targets, issue 13: held-out speedup MAPE <= 3%, within +-10% >= 98%; transfer from 50 samples
within +-10% >= 95%). The same with --backend openvino for the QDQ scheme.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from atb.arch import BERT_BASE, Arch
from atb.devices import DeviceSetting, device_key_for, get_backend
from atb.devices.quantization import scheme_for
from atb.profiler.lock import HostLock
from atb.profiler.onnx_graph import WeightPool, example_inputs, graph_for
from atb.profiler.session import REFERENCE_ARCH
from atb.profiler.timing import CAREFUL_RULE, DEFAULT_RULE, SMOKE_RULE, measure_group
from bench.common import atb_profile
from bench.common import parser as bench_parser

BACKENDS = ("onnxruntime", "openvino")
PRECISIONS = ("fp32", "int8")
VARIANTS = [(b, p) for b in BACKENDS for p in PRECISIONS]
LTS, DMS, DF_RATIOS = (1, 2, 4, 8, 12), (128, 256, 384, 512, 768), (1, 2, 4)
QUIET = False  # --json: tables go to stderr


def say(*args, **kwargs) -> None:
    print(*args, **kwargs, file=sys.stderr if QUIET else sys.stdout, flush=True)


def section(title: str) -> None:
    say(f"\n== {title} ==")


def grid_archs(n: int) -> list[Arch]:
    """Up to 25 archs over lt x dm, df/dm cycling so that every lt and every dm level sees
    every ratio; heads of 64 (BERT's), dqkv = dm. The first ``n`` of a seeded order."""
    archs = [Arch(lt, dm, DF_RATIOS[(i + j) % 3] * dm, dm // 64, dm)
             for i, lt in enumerate(LTS) for j, dm in enumerate(DMS)]
    order = np.random.default_rng(0).permutation(len(archs))
    return [archs[k] for k in order[:n]]


# -- latency ------------------------------------------------------------------------------
def _settings(threads: int) -> dict[tuple[str, str], DeviceSetting]:
    return {(b, p): DeviceSetting(backend=b, threads=threads, precision=p).resolve() for b, p in VARIANTS}


def _time_four(arch: Arch, settings, pool: WeightPool, reference, rule, rng) -> dict[tuple[str, str], float]:
    """The four variants of ``arch`` timed together with the reference; each median divided by
    the reference's median of the same group (a drift-free relative latency)."""
    inputs = example_inputs()
    with contextlib.ExitStack() as stack:
        runners = {}
        for variant, setting in settings.items():
            graph = pool.save(graph_for(arch, setting, pool), f"precision-{arch}-{variant[0]}-{variant[1]}")
            runners[variant] = stack.enter_context(get_backend(variant[0]).load(arch, graph, setting, inputs))
            graph.unlink()
        results, ref = measure_group([r.run for r in runners.values()], reference.run, rule, rng)
    return {v: (m.median_ms, m.median_ms / ref.median_ms) for v, m in zip(runners, results)}


def latency(archs: list[Arch], threads: int, rule, careful) -> dict:
    section(f"latency: fp32 vs int8, {len(archs)} archs + BERT-base, ONNX Runtime and OpenVINO, "
            f"{threads} thread{'s' if threads > 1 else ''}, interleaved with {REFERENCE_ARCH}")
    for b in BACKENDS:
        say(f"int8 on {b}: {scheme_for(b).name} - {scheme_for(b).description}")
    settings = _settings(threads)
    pool, rng = WeightPool(), np.random.default_rng(0)
    ref_setting = DeviceSetting(backend="onnxruntime", threads=threads).resolve()
    ref_graph = pool.save(graph_for(REFERENCE_ARCH, ref_setting, pool), "precision-reference")
    rows = []
    with HostLock("bench.precision"), \
            get_backend("onnxruntime").load(REFERENCE_ARCH, ref_graph, ref_setting, example_inputs()) as reference:
        ref_graph.unlink()  # the runtime holds the model now
        bert = _time_four(BERT_BASE, settings, pool, reference, careful, rng)
        for k, arch in enumerate(archs):
            say(f"  [{k + 1}/{len(archs)}] {arch}", end="\r")
            rows.append((arch, _time_four(arch, settings, pool, reference, rule, rng)))
        bert_end = _time_four(BERT_BASE, settings, pool, reference, careful, rng)
    bert_rel = {v: (bert[v][1] + bert_end[v][1]) / 2 for v in VARIANTS}  # both ends, as the profiler

    say(f"\nBERT-base ms: " + ", ".join(f"{b} {p} {bert[(b, p)][0]:.1f}" for b, p in VARIANTS)
        + "  (first visit)")
    for b in BACKENDS:
        say(f"BERT-base int8 gain on {b}: {bert_rel[(b, 'fp32')] / bert_rel[(b, 'int8')]:.2f}x")
    out = []
    for b in BACKENDS:
        say(f"\n{b} (int8 = {scheme_for(b).name}); gain = fp32 ms / int8 ms of the same arch, paired; "
            "x = speedup over BERT-base")
        say(f"{'arch':22} {'fp32 ms':>8} {'int8 ms':>8} {'gain':>6} {'fp32 x':>7} {'int8 x':>7} "
            f"{'int8 x / fp32 bert':>18}")
        for arch, t in rows:
            fp32_ms, fp32_rel = t[(b, "fp32")]
            int8_ms, int8_rel = t[(b, "int8")]
            row = {"arch": str(arch), "backend": b, "scheme": scheme_for(b).name, "lt": arch.lt, "dm": arch.dm,
                   "df": arch.df, "fp32_ms": fp32_ms, "int8_ms": int8_ms, "int8_gain": fp32_rel / int8_rel,
                   "fp32_speedup": bert_rel[(b, "fp32")] / fp32_rel,
                   "int8_speedup": bert_rel[(b, "int8")] / int8_rel,
                   "int8_speedup_over_fp32_bert": bert_rel[(b, "fp32")] / int8_rel}
            out.append(row)
            say(f"{row['arch']:22} {fp32_ms:8.2f} {int8_ms:8.2f} {row['int8_gain']:6.2f} "
                f"{row['fp32_speedup']:7.2f} {row['int8_speedup']:7.2f} {row['int8_speedup_over_fp32_bert']:18.2f}")
        gains = [r["int8_gain"] for r in out if r["backend"] == b]
        say(f"{'median gain':22} {np.median(gains):.2f}x (range {min(gains):.2f}-{max(gains):.2f})")
    return {"threads": threads, "bert_base": {f"{b}-{p}": {"ms": bert[(b, p)][0], "relative": bert_rel[(b, p)]}
                                             for b, p in VARIANTS},
            "bert_base_int8_gain": {b: bert_rel[(b, "fp32")] / bert_rel[(b, "int8")] for b in BACKENDS},
            "archs": out}


def dims(rows: list[dict]) -> dict:
    section("dims: median INT8 gain (fp32 ms / int8 ms) per level of dm, lt and df/dm")
    table = {}
    for name, key in (("dm", lambda r: r["dm"]), ("lt", lambda r: r["lt"]), ("df/dm", lambda r: r["df"] // r["dm"])):
        levels = sorted({key(r) for r in rows})
        say(f"{name:>6} " + " ".join(f"{lv:>7}" for lv in levels))
        for b in BACKENDS:
            medians = {lv: float(np.median([r["int8_gain"] for r in rows if r["backend"] == b and key(r) == lv]))
                       for lv in levels}
            table.setdefault(name, {})[b] = medians
            say(f"{b[:6]:>6} " + " ".join(f"{medians[lv]:7.2f}" for lv in levels))
    return table


# -- throughput ---------------------------------------------------------------------------
def throughput(root: Path, n: int, threads: int, quick: bool = False) -> dict:
    section(f"throughput: atb-profile --samples {n}, fp32 then int8, per backend, {threads} thread(s)")
    say(f"{'backend':12} {'precision':9} {'archs':>5} {'wall s':>7} {'setup s':>7} {'archs/h':>8}")
    result = {}
    for b in BACKENDS:
        for p in PRECISIONS:
            t0 = time.perf_counter()
            report = atb_profile(["--samples", str(n), "--threads", str(threads), "--backend", b,
                                  "--precision", p, "--workspace", str(root / f"tp-{b}-{p}")], smoke=quick)
            wall = time.perf_counter() - t0
            per_hour = 3600 * report["new"] / wall
            result[f"{b}-{p}"] = {"archs": report["new"], "process_wall_s": wall, "archs_per_hour": per_hour,
                                  "setup_s": report["stats"]["setup_s"], "device_key": report["device_key"]}
            say(f"{b:12} {p:9} {report['new']:5d} {wall:7.1f} {report['stats']['setup_s']:7.1f} {per_hour:8.0f}")
        ratio = result[f"{b}-fp32"]["archs_per_hour"] / result[f"{b}-int8"]["archs_per_hour"]
        result[f"{b}-fp32_over_int8"] = ratio
        say(f"{b}: fp32 / int8 archs per hour = {ratio:.2f} (target <= 1.2)")
    return result


# -- search -------------------------------------------------------------------------------
def search(workspace: str, target: float, backend: str, threads: int, seed: int) -> dict:
    from atb.compose import search_measure, search_ports
    from atb.search import SearchConfig, run_search
    from atb.workspace import Workspace

    section(f"search: {target:g}x under fp32 and under int8 ({backend}, {threads} thread(s)), "
            "each pick re-measured in the other precision")
    ws = Workspace.resolve(workspace)
    keys = {p: device_key_for(backend, threads=threads, precision=p) for p in PRECISIONS}
    picks = {}
    for p, key in keys.items():
        config = SearchConfig(targets=target, seed=seed, device_key=key)
        result = run_search(config, ws, search_ports(config, ws), run_name=f"precision-{p}-{target:g}x")
        best = result.best
        picks[p] = {"key": key, "arch": str(best.arch) if best else None, "fitness": best.fitness if best else None,
                    "predicted_speedup": best.predicted_speedup if best else None,
                    "measured_speedup": best.measured_speedup if best else None}
    for p, other in (("fp32", "int8"), ("int8", "fp32")):
        if picks[p]["arch"]:
            picks[p][f"measured_speedup_in_{other}"] = search_measure(ws, keys[other])([Arch.parse(picks[p]["arch"])])[0]
    say(f"{'searched in':12} {'arch':22} {'fitness':>8} {'pred x':>7} {'own x':>7} {'other x':>8}")
    for p, other in (("fp32", "int8"), ("int8", "fp32")):
        r = picks[p]
        fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        say(f"{p:12} {str(r['arch']):22} {fmt(r['fitness']):>8} {fmt(r['predicted_speedup']):>7} "
            f"{fmt(r['measured_speedup']):>7} {fmt(r.get(f'measured_speedup_in_{other}')):>8}")
    picks["different_archs"] = picks["fp32"]["arch"] != picks["int8"]["arch"]
    say(f"different archs: {picks['different_archs']}")
    return picks


def main() -> None:
    global QUIET
    p = bench_parser("bench.precision", __doc__)
    p.add_argument("--sections", default="latency,dims", help="comma-separated: latency,dims,throughput,search")
    p.add_argument("--archs", type=int, default=25, help="archs of the latency section (at most 25)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--throughput-archs", type=int, default=100, help="--samples of each throughput run")
    p.add_argument("--workspace", default=None, help="search section: workspace with supernet and both keys")
    p.add_argument("--target", type=float, default=15.0, help="search section: target speedup")
    p.add_argument("--backend", default="onnxruntime", choices=BACKENDS, help="search section: backend")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="smoke: 4 archs, the smoke rule, 4-arch throughput")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout (tables on stderr)")
    args = p.parse_args()
    QUIET = args.json
    sections = set(args.sections.split(","))
    if "dims" in sections:
        sections.add("latency")
    rule, careful = (SMOKE_RULE, SMOKE_RULE) if args.quick else (DEFAULT_RULE, CAREFUL_RULE)
    report: dict = {"quick": args.quick}
    if "latency" in sections:
        report["latency"] = latency(grid_archs(4 if args.quick else args.archs), args.threads, rule, careful)
        report["dims"] = dims(report["latency"]["archs"])
    if "throughput" in sections:
        with tempfile.TemporaryDirectory() as root:
            report["throughput"] = throughput(Path(root), 4 if args.quick else args.throughput_archs, args.threads,
                                              args.quick)
    if "search" in sections:
        if not args.workspace:
            sys.exit("bench.precision: the search section needs --workspace (supernet, fp32 and int8 labels)")
        report["search"] = search(args.workspace, args.target, args.backend, args.threads, args.seed)
    if args.json:
        print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
