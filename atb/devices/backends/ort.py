"""ONNX Runtime CPU: explicit intra-op threads, no idle spinning, sequential, full optimisation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from atb.arch import Arch
from atb.devices.backends.base import Backend, Runner
from atb.devices.setting import DeviceSetting
from atb.errors import BackendUnavailableError


def _import():
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendUnavailableError(
            "onnxruntime is not installed", hint="pip install onnxruntime"
        ) from exc
    return onnxruntime


def session_options(setting: DeviceSetting, spin_in_run: bool = False):
    """ORT options for ``setting``. ``spin_in_run`` lets workers spin inside a run and stop
    when it returns (``bench/noise.py`` compares it; profiling always parks them)."""
    ort = _import()
    options = ort.SessionOptions()
    options.intra_op_num_threads = setting.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # idle worker threads spin by default, stealing the CPU from the next timed run
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin_in_run else "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    if spin_in_run:
        options.add_session_config_entry("session.force_spinning_stop", "1")
    options.log_severity_level = 3
    return options


class OrtRunner(Runner):
    def __init__(self, graph: Path, setting: DeviceSetting, inputs: dict[str, np.ndarray],
                 spin_in_run: bool = False):
        ort = _import()
        try:
            self.session = ort.InferenceSession(
                str(graph), session_options(setting, spin_in_run), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise BackendUnavailableError(f"onnxruntime could not load {graph.name}: {exc}") from exc
        # bind inputs and outputs once: a timed run is the inference, not numpy conversion
        self.binding = self.session.io_binding()
        for name, value in inputs.items():
            self.binding.bind_cpu_input(name, value)
        for output in self.session.get_outputs():
            self.binding.bind_output(output.name, "cpu")

    def run(self) -> None:
        self.session.run_with_iobinding(self.binding)

    def close(self) -> None:
        self.binding = self.session = None


class OrtBackend(Backend):
    name = "onnxruntime"

    def load(self, arch: Arch, graph: Path | None, setting: DeviceSetting, inputs) -> Runner:
        return OrtRunner(graph, setting, inputs)


BACKEND = OrtBackend()
