"""Shared fixtures: a tiny corpus, a tiny supernet space and one short training run.

Everything is sized for a 2-core machine: super-architectures of 2 layers and 160 wide, a
corpus of forty chapters, training runs of a few steps.
"""

from __future__ import annotations

import pytest

from atb.arch import Arch, SearchSpace

TINY_SUPER = Arch(2, 160, 192, 2, 128)  # pretrain: head size 64; kd: 2 heads of 15..64 dims
TRAIN_OPTS = dict(batch_size=4, seq_len=32, samples=2, log_every=1)


@pytest.fixture(scope="session")
def train_opts() -> dict:
    return dict(TRAIN_OPTS)


@pytest.fixture(scope="session")
def tiny_spaces() -> dict[str, SearchSpace]:
    return {s: SearchSpace(s, TINY_SUPER) for s in ("pretrain", "kd")}


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """A .txt file of 40 King James chapters (blank-line separated documents)."""
    from atb.supernet.data import kjv_documents

    path = tmp_path_factory.mktemp("corpus") / "tiny.txt"
    path.write_text("\n\n".join(d[:1500] for d in kjv_documents()[:40]), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def data_ws(tmp_path_factory, corpus):
    """A workspace with data prepared from the tiny corpus (shared, read-only for tests)."""
    from atb.supernet.data import prepare_data

    ws = tmp_path_factory.mktemp("ws")
    prepare_data(ws, texts=[corpus], heldout_fraction=0.1)
    return ws


@pytest.fixture(scope="session")
def trained_ws(data_ws, tiny_spaces):
    """``data_ws`` plus a 3-step pretrain checkpoint of the tiny supernet."""
    from atb.supernet.config import TrainConfig, TrainTarget
    from atb.supernet.train import train_supernet

    train_supernet(data_ws, TrainConfig(steps=3, **TRAIN_OPTS), TrainTarget(space=tiny_spaces["pretrain"]))
    return data_ws
