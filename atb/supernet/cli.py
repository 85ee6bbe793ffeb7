"""``atb-supernet``: prepare data, train SuperPLM, extract sub-models, evaluate fitness.

Each sub-command parses its flags, calls one library function of :mod:`atb.supernet` and
prints its result (a short summary, or one JSON object with ``--json``). torch and
transformers are imported inside the commands so that ``--help`` is instant.
"""

from __future__ import annotations

import sys

from atb.cli import add_common, configure, make_parser, print_json, print_table, run
from atb.supernet.config import add_train_arguments

PROG = "atb-supernet"
EXAMPLES = """examples:
  atb-supernet data                                  # built-in public-domain corpus
  atb-supernet data --text notes.txt --text web.jsonl
  atb-supernet train --super small --space pretrain --steps 300
  torchrun --nproc_per_node 2 -m atb.supernet.train --steps 300
  atb-supernet evaluate --arch 4-256-480-4-256 --json
  atb-supernet extract --arch 4-256-480-4-256 -o tiny-bert --onnx
"""


def print_summary(summary: dict, as_json: bool) -> None:
    """One JSON object, or one aligned ``key  value`` line per field."""
    if as_json:
        print_json(summary)
        return
    for key, value in summary.items():
        if isinstance(value, float):
            value = f"{value:.4g}"
        elif isinstance(value, list):
            value = ", ".join(str(v.get("source", v)) if isinstance(v, dict) else str(v)
                              for v in value)
        print(f"{key:>18}  {value}")


def _data(args) -> int:
    from atb.supernet.data import prepare_data

    summary = prepare_data(args.workspace, texts=args.text, builtin=args.builtin,
                           heldout_fraction=args.heldout, max_documents=args.max_documents)
    print_summary(summary, args.json)
    return 0


def _train(args) -> int:
    from atb.supernet.train import train_from_args

    print_summary(train_from_args(args), args.json)
    return 0


def _extract(args) -> int:
    from atb.supernet.extract import extract

    print_summary(extract(args.workspace, args.arch, args.output, onnx=args.onnx,
                           space=args.space), args.json)
    return 0


def _evaluate(args) -> int:
    from atb.supernet.evaluate import FitnessEvaluator

    evaluator = FitnessEvaluator.from_workspace(args.workspace, space=args.space)
    results = [evaluator.evaluate(a) for a in args.arch]
    where = {"checkpoint": str(evaluator.checkpoint), "step": evaluator.state["step"]}
    if args.json:
        print_json({**results[0], **where} if len(results) == 1 else {"results": results, **where})
        return 0
    rows = [{"arch": r["arch"], "loss": f"{r['loss']:.4f}", "fitness": f"{r['fitness']:.4f}",
             "accuracy": "-" if r["accuracy"] is None else f"{r['accuracy']:.3f}"} for r in results]
    print_table(rows, [("arch", "arch"), ("loss", "held-out loss"), ("accuracy", "accuracy"),
                       ("fitness", "fitness")],
                title=f"{evaluator.space.describe()}\ncheckpoint {where['checkpoint']} (step {where['step']})")
    return 0


def build_parser():
    parser = make_parser(PROG, __doc__.split("\n\n")[0] + "\n\n" + EXAMPLES)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("data", help="tokenise text into train/held-out shards (offline)")
    add_common(p)
    p.add_argument("--text", action="append", metavar="FILE", default=None,
                   help="a .txt or .jsonl file (repeatable); default: the built-in corpus")
    p.add_argument("--builtin", action="store_true", default=None,
                   help="also use the built-in public-domain corpus with --text")
    p.add_argument("--heldout", type=float, default=0.02, help="held-out fraction of documents")
    p.add_argument("--max-documents", type=int, default=None, help="cap documents (quick runs)")
    p.set_defaults(body=_data)

    p = sub.add_parser("train", help="train SuperPLM with Algorithm 1 (batch-wise training)")
    add_common(p)
    add_train_arguments(p)
    p.set_defaults(body=_train)

    for name, body, text in (("extract", _extract, "write a sub-model as a 🤗 model directory"),
                             ("evaluate", _evaluate, "held-out fitness of sub-models")):
        p = sub.add_parser(name, help=text)
        add_common(p)
        p.add_argument("--space", choices=["pretrain", "kd"], default=None,
                       help="which checkpoint when the workspace holds several")
        if name == "extract":
            p.add_argument("--arch", required=True, metavar="A", help="lt-dm-df-h-dqkv")
            p.add_argument("-o", "--output", required=True, metavar="OUT", help="output directory")
            p.add_argument("--onnx", action="store_true", help="also write model.onnx")
        else:
            p.add_argument("--arch", required=True, action="append", metavar="A",
                           help="lt-dm-df-h-dqkv (repeatable)")
        p.set_defaults(body=body)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Console entry point of ``atb-supernet``."""
    args = build_parser().parse_args(argv)
    configure(args)
    return run(PROG, lambda: args.body(args))


if __name__ == "__main__":
    sys.exit(main())
