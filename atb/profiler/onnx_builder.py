"""How an architecture becomes ONNX nodes: built directly, no torch export.

``torch.onnx.export`` costs 1-7 s per model, longer than timing it; building the graph node by
node costs milliseconds. The node pattern (:func:`assemble`) mirrors what the legacy torch
exporter emits for :class:`atb.modeling.AtbBertModel` (MatMul+Add linears, Reshape/Transpose
heads, erf GELU, LayerNormalization), so ONNX Runtime and OpenVINO apply the same fusions to
both; a test checks numerical equality and ``bench/profiler.py`` checks equal latency.

Weights do not change latency, so by default every graph points into one shared file of
seeded random values (:class:`WeightPool`). An arch with a weight larger than that file cannot
be built this way: :func:`pool_overflow` says so from its shapes, before anything is built.

The fp32 graph (:mod:`atb.profiler.onnx_graph`) and the INT8 ones (:mod:`atb.profiler.onnx_int8`,
builders derived from :class:`GraphBuilder`) are both assembled here, so the INT8 module
needs nothing from ``onnx_graph``, which picks between the two (``graph_for``).
"""

from __future__ import annotations

import math
import tempfile
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from atb.arch import MAX_POSITIONS, TYPE_VOCAB_SIZE, VOCAB_SIZE, Arch
from atb.errors import ArchSpecError
from atb.jsonl import atomic_path

OPSET = 17  # first opset with LayerNormalization
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAMES = ("last_hidden_state", "pooler_output")
LAYER_NORM_EPS = 1e-12

WeightSource = Callable[[str, tuple[int, ...]], np.ndarray]

_POOL_FLOATS = 1 << 25  # 32M floats (128 MB); the largest tensor is 30522 x 768 = 23.4M
_ALIGN = 1024  # floats: tensors start on 4 KiB pages so runtimes can mmap them
_ONES, _ZEROS, _RANDOM = 0, _ALIGN, 2 * _ALIGN  # pool layout: ones, zeros, random values
POOL_FILE = "atb-weight-pool-v1.bin"
_POOL_LARGEST = _POOL_FLOATS - _RANDOM  # floats: the largest weight the random region holds
_MIB = 1 << 20


