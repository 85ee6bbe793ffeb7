"""An ONNX encoder graph as a probe encoder: one ONNX Runtime session behind the encoder call.

The graph is what ``atb-supernet extract --onnx`` (fp32) or ``--quantize int8`` (ONNX Runtime
dynamic quantization, or a static QDQ graph meant for OpenVINO) writes, or any encoder graph
with the same interface: inputs ``input_ids`` and ``attention_mask`` (and ``token_type_ids``,
fed as zeros when the tokenizer makes none), integer tensors of shape (batch, sequence), and an
output ``last_hidden_state`` of shape (batch, sequence, hidden). A QDQ graph runs in ONNX
Runtime too (ORT executes its QuantizeLinear/DequantizeLinear rounding as written, fused into
integer kernels where its optimizer can), so every scheme is evaluated the same way, on the CPU.

atb's export has dynamic batch and sequence axes, so each batch is fed at its own padded width.
A graph fixed to a length (e.g. 128 tokens) gets every batch padded to that length, and one
fixed to a batch size gets the batch in slices of it; the hidden states of the padding are cut
off again, so the mean over the attention mask is unchanged.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from atb.errors import EvalError, MissingInputError

log = logging.getLogger("atb.eval.onnx_encoder")

ONNX_SUFFIX = ".onnx"
REQUIRED_INPUTS = ("input_ids", "attention_mask")
OPTIONAL_INPUTS = ("token_type_ids",)
OUTPUT = "last_hidden_state"
_INT_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}
# operators that only a quantized graph holds: ORT's dynamic scheme, then static QDQ
_DYNAMIC_OPS = frozenset({"DynamicQuantizeLinear", "MatMulInteger", "DynamicQuantizeMatMul",
                          "QAttention", "ConvInteger"})
_QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})


def is_onnx_model(path: str | Path) -> bool:
    """Whether ``path`` names an ONNX graph (by its suffix) rather than a 🤗 directory."""
    return Path(path).suffix.lower() == ONNX_SUFFIX


def quantization_scheme(model) -> str | None:
    """``"dynamic"`` (ONNX Runtime dynamic INT8), ``"qdq"`` (static QuantizeLinear/
    DequantizeLinear pairs) or ``None`` (a float graph), from the operators of an
    ``onnx.ModelProto``."""
    ops = {node.op_type for node in model.graph.node}
    if ops & _DYNAMIC_OPS:
        return "dynamic"
    if _QDQ_OPS <= ops:
        return "qdq"
    return None


def _embedding_rows(model) -> int | None:
    """Rows of the word-embedding table (the Gather that reads ``input_ids``), when the graph
    holds it as an initializer, directly or behind a DequantizeLinear."""
    tables = {t.name: t for t in model.graph.initializer}
    producers = {out: node for node in model.graph.node for out in node.output}
    for node in model.graph.node:
        if node.op_type != "Gather" or len(node.input) < 2 or node.input[1] != "input_ids":
            continue
        data = node.input[0]
        producer = producers.get(data)
        if data not in tables and producer is not None and producer.op_type == "DequantizeLinear":
            data = producer.input[0]
        if data in tables and tables[data].dims:
            return int(tables[data].dims[0])
    return None


def _fixed(dim) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class OnnxEncoder:
    """An encoder callable (see :mod:`atb.eval.encode`) over an ONNX Runtime session.

    ``encoder(input_ids=..., attention_mask=..., token_type_ids=...)`` takes (b, s) integer
    tensors and returns the (b, s, d) last hidden states as a float32 torch tensor.
    Attributes: ``path``, ``scheme`` (:func:`quantization_scheme`), ``vocab_size`` (rows of the
    embedding table, ``None`` when the graph hides it), ``fixed_length`` and ``fixed_batch``
    (``None`` where the graph's axis is dynamic).
    """

    def __init__(self, path: str | Path, threads: int | None = None):
        import onnx
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            what = "is a directory, not an ONNX file" if self.path.exists() else "does not exist"
            raise MissingInputError(f"ONNX model {self.path} {what}", hint="write one with "
                                    "atb-supernet extract --onnx or --quantize int8")
        try:
            model = onnx.load(str(self.path), load_external_data=False)
            options = ort.SessionOptions()
            options.log_severity_level = 3
            if threads is not None:
                options.intra_op_num_threads = threads
            self.session = ort.InferenceSession(str(self.path), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # protobuf's DecodeError, ORT's Fail/InvalidGraph/...
            raise EvalError(f"cannot load the ONNX model {self.path}: {_reason(exc)}") from exc
        self.scheme = quantization_scheme(model)
        self.vocab_size = _embedding_rows(model)
        self._inputs = {i.name: i for i in self.session.get_inputs()}
        self._check_interface({o.name: o for o in self.session.get_outputs()})
        batch, length = self._inputs["input_ids"].shape  # ints where the graph fixes them
        self.fixed_batch, self.fixed_length = _fixed(batch), _fixed(length)

    def _check_interface(self, outputs: dict) -> None:
        expected = (f"inputs {', '.join(REQUIRED_INPUTS)} (and optionally "
                    f"{', '.join(OPTIONAL_INPUTS)}) and an output {OUTPUT}")
        missing = [n for n in REQUIRED_INPUTS if n not in self._inputs]
        extra = [n for n in self._inputs if n not in REQUIRED_INPUTS + OPTIONAL_INPUTS]
        if missing or extra or OUTPUT not in outputs:
            raise EvalError(f"{self.path} has inputs {', '.join(self._inputs) or 'none'} and "
                            f"outputs {', '.join(outputs) or 'none'}; atb-eval needs {expected}",
                            hint="export the encoder with atb-supernet extract --onnx")
        for name, arg in self._inputs.items():
            if arg.type not in _INT_TYPES or len(arg.shape) != 2:
                raise EvalError(f"{self.path}: input {name} is a {arg.type} of shape {arg.shape}, "
                                "not a (batch, sequence) integer tensor")
        shape = outputs[OUTPUT].shape
        if shape is not None and len(shape) != 3:
            raise EvalError(f"{self.path}: output {OUTPUT} has shape {shape}, "
                            "not (batch, sequence, hidden)")

    def _feed(self, input_ids: np.ndarray, attention_mask: np.ndarray,
              token_type_ids: np.ndarray | None) -> dict[str, np.ndarray]:
        given = {"input_ids": input_ids, "attention_mask": attention_mask,
                 "token_type_ids": token_type_ids if token_type_ids is not None
                 else np.zeros_like(input_ids)}
        width = input_ids.shape[1]
        if self.fixed_length is not None and width < self.fixed_length:  # pad ids 0, mask 0
            pad = ((0, 0), (0, self.fixed_length - width))
            given = {k: np.pad(v, pad) for k, v in given.items()}
        return {name: given[name].astype(_INT_TYPES[arg.type], copy=False)
                for name, arg in self._inputs.items()}

    def __call__(self, input_ids, attention_mask, token_type_ids=None):
        import torch

        def as_numpy(t):
            if t is None:
                return None
            return t.cpu().numpy() if hasattr(t, "numpy") else np.asarray(t)

        ids, mask, types = as_numpy(input_ids), as_numpy(attention_mask), as_numpy(token_type_ids)
        batch, width = ids.shape
        if self.fixed_length is not None and width > self.fixed_length:
            raise EvalError(f"{self.path} takes {self.fixed_length} tokens, got a batch "
                            f"{width} wide", hint=f"cut examples to {self.fixed_length} tokens")
        step = self.fixed_batch or batch
        parts = []
        for start in range(0, batch, step):
            rows = slice(start, start + step)
            chunk = [a[rows] if a is not None else None for a in (ids, mask, types)]
            short = step - chunk[0].shape[0] if self.fixed_batch else 0
            if short:  # a last slice smaller than the fixed batch: pad with empty rows
                chunk = [np.pad(a, ((0, short), (0, 0))) if a is not None else None for a in chunk]
            try:
                (hidden,) = self.session.run([OUTPUT], self._feed(*chunk))
            except Exception as exc:  # ORT's RuntimeException, InvalidArgument, ...
                raise EvalError(f"ONNX Runtime failed on {self.path}: {_reason(exc)}") from exc
            parts.append(hidden[: hidden.shape[0] - short, :width])  # (rows, width, d)
        return torch.from_numpy(np.ascontiguousarray(np.concatenate(parts), dtype=np.float32))


def load_onnx_encoder(path: str | Path, threads: int | None = None) -> OnnxEncoder:
    """The encoder of an ONNX graph (see :class:`OnnxEncoder`); ``threads``: ONNX Runtime's
    intra-op threads (default: its own, one per core)."""
    encoder = OnnxEncoder(path, threads)
    log.info("%s: ONNX graph, %s, sequence axis %s", encoder.path,
             f"INT8 {encoder.scheme}" if encoder.scheme else "no quantization",
             encoder.fixed_length or "dynamic")
    return encoder
