"""One arch cut out of a supernet and distilled further on its own: the stand-alone budget that
the benchmarks give every arch they compare (the paper's "extracted and trained further";
Minitron's short distillation of each candidate)."""

from __future__ import annotations

import logging
from pathlib import Path

from atb.arch import Arch

log = logging.getLogger("atb.supernet.alone")


def distill_alone(workspace, supernet: Path, arch: Arch, steps: int, root: Path) -> Path:
    """``arch``'s slice of the ``supernet`` checkpoint, trained further alone for ``steps``
    (:func:`atb.supernet.further.train_further`: the supernet's objective and teacher, a keyed
    run that is reused or resumed), extracted as a 🤗 directory ``root/model-<arch>-<steps>``
    (reused when it exists, so an interrupted benchmark resumes)."""
    from atb.supernet.extract import extract
    from atb.supernet.further import FurtherConfig, train_further

    out = Path(root) / f"model-{arch}-{steps}"
    if (out / "config.json").is_file():
        return out
    log.info("distilling %s alone for %d steps", arch, steps)
    record = train_further(workspace, arch, FurtherConfig(steps=steps), supernet=supernet)
    extract(workspace, arch, out, checkpoint=Path(record["checkpoint"]))
    return out
