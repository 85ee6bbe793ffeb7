"""Training options in one place, free of torch so that ``atb-supernet --help`` is instant.

:class:`TrainConfig` holds the defaults; :func:`add_train_arguments` exposes them as flags
for both ``atb-supernet train`` and ``python -m atb.supernet.train`` (torchrun).
"""

from __future__ import annotations

from dataclasses import dataclass

SAMPLING = ("uniform", "sandwich")
IMPORTANCE = ("activation", "weight", "none")
SCRATCH_LR = 5e-4  # short runs from scratch need far more than the paper's 1e-5
INIT_LR = 5e-5  # --init fine-tunes a pretrained model: a larger rate erases what it knows


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (the paper's values in comments)."""

    steps: int = 300  # total optimizer updates (paper: 5 epochs)
    batch_size: int = 16  # sequences per update over all workers (paper: 256)
    seq_len: int = 64  # tokens per sequence incl. [CLS]/[SEP] (paper: 128)
    samples: int = 3  # M: sub-models sampled per worker and step (paper: 3)
    # "uniform" (the paper's) or "sandwich": largest + smallest + M-2 uniform; None: uniform
    # from scratch, sandwich with --init (uniform draws rarely reach the full model, and
    # training the others drags the pretrained full model away from the teacher)
    sampling: str | None = None
    workers: int = 0  # N: sub-batches per step; 0 = number of processes (paper: 16)
    lr: float | None = None  # peak AdamW lr; None: SCRATCH_LR, or INIT_LR with --init
    warmup: float = 0.1  # fraction of steps of linear warm-up, then linear decay (paper: 0.1)
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    seed: int = 0
    save_every: int = 100  # steps between checkpoints (and one at the end)
    log_every: int = 10
    objective: str | None = None  # from scratch: "mlm" or "kd" (default: the space's own)
    # --init: build SuperPLM from a pretrained BERT and distil it from that model (self-kd)
    init: str | None = None  # a local 🤗 BERT directory, or "minilm"; None = from scratch
    importance: str = "activation"  # unit ranking before training: activation, weight, none
    reorder_hidden: bool = True  # also rank hidden channels (not only heads and FFN neurons)
    calibration: int = 128  # training sequences the importance scores are measured on


def add_train_arguments(parser) -> None:
    """Options shared by ``atb-supernet train`` and ``python -m atb.supernet.train``."""
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
    parser.add_argument("--workers", type=int, default=0,
                        help="N sub-batches per step (default: the number of processes)")
    parser.add_argument("--lr", type=float, default=None,
                        help=f"peak learning rate (default: {SCRATCH_LR:g} from scratch, "
                             f"{INIT_LR:g} with --init)")
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--save-every", type=int, default=TrainConfig.save_every)


