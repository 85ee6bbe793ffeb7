"""The INT8 graphs the profiler builds directly are the library quantizer's graphs.

For each scheme (``dynamic`` for ONNX Runtime, ``qdq`` for OpenVINO) and a few archs (one with
dqkv != dm, one with a single layer), the graph of :func:`build_int8_onnx` is compared with
``quantize_with_library`` (``onnxruntime.quantization``) applied to the fp32 graph of the same
weights:

* the operator pattern: the multiset of op types, and for every quantized product which fp32
  activation and which weight it reads (tensors keep their fp32 names in both);
* the outputs. Tolerances: against the library, the direct graph runs the same integer
  arithmetic with the same scales (weights quantized the same way; for ``qdq`` the library's
  calibrated activation scales passed in), so the outputs agree to float rounding (atol 1e-6;
  they are in fact bit-identical in ORT and OpenVINO). Against fp32, both carry INT8 error:
  8-bit activations and per-tensor weights give about 1% relative error per product,
  accumulated over the layers and the pooler's tanh; measured 0.1-2% (dynamic) and 1-3% (qdq)
  on these archs, so the bound is 6% of the output's norm;
* what the runtimes make of the profiler's pooled graphs: ONNX Runtime's optimised graph has
  the same nodes as for the library's output (fusions such as ``DynamicQuantizeMatMul`` and
  ``MatMulIntegerToFloat`` apply alike), and OpenVINO's compiled graph has the same layers
  with the same runtime precisions (INT8 FullyConnected and attention).
"""

from __future__ import annotations

import collections
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from atb.arch import Arch
from atb.devices import DeviceSetting, device_key_for
from atb.devices.quantization import QDQ, DYNAMIC, activation_qparams, quantize_weight, quantize_with_library, scheme_for
from atb.errors import BackendUnavailableError, UsageError
from atb.profiler.onnx_graph import WeightPool, build_onnx, example_inputs, graph_for, state_dict_weights
from atb.profiler.onnx_int8 import INT8_POOL_FILE, build_int8_onnx
from atb.profiler.timing import PROTOCOL_VERSION

SEQ = 32
ARCHS = ["2-128-256-2-64", "1-256-512-4-256", "3-192-600-3-96"]  # dqkv < dm, one layer, odd sizes
SCHEMES = [DYNAMIC, QDQ]
REL_TOL = 0.06  # relative L2 error against fp32 (see the module docstring)


def _ort(path, optimized: Path | None = None):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if optimized is not None:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _openvino(path):
    ov = pytest.importorskip("openvino")
    core = ov.Core()
    return core.compile_model(core.read_model(str(path)), "CPU",
                              {"INFERENCE_NUM_THREADS": "1", "INFERENCE_PRECISION_HINT": "f32"})


def _run_openvino(path, feeds):
    compiled = _openvino(path)
    result = compiled.create_infer_request().infer(feeds)
    return [result[o] for o in compiled.outputs]


def _calibration(n: int = 4):
    return [example_inputs(SEQ, seed=i) for i in range(n)]


def _library_qparams(model: onnx.ModelProto) -> dict[str, tuple[float, int]]:
    """(scale, zero point) of every activation the library's QDQ model quantizes."""
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return {n.input[0]: (float(init[n.input[1]]), int(init[n.input[2]]))
            for n in model.graph.node if n.op_type == "QuantizeLinear"}


def _source(model: onnx.ModelProto, tensor: str) -> str:
    """The fp32 tensor behind a quantized one: back through DQ, Q, DynamicQuantizeLinear."""
    producers = {out: n for n in model.graph.node for out in n.output}
    initializers = {t.name for t in model.graph.initializer}
    while tensor not in initializers and producers[tensor].op_type in (
            "DequantizeLinear", "QuantizeLinear", "DynamicQuantizeLinear"):
        tensor = producers[tensor].input[0]
    return tensor.removesuffix("_quantized")


def quantized_products(model: onnx.ModelProto) -> collections.Counter:
    """(op type, fp32 source of A, fp32 source of B) of every product with a quantized input."""
    producers = {out: n.op_type for n in model.graph.node for out in n.output}
    quantized = {"DequantizeLinear", "DynamicQuantizeLinear"}
    found = collections.Counter()
    for n in model.graph.node:
        if n.op_type == "MatMulInteger" or (n.op_type == "MatMul" and producers.get(n.input[0]) in quantized):
            found[(n.op_type, _source(model, n.input[0]), _source(model, n.input[1]))] += 1
    return found


