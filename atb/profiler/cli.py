"""atb-profile: time sampled (or given) architectures on this CPU into the workspace store.

    atb-profile --device cpu --samples 10000            # the store ends up with 10000 samples
    atb-profile --device cpu --samples auto              # until the predictor stops improving
    atb-profile --device cpu --arch 5-564-1054-8-512     # time given archs (any shape)
    atb-profile export --workspace DIR -o labels.csv     # drift-corrected labels as CSV

An entry point (docs/architecture.md, "Layer order"): it may import atb.compose.
"""

from __future__ import annotations

import sys
from dataclasses import replace

from atb import cli
from atb.profiler.repeatability import report_warning

EPILOG = """Labels are drift-corrected: archs are timed in small groups, in short bursts
alternating with a reference model, so every run is compared with the machine's state at that
moment. BERT-base is timed the same way at both ends of a run and every minute, and pooled over
the device key's runs into one anchor: every latency is also a speedup over BERT-base. A few
archs of earlier runs are re-timed in every run of 50 archs or more, and the summary says how
well labels repeat (docs/protocol.md)."""


def add_setting_options(p, threads_default: str) -> None:
    """What is timed and how it is sampled: shared with ``atb-fleet profile``."""
    from atb.devices.setting import BACKENDS, PRECISIONS

    p.add_argument("--backend", default="onnxruntime", choices=BACKENDS)
    p.add_argument("--threads", type=cli.positive_int, default=None,
                   help=f"intra-op threads (default: {threads_default})")
    p.add_argument("--precision", default="fp32", choices=PRECISIONS,
                   help="fp32 (default); bf16 (openvino, CPUs with bf16); int8: onnxruntime "
                        "times dynamic quantization, openvino a static QDQ graph (docs/protocol.md, INT8)")
    p.add_argument("--space", default="pretrain", choices=["pretrain", "kd"])
    p.add_argument("--super", dest="super_config", default="base", metavar="SUPER",
                   help="sample the space of this super-configuration: base (the paper's, "
                        "default), small, minilm, or an arch lt-dm-df-h-dqkv")
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--seed", type=cli.seed_int, default=0)


def config_from_args(args, samples: int | str | None = None, archs: list | None = None,
                     strategy: str = "uniform", max_samples: int | None = None):
    """The ``ProfileConfig`` of :func:`add_setting_options`' flags and what to time (the one
    place ``atb-profile`` and ``atb-fleet profile`` turn their flags into a config)."""
    from atb.devices import DeviceSetting
    from atb.profiler.api import ProfileConfig

    setting = DeviceSetting(device=getattr(args, "device", "cpu"), backend=args.backend,
                            threads=args.threads or 0, precision=args.precision,
                            seq_len=args.seq_len)
    config = ProfileConfig(setting, samples=samples, archs=archs, space=args.space,
                           super_config=args.super_config, seed=args.seed, strategy=strategy)
    return replace(config, max_samples=max_samples) if max_samples else config


def build_parser():
    p = cli.make_parser("atb-profile", __doc__.split("\n\n")[0])
    p.epilog = EPILOG
    p.add_argument("--device", default="cpu", choices=["cpu"], help="where to time (default: cpu)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--samples", type=cli.count_or_auto, metavar="N|auto",
                      help="make the store hold N sampled archs for this device key (resumes); auto: "
                           "until more labels no longer improve the latency predictor")
    p.add_argument("--max-samples", type=cli.positive_int, default=None, metavar="N",
                   help="the most sampled archs --samples auto lets the store hold (default: 10000)")
    what.add_argument("--arch", action="append", metavar="ARCH",
                      help="time this arch (lt-dm-df-h-dqkv); repeat for several")
    add_setting_options(p, threads_default="physical cores")
    p.add_argument("--strategy", default="uniform", choices=["uniform", "uncertainty"],
                   help="uncertainty: sample where the latency predictor is least sure")
    cli.add_common(p)
    return p


