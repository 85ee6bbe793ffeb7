"""One progress-bar wrapper for the whole library (tqdm on stderr).

Bars are off when the CLI asks (``--json``), when stderr is not a terminal, or when
``ATB_NO_PROGRESS=1``; ``ATB_PROGRESS=1`` forces them on (useful under ``script`` or CI logs).
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager

_enabled_by_cli = True


def set_enabled(enabled: bool) -> None:
    """Called by CLIs: ``--json`` turns bars off for the rest of the process."""
    global _enabled_by_cli
    _enabled_by_cli = enabled


def enabled() -> bool:
    if os.environ.get("ATB_NO_PROGRESS") == "1" or not _enabled_by_cli:
        return False
    if os.environ.get("ATB_PROGRESS") == "1":
        return True
    return sys.stderr.isatty()


@contextmanager
def progress(total: int | None = None, desc: str = "", unit: str = "it", initial: int = 0):
    """A tqdm bar (or a silent stand-in with the same ``update``/``set_postfix_str`` calls)."""
    from tqdm.auto import tqdm

    bar = tqdm(
        total=total,
        desc=desc,
        unit=unit,
        initial=initial,
        file=sys.stderr,
        disable=not enabled(),
        dynamic_ncols=True,
        smoothing=0.1,
    )
    try:
        yield bar
    finally:
        bar.close()
