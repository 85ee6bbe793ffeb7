"""Ground truth for the search (Table 3 at task level): within a latency window, which archs
fine-tune best on the reading task?

For each window (default 15x and 25x of the ``--init minilm`` space) archs of every depth that
reaches it are chosen by the predictor, timed in **one** profiler call under the predictor's
device key (1-thread ONNX Runtime: the most repeatable labels), and kept when their measured
speedup lies within +-5% of the target (``--margin``, none at the edge: +-4.5% by default). The
BERT-rule arch of the window is always among them. Each is cut out of the supernet, distilled
alone for ``--distill-steps`` (the same budget for all), then fine-tuned with atb-eval's
protocol on ``--task``: the learning rate is picked once per window on its rule arch (validation
split, one extra seed), then ``--seeds`` seeds of every arch train at that rate.

Every result is written as it completes, so the run resumes where it stopped, and later work can
re-score fitness functions without retraining:

* ``data/ranking-archs.csv``: window, arch, measured speedup, latency, device key, params;
* ``data/ranking-<task>.csv``: per arch and seed: accuracy, validation accuracy, lr, best
  epoch, distillation steps, supernet checkpoint and its steps, task version, commit;
* ``data/ranking-<task>-predictions.jsonl``: per arch and seed the test predictions
  (:mod:`atb.predictions`), so paired intervals can be recomputed.

    python -m bench.ranking --workspace WS --sections pick,time   # idle machine: it times
    python -m bench.ranking --workspace WS --sections train,eval   # hours of CPU, resumable
    python -m bench.ranking --workspace WS --sections report       # the table, from data/ only
    python -m bench.ranking --workspace WS --sections budget       # how much distillation moves accuracy
    python -m bench.ranking --workspace WS2 --sections depth --only ARCH ...   # WS2: a --depth spread supernet

WS needs ``atb-supernet data``, ``atb-supernet train --init minilm`` and ``atb-profile --super
minilm --threads 1 --samples N``.

``--sections depth`` asks which layers a shallow sub-model should keep: the ``--only`` archs of
the ground truth cut from WS2's supernet, trained with ``--depth spread`` (evenly spaced layers,
the last kept: DistilBERT / DynaBERT) where the ground truth's keeps the first lt (the paper's
rule), each given the ground truth's treatment (``fine_tune_rows``) into ``data/depth-<task>.csv``
and ``-predictions.jsonl``; ``depth-report`` (``data/`` only) pairs each with its ground-truth
self on the same test examples and seeds: spread - first.

``--sections separation`` asks whether the task separates reading from not reading, each gap a
paired 95% interval: the fine-tuned MiniLM (``data/teacher-<task>-predictions.jsonl``) and the
window's rule arch against the bag of words (deterministic: its predictions stand for every
seed) and against their shapes fine-tuned from random init. ``separation-train --only ARCH``
fine-tunes a random-init encoder of ARCH at the window's lr per missing seed into
``data/separation-<task>-predictions.jsonl``.

    python -m bench.ranking --workspace WS --sections separation-train --seeds 1 --only 4-320-1280-10-320
    python -m bench.ranking --workspace WS --sections separation   # data/ only
"""

from __future__ import annotations

import json
import logging
import sys

from atb.errors import AtbError
from bench.common import parser as bench_parser
from bench.ranking.depth import depth_report, depth_train, print_depth_report
from bench.ranking.report import print_report, report
from bench.ranking.separation import print_separation, separation, separation_train
from bench.ranking.timing import time_candidates
from bench.ranking.training import budget, evaluate_windows

SECTIONS = {"pick", "time", "train", "eval", "report", "budget", "depth", "depth-report",
            "separation-train", "separation"}


def parse_args(argv=None):
    parser = bench_parser("bench.ranking", __doc__)
    parser.add_argument("--workspace", required=True, metavar="DIR")
    parser.add_argument("--windows", type=float, nargs="+", default=[15.0, 25.0])
    parser.add_argument("--task", default="kjv-next")
    parser.add_argument("--archs", type=int, default=6, help="archs per window, rule included")
    parser.add_argument("--per-depth", type=int, default=2, help="candidates timed per depth")
    parser.add_argument("--margin", type=float, default=0.045,
                        help="measured speedup within this share of the target (default 4.5%%)")
    parser.add_argument("--distill-steps", type=int, default=300)
    parser.add_argument("--budgets", type=int, nargs="+", default=[100, 300, 600])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--lr", type=float,
                        help="a new window's learning rate, given instead of picked on its rule arch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", metavar="ARCH", default=[],
                        help="train/evaluate only these archs of the windows (e.g. a second "
                             "process on the other core takes the last archs)")
    parser.add_argument("--sections", default="report",
                        help="comma-separated: pick,time (idle machine), train, eval, report, "
                             "budget, depth, depth-report, separation-train, separation")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    args.sections = set(args.sections.split(","))
    return args


def run(ws, args) -> None:
    """The sections asked for, in the order the work flows."""
    if args.sections & {"pick", "time"}:
        from atb.predictor import load_or_fit

        time_candidates(ws, load_or_fit(ws), args)
    if args.sections & {"train", "eval"}:
        evaluate_windows(ws, args)
    if "budget" in args.sections:
        budget(ws, args)
    if "depth" in args.sections:
        depth_train(ws, args)
    if "separation-train" in args.sections:
        separation_train(args)
    if "separation" in args.sections:
        show(separation(args), args.json, print_separation)
    if "depth-report" in args.sections:
        show(depth_report(args), args.json, print_depth_report)
    if "report" in args.sections:
        result = report(args)
        if args.json:
            for w in result["windows"]:
                for a in w["archs"]:
                    a.pop("correct")
        show(result, args.json, print_report)


def show(result: dict, as_json: bool, printer) -> None:
    print(json.dumps(result, indent=2)) if as_json else printer(result)


def main(argv=None) -> int:
    args = parse_args(argv)
    if unknown := args.sections - SECTIONS:
        print(f"bench.ranking: unknown section(s) {', '.join(sorted(unknown))}; use "
              f"{', '.join(sorted(SECTIONS))}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    from atb.workspace import Workspace

    try:
        run(Workspace.resolve(args.workspace, create=False), args)
    except AtbError as exc:
        print(f"bench.ranking: {exc.one_line()}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