def build_export_parser():
    p = cli.make_parser("atb-profile export", "Write drift-corrected labels to CSV.")
    p.add_argument("-o", "--output", required=True, metavar="FILE.csv")
    p.add_argument("--device-key", default=None, help="only this device key (default: all)")
    cli.add_common(p)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["export"]:
        return _export(build_export_parser().parse_args(argv[1:]))
    parser = build_parser()
    args = parser.parse_args(argv)
    cli.configure(args)
    if args.samples is None and not args.arch:
        parser.error("nothing to time: give --samples N or --arch ARCH")
    if args.max_samples is not None and args.samples != "auto":
        parser.error("--max-samples goes with --samples auto")

    def body() -> int:
        from atb.arch import Arch
        from atb.compose import profile  # hands the predictor's ranking to --strategy uncertainty

        archs = [Arch.parse(a) for a in args.arch] if args.arch else None
        config = config_from_args(args, args.samples, archs, args.strategy, args.max_samples)
        report = profile(config, args.workspace)
        if args.json:
            cli.print_json(report.to_dict())
        else:
            _print_summary(report)
        if args.arch:  # nothing the user asked for measured: exit 2 (a sampled run goes on)
            report.require_measured()
        if warning := report_warning(report):
            print(warning, file=sys.stderr)
        return 0

    return cli.run("atb-profile", body)


def _export(args) -> int:
    cli.configure(args)

    def body() -> int:
        from atb.profiler.api import export_csv

        result = export_csv(args.workspace, args.output, args.device_key)
        if args.json:
            cli.print_json(result)
        else:
            print(f"wrote {result['rows']} labels of {len(result['device_keys'])} device key(s) to {result['path']}")
        return 0

    return cli.run("atb-profile export", body)


def _sig(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}g}" if abs(x) < 10 ** digits else f"{x:.0f}"


def _print_summary(report) -> None:
    stats = report.stats
    setting = report.setting
    print(f"device key     {report.device_key}")
    scheme = f" ({setting.quant_scheme} quantization, docs/protocol.md INT8)" if setting.quant_scheme else ""
    print(f"precision      {setting.precision}{scheme}; speedups are over BERT-base in {setting.precision}")
    print(f"BERT-base      {_sig(report.bert_base_ms, 4)} ms (drift-corrected)")
    print(f"timed now      {report.new} archs" + (f", {len(report.failed)} failed" if report.failed else ""))
    print(f"store holds    {report.total} sampled archs for this key")
    if stats:
        print(f"wall time      {stats['wall_s']:.1f} s, overhead ratio {stats['overhead_ratio']:.2f} "
              f"(wall / timed inference), {stats['archs_per_hour']:.0f} archs/hour")
    if report.anchor:
        a = report.anchor
        print(f"anchor         BERT-base/reference {a['bert_base_over_reference']:.3f} "
              f"[{a['ci95'][0]:.3f}, {a['ci95'][1]:.3f}] from {a['points']} points in {a['runs']} run(s): "
              f"every speedup shares ±{100 * a['rel_halfwidth']:.1f}%")
    for name, rep in (("this run", report.repeatability), ("this key", report.key_repeatability)):
        if rep:
            print(f"repeatability  {name}: {100 * rep['median']:.1f}% median, {100 * rep['p90']:.1f}% p90 "
                  f"speedup difference, {rep['n']} re-timed archs ({rep['scope']})")
    if report.auto:
        print(f"samples auto   stopped: {report.auto['reason']}")
    if not report.results:
        return
    shown = sorted(report.results, key=lambda r: -(r.speedup or 0))
    limit = 20
    rows = [{
        "arch": str(r.arch),
        "ms": _sig(r.latency_ms) + ("*" if r.noisy else ""),
        "raw": _sig(r.raw_ms),
        "speedup": _sig(r.speedup),
        "runs": r.runs,
        "error": r.error or "",
    } for r in shown[:limit]]
    print()
    cli.print_table(rows, [("arch", "arch"), ("ms", "latency ms"), ("raw", "raw ms"),
                           ("speedup", "speedup"), ("runs", "runs"), ("error", "")])
    if len(shown) > limit:
        print(f"... {len(shown) - limit} more (atb-profile export -o FILE.csv has them all)")
    if any(r.noisy for r in report.results):
        print("* noisy: IQR above 5% of the median")


if __name__ == "__main__":
    raise SystemExit(main())
