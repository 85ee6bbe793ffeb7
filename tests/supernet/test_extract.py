"""Extraction to 🤗 format: AutoModel loading (custom and stock BertModel paths, with atb and
in an interpreter where atb cannot be imported), ONNX."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import atb
from atb.arch import Arch
from atb.errors import ArchSpecError, MissingInputError
from atb.modeling import AUTO_MAP, CODE_FILES
from atb.supernet.config import ExportOptions
from atb.supernet.elastic import SuperPLM
from atb.supernet.extract import extract, extract_model, save_model
from tests.conftest import cli_env


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
    summary = save_model(extract_model(supernet, arch), arch, tmp_path, ExportOptions(onnx=True))
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


# A fresh interpreter that has torch and transformers but cannot import atb: ``-I -S`` drops the
# current directory, PYTHONPATH and site-packages' .pth files (the editable install of atb is
# one), then only the directories of torch and transformers go back on sys.path.
LOAD_WITHOUT_ATB = r"""
import json, sys
args = json.loads(sys.argv[1])
sys.path.extend(args["sites"])
try:
    import atb
except ModuleNotFoundError:
    pass
else:
    raise SystemExit("atb is importable from " + str(atb.__file__))
import torch
from transformers import AutoModel, AutoModelForSequenceClassification
"""

# A normal interpreter (atb installed): ``import atb`` alone, then plain Auto classes.
LOAD_AFTER_IMPORT_ATB = r"""
import json, sys
args = json.loads(sys.argv[1])
import atb
heavy = [m for m in ("torch", "transformers") if m in sys.modules]
assert not heavy, f"import atb imported {heavy}"
import torch
from transformers import AutoModel, AutoModelForSequenceClassification
"""

LOAD_AND_RUN = r"""
kwargs = {"trust_remote_code": True} if args["trust"] else {}
encoder = AutoModel.from_pretrained(args["dir"], **kwargs).eval()
classifier = AutoModelForSequenceClassification.from_pretrained(args["dir"], num_labels=3,
                                                                 **kwargs).eval()
ids, mask = torch.tensor(args["ids"]), torch.tensor(args["mask"])
with torch.no_grad():
    out = encoder(input_ids=ids, attention_mask=mask)
    logits = classifier(input_ids=ids, attention_mask=mask).logits
