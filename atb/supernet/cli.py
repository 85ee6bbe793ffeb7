"""``atb-supernet``: prepare data, train SuperPLM, extract sub-models, evaluate fitness; and
the training entry point for ``python -m atb.supernet`` / ``torchrun -m atb.supernet``.

Each sub-command parses its flags, calls one library function of :mod:`atb.supernet` and
prints its result (a short summary, or one JSON object with ``--json``). torch and
transformers are imported inside the commands so that ``--help`` is instant.
"""

from __future__ import annotations

import os
import sys

from atb.cli import add_common, configure, make_parser, print_json, print_table, run, seed_int
from atb.errors import UsageError
from atb.supernet.config import (DEPTHS, IMPORTANCE, INIT_LR, SAMPLING, SCRATCH_LR, ExportOptions,
                                 TrainConfig)

PROG = "atb-supernet"
TORCHRUN_PROG = "python -m atb.supernet"
EXAMPLES = """examples:
  atb-supernet data                                  # built-in public-domain corpus
  atb-supernet data --text notes.txt --text web.jsonl
  atb-supernet train --super small --space pretrain --steps 300
  torchrun --nproc_per_node 2 -m atb.supernet --steps 300
  atb-supernet evaluate --arch 4-256-480-4-256 --json
  atb-supernet extract --arch 4-256-480-4-256 -o tiny-bert --onnx
  atb-supernet distill --arch 4-320-1280-10-320 -o tiny-bert      # trained further (§3.6)
  torchrun --nproc_per_node 2 -m atb.supernet distill --arch 4-320-1280-10-320 -o tiny-bert
  atb-supernet extract --arch 4-256-480-4-256 -o tiny-bert --quantize int8 --scheme qdq
"""


def add_train_arguments(parser) -> None:
    """Options shared by ``atb-supernet train`` and ``python -m atb.supernet`` (torchrun)."""
    parser.add_argument("--super", dest="super_config", default=None, metavar="SUPER",
                        help="super-configuration from scratch: small (default, CPU-sized), base "
                             "(the paper's), minilm, or an arch lt-dm-df-h-dqkv")
    parser.add_argument("--space", default="pretrain", choices=["pretrain", "kd"],
                        help="head strategy: pretrain = drop whole heads, kd = keep every head "
                             "and narrow it. From scratch it also picks the objective (pretrain: "
                             "MLM, kd: distillation from MiniLM)")
    parser.add_argument("--objective", default=None, choices=["mlm", "kd"],
                        help="from scratch: masked-LM or distillation from the bundled MiniLM "
                             "(default: the space's, see --space); --init always distils from "
                             "the init checkpoint")
    parser.add_argument("--init", default=None, metavar="CHECKPOINT",
                        help="build SuperPLM from a pretrained BERT: a local 🤗 directory, or "
                             "minilm (bundled); the super-configuration is the checkpoint's, "
                             "units are importance-reordered and the supernet is distilled from "
                             "the checkpoint (--steps 0: save the reordered supernet untrained)")
    parser.add_argument("--importance", default=TrainConfig.importance, choices=IMPORTANCE,
                        help="--init: how units are ranked before training (default: activation)")
    parser.add_argument("--no-reorder-hidden", dest="reorder_hidden", action="store_false",
                        help="--init: keep hidden channels in the checkpoint's order")
    parser.add_argument("--calibration", type=int, default=TrainConfig.calibration, metavar="N",
                        help="--init: training sequences the importance is measured on")
    parser.add_argument("--steps", type=int, default=TrainConfig.steps, help="total updates")
    parser.add_argument("--resume", action="store_true", help="continue the saved checkpoint")
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--seq-len", type=int, default=TrainConfig.seq_len)
    parser.add_argument("--samples", type=int, default=TrainConfig.samples,
                        help="M sub-models per worker and step")
    parser.add_argument("--sampling", default=None, choices=SAMPLING,
                        help="uniform: M sub-models drawn uniformly (the paper's Algorithm 1; "
                             "the default from scratch); sandwich: the largest, the smallest and "
                             "M-2 uniform ones, which trains the largest sub-models as much as "
                             "the rest (needs M >= 2; the default with --init)")
    parser.add_argument("--depth", default=TrainConfig.depth, choices=DEPTHS,
                        help="which layers a sub-model shallower than the supernet keeps: "
                             "first = the first lt (the paper's rule, the default); spread = lt "
                             "layers evenly spaced with the last kept (DistilBERT / DynaBERT's "
                             "choice for pretrained teachers). The self-kd teacher always runs "
                             "in full")
    parser.add_argument("--workers", type=int, default=0,
                        help="N sub-batches per step (default: the number of processes)")
    parser.add_argument("--lr", type=float, default=None,
                        help=f"peak learning rate (default: {SCRATCH_LR:g} from scratch, "
                             f"{INIT_LR:g} with --init)")
    parser.add_argument("--seed", type=seed_int, default=TrainConfig.seed)
    parser.add_argument("--save-every", type=int, default=TrainConfig.save_every)


