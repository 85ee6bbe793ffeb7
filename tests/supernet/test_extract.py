"""Extraction to 🤗 format: AutoModel loading (custom and stock BertModel paths), ONNX."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from atb.arch import Arch
from atb.errors import ArchSpecError, MissingInputError
from atb.supernet.elastic import SuperPLM
from atb.supernet.extract import extract, extract_model, save_model


@pytest.fixture(scope="module")
def supernet(tiny_spaces):
    torch.manual_seed(0)
    return SuperPLM(tiny_spaces["kd"]).eval()


def _inputs():
    ids = torch.randint(1000, 8000, (2, 12), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    return ids, mask


@pytest.mark.parametrize("arch, model_type", [(Arch(2, 128, 160, 2, 128), "bert"),
                                               (Arch(2, 144, 160, 2, 96), "atb-bert")])
def test_automodel_loads_extracted(supernet, tmp_path, arch, model_type):
    import transformers

    summary = save_model(extract_model(supernet, arch), arch, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == model_type == summary["model_type"]
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "vocab.txt").is_file()
    model = transformers.AutoModel.from_pretrained(tmp_path).eval()
    if model_type == "bert":  # stock transformers, no atb class involved
        assert type(model) is transformers.BertModel
    ids, mask = _inputs()
    with torch.no_grad():
        hidden, pooled = supernet(ids, mask, arch=arch)
        out = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids))
    assert (hidden - out.last_hidden_state).abs().max().item() <= 1e-5
    assert (pooled - out.pooler_output).abs().max().item() <= 1e-5
    tok = transformers.AutoTokenizer.from_pretrained(tmp_path)
    assert tok("Hello world")["input_ids"][0] == 101


def test_onnx_export_matches(supernet, tmp_path):
    import onnxruntime as ort

    arch = Arch(1, 128, 128, 2, 64)
    summary = save_model(extract_model(supernet, arch), arch, tmp_path, onnx=True)
    session = ort.InferenceSession(summary["onnx"], providers=["CPUExecutionProvider"])
    ids, mask = _inputs()
    hidden = session.run(["last_hidden_state"], {"input_ids": ids.numpy(), "attention_mask": mask.numpy(),
                                                 "token_type_ids": np.zeros_like(ids.numpy())})[0]
    with torch.no_grad():
        ref, _ = supernet(ids, mask, arch=arch)
    assert np.abs(hidden - ref.numpy()).max() <= 1e-4


def test_extract_from_workspace(trained_ws, tmp_path):
    summary = extract(trained_ws, "1-128-128-1-64", tmp_path / "out")
    assert summary["step"] == 3 and (tmp_path / "out" / "config.json").is_file()
    with pytest.raises(ArchSpecError, match="outside"):
        extract(trained_ws, "3-128-128-1-64", tmp_path / "bad")


def test_extract_without_checkpoint_names_train(data_ws, tmp_path):
    with pytest.raises(MissingInputError) as err:
        extract(tmp_path / "empty-ws", "1-128-128-1-64", tmp_path / "out")
    assert "atb-supernet train" in err.value.one_line()
