"""OpenVINO CPU: one stream, explicit threads, explicit inference precision.

OpenVINO picks bf16 by itself on CPUs that have it; a label must say what it measured, so
``INFERENCE_PRECISION_HINT`` is always set from the setting. Same knobs as
``benchmark_app -hint none -nstreams 1 -nthreads N -api sync``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from atb.arch import Arch
from atb.devices.backends.base import Backend, Runner
from atb.devices.setting import DeviceSetting
from atb.errors import BackendUnavailableError

OV_PRECISION = {"fp32": "f32", "bf16": "bf16"}


def _core():
    try:
        import openvino
    except ImportError as exc:
        raise BackendUnavailableError("openvino is not installed", hint="pip install openvino") from exc
    return openvino.Core()


def compile_config(setting: DeviceSetting) -> dict[str, str]:
    return {
        "NUM_STREAMS": "1",
        "INFERENCE_NUM_THREADS": str(setting.threads),
        "INFERENCE_PRECISION_HINT": OV_PRECISION[setting.precision],
    }


class OpenVinoRunner(Runner):
    def __init__(self, graph: Path, setting: DeviceSetting, inputs: dict[str, np.ndarray]):
        core = _core()
        try:
            self.compiled = core.compile_model(core.read_model(str(graph)), "CPU", compile_config(setting))
        except Exception as exc:  # openvino raises RuntimeError subclasses of its own
            raise BackendUnavailableError(f"openvino could not compile {graph.name}: {exc}") from exc
        self.request = self.compiled.create_infer_request()
        for name, value in inputs.items():
            self.request.set_tensor(name, _tensor(value))

    def run(self) -> None:
        self.request.infer()

    def close(self) -> None:
        self.request = self.compiled = None


def _tensor(value):
    import openvino

    return openvino.Tensor(value)


class OpenVinoBackend(Backend):
    name = "openvino"

    def load(self, arch: Arch, graph: Path | None, setting: DeviceSetting, inputs) -> Runner:
        return OpenVinoRunner(graph, setting, inputs)


BACKEND = OpenVinoBackend()