name = lambda obj: type(obj).__module__ + "." + type(obj).__name__
print(json.dumps({
    "encoder": name(encoder), "classifier": name(classifier),
    "atb_modules": sorted(m for m in sys.modules if m == "atb" or m.startswith("atb.")),
    "hidden": out.last_hidden_state.tolist(), "pooled": out.pooler_output.tolist(),
    "logits": logits.tolist(), "head_weight": classifier.classifier.weight.tolist(),
    "head_bias": classifier.classifier.bias.tolist(),
}))
"""


def _load_in_subprocess(model_dir: Path, tmp_path: Path, without_atb: bool) -> dict:
    import transformers

    ids, mask = _inputs()
    args = {"dir": str(model_dir), "ids": ids.tolist(), "mask": mask.tolist(), "trust": without_atb,
            "sites": sorted({str(Path(m.__file__).resolve().parents[1]) for m in (torch, transformers)})}
    if without_atb:
        command = [sys.executable, "-I", "-S", "-c", LOAD_WITHOUT_ATB + LOAD_AND_RUN]
    else:
        command = [sys.executable, "-c", LOAD_AFTER_IMPORT_ATB + LOAD_AND_RUN]
    env = {**cli_env(), "HF_HOME": str(tmp_path / "hf"), "HF_MODULES_CACHE": str(tmp_path / "modules")}
    # stdin closed: were the remote code not trusted, 🤗's prompt fails at once instead of waiting
    proc = subprocess.run(command + [json.dumps(args)], capture_output=True, text=True, cwd=tmp_path,
                          env=env, stdin=subprocess.DEVNULL, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _assert_matches_supernet(result: dict, supernet, arch: Arch) -> None:
    ids, mask = _inputs()
    with torch.no_grad():
        hidden, pooled = supernet(ids, mask, arch=arch)
    assert torch.allclose(torch.tensor(result["hidden"]), hidden, atol=1e-5)
    assert torch.allclose(torch.tensor(result["pooled"]), pooled, atol=1e-5)
    # the classifier: the same encoder, then its (new, random) linear head on the pooled output
    head = torch.nn.functional.linear(pooled, torch.tensor(result["head_weight"]),
                                      torch.tensor(result["head_bias"]))
    assert torch.allclose(torch.tensor(result["logits"]), head, atol=1e-5)


@pytest.mark.parametrize("arch, encoder", [
    (Arch(2, 144, 160, 2, 96), "modeling_atb_bert.AtbBertModel"),
    (Arch(2, 128, 160, 2, 128), "transformers.models.bert.modeling_bert.BertModel"),
])
def test_extracted_model_loads_where_atb_is_not_installed(supernet, tmp_path, arch, encoder):
    out = tmp_path / "model"
    save_model(extract_model(supernet, arch), arch, out)
    config = json.loads((out / "config.json").read_text())
    if arch.dqkv != arch.dm:  # atb-bert: the code travels with the weights
        assert config["auto_map"] == AUTO_MAP
        for name in CODE_FILES:
            assert (out / name).read_bytes() == (Path(atb.__file__).parent / name).read_bytes()
    result = _load_in_subprocess(out, tmp_path, without_atb=True)
    assert result["atb_modules"] == []
    assert result["encoder"].endswith(encoder)
    assert result["classifier"].endswith(encoder.replace("Model", "ForSequenceClassification"))
    _assert_matches_supernet(result, supernet, arch)


def test_extracted_model_loads_with_plain_automodel_after_import_atb(supernet, tmp_path):
    arch = Arch(2, 144, 160, 2, 96)
    save_model(extract_model(supernet, arch), arch, tmp_path / "model")
    result = _load_in_subprocess(tmp_path / "model", tmp_path, without_atb=False)
    assert result["encoder"] == "atb.modeling_atb_bert.AtbBertModel"  # atb's own, not a copy
    assert result["classifier"] == "atb.modeling_atb_bert.AtbBertForSequenceClassification"
    _assert_matches_supernet(result, supernet, arch)


def test_automodel_of_a_spread_sub_model_equals_the_supernet(tmp_path):
    """With ``depth="spread"`` the 🤗 directory holds the mapped layers, not the first ones."""
    import transformers

    from atb.arch import SearchSpace

    torch.manual_seed(0)
    supernet = SuperPLM(SearchSpace("pretrain", Arch(4, 160, 192, 2, 128)), depth="spread").eval()
    arch = Arch(2, 128, 160, 2, 128)  # supernet layers 1 and 3
    save_model(extract_model(supernet, arch), arch, tmp_path)
    model = transformers.AutoModel.from_pretrained(tmp_path).eval()
    ids, mask = _inputs()
    with torch.no_grad():
        hidden, pooled = supernet(ids, mask, arch=arch)
        out = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids))
        supernet.depth = "first"
        first, _ = supernet(ids, mask, arch=arch)
    assert (hidden - out.last_hidden_state).abs().max().item() <= 1e-5
    assert (pooled - out.pooler_output).abs().max().item() <= 1e-5
    assert (first - out.last_hidden_state).abs().max().item() > 1e-2


def test_spread_checkpoint_extracts_its_mapped_layers(data_ws, tiny_spaces, tmp_path):
    """``extract`` and ``extract_trainable`` of a ``--depth spread`` checkpoint: the 1-layer
    sub-model is the supernet's last layer, and the stand-alone copy keeps it (as "first")."""
    import transformers

    from atb.supernet import checkpoint as ckpt
    from atb.supernet.extract import extract_trainable
    from atb.supernet.config import TrainConfig, TrainTarget
    from atb.supernet.train import train_supernet

    path = tmp_path / "spread"
    train_supernet(data_ws, TrainConfig(steps=1, depth="spread", batch_size=4, seq_len=32, samples=2),
                   TrainTarget(space=tiny_spaces["pretrain"], out_dir=path))
    supernet = ckpt.load_trainable(path)[0]["supernet"]
    arch = Arch(1, 128, 128, 1, 64)
    summary = extract(data_ws, arch, tmp_path / "out", checkpoint=path)
    model = transformers.AutoModel.from_pretrained(summary["out_dir"]).eval()
    ids, mask = _inputs()
    with torch.no_grad():
        hidden, _ = supernet(ids, mask, arch=arch)
        out = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids))
    assert (hidden - out.last_hidden_state).abs().max().item() <= 1e-5
    alone_dir = extract_trainable(path, arch, tmp_path / "alone")
    alone, state = ckpt.load_trainable(alone_dir)
    assert state["config"]["depth"] == "first" and alone["supernet"].depth == "first"
    assert torch.equal(alone["supernet"].encoder.layer[0].output.dense.bias,
                       supernet.encoder.layer[1].output.dense.bias[:128])
    with torch.no_grad():
        assert torch.allclose(alone["supernet"](ids, mask, arch=arch)[0], hidden, atol=1e-6)
