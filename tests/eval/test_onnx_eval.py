"""``atb-eval --model FILE.onnx``: the probe through an ONNX Runtime session, fp32 and INT8."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from atb.eval import EvalConfig, Probe, evaluate, load_task, load_tokenizer
from atb.eval.cli import main
from atb.eval.onnx_encoder import load_onnx_encoder

ONE_SEED = EvalConfig(seeds=1)


@pytest.fixture(scope="module")
def keyword_task(keyword_csv):
    return load_task(keyword_csv)


@pytest.fixture(scope="module")
def onnx_models(atb_dir, tmp_path_factory) -> dict:
    """``atb_dir``'s encoder exported as atb exports it (fp32, dynamic axes), its INT8 copy in
    ONNX Runtime's dynamic scheme, and the fp32 graph with its axes fixed (batch 4, 32 tokens),
    as a user's own export may have them."""
    import onnx

    from atb.devices.quantization import quantize_with_library, scheme_for
    from atb.modeling import AtbBertModel
    from atb.supernet.extract import export_onnx

    out = tmp_path_factory.mktemp("onnx")
    fp32 = export_onnx(AtbBertModel.from_pretrained(atb_dir).eval(), out / "model.onnx")
    int8 = quantize_with_library(fp32, out / "model.int8-dynamic.onnx", scheme_for("onnxruntime"))
    model = onnx.load(str(fp32))
    for arg in model.graph.input:
        batch, length = arg.type.tensor_type.shape.dim
        batch.dim_value, length.dim_value = 4, 32
    fixed = out / "fixed" / "model.onnx"
    fixed.parent.mkdir()
    onnx.save(model, str(fixed))
    return {"fp32": fp32, "int8": int8, "fixed": fixed}


def test_probe_of_the_onnx_export_matches_its_directory(atb_dir, onnx_models, keyword_task):
    """The same weights in ORT and in torch give the same features up to float rounding
    (ORT fuses and reorders the sums), so the probe picks the same C and scores the same."""
    from atb.modeling import AtbBertModel

    probe = Probe(keyword_task, load_tokenizer())
    from_torch = probe.features(AtbBertModel.from_pretrained(atb_dir).eval())
    from_onnx = probe.features(load_onnx_encoder(onnx_models["fp32"]))
    for split, features in from_torch.items():
        np.testing.assert_allclose(from_onnx[split], features, atol=1e-5, rtol=1e-4)
    directory = evaluate(atb_dir, keyword_task, ONE_SEED)
    graph = evaluate(onnx_models["fp32"], keyword_task, ONE_SEED)
    assert graph["accuracy"] == directory["accuracy"] > directory["majority_accuracy"]
    assert graph["seeds"][0]["C"] == directory["seeds"][0]["C"]
    assert (graph["model_format"], graph["quantization"]) == ("onnx", None)
    assert directory["model_format"] == "huggingface" and "quantization" not in directory


def test_int8_graph_is_probed_and_named(onnx_models, keyword_task):
    encoder = load_onnx_encoder(onnx_models["int8"])
    assert encoder.scheme == "dynamic" and encoder.vocab_size == 30522
    result = evaluate(onnx_models["int8"], keyword_task, ONE_SEED)
    assert result["quantization"] == "dynamic"
    assert result["accuracy"] > result["majority_accuracy"] + 0.15


def test_fixed_axes_are_padded_and_sliced(onnx_models, keyword_task):
    """A graph fixed at 4 x 32: batches go in slices of 4 (the last one padded with empty
    rows), each padded to 32 tokens; the mean over the mask gives the dynamic graph's
    features, and evaluate cuts examples to the graph's 32 tokens."""
    fixed = load_onnx_encoder(onnx_models["fixed"])
    assert (fixed.fixed_batch, fixed.fixed_length) == (4, 32)
    probe = Probe(keyword_task, load_tokenizer(), batch_size=10)  # 10 = 4 + 4 + 2
    dynamic = probe.features(load_onnx_encoder(onnx_models["fp32"]))
    for split, features in probe.features(fixed).items():
        np.testing.assert_allclose(features, dynamic[split], atol=1e-5, rtol=1e-4)
    result = evaluate(onnx_models["fixed"], keyword_task, EvalConfig(seeds=1, max_length=128))
    assert result["accuracy"] > result["majority_accuracy"]


def test_tokenizer_comes_from_the_files_directory(onnx_models, tmp_path, keyword_csv, caplog):
    from tests.eval.conftest import copy_tokenizer

    shutil.copyfile(onnx_models["fp32"], tmp_path / "model.onnx")
    copy_tokenizer(tmp_path)
    with caplog.at_level("INFO", logger="atb.eval.models"):
        evaluate(tmp_path / "model.onnx", keyword_csv, ONE_SEED)
        assert "has no tokenizer" not in caplog.text
        evaluate(onnx_models["fp32"], keyword_csv, ONE_SEED)  # its directory has none
        assert "has no tokenizer" in caplog.text


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_and_table(onnx_models, keyword_csv, capsys):
    code, out, _ = _run(["--model", onnx_models["int8"], "--task", keyword_csv, "--seeds", 1,
                         "--json"], capsys)
    assert code == 0
    result = json.loads(out)
    assert (result["model_format"], result["quantization"]) == ("onnx", "dynamic")
    code, out, _ = _run(["--model", onnx_models["fp32"], "--task", keyword_csv, "--seeds", 1],
                        capsys)
    assert code == 0 and "(ONNX, float)" in out


def _graph_without_encoder_inputs(path):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.mark.parametrize("make, extra, needle", [
    (lambda m, t: m["int8"], ["--method", "finetune"], "cannot be fine-tuned"),
    (lambda m, t: _graph_without_encoder_inputs(t / "identity.onnx"), [], "atb-eval needs inputs"),
    (lambda m, t: (t / "garbage.onnx").write_bytes(b"\x00\xff" * 64) and t / "garbage.onnx", [],
     "cannot load the ONNX model"),
    (lambda m, t: t / "missing.onnx", [], "does not exist"),
    (lambda m, t: t, [], "no config.json"),  # a directory stays a 🤗 directory
])
def test_bad_onnx_input_is_one_line_and_exit_2(onnx_models, keyword_csv, tmp_path, capsys,
                                               make, extra, needle):
    code, out, err = _run(["--model", make(onnx_models, tmp_path), "--task", keyword_csv, *extra],
                          capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and needle in err
