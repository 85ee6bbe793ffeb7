"""The INT8 scheme each backend times, defined once.

A backend's INT8 latency depends on *which* operators run in 8 bits and how their scales are
found, so the scheme is part of what a label means. atb times the scheme a user gets from the
standard tool of each runtime:

* **ONNX Runtime: dynamic quantization** (``onnxruntime.quantization.quantize_dynamic``).
  Weights are quantized once (int8, symmetric, one scale per tensor), activations per run
  (``DynamicQuantizeLinear``, uint8 asymmetric, the only activation type the dynamic mode has),
  and each linear layer becomes ``MatMulInteger`` with a float rescale (ORT fuses it into
  ``DynamicQuantizeMatMul``). Restricted to ``MatMul``: by default ``quantize_dynamic`` also
  rewrites ``Gather`` (the embedding tables, stored as uint8 and dequantized after the lookup),
  ``Conv``, ``LSTM`` and the fused ``Attention`` op. atb's graph has no Conv, LSTM or fused
  Attention, and an int8 embedding table saves memory but no time (a lookup is a copy, and it
  adds a dequantization), so "the linear layers" is the latency-relevant part and what the
  issue asks for. ``MatMulConstBOnly`` (the dynamic default) keeps the attention products
  ``Q·Kᵀ`` and ``P·V`` in float: their B is an activation. Per-tensor weights and QInt8 are
  ``quantize_dynamic``'s defaults and what its BERT examples use; per-channel changes the
  scale vector, not the kernel, and ``reduce_range`` (7-bit weights) is only advised for CPUs
  without VNNI, so neither is used.
* **OpenVINO: static QDQ** (``quantize_static(..., quant_format=QuantFormat.QDQ)``, MinMax
  calibration). Every ``MatMul`` input gets ``QuantizeLinear -> DequantizeLinear`` (uint8,
  asymmetric, scales calibrated once) and each weight is stored int8 behind a
  ``DequantizeLinear``; OpenVINO's low-precision transformations turn a MatMul whose inputs
  are both dequantized into an INT8 MatMul. As ``quantize_static`` does by default
  (``MatMulConstBOnly`` is off in static mode), the attention products ``Q·Kᵀ`` and ``P·V``
  are quantized too: their inputs have static scales, so OpenVINO runs them in INT8 as NNCF's
  transformer preset does. One change from the library's default: no QDQ on a MatMul's
  *output* (``OpTypesToExcludeOutputQuantization``); every consumer here (bias Add, Div,
  Reshape) is float, so an output QDQ would only add a requantize round trip that no INT8
  deployment wants. Weights as in the dynamic scheme (int8, symmetric, per tensor);
  activations uint8 (U8S8, what ORT's documentation advises for x86 CPUs and what VNNI
  multiplies natively). Calibration only sets scales, which do not change latency: random
  token ids suffice for profiling, and ``atb-supernet extract --quantize int8`` calibrates on
  held-out text for accuracy.

The profiler builds both graphs directly (:mod:`atb.profiler.onnx_int8`, milliseconds);
:func:`quantize_with_library` runs the library quantizer with the same options, for real
models and for the test that the direct graphs have the library's operator pattern.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from atb.errors import BackendUnavailableError, UsageError

log = logging.getLogger("atb.devices.quantization")


@dataclass(frozen=True)
class QuantScheme:
    """One INT8 scheme: what is quantized, to which types, and with which scales."""

    name: str  # "dynamic" (scales of activations found per run) | "qdq" (static QDQ graph)
    backend: str  # the backend that times it: "onnxruntime" | "openvino"
    description: str  # one line for docs, tables and JSON
    op_types: tuple[str, ...] = ("MatMul",)  # operator types quantized (the linear layers)
    const_weights_only: bool = True  # only MatMuls whose B is a constant (ORT's MatMulConstBOnly)
    weight_type: str = "int8"  # symmetric int8 weights (zero point 0)
    activation_type: str = "uint8"  # asymmetric uint8 activations
    quantize_outputs: bool = False  # no QDQ on a MatMul's output (static only; see module doc)
    per_channel: bool = False  # one scale per weight tensor
    reduce_range: bool = False  # full 8-bit weights (7-bit only helps CPUs without VNNI)
    calibration: str | None = None  # static scales: "minmax"; None for dynamic

    @property
    def static(self) -> bool:
        return self.calibration is not None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["op_types"] = list(self.op_types)
        return d


DYNAMIC = QuantScheme(
    name="dynamic",
    backend="onnxruntime",
    description="ORT dynamic quantization of the linear layers (MatMul with constant weights): "
    "int8 per-tensor weights, uint8 activations quantized per run",
)
QDQ = QuantScheme(
    name="qdq",
    backend="openvino",
    description="static QDQ on every MatMul's inputs (linear layers and attention products): "
    "int8 per-tensor weights, uint8 activations with MinMax-calibrated scales",
    const_weights_only=False,
    calibration="minmax",
)
SCHEMES = {DYNAMIC.backend: DYNAMIC, QDQ.backend: QDQ}


def scheme_for(backend: str) -> QuantScheme:
    """The INT8 scheme ``backend`` is timed (and deployed) with."""
    try:
        return SCHEMES[backend]
    except KeyError:
        raise UsageError(
            f"no INT8 scheme for backend {backend!r}",
            hint=f"int8 is timed on {' and '.join(SCHEMES)} (torch eager has no INT8 graph)",
        ) from None


def quantize_weight(w: np.ndarray) -> tuple[np.ndarray, np.float32]:
    """int8 symmetric per-tensor quantization of a weight, as ``onnxruntime.quantization``
    computes it: scale = max|w| / 127 (float32), q = round-half-even(w / scale), zero point 0."""
    absmax = max(abs(float(np.min(w, initial=0.0))), abs(float(np.max(w, initial=0.0))))
    scale = np.float32(2 * absmax / 254)  # (rmax - rmin) / (qmax - qmin) over [-127, 127]
    if scale < np.finfo(np.float32).tiny:
        scale = np.float32(1.0)
    q = np.clip(np.round(w.astype(np.float32) / scale), -128, 127).astype(np.int8)
    return q, scale


def activation_qparams(lo: float, hi: float) -> tuple[np.float32, np.uint8]:
    """uint8 asymmetric (scale, zero point) of an activation observed in ``[lo, hi]``, as
    ``onnxruntime.quantization`` computes it from a MinMax calibration (0 is always inside)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    scale = (hi - lo) / 255
    if np.float32(scale) < np.finfo(np.float32).tiny:
        return np.float32(1.0), np.uint8(0)
    return np.float32(scale), np.uint8(round(0 - lo / scale))


