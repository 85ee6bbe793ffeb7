"""Training options in one place, free of torch so that ``atb-supernet --help`` is instant.

:class:`TrainConfig` holds the defaults; ``atb.supernet.cli`` exposes them as the flags of
``atb-supernet train`` and of ``python -m atb.supernet`` (torchrun). :class:`TrainTarget` says
which supernet a run trains and where its checkpoint goes; :class:`ExportOptions` what a
written model directory holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from atb.arch import Arch, SearchSpace

SAMPLING = ("uniform", "sandwich")
IMPORTANCE = ("activation", "weight", "none")
PRECISIONS = ("fp32", "bf16")  # of the training forward passes (TrainConfig.precision)
DEPTHS = ("first", "spread")  # which layers a shallow sub-model keeps (elastic.layer_indices)
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
    # the layers of a sub-model shallower than the supernet: the first lt (the paper's), or
    # "spread" evenly with the last kept (DistilBERT / DynaBERT); the self-kd teacher is full
    depth: str = "first"
    # "bf16": the forward passes under bfloat16 autocast (weights, gradients and AdamW stay
    # fp32); only where the device has bf16 arithmetic (checked at run time, train.bf16_support)
    precision: str = "fp32"


@dataclass(frozen=True)
class TrainTarget:
    """Which supernet a run trains and where it saves it (not saved in the checkpoint's config:
    the checkpoint records the super-arch, space and fixed arch itself)."""

    # from scratch: small (the default), base, minilm, or an Arch; with TrainConfig.init the
    # pretrained checkpoint defines it and this must stay None
    super_config: str | Arch | None = None
    space: str | SearchSpace = "pretrain"  # the head strategy, or a whole SearchSpace
    fixed_arch: Arch | None = None  # train this one arch alone (the stand-alone baseline)
    out_dir: Path | None = None  # the checkpoint directory; None: under the workspace


@dataclass(frozen=True)
class ExportOptions:
    """What a written model directory holds besides the 🤗 weights and the tokenizer."""

    onnx: bool = False  # also model.onnx
    quantize: str | None = None  # "int8": also model.onnx and model.int8-<scheme>.onnx
    scheme: str = "dynamic"  # the INT8 scheme: "dynamic" or "qdq" (calibrated)
