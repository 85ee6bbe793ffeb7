"""SuperPLM built from a pretrained model (``atb-supernet train --init minilm``): how well its
sub-models keep the teacher (held-out distillation loss, teacher agreement) against sub-models
made other ways, what a supernet update costs per token, and how its fitness ranks archs
distilled alone.

For eight archs spanning the MiniLM space (BERT-rule archs and archs at about 8x, 15x, 25x and
60x over BERT-base), printed side by side in one run:

* held-out distillation loss (MSE to the MiniLM teacher's last hidden states, through each
  supernet's own projection) and teacher agreement (Spearman correlation between the
  sub-model's and the teacher's pairwise cosine similarities of mean-pooled embeddings of 200
  held-out sentences) of sub-models taken
  (a) from a from-scratch supernet of the same super-architecture and space, distilled from
      MiniLM for N steps;
  (b) from the MiniLM checkpoint by plain leading slices (no reordering);
  (c) from the reordered checkpoint with 0 training steps (activation importance; also the
      weight-norm ranking and activation ranking without hidden channels, as ablations);
  (d) from the reordered supernet after N steps of self-distillation (same N as (a));
* training cost per token: a supernet update against the same sub-model trained alone;
* pairwise ranking accuracy of (d)'s fitness against the same archs extracted from the
  reordered checkpoint and distilled stand-alone (``--alone-steps``).

    python -m bench.pretrained --quick                      # smoke run, figures meaningless
    python -m bench.pretrained --workspace WS --steps 600 --alone-steps 300   # the real run

Run it on an idle machine (the cost section times updates).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from atb.arch import Arch, SearchSpace, archs_to_array
from atb.supernet import FitnessEvaluator, prepare_data, train_supernet
from atb.supernet import checkpoint as ckpt
from atb.supernet.agreement import TeacherAgreement, heldout_sentences
from atb.supernet.config import INIT_LR, TrainConfig, TrainTarget
from atb.supernet.heldout_loss import pairwise_accuracy
from atb.supernet.objectives import get_teacher
from bench import supernet as bench_supernet
from bench.common import DATA
from bench.common import parser as bench_parser

REFERENCE_LABELS = DATA / "reference-ort-t1.csv"
# (arch in the pretrain space of MiniLM: heads of 32, why it is here)
ARCHS = [("6-384-1536-12-384", "full MiniLM, BERT rule"), ("5-384-1536-12-384", "~8x, BERT rule"),
         ("6-384-704-12-384", "~9x, fast rule"), ("4-320-1280-10-320", "~14x, BERT rule"),
         ("6-320-576-8-256", "~15x, fast rule"), ("3-256-1024-8-256", "~26x, BERT rule"),
         ("5-256-448-6-192", "~25x, fast rule"), ("2-192-768-6-192", "~60x, BERT rule")]
SECTIONS = {"scores", "cost", "ranking"}
VARIANTS = {  # (b) and (c): 0-step supernets built from the checkpoint
    "b_plain": dict(importance="none"),
    "c_activation": dict(importance="activation"),
    "c_activation_no_hidden": dict(importance="activation", reorder_hidden=False),
    "c_weight": dict(importance="weight"),
}


def space_archs(space: str) -> list[Arch]:
    """The bench archs in ``space`` (kd: every head kept, dqkv on the kd grid of 12)."""
    archs = [Arch.parse(a) for a, _ in ARCHS]
    if space == "pretrain":
        return archs
    return [Arch(a.lt, a.dm, a.df, 12, max(180, a.dqkv // 12 * 12)) for a in archs]


def predicted_speedups(archs: list[Arch]) -> list[float]:
    """Speedups over BERT-base from a predictor fitted on the committed 1-thread dataset."""
    from atb.predictor.fit import FitConfig, fit_predictor
    from atb.profiler.labels import LabelSet

    predictor = fit_predictor(LabelSet.from_csv(REFERENCE_LABELS), FitConfig(kinds=("additive",), folds=2))
    return predictor.predict_speedup(archs_to_array(archs)).round(1).tolist()


def score(checkpoint: Path, ws: Path, archs: list[Arch], agreement: TeacherAgreement,
          sequences: int) -> dict:
    """Held-out distillation loss and teacher agreement of every arch of a checkpoint."""
    evaluator = FitnessEvaluator.from_checkpoint(checkpoint, ws, eval_sequences=sequences)
    supernet = evaluator.supernet
    losses, agree = [], []
    for arch in archs:
        losses.append(evaluator.evaluate(arch)["loss"])
        agree.append(agreement(lambda i, m, a=arch: supernet(i, m, arch=a)[0]))
    return {"loss": losses, "agreement": agree}


def init_models(checkpoint: Path, archs: list[Arch]):
    """``(arch, the --init supernet, arch alone)``: the alone model gets the same teacher
    (teacher states are computed outside the timed update, for both)."""
    trainable, state = ckpt.load_trainable(checkpoint)
    full = trainable["supernet"].space
    for arch in archs:
        alone = ckpt.build_trainable(SearchSpace(full.strategy, arch), "self-kd", state["init"], full)
        alone["objective"].teacher.load_state_dict(trainable["objective"].teacher.state_dict())
        yield arch, trainable, alone


def ranking(fitness: np.ndarray, ws: Path, archs: list[Arch], args, out_root: Path) -> dict:
    """(d)'s fitness against each arch distilled alone from its reordered slice."""
    alone = []
    for arch in archs:
        out = out_root / f"alone-{args.space}-{arch}-{args.alone_steps}"
        if not ((out / ckpt.STATE).is_file() and ckpt.read_state(out)["step"] == args.alone_steps):
            config = TrainConfig(init="minilm", steps=args.alone_steps, samples=1, lr=args.lr,
                                 batch_size=args.batch_size, seq_len=args.seq_len,
                                 save_every=args.alone_steps)
            train_supernet(ws, config, TrainTarget(space=args.space, fixed_arch=arch, out_dir=out))
        evaluator = FitnessEvaluator.from_checkpoint(out, ws, eval_sequences=args.sequences)
        alone.append(evaluator.fitness([arch])[0])
    return {"supernet_fitness": list(fitness), "alone_fitness": alone,
            "pairwise_accuracy": pairwise_accuracy(fitness, alone)}