class _Feeds:
    """``onnxruntime.quantization.CalibrationDataReader`` over an iterable of input feeds
    (duck-typed: the calibrator calls ``get_next`` until it returns None)."""

    def __init__(self, feeds: Iterable[dict[str, np.ndarray]]):
        self._it: Iterator[dict[str, np.ndarray]] = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def _quant_type(ort_quant, name: str):
    return {"int8": ort_quant.QuantType.QInt8, "uint8": ort_quant.QuantType.QUInt8}[name]


def quantize_with_library(
    fp32_model: Path,
    out_path: Path,
    scheme: QuantScheme,
    calibration: Iterable[dict[str, np.ndarray]] | None = None,
) -> Path:
    """Quantize the ONNX model at ``fp32_model`` with ``onnxruntime.quantization`` under
    ``scheme`` and write it to ``out_path`` (weights inline; returned).

    ``calibration``: input feeds (name -> array) for a static scheme, run once each through the
    fp32 model to find activation ranges; required for ``qdq``, ignored for ``dynamic``.
    """
    try:
        from onnxruntime import quantization as q
    except ImportError as exc:
        raise BackendUnavailableError("onnxruntime is not installed", hint="pip install onnxruntime") from exc
    fp32_model, out_path = Path(fp32_model), Path(out_path)
    if scheme.static and calibration is None:
        raise UsageError(
            f"the {scheme.name} scheme needs calibration inputs", hint="pass calibration feeds"
        )
    common = dict(
        op_types_to_quantize=list(scheme.op_types),
        per_channel=scheme.per_channel,
        reduce_range=scheme.reduce_range,
        weight_type=_quant_type(q, scheme.weight_type),
        extra_options={"MatMulConstBOnly": scheme.const_weights_only},
    )
    if scheme.static and not scheme.quantize_outputs:
        common["extra_options"]["OpTypesToExcludeOutputQuantization"] = list(scheme.op_types)
    quant_logger = logging.getLogger()  # ORT warns about pre-processing on the root logger
    level = quant_logger.level
    quant_logger.setLevel(max(level, logging.ERROR))
    try:
        if scheme.static:
            method = {"minmax": q.CalibrationMethod.MinMax}[scheme.calibration]
            q.quantize_static(
                str(fp32_model), str(out_path), _Feeds(calibration),
                quant_format=q.QuantFormat.QDQ,
                activation_type=_quant_type(q, scheme.activation_type),
                calibrate_method=method,
                **common,
            )
        else:
            q.quantize_dynamic(str(fp32_model), str(out_path), **common)
    except (UsageError, BackendUnavailableError):
        raise
    except Exception as exc:  # onnxruntime raises its own Fail/ValueError types
        raise BackendUnavailableError(
            f"onnxruntime could not quantize {fp32_model.name} ({scheme.name}): {exc}"
        ) from exc
    finally:
        quant_logger.setLevel(level)
    log.info("quantized %s -> %s (%s)", fp32_model.name, out_path.name, scheme.name)
    return out_path
