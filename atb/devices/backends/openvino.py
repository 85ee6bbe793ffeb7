"""OpenVINO CPU as users deploy it for one request at a time: the latency hint, one stream,
explicit threads, explicit inference precision.

``PERFORMANCE_HINT=LATENCY`` is OpenVINO's own single-request configuration; the thread count
and precision are then set explicitly because the hint would choose them by machine (all
physical cores; bf16 on CPUs that have it) and a label must say what it measured. Compared
with ``benchmark_app -hint none -nstreams 1 -nthreads N -infer_precision f32 -api sync``
(benchmark_app refuses ``-nthreads`` next to a hint) by ``bench/profiler.py``.

INT8 (``--precision int8``): the graph is the static QDQ graph of
:mod:`atb.devices.quantization` (built by the profiler); OpenVINO's low-precision
transformations run each dequantized MatMul in INT8, and the precision hint stays f32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from atb.arch import Arch
from atb.devices.backends.base import Backend, Runner
from atb.devices.setting import DeviceSetting
from atb.errors import BackendUnavailableError

# int8: the graph's QDQ nodes make the MatMuls INT8; the hint sets every other op's precision
# (softmax, LayerNorm, GELU, the float bias adds). Left unset it would be bf16 on CPUs that
# have bf16, so an int8 label would mean "int8 + bf16" on some machines and "int8 + f32" on
# others; f32 makes it the same mix as ONNX Runtime's dynamic INT8 everywhere.
OV_PRECISION = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}


def _core():
    try:
        import openvino
    except ImportError as exc:
        raise BackendUnavailableError("openvino is not installed", hint="pip install openvino") from exc
    return openvino.Core()


def compile_config(setting: DeviceSetting) -> dict[str, str]:
    return {
        "PERFORMANCE_HINT": "LATENCY",
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
        self.inputs = inputs

    def run(self) -> None:
        self.request.infer(self.inputs)  # the call a deployed Python loop makes

    def close(self) -> None:
        self.request = self.compiled = None


class OpenVinoBackend(Backend):
    name = "openvino"

    def load(self, arch: Arch, graph: Path | None, setting: DeviceSetting, inputs) -> Runner:
        return OpenVinoRunner(graph, setting, inputs)


BACKEND = OpenVinoBackend()
