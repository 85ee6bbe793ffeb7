"""The workspace: one directory holding everything a user measured or trained.

Resolution order: an explicit path, ``$ATB_WORKSPACE``, then ``./atb-workspace``. The layout
is fixed here, once, so every command finds what another one made.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from atb.errors import MissingInputError, WorkspaceError

DEFAULT_WORKSPACE = "atb-workspace"


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def resolve(cls, path: str | os.PathLike | None = None, create: bool = True) -> "Workspace":
        root = Path(path or os.environ.get("ATB_WORKSPACE") or DEFAULT_WORKSPACE).expanduser()
        ws = cls(root.resolve())
        if create:
            ws.ensure_writable()
        elif not root.is_dir():
            what = "is a file, not a workspace directory" if root.exists() else "does not exist"
            raise MissingInputError(
                f"workspace {root} {what}", hint="run atb-profile first, or pass --workspace"
            )
        return ws

    @classmethod
    def of(cls, x: Workspace | str | os.PathLike | None, create: bool = True) -> "Workspace":
        """``x`` itself when it is a workspace, else :meth:`resolve` of it: one coercion for
        every API that takes a workspace or a path."""
        return x if isinstance(x, cls) else cls.resolve(x, create=create)

    def ensure_writable(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".atb-write-probe-{os.getpid()}"  # torchrun's ranks check at once
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise WorkspaceError(
                f"workspace {self.root} is not writable: {exc.strerror or exc}",
                hint="pass --workspace DIR with a directory you can write",
            ) from exc

    def subdir(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def store_path(self) -> Path:
        """SQLite latency store (atb.profiler.store)."""
        return self.root / "latency.sqlite"

    @property
    def predictors_dir(self) -> Path:
        return self.subdir("predictors")

    @property
    def supernet_dir(self) -> Path:
        return self.subdir("supernet")

    @property
    def data_dir(self) -> Path:
        return self.subdir("data")

    @property
    def runs_dir(self) -> Path:
        return self.subdir("runs")

    @property
    def plots_dir(self) -> Path:
        return self.subdir("plots")