class WeightPool:
    """One file of seeded random float32 values that every profiled graph points into.

    Graphs reference their weights as ONNX external data (offset, length) inside this file,
    so a graph proto is a few kilobytes: building and serialising it costs nothing, and
    ONNX Runtime and OpenVINO map the weights instead of parsing 100 MB of protobuf.
    LayerNorm weights point at the ones/zeros regions, everything else at random values
    (std 0.02, BERT's initialisation scale). The same name always maps to the same offset.
    """

    def __init__(self, directory: str | Path | None = None):
        if directory is None:
            directory = "/dev/shm" if Path("/dev/shm").is_dir() else tempfile.gettempdir()
        self.directory = Path(directory)
        self.path = self.directory / POOL_FILE
        if not (self.path.is_file() and self.path.stat().st_size == 4 * _POOL_FLOATS):
            self._write()

    def _write(self) -> None:
        values = np.random.default_rng(0).standard_normal(_POOL_FLOATS, dtype=np.float32) * 0.02
        values[_ONES:_ZEROS] = 1.0
        values[_ZEROS:_RANDOM] = 0.0
        with atomic_path(self.path) as tmp:  # a concurrent reader never sees half a pool
            values.tofile(tmp)

    def offset(self, name: str, size: int) -> int:
        if name.endswith("LayerNorm.weight"):
            return _ONES
        if name.endswith("LayerNorm.bias"):
            return _ZEROS
        slots = (_POOL_FLOATS - _RANDOM - size) // _ALIGN
        return _RANDOM + (zlib.crc32(name.encode()) % (slots + 1)) * _ALIGN

    def tensor(self, name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
        size = math.prod(shape)
        if size > _ALIGN and name.endswith(("LayerNorm.weight", "LayerNorm.bias")):
            raise ValueError(f"LayerNorm width {size} exceeds the pool's {_ALIGN}")
        tensor = onnx.TensorProto(name=name, data_type=TensorProto.FLOAT, dims=list(shape))
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in (
            ("location", POOL_FILE),
            ("offset", str(4 * self.offset(name, size))),
            ("length", str(4 * size)),
        ):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        return tensor

    def save(self, model: onnx.ModelProto, stem: str) -> Path:
        """Write ``model`` next to the pool (external paths are relative to the model)."""
        path = self.directory / f"{stem}.onnx"
        path.write_bytes(model.SerializeToString())
        return path


def _largest_weight(arch: Arch) -> tuple[str, tuple[int, int]]:
    """The largest weight matrix of ``arch``'s graph: (what it is, its shape)."""
    dm = arch.dm
    shapes = {"word embedding": (VOCAB_SIZE, dm), "position embedding": (MAX_POSITIONS, dm),
              "FFN": (dm, arch.df), "Q/K/V": (dm, arch.dqkv), "pooler": (dm, dm)}
    return max(shapes.items(), key=lambda item: math.prod(item[1]))


def pool_overflow(arch: Arch) -> str | None:
    """Why ``arch``'s graph cannot point into the shared :class:`WeightPool` (one line), or None.

    Every weight is a window into the pool, so the limit is the largest single weight, not
    the arch's total; decided from the shapes alone, before any graph is built.
    """
    what, shape = _largest_weight(arch)
    if math.prod(shape) > _POOL_LARGEST:
        return (f"too large to build: its largest weight, the {what} ({shape[0]} x {shape[1]}), is "
                f"{4 * math.prod(shape) / _MIB:.1f} MiB; a weight must fit the {4 * _POOL_LARGEST / _MIB:.1f} MiB "
                "shared weight pool")
    if arch.dm > _ALIGN:
        return (f"too large to build: its hidden size {arch.dm} is over the {_ALIGN} LayerNorm values the "
                "shared weight pool holds")
    return None


_default_pool: WeightPool | None = None


def default_pool() -> WeightPool:
    global _default_pool
    if _default_pool is None:
        _default_pool = WeightPool()
    return _default_pool


class GraphBuilder:
    """Accumulates nodes and initializers; names follow the torch module paths."""

    def __init__(self, weights: WeightSource | WeightPool):
        self.weights = weights
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def weight(self, name: str, shape: tuple[int, ...]) -> str:
        if isinstance(self.weights, WeightPool):
            self.initializers.append(self.weights.tensor(name, shape))
        else:
            self.initializers.append(numpy_helper.from_array(self.weights(name, shape), name))
        return name

    def const(self, array: np.ndarray, hint: str) -> str:
        name = self._fresh(f"{hint}_const")
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str, out: str | None = None,
           attrs: dict | None = None) -> str:
        """A node of ``op_type`` (its ONNX attributes ``attrs``); its output's name."""
        out = out or self._fresh(hint)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **(attrs or {})))
        return out

    def _fresh(self, hint: str) -> str:
        self._count += 1
        return f"/{hint}_{self._count}"

    def linear(self, x: str, prefix: str, n_in: int, n_out: int) -> str:
        w = self.weight(f"{prefix}.weight", (n_in, n_out))  # stored (in, out), as torch exports
        b = self.weight(f"{prefix}.bias", (n_out,))
        return self.op("Add", [b, self.op("MatMul", [x, w], prefix)], prefix)

    def matmul(self, a: str, b: str, hint: str) -> str:
        """A product of two activations (attention scores and context)."""
        return self.op("MatMul", [a, b], hint)

    def finish(self) -> None:
        """Called once all nodes are in, before the graph is made."""

    def layer_norm(self, x: str, prefix: str, width: int) -> str:
        g = self.weight(f"{prefix}.weight", (width,))
        b = self.weight(f"{prefix}.bias", (width,))
        return self.op("LayerNormalization", [x, g, b], prefix,
                       attrs={"axis": -1, "epsilon": LAYER_NORM_EPS})


def assemble(g: GraphBuilder, arch: Arch, seq_len: int, batch: int) -> onnx.ModelProto:
    """The model of ``arch`` with ``g``'s linear layers and attention products (a subclass of
    the builder emits their quantized forms: :mod:`atb.profiler.onnx_int8`)."""
    if seq_len > MAX_POSITIONS:
        raise ValueError(f"seq_len {seq_len} exceeds {MAX_POSITIONS} positions")
    if isinstance(g.weights, WeightPool) and (reason := pool_overflow(arch)):
        raise ArchSpecError(f"arch {arch} is {reason}", hint="pass weights of its own, or time it with the torch backend")
    x = _embeddings(g, arch, seq_len)
    mask = _additive_mask(g)
    hs = arch.head_size
    shapes = {"heads": g.const(np.array([batch, seq_len, arch.h, hs], np.int64), "heads_shape"),
              "merged": g.const(np.array([batch, seq_len, arch.dqkv], np.int64), "merged_shape"),
              "scale": g.const(np.array(math.sqrt(hs), np.float32), "sqrt_head_size"),
              "sqrt2": g.const(np.array(math.sqrt(2.0), np.float32), "sqrt2"),
              "one": g.const(np.array(1.0, np.float32), "one"),
              "half": g.const(np.array(0.5, np.float32), "half")}
    for i in range(arch.lt):
        x = _layer(g, x, f"encoder.layer.{i}", arch, mask, shapes)
    x = g.op("Identity", [x], "hidden", out="last_hidden_state")
    first = g.op("Gather", [x, g.const(np.array(0, np.int64), "cls")], "cls", attrs={"axis": 1})  # (b, dm)
    g.op("Tanh", [g.linear(first, "pooler.dense", arch.dm, arch.dm)], "pooler", out="pooler_output")
    return _model(g, arch, seq_len, batch)


