"""Timing backends. A backend loads one graph and runs it once; nothing else.

Warm-up, the timing loop and statistics live once, in :mod:`atb.profiler.timing`.
"""

from __future__ import annotations

import importlib

from atb.devices.backends.base import Backend, Runner
from atb.errors import BackendUnavailableError

_MODULES = {
    "onnxruntime": "atb.devices.backends.ort",
    "openvino": "atb.devices.backends.openvino",
    "torch": "atb.devices.backends.torch_eager",
}


def get_backend(name: str) -> Backend:
    """The backend called ``name``; its library is imported here, lazily."""
    if name not in _MODULES:
        raise BackendUnavailableError(f"unknown backend {name!r}", hint=f"use one of: {', '.join(_MODULES)}")
    return importlib.import_module(_MODULES[name]).BACKEND


__all__ = ["Backend", "Runner", "get_backend"]
