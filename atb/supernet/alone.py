"""One arch cut out of a supernet and distilled further on its own: the stand-alone budget that
the benchmarks give every arch they compare (the paper's "extracted and trained further";
Minitron's short distillation of each candidate)."""

from __future__ import annotations

import logging
from pathlib import Path

from atb.arch import Arch

log = logging.getLogger("atb.supernet.alone")


def distill_alone(workspace, supernet: Path, arch: Arch, steps: int, root: Path) -> Path:
    """``arch``'s slice of the ``supernet`` checkpoint, distilled alone for ``steps`` under the
    supernet's own objective and teacher, extracted as a 🤗 directory
    ``root/model-<arch>-<steps>``. Both the trained checkpoint (``root/alone-<arch>-<steps>``)
    and the directory are reused when they exist, so an interrupted benchmark resumes."""
    from atb.supernet import checkpoint as ckpt
    from atb.supernet.extract import extract, extract_trainable
    from atb.supernet.config import TrainConfig, TrainTarget
    from atb.supernet.train import train_supernet

    out = Path(root) / f"model-{arch}-{steps}"
    if (out / "config.json").is_file():
        return out
    alone = Path(root) / f"alone-{arch}-{steps}"
    if not ((alone / ckpt.STATE).is_file() and ckpt.read_state(alone)["step"] == steps):
        extract_trainable(supernet, arch, alone)
        state = ckpt.read_state(supernet)
        log.info("distilling %s alone for %d steps", arch, steps)
        config = TrainConfig(steps=steps, samples=1, save_every=max(1, steps),
                             init=state["init"]["source"])
        train_supernet(workspace, config, TrainTarget(space=state["space"], fixed_arch=arch,
                                                      out_dir=alone), resume=True)
    extract(workspace, arch, out, checkpoint=alone)
    return out
