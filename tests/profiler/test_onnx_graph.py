import io

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from atb.arch import Arch, get_space
from atb.modeling import build_model
from atb.profiler.onnx_graph import INPUT_NAMES, WeightPool, build_onnx, example_inputs, state_dict_weights

SEQ = 16


def _ort(model_or_path):
    src = model_or_path.SerializeToString() if isinstance(model_or_path, onnx.ModelProto) else str(model_or_path)
    return ort.InferenceSession(src, providers=["CPUExecutionProvider"])


def _padded_inputs():
    x = example_inputs(SEQ, batch=2)
    x["attention_mask"][1, 10:] = 0
    x["token_type_ids"][:, 8:] = 1
    return x


def _torch_export(model, inputs) -> onnx.ModelProto:
    f = io.BytesIO()
    args = tuple(torch.from_numpy(inputs[k]) for k in INPUT_NAMES) + (None,)
    torch.onnx.export(model, args[:3], f, dynamo=False, opset_version=17,
                      input_names=list(INPUT_NAMES), output_names=["last_hidden_state", "pooler_output"])
    return onnx.load_from_string(f.getvalue())


ARCHS = ["3-200-500-5-320", "1-128-128-1-64", "2-256-1000-12-180", "4-384-760-12-372"]
ARCHS += [str(a) for a in get_space("pretrain").sample(np.random.default_rng(1), 1)]
ARCHS += [str(a) for a in get_space("kd").sample(np.random.default_rng(2), 1)]


@pytest.mark.parametrize("text", ARCHS)
def test_direct_graph_equals_torch_and_its_export(text):
    arch = Arch.parse(text)
    model = build_model(arch)
    inputs = _padded_inputs()
    direct = build_onnx(arch, SEQ, batch=2, weights=state_dict_weights(model))
    onnx.checker.check_model(direct)
    ours = _ort(direct).run(None, inputs)
    with torch.no_grad():
        ref = model(**{k: torch.from_numpy(v) for k, v in inputs.items()})
    np.testing.assert_allclose(ours[0], ref.last_hidden_state.numpy(), atol=2e-5)
    np.testing.assert_allclose(ours[1], ref.pooler_output.numpy(), atol=2e-5)
    exported = _ort(_torch_export(model, inputs)).run(None, inputs)
    np.testing.assert_allclose(ours[0], exported[0], atol=2e-5)
    np.testing.assert_allclose(ours[1], exported[1], atol=2e-5)


def test_pool_graph_is_small_and_runs(tmp_path):
    pool = WeightPool(tmp_path)
    arch = Arch.parse("2-256-512-4-256")
    model = build_onnx(arch, SEQ, weights=pool)
    assert model.ByteSize() < 50_000  # weights live in the pool file, not the proto
    out = _ort(pool.save(model, "m")).run(None, example_inputs(SEQ))
    assert out[0].shape == (1, SEQ, 256) and np.isfinite(out[0]).all()
    # same name, same offset: graphs are reproducible across processes
    assert pool.offset("encoder.layer.0.intermediate.dense.weight", 100) == WeightPool(tmp_path).offset(
        "encoder.layer.0.intermediate.dense.weight", 100)
