"""atb-plot: figures from a workspace.

``atb-plot predictor ...`` (parity plot, atb.predictor.plots) and ``atb-plot pareto ...``
(Pareto fronts, atb.search.plots). Each sub-package adds its own sub-command through
``add_plot_subcommand(subparsers)``; the chosen one runs ``args.func(args) -> dict``, whose
result is printed as JSON under ``--json`` or as a line naming the written files.
"""

from __future__ import annotations

import importlib

from atb import cli

PLOT_PROVIDERS = ("atb.predictor.plots", "atb.search.plots")


def main(argv: list[str] | None = None) -> int:
    parser = cli.make_parser("atb-plot", "Draw predictor parity plots and Pareto fronts.")
    sub = parser.add_subparsers(dest="command", metavar="{predictor,pareto}", required=True)
    for module in PLOT_PROVIDERS:
        importlib.import_module(module).add_plot_subcommand(sub)
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
