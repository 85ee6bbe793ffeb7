"""A host-wide lock: one timer per machine.

Two profilers on one host share its cores and caches, so both record worthless times. The
lock is an ``flock`` on a file in the system temp directory (``$ATB_LOCK_FILE`` overrides it,
for tests); the kernel drops it when the holder dies, even by ``kill -9``.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

from atb.errors import StoreLockedError


def lock_path() -> Path:
    return Path(os.environ.get("ATB_LOCK_FILE") or Path(tempfile.gettempdir()) / "atb-timing.lock")


class HostLock:
    """``with HostLock(what):`` holds the host's timing lock or raises StoreLockedError."""

    def __init__(self, what: str = "atb-profile"):
        self.what = what
        self.path = lock_path()
        self._fd: int | None = None

    def __enter__(self) -> "HostLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise StoreLockedError(
                f"another atb timer is running on this host ({holder}); two timers on one "
                "machine corrupt each other's timings",
                hint=f"wait for it to finish or stop it (lock: {self.path})",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}: {self.what}".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
