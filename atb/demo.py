"""atb-demo: the main job on a small default, end to end, in a throw-away workspace."""

from __future__ import annotations

import logging
import time

from atb import cli

log = logging.getLogger("atb.demo")


def run_demo(workspace: str, samples: int) -> dict:
    """Profile ``samples`` archs and summarise them (later stages join as they land)."""
    from atb.profiler import profile

    t0 = time.perf_counter()
    log.info("[1] profiling %d sampled archs (onnxruntime, all cores, 128 tokens)...", samples)
    report = profile(workspace, samples=samples)
    return {"workspace": workspace, "profile": report.to_dict(), "wall_s": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    p = cli.make_parser("atb-demo", __doc__)
    p.add_argument("--workspace", default="atb-demo-workspace", metavar="DIR")
    p.add_argument("--samples", type=int, default=100, help="archs to profile (default: 100)")
    p.add_argument("--json", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    cli.configure(args)

    def body() -> int:
        result = run_demo(args.workspace, args.samples)
        if args.json:
            cli.print_json(result)
            return 0
        from atb.profiler.cli import _print_summary
        from atb.profiler.session import ProfileReport  # noqa: F401  (for readers: the type shown)

        prof = result["profile"]
        print(f"profiled {prof['new']} new archs; the store holds {prof['total']} "
              f"(device key {prof['device_key']}); BERT-base {prof['bert_base_ms']:.1f} ms")
        print(f"workspace: {result['workspace']} (atb-profile export -o labels.csv --workspace "
              f"{result['workspace']})")
        print(f"demo took {result['wall_s']:.0f} s")
        del _print_summary
        return 0

    return cli.run("atb-demo", body)


if __name__ == "__main__":
    raise SystemExit(main())
