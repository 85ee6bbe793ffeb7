"""atb.supernet: the training cost per token of a supernet update against one sub-model
trained alone, the evaluator's seconds per arch, and how supernet fitness ranks archs trained
alone (a small Table 3). Prints measured figures; asserts nothing.

1. Training cost per token: one Algorithm-1 update of the sliced SuperPLM (M sub-model
   passes + one AdamW step over the whole supernet) against training the same sub-model alone
   (M passes + an AdamW step over its own weights), same batch, same objective.
2. Evaluator seconds per arch on the default evaluation set.
3. A small-scale Table 3: pairwise ranking accuracy between supernet fitness and the held-out
   loss of the same architectures trained alone for a short time (``--alone-steps``). Use the
   kd space: at CPU budgets masked-LM losses are all still near the unigram plateau.

    python -m bench.supernet --quick            # a smoke run (seconds), figures meaningless
    python -m bench.supernet --space kd --supernet-steps 1000 --alone-steps 600 --alone-lr 1e-3
                                                # the real run: idle machine, about 45 minutes

Run it on an idle machine; timings from a loaded machine are not comparable.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from atb.arch import Arch, SearchSpace, get_space
from atb.supernet import FitnessEvaluator, prepare_data, train_supernet
from atb.supernet import checkpoint as ckpt
from atb.supernet.config import SAMPLING, TrainConfig, TrainTarget
from atb.supernet.data import load_split, make_sequences
from atb.supernet.heldout_loss import pairwise_accuracy
from atb.supernet.train import make_optimizer
from bench.common import parser as bench_parser

# eight architectures per space, from tiny to the whole supernet (kd: 6 heads, dqkv = dm
# rounded down to the space's step of 6)
RANKING_ARCHS = {space: [Arch.parse(a) for a in archs] for space, archs in {
    "pretrain": ("1-128-256-2-128", "1-256-512-4-256", "2-128-256-2-128", "2-256-512-4-256",
                 "3-192-384-3-192", "3-384-768-6-384", "4-256-1024-4-256", "4-384-1536-6-384"),
    "kd": ("1-128-256-6-126", "1-256-512-6-252", "2-128-256-6-126", "2-256-512-6-252",
           "3-192-384-6-192", "3-384-768-6-384", "4-256-1024-6-252", "4-384-1536-6-384"),
}.items()}


class Updater:
    """One model + optimizer whose Algorithm-1 update (M passes of ``arch`` + AdamW) is timed.

    ``model`` is a trainable pair (``ckpt.build_trainable``): the whole supernet, or a supernet
    whose only member is ``arch`` (the sub-model trained alone).
    """

    def __init__(self, model: torch.nn.ModuleDict, arch: Arch, batch: dict, samples: int):
        self.model = model.train()
        self.opt = make_optimizer(list(self.model.parameters()), lr=1e-4)  # as training does
        self.prepared = self.model["objective"].prepare(batch, torch.Generator().manual_seed(0))
        self.arch, self.samples = arch, samples
        self.update()  # warm-up: allocators, caches, optimizer state

    def update(self) -> float:
        start = time.perf_counter()
        self.opt.zero_grad(set_to_none=False)
        for _ in range(self.samples):
            loss, _ = self.model["objective"].loss(self.model["supernet"], self.prepared, self.arch)
            (loss / self.samples).backward()
        self.opt.step()
        return time.perf_counter() - start


def training_cost(ws: Path, models, args) -> list[dict]:
    """Sliced-supernet vs stand-alone updates, interleaved so that drift hits both alike.

    ``models`` yields ``(arch, supernet_pair, alone_pair)``: two trainable pairs to update.
    """
    ids, mask = make_sequences(load_split(ws, "train"), args.seq_len)
    batch = {"input_ids": torch.from_numpy(ids[: args.batch_size]),
             "attention_mask": torch.from_numpy(mask[: args.batch_size])}
    tokens = int(batch["attention_mask"].sum()) * args.samples
    rows = []
    for arch, supernet, alone in models:
        sliced = Updater(supernet, arch, batch, args.samples)
        single = Updater(alone, arch, batch, args.samples)
        pairs = [(sliced.update(), single.update()) for _ in range(args.repeats)]
        t_sliced = statistics.median(p[0] for p in pairs)
        t_alone = statistics.median(p[1] for p in pairs)
        rows.append({"arch": str(arch), "supernet_tok_s": tokens / t_sliced,
                     "alone_tok_s": tokens / t_alone, "cost_ratio": t_sliced / t_alone})
    return rows


def from_scratch_models(archs: list[Arch], args):
    """``(arch, small supernet, arch alone)`` for every arch, freshly initialised."""
    space = get_space(args.space, "small")
    for arch in archs:
        torch.manual_seed(0)
        yield arch, ckpt.build_trainable(space), ckpt.build_trainable(SearchSpace(args.space, arch))


def bench_evaluator(checkpoint: Path, ws: Path, archs: list[Arch], args) -> dict:
    evaluator = FitnessEvaluator.from_checkpoint(checkpoint, ws, eval_sequences=args.eval_sequences)
    evaluator.evaluate(archs[0])  # warm-up, not timed
    times = []
    for arch in archs[1:]:
        start = time.perf_counter()
        evaluator.evaluate(arch)
        times.append(time.perf_counter() - start)
    return {"archs": len(times), "median_s_per_arch": statistics.median(times),
            "max_s_per_arch": max(times), "eval_sequences": args.eval_sequences}


def bench_ranking(checkpoint: Path, ws: Path, archs: list[Arch], args, tmp: Path) -> dict:
    # a larger held-out set than the search's default: the ranked differences are small
    evaluator = FitnessEvaluator.from_checkpoint(checkpoint, ws, eval_sequences=args.ranking_sequences)
    supernet_fit = evaluator.fitness(archs)
    # the stand-alone ground truth gets the best of a small learning-rate sweep and a long
    # warm-up: with one rate and 10% warm-up, the deep wide archs sit for hundreds of steps on
    # the plateau of predicting the mean (kd) or the unigram (mlm) while small ones move on
    per_lr = {lr: [] for lr in args.alone_lrs}
    alone_dir = Path(args.alone_dir) if args.alone_dir else tmp
    for arch in archs:
        for lr in args.alone_lrs:
            out = alone_dir / f"{arch}-{args.alone_steps}steps-lr{lr:g}-warmup{args.alone_warmup:g}"
            done = (out / ckpt.STATE).is_file() and ckpt.read_state(out)["step"] == args.alone_steps
            if not done:  # the ground truth does not depend on the supernet: reuse a finished run
                config = TrainConfig(steps=args.alone_steps, batch_size=args.batch_size,
                                     seq_len=args.seq_len, samples=1, lr=lr,
                                     warmup=args.alone_warmup, save_every=args.alone_steps)
                train_supernet(ws, config, TrainTarget(space=args.space, fixed_arch=arch, out_dir=out))
            alone = FitnessEvaluator.from_checkpoint(out, ws, eval_sequences=args.ranking_sequences)
            per_lr[lr].append(alone.fitness([arch])[0])
    alone_fit = np.max(np.array(list(per_lr.values())), axis=0)
    return {"archs": [str(a) for a in archs], "supernet_fitness": supernet_fit.round(4).tolist(),
            "alone_fitness": alone_fit.round(4).tolist(),
            "alone_fitness_per_lr": {f"{lr:g}": np.round(v, 4).tolist() for lr, v in per_lr.items()},
            "pairwise_accuracy": pairwise_accuracy(supernet_fit, alone_fit)}


def _fail(message: str) -> None:
    """A user mistake: one line, exit code 2."""
    print(f"bench.supernet: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv=None) -> int:
    parser = bench_parser("bench.supernet", __doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: shows it runs")
    parser.add_argument("--workspace", default=None,
                        help="where data is prepared (overwritten); default: a temporary directory")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--space", choices=tuple(RANKING_ARCHS), default="pretrain",
                        help="search space and objective: masked-LM (pretrain) or distillation (kd)")
    parser.add_argument("--supernet-steps", type=int, default=1000, help="full mode only")
    parser.add_argument("--alone-steps", type=int, default=300, help="full mode only")
    parser.add_argument("--checkpoint", default=None, metavar="DIR",
                        help="reuse this trained small supernet of --space (with --workspace holding its "
                             "data) instead of training one")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate of the supernet")
    parser.add_argument("--sampling", choices=SAMPLING, default="uniform",
                        help="sub-model sampling of the supernet's training (see atb-supernet train)")
    parser.add_argument("--alone-lr", default="1e-3,3e-4",
                        help="comma-separated learning rates tried for each stand-alone run (the best counts)")
    parser.add_argument("--alone-warmup", type=float, default=0.3,
                        help="warm-up share of each stand-alone run")
    parser.add_argument("--alone-dir", default=None, metavar="DIR",
                        help="keep the stand-alone runs here and reuse finished ones (same data, "
                             "steps, lr and warm-up); default: a temporary directory")
    parser.add_argument("--ranking-sequences", type=int, default=256,
                        help="held-out sequences behind each ranking fitness (full mode)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    q = args.quick
    args.seq_len, args.batch_size, args.samples = (32, 4, 3) if q else (64, 16, 3)
    args.repeats, args.eval_sequences = (2 if q else 5), (8 if q else 32)
    try:
        args.alone_lrs = [float(x) for x in args.alone_lr.split(",")]
    except ValueError:
        _fail(f"--alone-lr takes comma-separated numbers, not {args.alone_lr!r}")
    if q:
        args.ranking_sequences, args.supernet_steps, args.alone_steps = 8, 4, 2
    ranking_archs = RANKING_ARCHS[args.space][::2] if q else RANKING_ARCHS[args.space]
    cost_archs = ranking_archs[1:2] if q else ranking_archs[1::2]

    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        ws = Path(args.workspace) if args.workspace else tmp / "ws"
        t0 = time.perf_counter()
        if args.checkpoint:
            super_dir = Path(args.checkpoint)
            if not (super_dir / ckpt.STATE).is_file() or not (ws / "data" / "manifest.json").is_file():
                _fail(f"--checkpoint needs a trained supernet in {super_dir} and --workspace holding its data")
            state = ckpt.read_state(super_dir)
            if state["space"] != args.space:
                _fail(f"--checkpoint {super_dir} is a {state['space']} supernet, not {args.space}")
            manifest = json.loads((ws / "data" / "manifest.json").read_text())
            data = {"train_tokens": sum(s["tokens"] for s in manifest["splits"]["train"])}
            history = state.get("history") or [[state["step"], float("nan")]]
            trained = {"step": state["step"], "loss": history[-1][1], "tokens_per_s": float("nan"),
                       "seconds": 0.0}
            args.supernet_steps = state["step"]
            args.sampling = state.get("config", {}).get("sampling", "uniform")
        else:
            super_dir = tmp / "super"
            data = prepare_data(ws, max_documents=80 if q else None)
            config = TrainConfig(steps=args.supernet_steps, batch_size=args.batch_size,
                                 seq_len=args.seq_len, samples=args.samples, sampling=args.sampling,
                                 lr=args.lr, save_every=args.supernet_steps)
            trained = train_supernet(ws, config, TrainTarget("small", args.space, out_dir=super_dir))
        report = {
            "mode": "quick" if q else "full", "threads": args.threads, "space": args.space,
            "sampling": args.sampling,
            "train_tokens": data["train_tokens"],
            "supernet_training": {k: trained[k] for k in ("step", "loss", "tokens_per_s", "seconds")},
            "training_cost": training_cost(ws, from_scratch_models(cost_archs, args), args),
            "evaluator": bench_evaluator(super_dir, ws, ranking_archs, args),
            "ranking": bench_ranking(super_dir, ws, ranking_archs, args, tmp),
        }
        report["total_seconds"] = time.perf_counter() - t0
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"mode {report['mode']}, {args.space} space, {args.threads} threads, "
          f"{data['train_tokens']} training tokens")
    print(f"supernet: {trained['step']} steps, loss {trained['loss']:.3f}, {trained['tokens_per_s']:.0f} tok/s")
    print("training cost per token, sliced supernet vs sub-model alone (target <= 1.3):")
    for row in report["training_cost"]:
        print(f"  {row['arch']:>18}  supernet {row['supernet_tok_s']:8.0f} tok/s  "
              f"alone {row['alone_tok_s']:8.0f} tok/s  ratio {row['cost_ratio']:.2f}")
    ev = report["evaluator"]
    print(f"evaluator: median {ev['median_s_per_arch']:.2f} s/arch, max {ev['max_s_per_arch']:.2f} s "
          f"({ev['eval_sequences']} sequences; target <= 2 s)")
    rk = report["ranking"]
    print(f"ranking ({len(rk['archs'])} archs, supernet {args.supernet_steps} steps, alone "
          f"{args.alone_steps} steps, supernet lr {args.lr:g} {args.sampling}, "
          f"alone best of lr {args.alone_lr} "
          f"with {args.alone_warmup:.0%} warm-up, "
          f"{args.ranking_sequences} held-out sequences): "
          f"pairwise accuracy {rk['pairwise_accuracy']:.1%} (target >= 90%)")
    for arch, s, a in zip(rk["archs"], rk["supernet_fitness"], rk["alone_fitness"]):
        print(f"  {arch:>18}  supernet {s:8.4f}  alone {a:8.4f}")
    print(f"total {report['total_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