def print_summary(summary: dict, as_json: bool) -> None:
    """One JSON object, or one aligned ``key  value`` line per field."""
    if as_json:
        print_json(summary)
        return
    for key, value in summary.items():
        if key.endswith("_bytes") and isinstance(value, int):
            value = f"{value / 1e6:.2f} MB"
        elif isinstance(value, float):
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


def train_config_from_args(args) -> TrainConfig:
    """The :class:`TrainConfig` of the options of :func:`add_train_arguments`."""
    return TrainConfig(
        steps=args.steps, batch_size=args.batch_size, seq_len=args.seq_len,
        samples=args.samples, sampling=args.sampling, workers=args.workers, lr=args.lr,
        seed=args.seed, save_every=args.save_every, init=args.init,
        importance=args.importance, reorder_hidden=args.reorder_hidden,
        calibration=args.calibration, objective=args.objective, depth=args.depth,
    )


def train_from_args(args) -> dict:
    """``train_supernet`` with the options of :func:`add_train_arguments`."""
    from atb.supernet.config import TrainTarget
    from atb.supernet.train import train_supernet

    target = TrainTarget(super_config=args.super_config, space=args.space)
    return train_supernet(args.workspace, train_config_from_args(args), target,
                          resume=args.resume)


def _train(args) -> int:
    print_summary(train_from_args(args), args.json)
    return 0


def _extract(args) -> int:
    from atb.supernet.extract import extract

    if args.scheme is not None and args.quantize is None:
        raise UsageError("--scheme picks the INT8 scheme of --quantize int8",
                         hint="add --quantize int8, or drop --scheme")
    export = ExportOptions(onnx=args.onnx, quantize=args.quantize, scheme=args.scheme or "dynamic")
    print_summary(extract(args.workspace, args.arch, args.output, export, space=args.space),
                  args.json)
    return 0


def _distill(args) -> int:
    from atb.supernet.further import FurtherConfig, distill

    if args.scheme is not None and args.quantize is None:
        raise UsageError("--scheme picks the INT8 scheme of --quantize int8",
                         hint="add --quantize int8, or drop --scheme")
    config = FurtherConfig(steps=args.steps, objective=args.objective, corpus=args.corpus,
                           lr=args.lr, seed=args.seed, save_every=args.save_every,
                           precision=args.precision)
    export = ExportOptions(onnx=args.onnx, quantize=args.quantize, scheme=args.scheme or "dynamic")
    summaries = distill(args.workspace, args.arch, args.output, config, export)
    if not summaries:  # a torchrun worker other than rank 0: rank 0 prints
        return 0
    if args.json:
        print_json(summaries[0] if len(summaries) == 1 else {"models": summaries})
        return 0
    rows = [{"arch": s["arch"], "steps": f"{s['steps']:,}", "tokens": f"{s['tokens']:,}",
             "seconds": "reused" if s["reused"] else f"{s['seconds']:.0f}",
             "before": f"{s['heldout_loss_before']:.4f}", "after": f"{s['heldout_loss_after']:.4f}",
             "out": s["out_dir"]} for s in summaries]
    print_table(rows, [("arch", "arch"), ("steps", "steps"), ("tokens", "tokens"),
                       ("seconds", "seconds"), ("before", "held-out loss before"),
                       ("after", "after"), ("out", "model directory")],
                title=f"further training ({config.objective} objective, corpus {config.corpus})")
    return 0


