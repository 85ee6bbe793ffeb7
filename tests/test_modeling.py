import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, BertConfig, BertModel

import atb
from atb.arch import Arch
from atb.modeling import AUTO_MAP, CODE_FILES, AtbBertConfig, AtbBertModel, build_model


def _inputs(seq=12):
    ids = torch.randint(1, 30522, (2, seq))
    mask = torch.ones_like(ids)
    mask[1, seq // 2:] = 0  # padding in the batch
    types = torch.zeros_like(ids)
    types[:, seq // 3:] = 1
    return ids, mask, types


@pytest.mark.parametrize("text", ["2-256-1024-4-256", "1-128-300-2-128"])
def test_state_dict_loads_into_stock_bert_and_matches(text):
    arch = Arch.parse(text)
    ours = build_model(arch)
    config = BertConfig(hidden_size=arch.dm, num_hidden_layers=arch.lt, num_attention_heads=arch.h,
                        intermediate_size=arch.df, attn_implementation="eager")
    stock = BertModel(config).eval()
    stock.load_state_dict(ours.state_dict(), strict=True)
    ids, mask, types = _inputs()
    with torch.no_grad():
        a = ours(ids, mask, types)
        b = stock(input_ids=ids, attention_mask=mask, token_type_ids=types)
    assert torch.allclose(a.last_hidden_state, b.last_hidden_state, atol=1e-5)
    assert torch.allclose(a.pooler_output, b.pooler_output, atol=1e-5)


def test_dqkv_can_differ_from_dm():
    arch = Arch.parse("2-192-400-3-96")
    model = build_model(arch)
    assert model.encoder.layer[0].attention.self.query.weight.shape == (96, 192)
    assert model.encoder.layer[0].attention.output.dense.weight.shape == (192, 96)
    out = model(*_inputs())
    assert out.last_hidden_state.shape == (2, 12, 192)
    assert sum(p.numel() for p in model.parameters()) == arch.params()


def test_padding_is_masked():
    model = build_model(Arch.parse("2-128-256-2-128"))
    ids, mask, types = _inputs()
    changed = ids.clone()
    changed[1, 8:] = 7  # only padded positions change
    with torch.no_grad():
        a = model(ids, mask, types).last_hidden_state[1, :6]
        b = model(changed, mask, types).last_hidden_state[1, :6]
    assert torch.allclose(a, b, atol=1e-6)


def test_config_round_trip_and_auto_model(tmp_path):
    arch = Arch.parse("2-128-256-2-64")
    model = build_model(arch)
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path)
    assert isinstance(loaded, AtbBertModel)
    assert loaded.config.arch_string == str(arch)
    assert AtbBertConfig.from_arch(arch).qkv_size == 64


def test_saved_directory_carries_its_code(tmp_path):
    build_model(Arch.parse("1-64-128-2-32")).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "atb-bert" and config["auto_map"] == AUTO_MAP
    for name in CODE_FILES:  # verbatim copies, importing nothing of atb
        code = (tmp_path / name).read_text()
        assert code == (Path(atb.__file__).parent / name).read_text()
        assert "import atb" not in code and "from atb" not in code


LAZY_REGISTRATION = r"""
import sys
first = sys.argv[1]
if first == "transformers":  # the Auto classes are loaded before atb
    from transformers import AutoConfig, AutoModel
import atb
if first == "atb":
    heavy = [m for m in ("torch", "transformers") if m in sys.modules]
    assert not heavy, f"import atb imported {heavy}"
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification
from transformers.models.auto.configuration_auto import CONFIG_MAPPING
config_class = CONFIG_MAPPING["atb-bert"]
assert config_class.__module__ == "atb.configuration_atb_bert", config_class
assert AutoModel._model_mapping[config_class].__name__ == "AtbBertModel"
assert (AutoModelForSequenceClassification._model_mapping[config_class].__name__
        == "AtbBertForSequenceClassification")
assert "atb.modeling" not in sys.modules  # registered without the public module
assert not [f for f in sys.meta_path if type(f).__module__ == "atb.hf_auto"]  # watcher gone
print("ok")
"""


@pytest.mark.parametrize("first", ["atb", "transformers"])
def test_import_atb_registers_atb_bert_lazily(first):
    proc = subprocess.run([sys.executable, "-c", LAZY_REGISTRATION, first], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]