def main(argv=None) -> int:
    parser = bench_parser("bench.pretrained", __doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: shows it runs")
    parser.add_argument("--workspace", default=None, metavar="DIR",
                        help="data and checkpoints live here (reused); default: a temporary one")
    parser.add_argument("--space", choices=("pretrain", "kd"), default="pretrain")
    parser.add_argument("--steps", type=int, default=600, help="N: supernet steps of (a) and (d)")
    parser.add_argument("--alone-steps", type=int, default=300, help="stand-alone distillation steps")
    parser.add_argument("--lr", type=float, default=None,
                        help="peak lr of (d) and the stand-alone runs (default: train's --init default)")
    parser.add_argument("--scratch-lr", type=float, default=1e-3, help="peak lr of (a)")
    parser.add_argument("--sequences", type=int, default=128, help="held-out sequences per loss")
    parser.add_argument("--sections", default="scores,cost,ranking",
                        help="comma-separated: scores (a)-(d), cost (timed: idle machine), ranking")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sections = set(args.sections.split(","))
    if args.steps < 1 or args.alone_steps < 1 or args.sequences < 1 or not sections <= SECTIONS:
        print("bench.pretrained: --steps, --alone-steps and --sequences must be >= 1 and "
              f"--sections a comma-separated subset of {','.join(sorted(SECTIONS))}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    q = args.quick
    args.seq_len, args.batch_size, args.samples = (32, 4, 3) if q else (64, 16, 3)
    args.repeats = 2 if q else 5
    if q:
        args.steps, args.alone_steps, args.sequences = 3, 2, 8
    archs = space_archs(args.space)[::3] if q else space_archs(args.space)

    with tempfile.TemporaryDirectory() as tmpdir:
        ws = Path(args.workspace) if args.workspace else Path(tmpdir) / "ws"
        root = ws / "bench-pretrained"
        t0 = time.perf_counter()
        if not (ws / "data" / "manifest.json").is_file():
            prepare_data(ws, max_documents=80 if q else None)
        ids, mask = heldout_sentences(ws, n=20 if q else 200)
        teacher = get_teacher()
        agreement = TeacherAgreement(lambda i, m: teacher(i, m), ids, mask)
        common = dict(batch_size=args.batch_size, seq_len=args.seq_len, samples=args.samples)
        checkpoints = {}
        for name, options in VARIANTS.items():
            checkpoints[name] = root / f"{name}-{args.space}"
            train_supernet(ws, TrainConfig(init="minilm", steps=0, **options, **common),
                           TrainTarget(space=args.space, out_dir=checkpoints[name]))
        steps_dir = lambda tag: root / f"{tag}-{args.space}-{args.steps}"  # noqa: E731
        timings = {}
        for tag, super_config, options in (
                ("a_scratch", "minilm", dict(objective="kd", lr=args.scratch_lr)),
                ("d_trained", None, dict(init="minilm", lr=args.lr))):
            checkpoints[tag] = steps_dir(tag)
            if not ((checkpoints[tag] / ckpt.STATE).is_file()
                    and ckpt.read_state(checkpoints[tag])["step"] == args.steps):
                config = TrainConfig(steps=args.steps, save_every=args.steps, **options, **common)
                target = TrainTarget(super_config, args.space, out_dir=checkpoints[tag])
                trained = train_supernet(ws, config, target)
                timings[tag] = trained["seconds"]
        report = {
            "mode": "quick" if q else "full", "space": args.space, "steps": args.steps,
            "threads": args.threads, "archs": [str(a) for a in archs],
            "notes": [n for a, n in ARCHS][::3] if q else [n for a, n in ARCHS],
            "predicted_speedup": predicted_speedups(archs), "training_seconds": timings,
        }
        show = (lambda *a, **k: None) if args.json else print  # tables as they finish
        show(f"mode {report['mode']}, MiniLM {args.space} space, N = {args.steps} steps (lr: "
             f"scratch {args.scratch_lr:g}, init {args.lr or INIT_LR:g}), {args.sequences} held-out "
             f"sequences, {args.threads} threads", flush=True)
        if "scores" in sections:
            report["scores"] = {name: score(path, ws, archs, agreement, args.sequences)
                                for name, path in checkpoints.items()}
            show(_scores_table(report), flush=True)
        if "cost" in sections:
            report["training_cost"] = bench_supernet.training_cost(
                ws, init_models(checkpoints["d_trained"], archs[1::2]), args)
            show(_cost_table(report["training_cost"]), flush=True)
        if "ranking" in sections:
            evaluator = FitnessEvaluator.from_checkpoint(checkpoints["d_trained"], ws,
                                                         eval_sequences=args.sequences)
            report["ranking"] = ranking(evaluator.fitness(archs), ws, archs, args, root)
            show(_ranking_table(report, args), flush=True)
        report["total_seconds"] = time.perf_counter() - t0
        show(f"training seconds {report['training_seconds']}; total {report['total_seconds']:.0f} s")
    if args.json:
        print(json.dumps(report, indent=2))
    return 0


def _scores_table(report: dict) -> str:
    s = report["scores"]
    cols = list(s)
    lines = ["held-out distillation loss (lower is better; a: MSE to MiniLM, b-d: MSE in units "
             "of the teacher's per-channel spread, not comparable with a)",
             f"  {'arch':>18} {'pred':>6}  " + " ".join(f"{c:>13}" for c in cols)]
    for i, arch in enumerate(report["archs"]):
        lines.append(f"  {arch:>18} {report['predicted_speedup'][i]:5.1f}x  "
                     + " ".join(f"{s[c]['loss'][i]:13.4f}" for c in cols))
    lines += ["teacher agreement (Spearman of pairwise cosines, 200 held-out sentences; higher is "
              "better)", f"  {'arch':>18} {'note':>20}  " + " ".join(f"{c:>13}" for c in cols)
              + f" {'d - a':>7} {'c - b':>7}"]
    for i, arch in enumerate(report["archs"]):
        d_a = s["d_trained"]["agreement"][i] - s["a_scratch"]["agreement"][i]
        c_b = s["c_activation"]["agreement"][i] - s["b_plain"]["agreement"][i]
        lines.append(f"  {arch:>18} {report['notes'][i]:>20}  "
                     + " ".join(f"{s[c]['agreement'][i]:13.3f}" for c in cols)
                     + f" {d_a:+7.3f} {c_b:+7.3f}")
    return "\n".join(lines)


def _cost_table(rows: list[dict]) -> str:
    lines = ["training cost per token, self-distillation, sliced supernet vs sub-model alone "
             "(target <= 1.3):"]
    for row in rows:
        lines.append(f"  {row['arch']:>18}  supernet {row['supernet_tok_s']:8.0f} tok/s  "
                     f"alone {row['alone_tok_s']:8.0f} tok/s  ratio {row['cost_ratio']:.2f}")
    return "\n".join(lines)


def _ranking_table(report: dict, args) -> str:
    rk = report["ranking"]
    lines = [f"ranking: (d) fitness vs stand-alone distillation ({args.alone_steps} steps, lr "
             f"{args.lr or INIT_LR:g}) of the same archs: pairwise accuracy {rk['pairwise_accuracy']:.1%} "
             f"(target >= 90%)"]
    for arch, d, a in zip(report["archs"], rk["supernet_fitness"], rk["alone_fitness"]):
        lines.append(f"  {arch:>18}  supernet {d:9.4f}  alone {a:9.4f}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
