import pytest
import torch
from transformers import AutoModel, BertConfig, BertModel

from atb.arch import Arch
from atb.modeling import AtbBertConfig, AtbBertModel, build_model


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
