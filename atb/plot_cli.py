"""atb-plot: figures from a workspace.

``atb-plot predictor ...`` (parity plot, registered by ``atb.predictor.cli``), ``atb-plot
pareto ...`` (Pareto fronts, registered by ``atb.search.cli``) and ``atb-plot devices ...`` (the
same archs across device keys, registered by ``atb.fleet.cli``). Each package's CLI adds its own
sub-command through ``add_plot_subcommand(subparsers)``; the chosen one runs
``args.func(args) -> dict``, whose result is printed as JSON under ``--json`` or as a line
naming the written files.
"""

from __future__ import annotations

from atb import cli
from atb.fleet.cli import add_plot_subcommand as add_devices_plot
from atb.predictor.cli import add_plot_subcommand as add_predictor_plot
from atb.search.cli import add_plot_subcommand as add_pareto_plot


def main(argv: list[str] | None = None) -> int:
    parser = cli.make_parser("atb-plot", "Draw predictor parity plots, Pareto fronts and latency across devices.")
    sub = parser.add_subparsers(dest="command", metavar="{predictor,pareto,devices}", required=True)
    add_predictor_plot(sub)
    add_pareto_plot(sub)
    add_devices_plot(sub)
    args = parser.parse_args(argv)
    cli.configure(args)

    def body() -> int:
        result = args.func(args)
        if args.json:
            cli.print_json(result)
        else:
            for path in result.get("files", []):
                print(f"wrote {path}")
        return 0

    return cli.run("atb-plot", body)


if __name__ == "__main__":
    raise SystemExit(main())