def _embeddings(g: GraphBuilder, arch: Arch, seq_len: int) -> str:
    """Word + token type + position embeddings, then LayerNorm: (b, s, dm)."""
    dm = arch.dm
    word = g.op("Gather", [g.weight("embeddings.word_embeddings.weight", (VOCAB_SIZE, dm)), "input_ids"], "word")
    kind = g.op("Gather", [g.weight("embeddings.token_type_embeddings.weight", (TYPE_VOCAB_SIZE, dm)), "token_type_ids"], "type")
    positions = g.const(np.arange(seq_len, dtype=np.int64)[None, :], "positions")
    pos = g.op("Gather", [g.weight("embeddings.position_embeddings.weight", (MAX_POSITIONS, dm)), positions], "pos")
    x = g.op("Add", [g.op("Add", [word, kind], "emb"), pos], "emb")
    return g.layer_norm(x, "embeddings.LayerNorm", dm)


def _additive_mask(g: GraphBuilder) -> str:
    """The additive mask (b, 1, 1, s): 0 where attended, float32-min where padded."""
    mask = g.op("Unsqueeze", [g.op("Unsqueeze", ["attention_mask", g.const(np.array([1], np.int64), "ax")], "mask"),
                              g.const(np.array([2], np.int64), "ax")], "mask")
    mask = g.op("Cast", [mask], "mask", attrs={"to": TensorProto.FLOAT})
    mask = g.op("Sub", [g.const(np.array(1.0, np.float32), "one"), mask], "mask")
    return g.op("Mul", [mask, g.const(np.array(np.finfo(np.float32).min, np.float32), "min")], "mask")


def _layer(g: GraphBuilder, x: str, p: str, arch: Arch, mask: str, shapes: dict[str, str]) -> str:
    """One encoder layer ``p``: self-attention, then the feed-forward block, each with its
    residual and LayerNorm; (b, s, dm) in and out."""
    dm, heads_shape = arch.dm, shapes["heads"]
    # self-attention: (b, s, dm) -> q, k, v (b, h, s, hs)
    q = g.op("Reshape", [g.linear(x, f"{p}.attention.self.query", dm, arch.dqkv), heads_shape], "q")
    q = g.op("Transpose", [q], "q", attrs={"perm": [0, 2, 1, 3]})
    k = g.op("Reshape", [g.linear(x, f"{p}.attention.self.key", dm, arch.dqkv), heads_shape], "k")
    v = g.op("Reshape", [g.linear(x, f"{p}.attention.self.value", dm, arch.dqkv), heads_shape], "v")
    v = g.op("Transpose", [v], "v", attrs={"perm": [0, 2, 1, 3]})
    k_t = g.op("Transpose", [k], "k", attrs={"perm": [0, 2, 3, 1]})  # (b, h, hs, s)
    scores = g.op("Div", [g.matmul(q, k_t, "scores"), shapes["scale"]], "scores")
    probs = g.op("Softmax", [g.op("Add", [scores, mask], "scores")], "probs", attrs={"axis": -1})
    context = g.op("Transpose", [g.matmul(probs, v, "context")], "context", attrs={"perm": [0, 2, 1, 3]})
    context = g.op("Reshape", [context, shapes["merged"]], "context")  # (b, s, dqkv)
    attn = g.linear(context, f"{p}.attention.output.dense", arch.dqkv, dm)
    x = g.layer_norm(g.op("Add", [attn, x], "residual"), f"{p}.attention.output.LayerNorm", dm)
    # feed-forward with exact GELU: 0.5 * y * (1 + erf(y / sqrt 2))
    y = g.linear(x, f"{p}.intermediate.dense", dm, arch.df)
    erf = g.op("Add", [g.op("Erf", [g.op("Div", [y, shapes["sqrt2"]], "gelu")], "gelu"), shapes["one"]], "gelu")
    y = g.op("Mul", [g.op("Mul", [y, erf], "gelu"), shapes["half"]], "gelu")
    y = g.linear(y, f"{p}.output.dense", arch.df, dm)
    return g.layer_norm(g.op("Add", [y, x], "residual"), f"{p}.output.LayerNorm", dm)


def _model(g: GraphBuilder, arch: Arch, seq_len: int, batch: int) -> onnx.ModelProto:
    """The graph of ``g``'s nodes and initializers, with its int64 inputs and two outputs."""
    dm = arch.dm
    g.finish()
    int_input = lambda n: helper.make_tensor_value_info(n, TensorProto.INT64, [batch, seq_len])  # noqa: E731
    graph = helper.make_graph(
        g.nodes,
        f"atb-{arch}",
        [int_input(n) for n in INPUT_NAMES],
        [
            helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, [batch, seq_len, dm]),
            helper.make_tensor_value_info("pooler_output", TensorProto.FLOAT, [batch, dm]),
        ],
        initializer=g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="atb")
    model.ir_version = 8
    return model
