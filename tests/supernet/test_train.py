"""Algorithm 1: two gloo processes equal one process accumulating; resume; reproducibility."""

from __future__ import annotations

import os
import socket

import pytest
import torch

from atb.supernet.config import TrainConfig, TrainTarget
from atb.supernet.train import train_supernet


def _weights(path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def _assert_same(a: dict, b: dict, atol: float = 0.0) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=atol, rtol=0), k


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, ws: str, out: str, port: int, space, opts: dict) -> None:
    import torch.distributed as dist

    os.environ.update(RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    try:
        train_supernet(ws, TrainConfig(steps=2, workers=2, **opts),
                       TrainTarget(space=space, out_dir=out))
    finally:
        dist.destroy_process_group()


def test_two_gloo_workers_equal_single_process_accumulation(data_ws, tiny_spaces, train_opts, tmp_path):
    import torch.multiprocessing as mp

    args = (str(data_ws), str(tmp_path / "ddp"), _free_port(), tiny_spaces["pretrain"], train_opts)
    mp.spawn(_worker, args=args, nprocs=2, join=True)
    train_supernet(data_ws, TrainConfig(steps=2, workers=2, **train_opts),
                   TrainTarget(space=tiny_spaces["pretrain"], out_dir=tmp_path / "one"))
    # the same sub-batches, sub-models and masks; only the order of the gradient sums differs
    # (~1e-9), which Adam's normalisation can blow up to ~1e-6 where a gradient is near zero:
    # far below one update (lr 5e-4), far above what a wrong average would leave
    _assert_same(_weights(tmp_path / "ddp"), _weights(tmp_path / "one"), atol=2e-5)


def test_resume_continues_exactly(data_ws, tiny_spaces, train_opts, tmp_path):
    space = tiny_spaces["kd"]
    config = TrainConfig(steps=3, **train_opts)
    straight = train_supernet(data_ws, config, TrainTarget(space=space, out_dir=tmp_path / "a"))
    cut = train_supernet(data_ws, config, TrainTarget(space=space, out_dir=tmp_path / "b"),
                         stop_at=2)
    assert cut["step"] == 2
    resumed = train_supernet(data_ws, config, TrainTarget(space=space, out_dir=tmp_path / "b"),
                             resume=True)
    assert resumed["step"] == 3 and resumed["steps_run"] == 1
    _assert_same(_weights(tmp_path / "a"), _weights(tmp_path / "b"))
    assert straight["loss"] == resumed["loss"]


def test_checkpoint_records_run(trained_ws, tiny_spaces):
    from atb.supernet.checkpoint import find_checkpoint, read_state

    state = read_state(find_checkpoint(trained_ws / "supernet"))
    assert state["super_arch"] == str(tiny_spaces["pretrain"].super_arch) and state["space"] == "pretrain"
    assert state["step"] == 3 and state["config"]["seed"] == 0 and len(state["history"]) == 3
    assert (find_checkpoint(trained_ws / "supernet") / "optimizer.safetensors").is_file()


def test_bad_training_options(data_ws, tiny_spaces, train_opts, tmp_path):
    from atb.errors import MissingInputError, UsageError

    with pytest.raises(UsageError):
        train_supernet(data_ws, TrainConfig(steps=1, batch_size=1, workers=2),
                       TrainTarget(space=tiny_spaces["pretrain"]))
    with pytest.raises(MissingInputError, match="nothing to resume"):
        train_supernet(data_ws, TrainConfig(steps=1),
                       TrainTarget(space=tiny_spaces["pretrain"], out_dir=tmp_path / "none"),
                       resume=True)


def test_sandwich_sampling_trains_the_extremes_every_step(tiny_spaces):
    from atb.supernet.train import _Schedule

    space = tiny_spaces["kd"]
    sandwich = _Schedule(100, TrainConfig(samples=4, sampling="sandwich"), space, None)
    for step in range(5):
        archs = sandwich.archs(step, worker=0)
        assert archs[:2] == [space.super_arch, space.smallest] and len(archs) == 4
        assert all(space.contains(a) for a in archs[2:])
        assert archs == sandwich.archs(step, worker=0)  # a pure function of (seed, step, worker)
    assert TrainConfig().sampling is None  # resolved by train_supernet (test_pretrained.py)


def test_sandwich_needs_two_samples(data_ws, tiny_spaces):
    from atb.errors import UsageError

    with pytest.raises(UsageError, match="sandwich needs samples >= 2"):
        train_supernet(data_ws, TrainConfig(steps=1, samples=1, sampling="sandwich"),
                       TrainTarget(space=tiny_spaces["pretrain"]))
    with pytest.raises(UsageError, match="sampling must be one of"):
        train_supernet(data_ws, TrainConfig(steps=1, sampling="random"),
                       TrainTarget(space=tiny_spaces["pretrain"]))


def test_depth_is_saved_reloaded_and_checked_on_resume(data_ws, tiny_spaces, train_opts, tmp_path,
                                                       caplog):
    import json
    import logging

    from atb.supernet.checkpoint import load_trainable

    path = tmp_path / "spread"
    target = TrainTarget(space=tiny_spaces["pretrain"], out_dir=path)
    train_supernet(data_ws, TrainConfig(steps=2, depth="spread", **train_opts), target, stop_at=1)
    trainable, state = load_trainable(path)
    assert trainable["supernet"].depth == "spread" and state["config"]["depth"] == "spread"
    with caplog.at_level(logging.WARNING, logger="atb.supernet.train"):
        train_supernet(data_ws, TrainConfig(steps=2, **train_opts), target,
                       resume=True)  # depth left at "first": allowed, but said
    assert "changed options" in caplog.text and "'depth': ('spread', 'first')" in caplog.text
    old = json.loads((path / "state.json").read_text())
    del old["config"]["depth"]  # a checkpoint from before the option
    (path / "state.json").write_text(json.dumps(old))
    assert load_trainable(path)[0]["supernet"].depth == "first"


def test_unknown_depth_is_refused(data_ws, tiny_spaces):
    from atb.errors import UsageError

    with pytest.raises(UsageError, match="depth must be one of first, spread"):
        train_supernet(data_ws, TrainConfig(steps=1, depth="last"),
                       TrainTarget(space=tiny_spaces["pretrain"]))
