"""The INT8 ONNX graph of one architecture, built directly like the fp32 one.

Running ``onnxruntime.quantization`` on every profiled graph would cost more than timing it
(it loads the weights, infers shapes and, for the static scheme, runs calibration), so the
quantized graph is emitted node by node instead, in the pattern the library produces for the
scheme the backend is timed with (:mod:`atb.devices.quantization`):

* ``dynamic`` (ONNX Runtime): each linear layer ``x @ W + b`` becomes
  ``DynamicQuantizeLinear(x)`` (shared by the layers that read the same ``x``: Q, K and V),
  ``MatMulInteger(x_q, W_q, x_zp, W_zp)``, ``Cast`` to float and ``Mul`` by
  ``x_scale * W_scale``, then the bias ``Add``; the attention products stay float.
* ``qdq`` (OpenVINO): every MatMul input ``x`` gets ``QuantizeLinear -> DequantizeLinear``
  (shared likewise), every weight is int8 behind a ``DequantizeLinear``; the linear layers and
  the attention products ``Q·Kᵀ``, ``P·V`` are quantized, their outputs are not.

Every tensor of the fp32 graph keeps its name, so activation scales taken from a calibrated
library model (``activation_qparams``) can be passed in by name. The profiler uses fixed
activation ranges instead, close to what MinMax calibration finds on the random-weight graphs:
scales do not change latency.

Weights: with the shared :class:`~atb.profiler.onnx_builder.WeightPool`, int8 weights point into
a second pooled file, the fp32 pool quantized with one scale and laid out the same way
(:class:`Int8Pool`), so an INT8 graph is as small and as quick to build and load as an fp32
one; with a weight function (real weights) they are quantized here, per tensor, exactly as
the library does (:func:`atb.devices.quantization.quantize_weight`), and stored inline.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from atb.arch import Arch
from atb.devices.quantization import QuantScheme, activation_qparams, quantize_weight
from atb.jsonl import atomic_path
from atb.profiler.onnx_builder import GraphBuilder, WeightPool, WeightSource, assemble, default_pool

INT8_POOL_FILE = "atb-weight-pool-int8-v1.bin"
POOL_STD = 0.02  # the fp32 pool's random values: N(0, 0.02)
POOL_SCALE = np.float32(6 * POOL_STD / 127)  # one scale for the int8 pool: 6 sigma is 127
_CHUNK = 1 << 22

# fixed activation ranges for the profiled graphs: what MinMax finds on the random-weight
# graphs, rounded (sd = 0.02 * sqrt(dm) is the spread of a LayerNorm output times a pool
# weight). Calibrated ranges are never exactly symmetric, so neither are these: a uint8 zero
# point of exactly 128 lets OpenVINO run that tensor as signed int8 without a zero point, a
# different kernel from the one a calibrated model gets.
def _default_ranges(dm: int) -> dict[str, tuple[float, float]]:
    sd = POOL_STD * math.sqrt(dm)
    return {
        "hidden": (-4.5, 4.1),  # LayerNorm outputs (gamma 1, beta 0) and the [CLS] row
        "qkv": (-5.2 * sd, 4.8 * sd),  # q, k (transposed), v
        "probs": (0.0, 1.0),  # softmax, as calibrated on a trained model's peaked attention
        "context": (-2.1 * sd, 1.9 * sd),  # attention-weighted values
        "gelu": (-0.17, 5 * sd),  # GELU's minimum is -0.17
    }


def _input_role(prefix: str) -> str:
    """What feeds the linear layer ``prefix`` (for its default activation range)."""
    if prefix.endswith("attention.output.dense"):
        return "context"
    if prefix.endswith(".output.dense"):
        return "gelu"
    return "hidden"  # Q, K, V, the intermediate layer and the pooler read a LayerNorm output


def _distinct(scale: float, name: str) -> np.float32:
    """``scale`` nudged by a factor in [1, 1 + 2.5e-4) that depends on ``name``.

    Library-quantized models never have two weights (or activations) with equal scales, and
    ONNX Runtime's optimizer merges equal constants: with one pooled scale everywhere, the
    scale products of Q, K and V became one node, which blocked the ``MatMulIntegerToFloat``
    fusion the library's graph gets. Distinct scales keep the optimised graphs alike."""
    return np.float32(scale * (1 + (zlib.crc32(name.encode()) % 4096) / 2**24))