def add_distill_arguments(p) -> None:
    """The flags of ``atb-supernet distill`` (also ``torchrun ... -m atb.supernet distill``)."""
    from atb.supernet.config import PRECISIONS
    from atb.supernet.further import CORPORA, DEFAULT_STEPS, OBJECTIVES

    p.add_argument("--arch", required=True, action="append", metavar="A",
                   help="lt-dm-df-h-dqkv (repeatable: each is trained on its own)")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output directory (OUT/<arch> for each of several archs)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                   help=f"updates of 16 x 64 tokens per arch (default: {DEFAULT_STEPS})")
    p.add_argument("--objective", default="supernet", choices=list(OBJECTIVES),
                   help="supernet = the supernet's own (its last hidden states, default); "
                        "layers = every layer mapped to the teacher's")
    p.add_argument("--corpus", default="workspace", choices=list(CORPORA),
                   help="workspace = the text atb-supernet data prepared (default); imdb = "
                        "25,000 IMDB reviews (extra atb[benchmarks])")
    p.add_argument("--lr", type=float, default=None, help=f"peak learning rate (default {INIT_LR:g})")
    p.add_argument("--precision", default="fp32", choices=list(PRECISIONS),
                   help="bf16: forward passes under bf16 autocast, only on a GPU or CPU with bf16 "
                        "arithmetic (default fp32)")
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--save-every", type=int, default=100,
                   help="steps between checkpoints: what a killed run loses at most")
    p.add_argument("--onnx", action="store_true", help="also write model.onnx")
    p.add_argument("--quantize", default=None, metavar="int8", help="as atb-supernet extract")
    p.add_argument("--scheme", default=None, metavar="SCHEME", help="as atb-supernet extract")


def _evaluate(args) -> int:
    from atb.supernet.heldout_loss import FitnessEvaluator

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

    p = sub.add_parser("distill", help="train searched archs further on their own and write "
                                       "them as 🤗 model directories (the paper's §3.6)")
    add_common(p)
    add_distill_arguments(p)
    p.set_defaults(body=_distill)

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
            p.add_argument("--quantize", default=None, metavar="int8",
                           help="also write model.onnx and its INT8 copy "
                                "model.int8-SCHEME.onnx (see --scheme)")
            p.add_argument("--scheme", default=None, metavar="SCHEME",
                           help="INT8 scheme: dynamic = ONNX Runtime's dynamic quantization of "
                                "the linear layers (default; what atb times on onnxruntime); "
                                "qdq = static QDQ graph for OpenVINO, calibrated on the "
                                "workspace's held-out text")
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


def torchrun_main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m atb.supernet`` (the training flags; also under torchrun), and
    of ``python -m atb.supernet distill ...`` (further training; also under torchrun)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["distill"]:
        return _torchrun_distill(argv[1:])
    parser = make_parser(TORCHRUN_PROG, "Train SuperPLM with Algorithm 1, in one process or under "
                         "torchrun --nproc_per_node P (gloo on CPU, nccl on GPU).")
    add_common(parser)
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    configure(args)

    def body() -> int:
        _share_cores()
        summary = train_from_args(args)
        if summary["rank"] == 0:
            print_summary(summary, args.json)
        return 0

    try:
        return run(TORCHRUN_PROG, body)
    finally:
        _end_process_group()


def _share_cores() -> None:
    """Under torchrun the P processes share the cores (unless OMP_NUM_THREADS says)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and "OMP_NUM_THREADS" not in os.environ:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))


def _end_process_group() -> None:
    if "torch.distributed" in sys.modules:  # only a run that got that far has a group
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())


def _torchrun_distill(argv: list[str]) -> int:
    """``torchrun --nproc_per_node P -m atb.supernet distill ...``: each arch's updates split
    over P processes (the same update as one process); rank 0 writes the models."""
    parser = make_parser(f"{TORCHRUN_PROG} distill", "Further training under torchrun "
                         "(gloo on CPU, nccl on GPU); the flags of atb-supernet distill.")
    add_common(parser)
    add_distill_arguments(parser)
    args = parser.parse_args(argv)
    configure(args)
    _share_cores()
    try:
        return run(f"{TORCHRUN_PROG} distill", lambda: _distill(args))
    finally:
        _end_process_group()