def op_types(model: onnx.ModelProto) -> collections.Counter:
    return collections.Counter(n.op_type for n in model.graph.node)


@pytest.fixture(scope="module", params=ARCHS)
def real(request, tmp_path_factory):
    """An arch with real (seeded, BERT-initialised) weights: its fp32 graph and weights."""
    from atb.modeling import build_model

    arch = Arch.parse(request.param)
    weights = state_dict_weights(build_model(arch, seed=0))
    directory = tmp_path_factory.mktemp(f"int8-{request.param}")
    fp32 = directory / "fp32.onnx"
    onnx.save(build_onnx(arch, SEQ, weights=weights), fp32)
    return arch, weights, fp32, directory


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.name)
def test_direct_graph_is_the_library_graph(real, scheme):
    arch, weights, fp32, directory = real
    library_path = quantize_with_library(fp32, directory / f"library-{scheme.name}.onnx", scheme, _calibration())
    library = onnx.load(str(library_path))
    qparams = _library_qparams(library) if scheme.static else None
    direct = build_int8_onnx(arch, scheme, SEQ, weights=weights, activation_qparams=qparams)
    onnx.checker.check_model(direct)

    # operator pattern
    assert op_types(direct) == op_types(library)
    products = quantized_products(direct)
    assert products == quantized_products(library)
    linears = 6 * arch.lt + 1  # Q, K, V, attention output, intermediate, output; the pooler
    assert sum(products.values()) == linears + (2 * arch.lt if scheme.static else 0)  # + Q·Kᵀ, P·V
    assert all(op == ("MatMul" if scheme.static else "MatMulInteger") for op, _, _ in products)

    # outputs, in ORT (both schemes) and OpenVINO (qdq, the scheme it times)
    direct_path = directory / f"direct-{scheme.name}.onnx"
    onnx.save(direct, direct_path)
    feeds = example_inputs(SEQ, seed=100)  # not a calibration input
    reference = _ort(fp32).run(None, feeds)
    runners = [lambda p: _ort(p).run(None, feeds)]
    if scheme.static:
        runners.append(lambda p: _run_openvino(p, feeds))
    for run in runners:
        ours, theirs = run(direct_path), run(library_path)
        for o, t, r in zip(ours, theirs, reference):
            np.testing.assert_allclose(o, t, atol=1e-6, rtol=0)
            assert np.linalg.norm(o - r) / np.linalg.norm(r) < REL_TOL


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.name)
@pytest.mark.parametrize("text", ["2-128-256-2-64", "1-256-512-4-256"])
def test_runtimes_make_the_same_program_of_the_pooled_graph(text, scheme, tmp_path):
    """What the profiler times (pooled weights, fixed activation ranges) compiles to what the
    library's quantized model compiles to."""
    arch, pool = Arch.parse(text), WeightPool(tmp_path)
    fp32 = pool.save(build_onnx(arch, SEQ, weights=pool), "fp32")
    library = quantize_with_library(fp32, tmp_path / "library.onnx", scheme, _calibration(2))
    direct = pool.save(build_int8_onnx(arch, scheme, SEQ, weights=pool), "direct")
    assert quantized_products(onnx.load(str(direct), load_external_data=False)) == quantized_products(
        onnx.load(str(library)))

    def ort_nodes(path):
        _ort(path, optimized=tmp_path / "optimized.onnx")
        return op_types(onnx.load(str(tmp_path / "optimized.onnx"), load_external_data=False))

    assert ort_nodes(direct) == ort_nodes(library)
    if scheme.static:
        def openvino_layers(path):
            layers = collections.Counter()
            for op in _openvino(path).get_runtime_model().get_ordered_ops():
                info = op.get_rt_info()
                layers[(info["layerType"].astype(str), info["runtimePrecision"].astype(str))] += 1
            return layers

        layers = openvino_layers(direct)
        assert layers == openvino_layers(library)
        assert layers[("FullyConnected", "u8")] == 6 * arch.lt + 1  # every linear layer in INT8


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_profiler_builds_the_int8_graph_of_the_setting(backend, tmp_path):
    setting = DeviceSetting(backend=backend, threads=1, precision="int8", seq_len=SEQ).resolve()
    arch, pool = Arch.parse("2-192-384-3-96"), WeightPool(tmp_path)
    started = time.perf_counter()
    model = graph_for(arch, setting, pool)
    assert time.perf_counter() - started < 30  # generous: only catches a quantizer on the hot path
    assert model.ByteSize() < 50_000  # int8 weights live in the int8 pool file
    assert (tmp_path / INT8_POOL_FILE).stat().st_size == pool.path.stat().st_size // 4
    expected = {"onnxruntime": "MatMulInteger", "openvino": "QuantizeLinear"}[backend]
    assert expected in op_types(model)
    fp32 = _ort(pool.save(build_onnx(arch, SEQ, weights=pool), "fp32")).run(None, example_inputs(SEQ))
    graph = pool.save(model, "int8")
    from atb.devices import get_backend

    with get_backend(backend).load(arch, graph, setting, example_inputs(SEQ)) as runner:
        runner.run()
    out = _ort(graph).run(None, example_inputs(SEQ))
    for o, r in zip(out, fp32):
        assert np.isfinite(o).all() and np.linalg.norm(o - r) / np.linalg.norm(r) < 0.25  # pooled, uncalibrated


