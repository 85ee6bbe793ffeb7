"""atb-fleet: profile every target node of a Ray cluster into one workspace store.

    atb-fleet profile --address HEAD:6379 --samples 2000 --threads 1   # N archs per device key
    atb-fleet status --address HEAD:6379                               # nodes, keys, counts
    atb-plot devices --workspace ws                                    # the same archs across devices

Run it on a node of the cluster (the head, usually): the workspace store lives there, and each
target node (``ray start ... --resources '{"atb-target": 1}'``) times under its own device key.
Re-running the same command resumes every key. Needs Ray: pip install 'atb[fleet]'.

An entry point (docs/architecture.md, "Layer order"); also gives atb-plot its ``devices``
sub-command (add_plot_subcommand).
"""

from __future__ import annotations

import argparse
import os
import sys

from atb import cli

PROG = "atb-fleet"


def _add_cluster_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address", default=os.environ.get("RAY_ADDRESS") or None, metavar="HOST:PORT",
                   help="the head node's address, as ray start --head prints it, or 'auto' "
                        "(default: $RAY_ADDRESS)")
    p.add_argument("--resource", default=None, metavar="NAME",
                   help="the custom resource that marks a target node (default: atb-target)")


def build_parser() -> argparse.ArgumentParser:
    from atb.profiler.cli import add_setting_options

    parser = cli.make_parser(PROG, __doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1])
    sub = parser.add_subparsers(dest="command", metavar="{profile,status}", required=True)

    p = sub.add_parser("profile", help="time N sampled archs per device key on every target node")
    _add_cluster_options(p)
    p.add_argument("--samples", type=int, metavar="N", required=True,
                   help="make the store hold N sampled archs for each node's device key (resumes)")
    add_setting_options(p, threads_default="each node's physical cores")
    cli.add_common(p)

    p = sub.add_parser("status", help="the store's nodes, device keys and counts; alive nodes with --address")
    _add_cluster_options(p)
    cli.add_common(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cli.configure(args)

    def body() -> int:
        from atb.fleet.cluster import import_ray

        import_ray()  # one line naming the extra when Ray is missing
        return COMMANDS[args.command](args)

    return cli.run(PROG, body)


def _cluster(args):
    """The :class:`~atb.fleet.cluster.FleetCluster` of ``--address`` and ``--resource``."""
    from atb.fleet.cluster import DEFAULT_RESOURCE, FleetCluster

    return FleetCluster(address=args.address, resource=args.resource or DEFAULT_RESOURCE)


def cmd_profile(args) -> int:
    from atb.fleet.driver import profile_fleet
    from atb.profiler.cli import config_from_args

    report = profile_fleet(config_from_args(args, args.samples), args.workspace, _cluster(args))
    if args.json:
        cli.print_json(report.to_dict())
    else:
        _print_profile(report)
    for node in report.lost:
        print(f"note: node {node.name} stopped: {node.error}; the groups it committed are kept", file=sys.stderr)
    if report.untimed:
        print("note: " + ", ".join(f"{n} archs of {k}" for k, n in report.untimed.items())
              + " still untimed; run the same command again to continue", file=sys.stderr)
    return 0


def _print_profile(report) -> None:
    rows = [{"node": n.name, "host": n.hostname, "key": n.device_key or "-",
             "state": n.state, "timed": n.timed, "failed": n.failed,
             "total": report.totals.get(n.device_key, "-") if n.device_key else "-"} for n in report.nodes]
    cli.print_table(rows, [("node", "node"), ("host", "host"), ("key", "device key"), ("state", "state"),
                           ("timed", "timed now"), ("failed", "failed"), ("total", "store holds")])
    stats = report.stats
    if stats.get("groups"):
        print(f"\n{stats['groups']} groups committed; driver {1e3 * stats['driver_s'] / stats['groups']:.1f} ms "
              f"per group ({100 * stats['driver_overhead']:.2f}% of the groups' timing time)")


def cmd_status(args) -> int:
    from atb.fleet.status import fleet_status

    cluster = _cluster(args)
    status = fleet_status(args.workspace, address=cluster.address, resource=cluster.resource)
    if args.json:
        cli.print_json(status)
        return 0
    alive = {True: "yes", False: "no", None: "-"}
    cli.print_table([{"name": r["name"], "host": r["hostname"], "ip": r["ip"], "alive": alive[r["alive"]],
                      "key": r["device_key"] or "(nothing timed yet)", "runs": r["runs"]} for r in status["nodes"]],
                    [("name", "node"), ("host", "host"), ("ip", "ip"), ("alive", "alive"), ("key", "device key"),
                     ("runs", "runs")])
    print()
    cli.print_table([{**k} for k in status["keys"]],
                    [("device_key", "device key"), ("sampled", "sampled archs"), ("labels", "labels"),
                     ("failed", "failed")])
    return 0


COMMANDS = {"profile": cmd_profile, "status": cmd_status}


# -- atb-plot devices ---------------------------------------------------------------------
def cmd_plot(args) -> dict:
    """Body of ``atb-plot devices``; returns :func:`~atb.fleet.plots.plot_devices`'s dict."""
    from atb.fleet.plots import plot_devices

    return plot_devices(args.workspace, args.output, args.device_key, args.sort_by, speedup=args.speedup)


def add_plot_subcommand(subparsers) -> None:
    """Register ``atb-plot devices`` (called by :mod:`atb.plot_cli`); needs no Ray."""
    p = subparsers.add_parser("devices", help="latency of the same archs across device keys")
    cli.add_common(p)
    p.add_argument("--device-key", action="append", metavar="K",
                   help="plot this key; repeat for several (default: every key of the store)")
    p.add_argument("--sort-by", metavar="K", help="order the archs by this key's labels (default: the first)")
    p.add_argument("--speedup", action="store_true", help="speedup over BERT-base instead of latency in ms")
    p.add_argument("-o", "--output", metavar="FILE.png",
                   help="output PNG (default: workspace plots/devices[-speedup].png)")
    p.set_defaults(func=cmd_plot)


if __name__ == "__main__":
    raise SystemExit(main())
