"""``atb-supernet extract --quantize int8``: the INT8 ONNX copy of an extracted sub-model, in
ONNX Runtime's dynamic scheme and as a static QDQ graph calibrated on held-out text."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil

import numpy as np
import pytest

from atb.errors import MissingInputError, UsageError
from atb.supernet.cli import main
from atb.supernet.extract import calibration_feeds, check_quantize, quantize_onnx

ARCH = "2-128-160-2-128"  # inside the pretrain space of the tiny supernet (conftest)
SCHEMES = ("dynamic", "qdq")


@pytest.fixture(scope="module")
def extracted(trained_ws, tmp_path_factory) -> dict:
    """Both schemes extracted through the CLI (``--json``): scheme -> printed summary."""
    out = {}
    for scheme in SCHEMES:
        target = tmp_path_factory.mktemp(f"int8-{scheme}")
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            code = main(["extract", "--workspace", str(trained_ws), "--arch", ARCH, "-o",
                         str(target), "--quantize", "int8", "--scheme", scheme, "--json"])
        assert code == 0
        out[scheme] = json.loads(stdout.getvalue())
    return out


@pytest.mark.parametrize("scheme", SCHEMES)
def test_extract_writes_the_int8_model_next_to_the_fp32_one(extracted, scheme):
    import onnx

    from atb.eval.onnx_encoder import quantization_scheme

    summary = extracted[scheme]
    int8, fp32 = summary["int8"], summary["onnx"]
    assert int8.endswith(f"model.int8-{scheme}.onnx") and fp32.endswith("model.onnx")
    assert summary["int8_scheme"] == scheme
    for path, size in ((int8, summary["int8_bytes"]), (fp32, summary["onnx_bytes"])):
        assert size == os.path.getsize(path) > 0
    model = onnx.load(int8)
    onnx.checker.check_model(model)
    assert quantization_scheme(model) == scheme  # the operators of that scheme, and only those
    assert quantization_scheme(onnx.load(fp32)) is None
    assert ("int8_calibration" in summary) == (scheme == "qdq")


def _pooled(path: str, feed: dict) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    hidden = session.run(["last_hidden_state"], feed)[0]  # (b, s, d)
    mask = feed["attention_mask"][..., None]  # (b, s, 1)
    return (hidden * mask).sum(1) / mask.sum(1)  # (b, d)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_int8_embeddings_stay_close_to_fp32(trained_ws, extracted, scheme):
    """Mean-pooled outputs on training text (the QDQ scales came from held-out text), padded
    rows included. Raw cosine > 0.99 is what a user checks, but mean-pooled vectors of one
    model share a large common direction (different passages here have cosines of 0.91-0.98),
    so two stricter checks follow: after removing the fp32 batch mean the cosine stays above
    0.95 (measured: 0.99995 dynamic, 0.989 QDQ, which also rounds the activations and the
    attention products), and every INT8 embedding's nearest fp32 embedding is its own
    passage's. INT8 must still differ from fp32 (the weights really were rounded)."""
    from atb.supernet.data import load_split, make_sequences

    ids, mask = make_sequences(load_split(trained_ws, "train"), 64)
    rows = np.linspace(0, len(ids) - 1, 16).astype(int)
    feed = {"input_ids": ids[rows], "attention_mask": mask[rows],
            "token_type_ids": np.zeros_like(ids[rows])}
    assert mask[rows].sum(1).min() < 64  # some rows are padded
    ref = _pooled(extracted[scheme]["onnx"], feed)
    int8 = _pooled(extracted[scheme]["int8"], feed)
    assert np.abs(int8 - ref).max() > 0
    assert _cosine(int8, ref).min() > 0.99
    centre = ref.mean(0)
    assert _cosine(int8 - centre, ref - centre).min() > 0.95
    distances = np.linalg.norm(int8[:, None] - ref[None], axis=-1)  # (int8 row, fp32 row)
    assert (distances.argmin(1) == np.arange(len(rows))).all()


def test_calibration_is_held_out_text(trained_ws):
    from atb.supernet.data import CLS_ID, load_split, make_sequences

    feeds = calibration_feeds(trained_ws, sequences=5, batch=2)
    assert [len(f["input_ids"]) for f in feeds] == [2, 2, 1]
    heldout, _ = make_sequences(load_split(trained_ws, "heldout"), 128)
    for feed in feeds:
        assert set(feed) == {"input_ids", "attention_mask", "token_type_ids"}
        assert feed["input_ids"].shape[1] == 128 and (feed["input_ids"][:, 0] == CLS_ID).all()
        for row in feed["input_ids"]:  # every row is a held-out sequence
            assert (heldout == row).all(1).any()


def test_qdq_needs_calibration(extracted, trained_ws, tmp_path):
    fp32 = shutil.copyfile(extracted["qdq"]["onnx"], tmp_path / "model.onnx")
    with pytest.raises(UsageError, match="calibration"):
        quantize_onnx(fp32, "qdq", calibration=None)
    assert quantize_onnx(fp32, "dynamic").name == "model.int8-dynamic.onnx"  # needs none
    no_data = shutil.copytree(trained_ws, tmp_path / "no-data")
    shutil.rmtree(no_data / "data")
    from atb.supernet.config import ExportOptions
    from atb.supernet.extract import extract

    with pytest.raises(MissingInputError, match="no prepared data"):
        extract(no_data, ARCH, tmp_path / "out", ExportOptions(quantize="int8", scheme="qdq"))
    assert not (tmp_path / "out").exists()  # refused before anything was written


@pytest.mark.parametrize("quantize, scheme, needle", [
    ("int4", "dynamic", "cannot quantize to 'int4'"),
    ("int8", "static", "unknown INT8 scheme 'static'"),
])
def test_bad_quantize_options(quantize, scheme, needle):
    with pytest.raises(UsageError, match=needle):
        check_quantize(quantize, scheme)


def test_export_leaves_the_model_in_its_mode(tmp_path):
    """The TorchScript exporter restores its wrapper's mode recursively, which used to switch
    an eval-mode model to training mode (dropout on) after the export."""
    from atb.modeling import AtbBertConfig, AtbBertModel
    from atb.supernet.extract import export_onnx

    model = AtbBertModel(AtbBertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                       intermediate_size=64, qkv_size=16)).eval()
    export_onnx(model, tmp_path / "model.onnx", seq_len=8)
    assert not model.training
