"""Offline data preparation: sources, split, shards, sequences, corruption."""

from __future__ import annotations

import json

import numpy as np
import pytest

from atb.errors import MissingInputError, SupernetError, UsageError
from atb.supernet.data import (CLS_ID, PAD_ID, SEP_ID, load_split, make_sequences, prepare_data,
                               read_documents)


def test_prepared_tiny_corpus(data_ws):
    manifest = json.loads((data_ws / "data" / "manifest.json").read_text())
    assert manifest["sources"][0]["documents"] == 40
    train, heldout = load_split(data_ws, "train"), load_split(data_ws, "heldout")
    assert train.tokens.dtype == np.int32 and heldout.tokens.size > 0
    assert len(train.offsets) + len(heldout.offsets) == 40


def test_sequences_are_padded_inside_documents(data_ws):
    ids, mask = make_sequences(load_split(data_ws, "train"), 48)
    assert ids.shape[1] == 48 and (ids[:, 0] == CLS_ID).all()
    lengths = mask.sum(1)
    assert (ids[np.arange(len(ids)), lengths - 1] == SEP_ID).all()
    assert (lengths < 48).any(), "document tails give padded rows"
    assert (ids[mask == 0] == PAD_ID).all()


def test_jsonl_and_txt_sources(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "first document here"}\n"second one"\n\n')
    (tmp_path / "b.txt").write_text("para one\nstill one\n\npara two\n")
    assert read_documents(tmp_path / "a.jsonl") == ["first document here", "second one"]
    assert read_documents(tmp_path / "b.txt") == ["para one\nstill one", "para two"]
    summary = prepare_data(tmp_path / "ws", texts=[tmp_path / "a.jsonl", tmp_path / "b.txt"])
    assert summary["heldout_documents"] >= 1 and summary["train_documents"] >= 1
    assert [s["source"] for s in summary["sources"]] == [str(tmp_path / "a.jsonl"), str(tmp_path / "b.txt")]


def test_bad_sources(tmp_path):
    with pytest.raises(MissingInputError):
        prepare_data(tmp_path / "ws", texts=[tmp_path / "nope.txt"])
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(UsageError, match="bad.jsonl:1"):
        prepare_data(tmp_path / "ws", texts=[tmp_path / "bad.jsonl"])
    with pytest.raises(MissingInputError) as err:
        load_split(tmp_path / "empty", "train")
    assert "atb-supernet data" in err.value.one_line()


def test_corrupt_shard_is_reported(tmp_path, corpus):
    prepare_data(tmp_path, texts=[corpus])
    shard = next((tmp_path / "data").glob("train-*.safetensors"))
    data = bytearray(shard.read_bytes())
    data[-10:] = b"0123456789"
    shard.write_bytes(bytes(data))
    with pytest.raises(SupernetError, match="corrupt"):
        load_split(tmp_path, "train")
