"""The layer cut: a teacher's first k layers, untrained, as a stock 🤗 directory."""

from __future__ import annotations

import shutil

import pytest
import torch

from atb.arch import Arch
from atb.errors import UsageError
from atb.supernet.layer_cut import layer_cut_arch, save_layer_cut

TINY = dict(hidden_size=64, num_hidden_layers=3, num_attention_heads=2, intermediate_size=96,
            vocab_size=30522, max_position_embeddings=64)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    import transformers

    from atb.supernet.data import tokenizer_dir

    path = tmp_path_factory.mktemp("teacher")
    torch.manual_seed(0)
    model = transformers.BertModel(transformers.BertConfig(**TINY)).eval()
    model.save_pretrained(path)
    shutil.copyfile(tokenizer_dir() / "vocab.txt", path / "vocab.txt")
    return path, model


def test_the_cut_of_minilm_keeps_its_width():
    assert str(layer_cut_arch(Arch.parse("6-384-1536-12-384"), 3)) == "3-384-1536-12-384"
    with pytest.raises(UsageError, match="1 to 6 layers"):
        layer_cut_arch(Arch.parse("6-384-1536-12-384"), 7)


def test_the_cut_loads_with_automodel_and_computes_the_teachers_first_layers(teacher, tmp_path):
    from transformers import AutoModel, AutoTokenizer

    path, model = teacher
    summary = save_layer_cut(2, tmp_path / "cut", teacher=path)
    assert summary["arch"] == "2-64-96-2-64" and summary["layers"] == 2
    cut = AutoModel.from_pretrained(tmp_path / "cut").eval()
    assert type(cut).__name__ == "BertModel" and cut.config.num_hidden_layers == 2
    batch = AutoTokenizer.from_pretrained(tmp_path / "cut")(["the first layers, for free"],
                                                            return_tensors="pt")
    with torch.no_grad():
        ours = cut(**batch).last_hidden_state
        theirs = model(**batch, output_hidden_states=True).hidden_states[2]  # after layer 2
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_a_cut_deeper_than_the_teacher_is_one_line(teacher, tmp_path):
    with pytest.raises(UsageError, match="1 to 3 layers"):
        save_layer_cut(4, tmp_path / "cut", teacher=teacher[0])
    assert not (tmp_path / "cut").exists()  # refused before anything was written


def test_atb_eval_compare_names_the_cut(teacher, tmp_path):
    from atb.eval.compare import arch_of, origin_of

    save_layer_cut(1, tmp_path / "cut", teacher=teacher[0])
    assert origin_of(tmp_path / "cut") == f"layer cut: {teacher[0].name}'s first 1 layer"
    assert arch_of(tmp_path / "cut") == "1-64-96-2-64"  # its latency label is found by arch
    assert origin_of(teacher[0]) is None and origin_of(tmp_path / "nowhere") is None
