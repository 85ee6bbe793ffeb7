"""Further training (``atb-supernet distill``): runs keyed by what shapes them, resumed after a
kill, written as stock-loadable 🤗 directories with a model card."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from atb.arch import Arch
from atb.supernet import checkpoint as ckpt
from atb.supernet.further import FurtherConfig

ARCH = Arch.parse("1-128-128-2-64")


@pytest.fixture(scope="module")
def init_ws(data_ws, tmp_path_factory):
    """A workspace with a 2-step ``--init`` supernet of a tiny random BERT (2 layers, 160)."""
    import transformers

    from atb.supernet.config import TrainConfig, TrainTarget
    from atb.supernet.data import tokenizer_dir
    from atb.supernet.train import train_supernet

    root = tmp_path_factory.mktemp("further")
    bert = root / "bert"
    torch.manual_seed(0)
    transformers.BertModel(transformers.BertConfig(
        hidden_size=160, num_hidden_layers=2, num_attention_heads=5, intermediate_size=192,
        vocab_size=30522, max_position_embeddings=128)).save_pretrained(bert)
    shutil.copyfile(tokenizer_dir() / "vocab.txt", bert / "vocab.txt")
    ws = root / "ws"
    shutil.copytree(data_ws / "data", ws / "data")
    train_supernet(ws, TrainConfig(steps=2, init=str(bert), batch_size=4, seq_len=32, samples=2),
                   TrainTarget())
    return ws


SMALL = dict(steps=4, save_every=2)


def _weights(path):
    from safetensors.torch import load_file

    return load_file(str(Path(path) / ckpt.MODEL))


def test_a_finished_run_is_reused_only_on_an_exact_match(init_ws):
    from atb.supernet.further import train_further

    first = train_further(init_ws, ARCH, FurtherConfig(**SMALL))
    assert first["finished"] and not first["reused"] and first["steps"] == 4
    assert first["heldout_loss_before"] > 0 and first["heldout_loss_after"] >= 0
    again = train_further(init_ws, ARCH, FurtherConfig(**SMALL))
    assert again["reused"] and again["key"] == first["key"]
    other = train_further(init_ws, ARCH, FurtherConfig(steps=4, save_every=2, seed=1))
    assert other["key"] != first["key"] and not other["reused"]


def test_a_killed_run_resumes_from_its_last_checkpoint(init_ws, monkeypatch):
    """A run stopped after its checkpoint at step 2 of 4 continues from there and ends with
    the weights of a run that never stopped (the schedule is a function of the step)."""
    from atb.supernet import further, train

    config = FurtherConfig(steps=4, save_every=2, seed=3)
    real = train.train_supernet

    def killed(workspace, cfg, target, resume=False, stop_at=None):
        real(workspace, cfg, target, resume=resume, stop_at=2)  # checkpoint at 2, then "kill -9"
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "train_supernet", killed)
    with pytest.raises(KeyboardInterrupt):
        further.train_further(init_ws, ARCH, config)
    monkeypatch.setattr(train, "train_supernet", real)
    resumed = further.train_further(init_ws, ARCH, config)
    assert resumed["resumed_from_step"] == 2 and resumed["finished"]
    # the record written before the kill survives the checkpoints saved since
    assert resumed["heldout_loss_before"] > 0 and resumed["key"]
    straight = further.train_further(init_ws, ARCH, FurtherConfig(steps=4, save_every=4, seed=3))
    assert straight["resumed_from_step"] == 0
    a, b = _weights(straight["checkpoint"]), _weights(resumed["checkpoint"])
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_every_layer_objective_trains_and_is_zero_for_the_teacher_itself(init_ws):
    from atb.supernet.extract import extract_trainable
    from atb.supernet.further import train_further

    supernet = ckpt.find_checkpoint(init_ws / "supernet")
    full = ckpt.space_of(ckpt.read_state(supernet)).super_arch
    record = train_further(init_ws, ARCH, FurtherConfig(steps=2, save_every=2, objective="layers"))
    assert ckpt.read_state(record["checkpoint"])["objective"] == "self-kd-layers"
    teacher_slice = extract_trainable(supernet, full, init_ws / "full-layers", "self-kd-layers")
    trainable, _ = ckpt.load_trainable(teacher_slice)
    trainable["supernet"].load_state_dict(trainable["objective"].teacher.state_dict())
    batch = {"input_ids": torch.randint(1000, 2000, (2, 16)), "attention_mask": torch.ones(2, 16, dtype=torch.long)}
    prepared = trainable["objective"].prepare(batch, None)
    loss, _ = trainable["objective"].loss(trainable["supernet"], prepared, full)
    assert float(loss.detach()) < 1e-8


def test_distill_writes_stock_loadable_directories_with_a_card(init_ws, tmp_path):
    from transformers import AutoModel

    from atb.supernet.further import distill

    archs = [ARCH, Arch.parse("2-128-160-2-64")]
    out = tmp_path / "models"
    summaries = distill(init_ws, archs, out, FurtherConfig(**SMALL))
    assert [s["out_dir"] for s in summaries] == [str(out / str(a)) for a in archs]
    for arch in archs:
        model = AutoModel.from_pretrained(out / str(arch))  # stock BERT: dqkv == dm
        assert model.config.num_hidden_layers == arch.lt
        card = (out / str(arch) / "README.md").read_text()
        assert str(arch) in card and "4 steps" in card and "library_name: transformers" in card
    one = distill(init_ws, [ARCH], tmp_path / "one", FurtherConfig(**SMALL))
    assert one[0]["reused"] and (tmp_path / "one" / "config.json").is_file()
    assert json.loads((tmp_path / "one" / "config.json").read_text())["hidden_size"] == 128


def test_search_winner_and_rule_arch_trained_further_with_scores(init_ws, tmp_path):
    """``atb-search --train-further``: both archs get the same budget, a model directory each
    under RUN_DIR/models and a score before and after; the report is saved in the run."""
    from types import SimpleNamespace

    from atb.compose import train_further_after_search

    class Score:
        task = "fake"

        def __call__(self, arch):
            return {"validation_accuracy": 0.5}

        def score_trained(self, model_dir, checkpoint, arch):
            assert (Path(model_dir) / "config.json").is_file() and Path(checkpoint).is_dir()
            return {"validation_accuracy": 0.75}

    winner, rule = ARCH, Arch.parse("2-128-160-2-64")
    best = SimpleNamespace(arch=winner, measured_speedup=15.2)
    result = SimpleNamespace(best=best, run_dir=tmp_path, top_k=[best], device_key="cpu-test",
                             primary=SimpleNamespace(reranking=None, baseline=SimpleNamespace(
                                 arch=rule, measured_speedup=14.9)))
    report = train_further_after_search(result, init_ws, 2, Score())
    assert [(m["arch"], m["role"]) for m in report["models"]] == [(str(winner), "winner"),
                                                                 (str(rule), "bert-rule")]
    assert all(m["steps"] == 2 and (m["validation_before"], m["validation_after"]) == (0.5, 0.75)
               for m in report["models"])
    assert json.loads((tmp_path / "further.json").read_text()) == report
    card = (tmp_path / "models" / str(rule) / "README.md").read_text()
    assert "14.90x faster than BERT-base on `cpu-test`" in card and "0.750" in card


def test_the_estimate_times_real_steps_and_leaves_nothing_behind(init_ws):
    from atb.supernet.further import estimate_seconds

    before = sorted((init_ws / "further").iterdir()) if (init_ws / "further").is_dir() else []
    seconds = estimate_seconds(init_ws, ARCH, FurtherConfig(steps=1000), probe_steps=2)
    assert seconds > 0
    after = sorted((init_ws / "further").iterdir()) if (init_ws / "further").is_dir() else []
    assert after == before


def test_bf16_autocast_trains_a_run_of_its_own_where_the_device_has_bf16(init_ws, monkeypatch):
    """bf16 is its own run (its own key; fp32 keys are unchanged by the option), trains to a
    finite loss with fp32 weights where the CPU has bf16 instructions, and is refused with one
    line where it has none."""
    import importlib

    from atb.errors import UsageError
    from atb.supernet.further import train_further

    fp_module = importlib.import_module("atb.devices.fingerprint")  # the module, not the function
    fp32 = train_further(init_ws, ARCH, FurtherConfig(**SMALL))
    real = fp_module.fingerprint()
    monkeypatch.setattr(fp_module, "fingerprint",
                        lambda: dataclasses.replace(real, isa_flags=("avx2", "avx512_bf16")))
    bf16 = train_further(init_ws, ARCH, FurtherConfig(**SMALL, precision="bf16"))
    assert bf16["key"] != fp32["key"] and not bf16["reused"]
    assert ckpt.read_state(bf16["checkpoint"])["config"]["precision"] == "bf16"
    assert all(w.dtype == torch.float32 for w in _weights(bf16["checkpoint"]).values())
    assert np.isfinite(bf16["heldout_loss_after"])
    monkeypatch.setattr(fp_module, "fingerprint",
                        lambda: dataclasses.replace(real, isa_flags=("avx2",)))
    with pytest.raises(UsageError, match="no bf16 instructions"):
        train_further(init_ws, ARCH, FurtherConfig(steps=4, save_every=2, seed=5, precision="bf16"))
    with pytest.raises(UsageError, match="unknown precision"):
        FurtherConfig(precision="fp16").check()
