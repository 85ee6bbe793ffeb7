"""SuperPLM from a pretrained BERT (``--init``): loading, function-preserving reordering,
self-distillation, extraction, and one-line errors for bad checkpoints."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from atb.arch import Arch, SearchSpace
from atb.errors import MissingInputError, SupernetError, UsageError
from atb.supernet import checkpoint as ckpt
from atb.supernet.cli import main
from atb.supernet.importance import apply_reordering, reordered_supernet, score_units
from atb.supernet.pretrained import load_pretrained

TINY_BERT = dict(hidden_size=160, num_hidden_layers=2, num_attention_heads=5, intermediate_size=192,
                 vocab_size=30522, max_position_embeddings=128)  # heads of 32
TINY_ARCH = Arch(2, 160, 192, 5, 160)


def _save_bert(path, cls_name="BertModel", seed=0, **overrides):
    import transformers

    torch.manual_seed(seed)
    model = getattr(transformers, cls_name)(transformers.BertConfig(**{**TINY_BERT, **overrides}))
    with torch.no_grad():  # trained LayerNorms are not all ones: give the channels distinct scales
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.1)
    model.save_pretrained(path)
    return model.eval()


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    path = tmp_path_factory.mktemp("bert")
    model = _save_bert(path)
    from atb.supernet.data import tokenizer_dir

    shutil.copyfile(tokenizer_dir() / "vocab.txt", path / "vocab.txt")
    return path, model


def _batch():
    ids = torch.randint(1000, 30000, (3, 12), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 3:] = 0
    return ids, mask


def test_load_bert_and_bert_for_masked_lm(tiny_bert, tmp_path):
    path, _ = tiny_bert
    loaded = load_pretrained(path)
    assert loaded.super_arch == TINY_ARCH and loaded.max_positions == 128
    assert loaded.super_arch.head_size == 32 and loaded.has_pooler
    _save_bert(tmp_path, "BertForMaskedLM")  # "bert." prefix, no pooler, an MLM head
    mlm = load_pretrained(tmp_path)
    assert mlm.super_arch == TINY_ARCH and not mlm.has_pooler
    assert not any(k.startswith(("bert.", "cls.")) for k in mlm.weights)


def test_load_bundled_minilm():
    loaded = load_pretrained("minilm")
    assert str(loaded.super_arch) == "6-384-1536-12-384" and loaded.super_arch.head_size == 32
    assert loaded.tokenizer_dir is not None and (loaded.tokenizer_dir / "vocab.txt").is_file()


def test_space_takes_the_head_size_from_the_checkpoint():
    space = SearchSpace("pretrain", Arch.parse("6-384-1536-12-384"))
    assert space.ranges["dqkv"].describe() == "32..384 step 32"
    assert space.contains(Arch.parse("3-256-512-5-160"))
    assert not space.contains(Arch.parse("3-256-512-5-320"))  # 64-dim heads are not this space's
    assert (space.sample_array(__import__("numpy").random.default_rng(0), 50)[:, 4]
            == 32 * space.sample_array(__import__("numpy").random.default_rng(0), 50)[:, 3]).all()


@pytest.mark.parametrize("strategy", ["pretrain", "kd"])
@pytest.mark.parametrize("method", ["activation", "weight"])
def test_reordering_preserves_the_full_model(tiny_bert, strategy, method):
    path, bert = tiny_bert
    ids, mask = _batch()
    space = SearchSpace(strategy, TINY_ARCH)
    supernet, reordering = reordered_supernet(load_pretrained(path), space,
                                              [{"input_ids": ids, "attention_mask": mask}], method)
    with torch.no_grad():
        expected = bert(input_ids=ids, attention_mask=mask).last_hidden_state
        hidden, _ = supernet(ids, mask)
    keep = mask.bool()
    order = reordering.hidden_order
    assert not torch.equal(order, torch.arange(160))  # something really moved
    assert (hidden - expected[..., order])[keep].abs().max() <= 1e-4
    for name in ("head_order", "ffn_order", "qk_dim_order", "v_dim_order"):
        assert not torch.equal(getattr(reordering, name), getattr(reordering, name).sort(-1).values)


def test_reordering_puts_important_units_first(tiny_bert):
    path, _ = tiny_bert
    ids, mask = _batch()
    pretrained = load_pretrained(path)
    space = SearchSpace("pretrain", TINY_ARCH)
    supernet, _ = reordered_supernet(pretrained, space, [{"input_ids": ids, "attention_mask": mask}])
    rescored = score_units(supernet, [{"input_ids": ids, "attention_mask": mask}])
    for scores in (rescored.head_scores, rescored.ffn_scores, rescored.hidden_scores):
        assert (scores[..., :-1] >= scores[..., 1:] - 1e-6).all()  # now in decreasing order
    apply_reordering(supernet, rescored)  # reordering a sorted model changes nothing


def _train(ws, init, steps: int, space: str = "pretrain", resume: bool = False):
    from atb.supernet.config import TrainConfig, TrainTarget
    from atb.supernet.train import train_supernet

    config = TrainConfig(steps=steps, init=str(init), batch_size=4, seq_len=32, samples=2,
                         log_every=1, calibration=8)
    return train_supernet(ws, config, TrainTarget(space=space), resume=resume)


def test_init_trains_saves_and_resumes(data_ws, tiny_bert, tmp_path):
    path, _ = tiny_bert
    shutil.copytree(data_ws / "data", tmp_path / "data")
    zero = _train(tmp_path, path, steps=0)
    ckpt_dir = tmp_path / "supernet" / f"init-{path.name}-pretrain"
    assert zero["checkpoint"] == str(ckpt_dir) and zero["objective"] == "self-kd"
    for name in (ckpt.TEACHER, ckpt.IMPORTANCE, "tokenizer/vocab.txt"):
        assert (ckpt_dir / name).exists()
    trainable, state = ckpt.load_trainable(ckpt_dir)
    assert state["init"]["name"] == path.name and state["step"] == 0
    assert state["config"]["sampling"] == "sandwich"  # the --init default
    # at 0 steps the supernet *is* the teacher, and the full model's loss is zero
    from atb.supernet.heldout_loss import FitnessEvaluator

    evaluator = FitnessEvaluator.from_checkpoint(ckpt_dir, tmp_path, eval_sequences=4)
    assert evaluator.evaluate(TINY_ARCH)["loss"] < 1e-8
    assert evaluator.evaluate(Arch(1, 128, 128, 2, 64))["loss"] > 1e-4
    _train(tmp_path, path, steps=2)  # a fresh run replaces the 0-step checkpoint
    two = _train(tmp_path, path, steps=3, resume=True)
    assert two["step"] == 3 and two["steps_run"] == 1
    assert torch.isfinite(torch.tensor(two["loss"]))


def test_init_minilm_reproduces_the_checkpoint(data_ws, tmp_path):
    from transformers import BertModel

    from atb.supernet.data import tokenizer_dir

    shutil.copytree(data_ws / "data", tmp_path / "data")
    summary = _train(tmp_path, "minilm", steps=0, space="kd")
    trainable, _ = ckpt.load_trainable(summary["checkpoint"])
    order = ckpt.read_extras(summary["checkpoint"], [ckpt.IMPORTANCE])[ckpt.IMPORTANCE]["hidden_order"]
    bert = BertModel.from_pretrained(str(tokenizer_dir()), local_files_only=True).eval()
    ids, mask = _batch()
    with torch.no_grad():
        expected = bert(input_ids=ids, attention_mask=mask).last_hidden_state
        hidden, _ = trainable["supernet"](ids, mask)
    assert (hidden - expected[..., order])[mask.bool()].abs().max() <= 1e-4


@pytest.mark.parametrize("arch", ["2-128-128-3-96", "1-160-192-5-160"])
def test_extracted_init_submodel_loads_in_transformers(data_ws, tiny_bert, tmp_path, arch):
    import transformers

    import atb.modeling  # noqa: F401  (registers atb-bert)
    from atb.supernet.extract import extract

    path, _ = tiny_bert
    shutil.copytree(data_ws / "data", tmp_path / "data")
    summary = _train(tmp_path, path, steps=1)
    out = extract(tmp_path, arch, tmp_path / "model")
    assert summary["objective"] == "self-kd" and out["init"] == path.name
    assert (tmp_path / "model" / "vocab.txt").read_bytes() == (path / "vocab.txt").read_bytes()
    model = transformers.AutoModel.from_pretrained(tmp_path / "model").eval()
    trainable, _ = ckpt.load_trainable(summary["checkpoint"])
    ids, mask = _batch()
    with torch.no_grad():
        sliced, _ = trainable["supernet"](ids, mask, arch=Arch.parse(arch))
        loaded = model(input_ids=ids, attention_mask=mask).last_hidden_state
    assert (sliced - loaded)[mask.bool()].abs().max() <= 1e-5


def _corrupt(path):
    (path / "model.safetensors").write_bytes(b"not a safetensors file at all")


@pytest.mark.parametrize("make, needle", [
    (lambda p: None, "no such checkpoint"),
    (lambda p: (p.mkdir(), (p / "config.json").write_text(json.dumps({"model_type": "gpt2"}))),
     "not BERT"),
    (lambda p: _save_bert(p) and
     (p / "config.json").write_text(json.dumps({**json.loads((p / "config.json").read_text()),
                                                "num_attention_heads": 6})), "do not divide"),
    (lambda p: (_save_bert(p), _corrupt(p)), "corrupt"),
    (lambda p: (p.mkdir(), (p / "config.json").write_text(json.dumps({**TINY_BERT, "model_type": "bert"}))),
     "no weights"),
])
def test_bad_init_is_one_line_and_exit_2(data_ws, tmp_path, capsys, make, needle):
    bad = tmp_path / "ckpt"
    make(bad)
    code = main(["train", "--workspace", str(data_ws), "--init", str(bad), "--steps", "0"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and needle in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("argv, needle", [
    (["--init", "minilm", "--super", "small"], "exclude each other"),
    (["--init", "minilm", "--objective", "mlm"], "only without --init"),
    (["--steps", "0"], "steps>=1"),
    (["--init", "minilm", "--calibration", "0"], "calibration"),
])
def test_bad_init_options(data_ws, capsys, argv, needle):
    code = main(["train", "--workspace", str(data_ws), *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and needle in err and len(err.splitlines()) == 1


def test_load_errors_are_atb_errors(tmp_path):
    with pytest.raises(MissingInputError):
        load_pretrained(tmp_path / "nowhere")
    _save_bert(tmp_path)
    _corrupt(tmp_path)
    with pytest.raises(SupernetError):
        load_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**TINY_BERT, "model_type": "bert",
                                                      "hidden_act": "relu"}))
    with pytest.raises(UsageError):
        load_pretrained(tmp_path)


@pytest.mark.parametrize("init", [True, False])
def test_extracted_trainable_continues_where_the_supernet_is(data_ws, tiny_bert, tmp_path, init):
    """A sub-model cut out as its own checkpoint scores exactly as inside the supernet, and
    trains further from there (the claim benchmark's equal distillation budget)."""
    from atb.supernet.heldout_loss import FitnessEvaluator
    from atb.supernet.config import TrainConfig, TrainTarget
    from atb.supernet.extract import extract_trainable
    from atb.supernet.train import train_supernet

    path, _ = tiny_bert
    shutil.copytree(data_ws / "data", tmp_path / "data")
    opts = dict(batch_size=4, seq_len=32, samples=2, log_every=1)
    if init:
        summary = _train(tmp_path, path, steps=2)
    else:
        summary = train_supernet(tmp_path, TrainConfig(steps=2, **opts), TrainTarget(TINY_ARCH))
    # the paper's uniform sampling from scratch, sandwich with --init (the full model is trained)
    assert ckpt.read_state(summary["checkpoint"])["config"]["sampling"] == ("sandwich" if init else "uniform")
    arch = Arch.parse("1-128-128-2-64")
    alone_dir = extract_trainable(summary["checkpoint"], arch, tmp_path / "alone")
    inside = FitnessEvaluator.from_checkpoint(summary["checkpoint"], tmp_path, eval_sequences=4)
    alone = FitnessEvaluator.from_checkpoint(alone_dir, tmp_path, eval_sequences=4)
    assert abs(inside.evaluate(arch)["loss"] - alone.evaluate(arch)["loss"]) <= 1e-5
    more = train_supernet(tmp_path, TrainConfig(steps=2, init=str(path) if init else None, **opts),
                          TrainTarget(None if init else TINY_ARCH, fixed_arch=arch, out_dir=alone_dir),
                          resume=True)
    assert more["step"] == 2 and more["steps_run"] == 2


def test_fidelity_counts_every_teacher_channel(data_ws, tiny_bert, tmp_path):
    """At 0 steps the full model is the teacher (R² = 1); a narrower slice explains less of
    the teacher's states, though its own leading channels may match just as well."""
    from atb.supernet.heldout_loss import FitnessEvaluator
    from atb.supernet.fidelity import FidelityFitness

    path, _ = tiny_bert
    shutil.copytree(data_ws / "data", tmp_path / "data")
    zero = _train(tmp_path, path, steps=0)
    evaluator = FitnessEvaluator.from_checkpoint(zero["checkpoint"], tmp_path, eval_sequences=8)
    fidelity = FidelityFitness(evaluator)
    full, narrow = fidelity.fitness([TINY_ARCH, Arch(TINY_ARCH.lt, 128, TINY_ARCH.df,
                                                     TINY_ARCH.h, TINY_ARCH.dqkv)])
    assert full > 0.99 and narrow < full - 0.01


def test_fidelity_needs_a_teacher(trained_ws):
    from atb.errors import UsageError
    from atb.supernet.heldout_loss import FitnessEvaluator
    from atb.supernet.fidelity import FidelityFitness

    with pytest.raises(UsageError, match="teacher"):
        FidelityFitness(FitnessEvaluator.from_workspace(trained_ws, eval_sequences=4))


def test_ridge_r2_on_known_data():
    import numpy as np

    from atb.supernet.fidelity import ridge_r2

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 8))
    y = x @ rng.normal(size=(8, 5))
    assert ridge_r2(x[:200], y[:200], x[200:], y[200:], ridge=1e-6) > 0.9999
    noise = rng.normal(size=(400, 5))
    assert abs(ridge_r2(x[:200], noise[:200], x[200:], noise[200:])) < 0.1
