"""Benchmarks of atb.supernet (print measured figures; nothing is asserted).

1. Training cost per token: one Algorithm-1 update of the sliced SuperPLM (M sub-model
   passes + one AdamW step over the whole supernet) against training the same sub-model alone
   (M passes + an AdamW step over its own weights), same batch, same objective.
2. Evaluator seconds per arch on the default evaluation set.
3. A small-scale Table 3: pairwise ranking accuracy between supernet fitness and the held-out
   loss of the same architectures trained alone for a short time (``--alone-steps``).

    python bench/supernet.py --quick            # a smoke run (minutes), figures meaningless
    python bench/supernet.py --threads 2        # the real run: idle machine, about an hour

Run it on an idle machine; timings from a loaded machine are not comparable.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

# `python bench/supernet.py` puts bench/ first on sys.path, where bench/profile.py would
# shadow the standard library's `profile` (imported by torch.distributed via cProfile)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import torch  # noqa: E402

from atb.arch import Arch, SearchSpace, get_space  # noqa: E402
from atb.supernet import FitnessEvaluator, prepare_data, train_supernet  # noqa: E402
from atb.supernet import checkpoint as ckpt  # noqa: E402
from atb.supernet.data import load_split, make_sequences  # noqa: E402
from atb.supernet.train import make_optimizer  # noqa: E402

# eight architectures of the small pretrain space, from tiny to the whole supernet
RANKING_ARCHS = [Arch.parse(a) for a in (
    "1-128-256-2-128", "1-256-512-4-256", "2-128-256-2-128", "2-256-512-4-256",
    "3-192-384-3-192", "3-384-768-6-384", "4-256-1024-4-256", "4-384-1536-6-384",
)]


class _Updater:
    """One model + optimizer whose Algorithm-1 update (M passes of ``arch`` + AdamW) is timed."""

    def __init__(self, space: SearchSpace, arch: Arch, batch: dict, samples: int):
        torch.manual_seed(0)
        self.model = ckpt.build_trainable(space).train()
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


def bench_training_cost(ws: Path, archs: list[Arch], args) -> list[dict]:
    """Sliced-supernet vs stand-alone updates, interleaved so that drift hits both alike."""
    space = get_space("pretrain", "small")
    ids, mask = make_sequences(load_split(ws, "train"), args.seq_len)
    batch = {"input_ids": torch.from_numpy(ids[: args.batch_size]),
             "attention_mask": torch.from_numpy(mask[: args.batch_size])}
    tokens = int(batch["attention_mask"].sum()) * args.samples
    rows = []
    for arch in archs:
        sliced = _Updater(space, arch, batch, args.samples)
        alone = _Updater(SearchSpace("pretrain", arch), arch, batch, args.samples)
        pairs = [(sliced.update(), alone.update()) for _ in range(args.repeats)]
        t_sliced = statistics.median(p[0] for p in pairs)
        t_alone = statistics.median(p[1] for p in pairs)
        rows.append({"arch": str(arch), "supernet_tok_s": tokens / t_sliced,
                     "alone_tok_s": tokens / t_alone, "cost_ratio": t_sliced / t_alone})
    return rows


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


def pairwise_accuracy(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of pairs ordered the same way by ``a`` and ``b`` (ties count as disagreement)."""
    pairs = list(itertools.combinations(range(len(a)), 2))
    agree = sum(np.sign(a[i] - a[j]) == np.sign(b[i] - b[j]) != 0 for i, j in pairs)
    return agree / len(pairs)