def test_fp32_and_bf16_settings_keep_the_fp32_graph(tmp_path):
    pool = WeightPool(tmp_path)
    setting = DeviceSetting(backend="onnxruntime", threads=1, seq_len=SEQ).resolve()
    assert "MatMulInteger" not in op_types(graph_for(Arch.parse("1-128-256-2-128"), setting, pool))


def test_schemes_and_keys():
    assert scheme_for("onnxruntime").name == "dynamic" and scheme_for("openvino").name == "qdq"
    with pytest.raises(UsageError):
        scheme_for("torch")
    key = device_key_for("onnxruntime", threads=1, precision="int8")
    assert key.startswith("cpu-onnxruntime-t1-int8-s128-b1-")
    assert key != device_key_for("onnxruntime", threads=1, precision="fp32")
    record = DeviceSetting(backend="openvino", threads=1, precision="int8").resolve().record()
    assert record["quant_scheme"] == "qdq" and record["quant_description"] == QDQ.description
    assert "quant_scheme" not in DeviceSetting(threads=1).resolve().record()
    assert DeviceSetting(**DeviceSetting(precision="int8").to_dict()).precision == "int8"  # round-trips
    with pytest.raises(BackendUnavailableError, match="int8"):
        DeviceSetting(backend="torch", precision="int8").resolve()


def test_static_scheme_needs_calibration(tmp_path):
    pool = WeightPool(tmp_path)
    fp32 = pool.save(build_onnx(Arch.parse("1-128-128-2-128"), SEQ, weights=pool), "fp32")
    with pytest.raises(UsageError, match="calibration"):
        quantize_with_library(fp32, tmp_path / "q.onnx", QDQ)


def test_quantization_numerics():
    w = np.array([[0.5, -1.27], [0.0, 0.01]], np.float32)
    q, scale = quantize_weight(w)
    assert scale == np.float32(0.01) and q.dtype == np.int8 and q.tolist() == [[50, -127], [0, 1]]
    scale, zero = activation_qparams(-1.0, 3.0)  # 0 inside: zero point 64 of 255
    assert zero == 64 and np.isclose(scale, 4 / 255)
    assert activation_qparams(0.5, 2.0)[1] == 0  # the range is widened to include 0


@pytest.mark.parametrize("backend,scheme", [("onnxruntime", "dynamic"), ("openvino", "qdq")])
def test_an_int8_run_stores_its_scheme_and_times_bert_base_in_int8(backend, scheme, tmp_path):
    from atb.profiler.api import profile
    from atb.profiler.store import LatencyStore
    from tests.profiler.configs import profile_config

    report = profile(profile_config(archs=["1-128-256-2-128"], backend=backend, threads=1,
                                    precision="int8", seq_len=16), tmp_path)
    assert "-int8-s16-" in report.device_key and report.to_dict()["quant_scheme"] == scheme
    assert report.results[0].speedup > 0 and report.bert_base_ms > 0  # BERT-base under the same key
    with LatencyStore.open(tmp_path / "latency.sqlite") as store:
        (run,) = store.runs(report.device_key)
        assert run.setting["quant_scheme"] == scheme and run.setting["precision"] == "int8"
        assert run.protocol_version == PROTOCOL_VERSION
