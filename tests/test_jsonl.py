"""The append-only log survives a writer killed mid-line, and an atomic write never leaves half a
file."""

from __future__ import annotations

import json
import logging

import pytest

from atb import jsonl
from atb.errors import UsageError


def test_appended_records_read_back_in_order(tmp_path):
    path = tmp_path / "log.jsonl"
    assert jsonl.read_log(path) == []  # no file yet: an empty log
    records = [{"arch": "1-128-256-2-128", "fitness": 0.5}, {"arch": "2-64-128-2-64", "seed": 3}]
    for record in records:
        jsonl.append(path, record)
    jsonl.append(path, {"last": True}, fsync=True)
    assert jsonl.read_log(path) == [*records, {"last": True}]
    assert path.read_text().count("\n") == 3


def test_a_torn_last_line_is_skipped_with_a_warning(tmp_path, caplog):
    path = tmp_path / "log.jsonl"
    jsonl.append(path, {"a": 1})
    with path.open("ab") as f:
        f.write(b'{"a": 2, "b": [1, 2')  # what kill -9 in the middle of a write leaves
    with caplog.at_level(logging.WARNING, logger="atb.jsonl"):
        assert jsonl.read_log(path) == [{"a": 1}]
    assert "log.jsonl:2" in caplog.text and "damaged last line" in caplog.text


def test_the_next_append_cuts_a_torn_line_off(tmp_path, caplog):
    path = tmp_path / "log.jsonl"
    jsonl.append(path, {"a": 1})
    with path.open("ab") as f:
        f.write(b'{"a": 2, "b": "\xc3')  # cut inside a UTF-8 character, too
    with caplog.at_level(logging.WARNING, logger="atb.jsonl"):
        jsonl.append(path, {"a": 3})
    assert "torn last line" in caplog.text
    assert jsonl.read_log(path) == [{"a": 1}, {"a": 3}]


def test_a_whole_last_record_without_its_newline_is_kept(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}')  # e.g. written by hand
    jsonl.append(path, {"a": 3})
    assert jsonl.read_log(path) == [{"a": 1}, {"a": 2}, {"a": 3}]


def test_a_damaged_middle_line_is_an_error_naming_file_and_line(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"a": 1}\n\n{"a": \n{"a": 3}\n')
    with pytest.raises(UsageError, match=r"log\.jsonl:3"):
        jsonl.read_log(path)


def test_csv_rows_append_as_they_are_written(tmp_path):
    path = tmp_path / "rows.csv"
    jsonl.append_text(path, "1,2\r\n", header="a,b\r\n")  # the header: only into an empty file
    path.write_bytes(path.read_bytes() + b"3,")  # a torn row: never whole for CSV
    jsonl.append_text(path, "4,5\r\n", header="a,b\r\n")
    assert path.read_bytes() == b"a,b\r\n1,2\r\n4,5\r\n"


def test_an_atomic_write_replaces_the_whole_file(tmp_path):
    path = tmp_path / "report.json"
    path.write_text("old")
    jsonl.write_atomic(path, json.dumps({"new": 1}))
    assert json.loads(path.read_text()) == {"new": 1}
    jsonl.write_atomic(path, b"bytes", fsync=True)
    assert path.read_bytes() == b"bytes"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary left


def test_a_failed_atomic_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "checkpoint.json"
    path.write_text("the old checkpoint")
    with pytest.raises(RuntimeError, match="crash"):
        with jsonl.atomic_path(path) as tmp:
            tmp.write_text("half of the new")
            raise RuntimeError("crash while writing")
    assert path.read_text() == "the old checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.json"]
    with pytest.raises(TypeError):
        jsonl.write_atomic(path, {"not": "text"})
    assert path.read_text() == "the old checkpoint"