def bench_ranking(checkpoint: Path, ws: Path, archs: list[Arch], args, tmp: Path) -> dict:
    # a larger held-out set than the search's default: the ranked differences are small
    evaluator = FitnessEvaluator.from_checkpoint(checkpoint, ws, eval_sequences=args.ranking_sequences)
    supernet_fit = evaluator.fitness(archs)
    # the stand-alone ground truth gets the best of a small learning-rate sweep: one rate
    # for all under-trains the wide archs (1e-3 leaves 384-wide ones near the unigram loss)
    per_lr = {lr: [] for lr in args.alone_lrs}
    for arch in archs:
        for lr in args.alone_lrs:
            out = tmp / f"alone-{arch}-lr{lr:g}"
            train_supernet(ws, space="pretrain", fixed_arch=arch, steps=args.alone_steps, out_dir=out,
                           batch_size=args.batch_size, seq_len=args.seq_len, samples=1, lr=lr,
                           save_every=args.alone_steps)
            alone = FitnessEvaluator.from_checkpoint(out, ws, eval_sequences=args.ranking_sequences)
            per_lr[lr].append(alone.fitness([arch])[0])
    alone_fit = np.max(np.array(list(per_lr.values())), axis=0)
    return {"archs": [str(a) for a in archs], "supernet_fitness": supernet_fit.round(4).tolist(),
            "alone_fitness": alone_fit.round(4).tolist(),
            "alone_fitness_per_lr": {f"{lr:g}": np.round(v, 4).tolist() for lr, v in per_lr.items()},
            "pairwise_accuracy": pairwise_accuracy(supernet_fit, alone_fit)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: shows it runs")
    parser.add_argument("--workspace", default=None,
                        help="where data is prepared (overwritten); default: a temporary directory")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--supernet-steps", type=int, default=1000, help="full mode only")
    parser.add_argument("--alone-steps", type=int, default=300, help="full mode only")
    parser.add_argument("--checkpoint", default=None, metavar="DIR",
                        help="reuse this trained small-pretrain supernet (with --workspace holding its "
                             "data) instead of training one")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate of the supernet")
    parser.add_argument("--alone-lr", default="1e-3,3e-4",
                        help="comma-separated learning rates tried for each stand-alone run (the best counts)")
    parser.add_argument("--ranking-sequences", type=int, default=256,
                        help="held-out sequences behind each ranking fitness (full mode)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    q = args.quick
    args.seq_len, args.batch_size, args.samples = (32, 4, 3) if q else (64, 16, 3)
    args.repeats, args.eval_sequences = (2 if q else 5), (8 if q else 32)
    args.alone_lrs = [float(x) for x in args.alone_lr.split(",")]
    if q:
        args.ranking_sequences, args.supernet_steps, args.alone_steps = 8, 4, 2
    ranking_archs = RANKING_ARCHS[::2] if q else RANKING_ARCHS
    cost_archs = [RANKING_ARCHS[3]] if q else RANKING_ARCHS[1::2]

    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        ws = Path(args.workspace) if args.workspace else tmp / "ws"
        t0 = time.perf_counter()
        if args.checkpoint:
            super_dir = Path(args.checkpoint)
            state = ckpt.read_state(super_dir)
            manifest = json.loads((ws / "data" / "manifest.json").read_text())
            data = {"train_tokens": sum(s["tokens"] for s in manifest["splits"]["train"])}
            history = state.get("history") or [[state["step"], float("nan")]]
            trained = {"step": state["step"], "loss": history[-1][1], "tokens_per_s": float("nan"),
                       "seconds": 0.0}
            args.supernet_steps = state["step"]
        else:
            super_dir = tmp / "super"
            data = prepare_data(ws, max_documents=80 if q else None)
            trained = train_supernet(ws, "small", "pretrain", steps=args.supernet_steps, out_dir=super_dir,
                                     batch_size=args.batch_size, seq_len=args.seq_len,
                                     samples=args.samples, lr=args.lr, save_every=args.supernet_steps)
        report = {
            "mode": "quick" if q else "full", "threads": args.threads,
            "train_tokens": data["train_tokens"],
            "supernet_training": {k: trained[k] for k in ("step", "loss", "tokens_per_s", "seconds")},
            "training_cost": bench_training_cost(ws, cost_archs, args),
            "evaluator": bench_evaluator(super_dir, ws, ranking_archs, args),
            "ranking": bench_ranking(super_dir, ws, ranking_archs, args, tmp),
        }
        report["total_seconds"] = time.perf_counter() - t0
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"mode {report['mode']}, {args.threads} threads, {data['train_tokens']} training tokens")
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
          f"{args.alone_steps} steps, supernet lr {args.lr:g}, alone best of lr {args.alone_lr}, "
          f"{args.ranking_sequences} held-out sequences): "
          f"pairwise accuracy {rk['pairwise_accuracy']:.1%} (target >= 90%)")
    for arch, s, a in zip(rk["archs"], rk["supernet_fitness"], rk["alone_fitness"]):
        print(f"  {arch:>18}  supernet {s:8.4f}  alone {a:8.4f}")
    print(f"total {report['total_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
