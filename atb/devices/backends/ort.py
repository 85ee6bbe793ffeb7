"""ONNX Runtime CPU as users deploy it: explicit intra-op threads, sequential, full optimisation.

ORT's default session lets its worker threads spin, which is what a deployed single-request
loop gets and why it is fast for small models. Left spinning *between* runs, though, one
session's idle workers would steal the CPU from the next model in atb's interleaved rounds. So
workers spin inside a run and stop when it returns (``session.force_spinning_stop``): within
1-2% of the default session (``python -m bench.profiler --sections deployment``), with nothing left
spinning between runs. Protocol 2 parked the workers instead (``allow_spinning=0``), which made
every run pay a wake-up that cost small models up to 12% of their speedup.

INT8 (``--precision int8``): the graph is already the dynamic-quantization graph of
:mod:`atb.devices.quantization` (``MatMulInteger`` linears, built by the profiler); the same
session and options run it, and ``ORT_ENABLE_ALL`` fuses it into ``DynamicQuantizeMatMul``
as it does for ``quantize_dynamic``'s output.
"""

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


def session_options(setting: DeviceSetting, spin_in_run: bool = True):
    """ORT options for ``setting``: workers spin inside a run and stop when it returns;
    ``spin_in_run=False`` parks them between parallel sections instead (protocol 2; kept for
    ``bench/noise.py``'s comparison)."""
    ort = _import()
    options = ort.SessionOptions()
    options.intra_op_num_threads = setting.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin_in_run else "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    if spin_in_run:  # ... but never between runs, where it would steal the next model's CPU
        options.add_session_config_entry("session.force_spinning_stop", "1")
    options.log_severity_level = 3
    return options


class OrtRunner(Runner):
    def __init__(self, graph: Path, setting: DeviceSetting, inputs: dict[str, np.ndarray],
                 spin_in_run: bool = True):
        ort = _import()
        try:
            self.session = ort.InferenceSession(
                str(graph), session_options(setting, spin_in_run), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise BackendUnavailableError(f"onnxruntime could not load {graph.name}: {exc}") from exc
        self.inputs = inputs

    def run(self) -> None:
        # the call a deployed Python loop makes, numpy in and out: IO binding saved 20-40 us a
        # run, 2.5% of the smallest models' latency, that no user of session.run gets
        self.session.run(None, self.inputs)

    def close(self) -> None:
        self.session = None


class OrtBackend(Backend):
    name = "onnxruntime"

    def load(self, arch: Arch, graph: Path | None, setting: DeviceSetting, inputs) -> Runner:
        return OrtRunner(graph, setting, inputs)


BACKEND = OrtBackend()
