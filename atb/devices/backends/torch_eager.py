"""torch eager: the reference backend (atb.modeling, no ONNX), under inference_mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from atb.arch import Arch
from atb.devices.backends.base import Backend, Runner
from atb.devices.setting import DeviceSetting
from atb.errors import BackendUnavailableError


class TorchRunner(Runner):
    def __init__(self, arch: Arch, setting: DeviceSetting, inputs: dict[str, np.ndarray]):
        try:
            import torch

            from atb.modeling import build_model
        except ImportError as exc:
            raise BackendUnavailableError("torch is not installed", hint="pip install torch==2.13.0") from exc
        self.torch = torch
        self.threads = setting.threads
        self.model = build_model(arch, seed=0)
        if setting.precision == "bf16":
            self.model = self.model.to(torch.bfloat16)
        self.inputs = {name: torch.from_numpy(value) for name, value in inputs.items()}

    def run(self) -> None:
        torch = self.torch
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)  # explicit, and restored: torch's setting is global
        try:
            with torch.inference_mode():
                self.model(**self.inputs, return_dict=False)
        finally:
            torch.set_num_threads(previous)

    def close(self) -> None:
        self.model = None


class TorchBackend(Backend):
    name = "torch"
    uses_onnx = False

    def load(self, arch: Arch, graph: Path | None, setting: DeviceSetting, inputs) -> Runner:
        return TorchRunner(arch, setting, inputs)


BACKEND = TorchBackend()
