"""The standalone ONNX graph of one architecture: fp32 (:func:`build_onnx`), or the graph a
device setting times (:func:`graph_for`).

Graphs are assembled node by node by :mod:`atb.profiler.onnx_builder` (see there why, and how
they match the torch export). Weights: by default every graph points into the shared
:class:`WeightPool`; pass ``weights=state_dict_weights(model)`` to build a self-contained
graph of real weights instead.

INT8 settings get the quantized graph of their backend's scheme, built the same way by
:mod:`atb.profiler.onnx_int8` (:func:`graph_for` picks). The builder's names are re-exported
here: this module is their public import path.
"""

from __future__ import annotations

import numpy as np
import onnx

from atb.arch import VOCAB_SIZE, Arch
from atb.devices.quantization import scheme_for
from atb.devices.setting import DeviceSetting
from atb.profiler.onnx_builder import (INPUT_NAMES, LAYER_NORM_EPS, OPSET, OUTPUT_NAMES, POOL_FILE,
                                       GraphBuilder, WeightPool, WeightSource, assemble, default_pool)
from atb.profiler.onnx_int8 import build_int8_onnx

__all__ = [
    "build_onnx", "graph_for", "example_inputs", "state_dict_weights", "WeightPool", "WeightSource",
    "default_pool", "GraphBuilder", "assemble", "OPSET", "INPUT_NAMES", "OUTPUT_NAMES",
    "LAYER_NORM_EPS", "POOL_FILE",
]


def state_dict_weights(model) -> WeightSource:
    """Weights from a torch ``AtbBertModel`` (Linear weights transposed to (in, out))."""
    state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    linear = {k[: -len(".weight")] for k, v in state.items()
              if k.endswith(".weight") and v.ndim == 2 and not k.startswith("embeddings.")}

    def lookup(name: str, shape: tuple[int, ...]) -> np.ndarray:
        array = state[name].T if name.endswith(".weight") and name[:-7] in linear else state[name]
        assert array.shape == shape, (name, array.shape, shape)
        return np.ascontiguousarray(array, dtype=np.float32)

    return lookup


def build_onnx(
    arch: Arch,
    seq_len: int = 128,
    batch: int = 1,
    weights: WeightSource | WeightPool | None = None,
) -> onnx.ModelProto:
    """The ONNX model of ``arch`` for fixed (batch, seq_len) int64 inputs.

    Inputs ``input_ids``, ``attention_mask``, ``token_type_ids``; outputs
    ``last_hidden_state`` (batch, seq, dm) and ``pooler_output`` (batch, dm).
    ``weights``: None for the shared :class:`WeightPool` (external data: save the model with
    ``pool.save``), or a function ``(name, shape) -> array`` for inline weights.
    """
    weights = default_pool() if weights is None else weights
    return assemble(GraphBuilder(weights), arch, seq_len, batch)


def graph_for(arch: Arch, setting: DeviceSetting, pool: WeightPool | None = None) -> onnx.ModelProto:
    """The graph a profiler times ``arch`` with under a resolved ``DeviceSetting``: fp32 (also
    for bf16, which the runtime applies), or the INT8 graph of the setting's backend scheme."""
    if setting.precision == "int8":
        return build_int8_onnx(arch, scheme_for(setting.backend), setting.seq_len, setting.batch, pool)
    return build_onnx(arch, setting.seq_len, setting.batch, pool)


def example_inputs(seq_len: int = 128, batch: int = 1, seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic token ids, a full attention mask and zero token types."""
    rng = np.random.default_rng(seed)
    return {
        "input_ids": rng.integers(1000, VOCAB_SIZE, size=(batch, seq_len), dtype=np.int64),
        "attention_mask": np.ones((batch, seq_len), dtype=np.int64),
        "token_type_ids": np.zeros((batch, seq_len), dtype=np.int64),
    }
