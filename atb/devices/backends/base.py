"""The small interface every timing backend implements."""

from __future__ import annotations

import abc
from pathlib import Path

import numpy as np

from atb.arch import Arch
from atb.devices.setting import DeviceSetting


class Runner(abc.ABC):
    """One loaded model with its inputs bound: ``run()`` is one synchronous inference.

    ``load`` and ``run`` may raise whatever their library raises: the profiler stores that
    arch as failed with the exception's type and message and times the rest of its group.
    """

    @abc.abstractmethod
    def run(self) -> None: ...

    def close(self) -> None:
        """Free the model (sessions hold hundreds of MB)."""

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Backend(abc.ABC):
    name: str
    uses_onnx = True  # False: the backend builds its model from the Arch (torch eager)

    @abc.abstractmethod
    def load(
        self, arch: Arch, graph: Path | None, setting: DeviceSetting, inputs: dict[str, np.ndarray]
    ) -> Runner:
        """Load ``graph`` (the arch's ONNX file) for ``setting`` with ``inputs`` bound; raise
        BackendUnavailableError when the library is missing or rejects the setting."""
