"""One conformance test over every backend: load a graph, run it, free it."""

import numpy as np
import pytest

from atb.arch import Arch
from atb.devices import BACKENDS, DeviceSetting, device_key_for, fingerprint, get_backend
from atb.errors import BackendUnavailableError, UsageError
from atb.profiler.onnx_graph import WeightPool, build_onnx, example_inputs


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_loads_and_runs(backend, tmp_path):
    arch = Arch.parse("2-128-256-2-128")
    setting = DeviceSetting(backend=backend, threads=1, seq_len=16).resolve()
    pool = WeightPool(tmp_path)
    graph = pool.save(build_onnx(arch, 16, weights=pool), "g")
    with get_backend(backend).load(arch, graph, setting, example_inputs(16)) as runner:
        for _ in range(3):
            runner.run()


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_onnx_backends_load_and_run_their_int8_graph(backend, tmp_path):
    from atb.profiler.onnx_graph import graph_for

    arch = Arch.parse("2-128-256-2-128")
    setting = DeviceSetting(backend=backend, threads=1, precision="int8", seq_len=16).resolve()
    pool = WeightPool(tmp_path)
    graph = pool.save(graph_for(arch, setting, pool), "g")
    with get_backend(backend).load(arch, graph, setting, example_inputs(16)) as runner:
        for _ in range(3):
            runner.run()


def test_openvino_keeps_f32_for_the_float_ops_of_int8():
    from atb.devices.backends.openvino import compile_config

    setting = DeviceSetting(backend="openvino", threads=1, precision="int8").resolve()
    assert compile_config(setting)["INFERENCE_PRECISION_HINT"] == "f32"


def test_device_key_names_the_setting():
    key = device_key_for("onnxruntime", threads=1, precision="fp32", seq_len=64)
    assert key.startswith("cpu-onnxruntime-t1-fp32-s64-b1-")
    assert key == device_key_for("onnxruntime", threads=1, precision="fp32", seq_len=64)  # stable
    assert key != device_key_for("openvino", threads=1, precision="fp32", seq_len=64)
    assert len(key.rsplit("-", 1)[1]) == 8


def test_device_key_parses_back_to_its_setting():
    from atb.devices import setting_from_key

    key = device_key_for("openvino", threads=1, precision="fp32", seq_len=64)
    s = setting_from_key(key)
    assert (s.backend, s.threads, s.precision, s.seq_len, s.batch) == ("openvino", 1, "fp32", 64, 1)
    with pytest.raises(UsageError):
        setting_from_key("cpu-onnxruntime-2")


def test_default_threads_are_the_physical_cores():
    assert DeviceSetting().resolve().threads == fingerprint().physical_cores


@pytest.mark.parametrize("kwargs,error", [
    ({"backend": "tvm"}, BackendUnavailableError),
    ({"precision": "int4"}, UsageError),
    ({"threads": 10_000}, UsageError),
    ({"seq_len": 0}, UsageError),
    ({"backend": "onnxruntime", "precision": "bf16"}, BackendUnavailableError),
    ({"backend": "torch", "precision": "int8"}, BackendUnavailableError),
])
def test_bad_settings_are_refused(kwargs, error):
    with pytest.raises(error):
        DeviceSetting(**kwargs).resolve()


def test_bf16_needs_bf16_hardware():
    if fingerprint().has_bf16:
        assert DeviceSetting(backend="openvino", precision="bf16").resolve().precision == "bf16"
    else:
        with pytest.raises(BackendUnavailableError, match="bf16"):
            DeviceSetting(backend="openvino", precision="bf16").resolve()


def test_fingerprint_hash_depends_on_backend_library():
    fp = fingerprint()
    assert fp.hash("onnxruntime") != fp.hash("openvino")
    assert isinstance(np.asarray(fp.isa_flags), np.ndarray)