class Int8Pool:
    """The fp32 :class:`WeightPool` quantized to int8 with one scale (:data:`POOL_SCALE`),
    element i here for element i there: an int8 weight points at the byte offset its fp32
    twin has as a float offset. 32 MB, written once next to the fp32 pool."""

    def __init__(self, pool: WeightPool):
        self.pool = pool
        self.path = pool.directory / INT8_POOL_FILE
        self.scale = POOL_SCALE
        if not (self.path.is_file() and self.path.stat().st_size == pool.path.stat().st_size // 4):
            self._write()

    def _write(self) -> None:
        values = np.memmap(self.pool.path, dtype=np.float32, mode="r")
        with atomic_path(self.path) as tmp, open(tmp, "wb") as f:  # atomic, as the fp32 pool
            for start in range(0, len(values), _CHUNK):
                chunk = np.round(values[start : start + _CHUNK] / self.scale)
                np.clip(chunk, -127, 127, out=chunk).astype(np.int8).tofile(f)

    def tensor(self, name: str, fp32_name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
        size = math.prod(shape)
        tensor = onnx.TensorProto(name=name, data_type=TensorProto.INT8, dims=list(shape))
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in (
            ("location", INT8_POOL_FILE),
            ("offset", str(self.pool.offset(fp32_name, size))),
            ("length", str(size)),
        ):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        return tensor


_int8_pools: dict[Path, Int8Pool] = {}


def int8_pool(pool: WeightPool) -> Int8Pool:
    if pool.path not in _int8_pools:
        _int8_pools[pool.path] = Int8Pool(pool)
    return _int8_pools[pool.path]


class _Int8Builder(GraphBuilder):
    """Quantized linear layers; the weight side is the same for both schemes."""

    def __init__(self, weights: WeightSource | WeightPool, dm: int,
                 activation_qparams: dict[str, tuple[float, int]] | None = None):
        super().__init__(weights)
        self.int8 = int8_pool(weights) if isinstance(weights, WeightPool) else None
        self.ranges = _default_ranges(dm)
        self.qparams = activation_qparams or {}
        self._quantized: dict[str, tuple[str, ...]] = {}  # activation -> its quantized form

    def scalar(self, value, name: str) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def quantized_weight(self, name: str, shape: tuple[int, ...]) -> tuple[str, str, str]:
        """(int8 weight, scale, zero point) of the fp32 weight ``name``, named as the library
        names them."""
        q = f"{name}_quantized"
        if self.int8 is not None:
            self.initializers.append(self.int8.tensor(q, name, shape))
            scale = _distinct(self.int8.scale, name)
        else:
            values, scale = quantize_weight(self.weights(name, shape))
            self.initializers.append(numpy_helper.from_array(values, q))
        return q, self.scalar(np.float32(scale), f"{name}_scale"), self.scalar(np.int8(0), f"{name}_zero_point")

    def linear(self, x: str, prefix: str, n_in: int, n_out: int) -> str:
        weight = self.quantized_weight(f"{prefix}.weight", (n_in, n_out))
        b = self.weight(f"{prefix}.bias", (n_out,))
        y = self._fresh(prefix)  # the fp32 graph's MatMul output, same name
        self.quantized_matmul(x, _input_role(prefix), weight, y)
        return self.op("Add", [b, y], prefix)

    def quantized_matmul(self, x: str, role: str, weight: tuple[str, str, str], out: str) -> None:
        raise NotImplementedError


class DynamicBuilder(_Int8Builder):
    """ONNX Runtime's dynamic scheme: MatMulInteger on per-run quantized activations."""

    def _dynamic(self, x: str) -> tuple[str, ...]:
        if x not in self._quantized:
            outs = [f"{x}_quantized", f"{x}_scale", f"{x}_zero_point"]
            self.nodes.append(onnx.helper.make_node("DynamicQuantizeLinear", [x], outs, name=f"{x}_QuantizeLinear"))
            self._quantized[x] = tuple(outs)
        return self._quantized[x]

    def quantized_matmul(self, x: str, role: str, weight: tuple[str, str, str], out: str) -> None:
        xq, xs, xz = self._dynamic(x)
        wq, ws, wz = weight
        scales = self.op("Mul", [xs, ws], "", out=f"{out}_quant_scales_mul")
        product = self.op("MatMulInteger", [xq, wq, xz, wz], "", out=f"{out}_output_quantized")
        product = self.op("Cast", [product], "", out=f"{product}_cast_output",
                          attrs={"to": TensorProto.FLOAT})
        self.op("Mul", [product, scales], "", out=out)


class QdqBuilder(_Int8Builder):
    """The static QDQ scheme: Q/DQ pairs on every MatMul input, DQ on int8 weights."""

    def _qdq(self, x: str, role: str) -> str:
        if x not in self._quantized:
            if x in self.qparams:
                scale, zero = self.qparams[x]
            else:
                scale, zero = activation_qparams(*self.ranges[role])
                scale = _distinct(scale, x)
            s = self.scalar(np.float32(scale), f"{x}_scale")
            z = self.scalar(np.uint8(zero), f"{x}_zero_point")
            q = self.op("QuantizeLinear", [x, s, z], "", out=f"{x}_QuantizeLinear_Output")
            self._quantized[x] = (self.op("DequantizeLinear", [q, s, z], "", out=f"{x}_DequantizeLinear_Output"),)
        return self._quantized[x][0]

    def finish(self) -> None:
        """Every other reader of a quantized activation reads its dequantized form, as the
        library rewires it (the residual Add after a LayerNorm whose output feeds Q, K, V):
        OpenVINO then keeps that tensor in uint8 up to the Add, as for the library's model."""
        dequantized = {x: dq for x, (dq,) in self._quantized.items()}
        seen: set[str] = set()  # dequantized outputs made so far (nodes are in graph order)
        for node in self.nodes:
            if node.op_type == "QuantizeLinear":
                continue
            if any(name in dequantized for name in node.input):
                node.input[:] = [dequantized.get(name, name) for name in node.input]
                assert seen.issuperset(n for n in node.input if n in dequantized.values()), node.name
            seen.update(node.output)

    def quantized_matmul(self, x: str, role: str, weight: tuple[str, str, str], out: str) -> None:
        w = self.op("DequantizeLinear", list(weight), "", out=f"{weight[0][: -len('_quantized')]}_DequantizeLinear_Output")
        self.op("MatMul", [self._qdq(x, role), w], "", out=out)

    def matmul(self, a: str, b: str, hint: str) -> str:
        role_a = "qkv" if hint == "scores" else "probs"  # Q·Kᵀ or P·V
        return self.op("MatMul", [self._qdq(a, role_a), self._qdq(b, "qkv")], hint)


BUILDERS = {"dynamic": DynamicBuilder, "qdq": QdqBuilder}


def build_int8_onnx(
    arch: Arch,
    scheme: QuantScheme,
    seq_len: int = 128,
    batch: int = 1,
    weights: WeightSource | WeightPool | None = None,
    activation_qparams: dict[str, tuple[float, int]] | None = None,
) -> onnx.ModelProto:
    """The INT8 ONNX model of ``arch`` under ``scheme`` (inputs and outputs as
    :func:`~atb.profiler.onnx_graph.build_onnx`).

    ``weights``: None for the shared pools (save with ``pool.save``: the graph references
    both pool files next to it), or a function ``(name, shape) -> fp32 array``, quantized
    here. ``activation_qparams``: (scale, uint8 zero point) by fp32 tensor name for the
    ``qdq`` scheme (default: fixed ranges, see the module doc).
    """
    weights = default_pool() if weights is None else weights
    builder = BUILDERS[scheme.name](weights, arch.dm, activation_qparams)
    return assemble(builder, arch, seq_len, batch)
