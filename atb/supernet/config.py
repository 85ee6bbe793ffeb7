"""Training options in one place, free of torch so that ``atb-supernet --help`` is instant.

:class:`TrainConfig` holds the defaults; :func:`add_train_arguments` exposes them as flags
for both ``atb-supernet train`` and ``python -m atb.supernet.train`` (torchrun).
"""

from __future__ import annotations

from dataclasses import dataclass

SAMPLING = ("uniform", "sandwich")


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (the paper's values in comments)."""

    steps: int = 300  # total optimizer updates (paper: 5 epochs)
    batch_size: int = 16  # sequences per update over all workers (paper: 256)
    seq_len: int = 64  # tokens per sequence incl. [CLS]/[SEP] (paper: 128)
    samples: int = 3  # M: sub-models sampled per worker and step (paper: 3)
    sampling: str = "uniform"  # "uniform" (paper) or "sandwich": largest + smallest + M-2 uniform
    workers: int = 0  # N: sub-batches per step; 0 = number of processes (paper: 16)
    lr: float = 5e-4  # peak AdamW learning rate (short runs from scratch need more than 1e-5)
    warmup: float = 0.1  # fraction of steps of linear warm-up, then linear decay (paper: 0.1)
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    seed: int = 0
    save_every: int = 100  # steps between checkpoints (and one at the end)
    log_every: int = 10


def add_train_arguments(parser) -> None:
    """Options shared by ``atb-supernet train`` and ``python -m atb.supernet.train``."""
    parser.add_argument("--super", dest="super_config", default="small", choices=["base", "small"],
                        help="super-configuration (default: small, CPU-sized)")
    parser.add_argument("--space", default="pretrain", choices=["pretrain", "kd"],
                        help="head strategy and objective: pretrain = MLM, kd = distillation")
    parser.add_argument("--steps", type=int, default=TrainConfig.steps, help="total updates")
    parser.add_argument("--resume", action="store_true", help="continue the saved checkpoint")
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--seq-len", type=int, default=TrainConfig.seq_len)
    parser.add_argument("--samples", type=int, default=TrainConfig.samples,
                        help="M sub-models per worker and step")
    parser.add_argument("--sampling", default=TrainConfig.sampling, choices=SAMPLING,
                        help="uniform: M sub-models drawn uniformly (the paper's Algorithm 1); "
                             "sandwich: the largest, the smallest and M-2 uniform ones, which "
                             "trains the largest sub-models as much as the rest (needs M >= 2)")
    parser.add_argument("--workers", type=int, default=0,
                        help="N sub-batches per step (default: the number of processes)")
    parser.add_argument("--lr", type=float, default=TrainConfig.lr)
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--save-every", type=int, default=TrainConfig.save_every)


