"""atb-eval compare and baselines, the learning-rate pick and the predictions file."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from atb.eval import EvalConfig, FinetuneConfig, load_task
from atb.eval.baselines import baselines
from atb.eval.cli import main
from atb.eval.compare import compare, read_predictions
from atb.eval.finetune import pick_lr
from atb.eval.encode import tokenize
from atb.eval.models import load_tokenizer
from atb.eval.tasks import SPLITS
from atb.stats import correctness

FAST = FinetuneConfig(epochs=3, batch_size=16, patience=2, lr_grid=(1e-3, 5e-3))


def test_a_model_compared_with_itself_shows_no_difference(bert_dir, keyword_csv):
    result = compare(bert_dir, bert_dir, keyword_csv, EvalConfig("probe", seeds=2))
    d = result["difference"]
    assert d["difference"] == 0 and d["ci_low"] <= 0 <= d["ci_high"]
    assert d["verdict"] == "no difference at this size"
    a, b = result["models"]
    assert (a["name"], b["name"]) == ("A", "B") and a["accuracy"] == b["accuracy"]
    assert a["accuracy_ci"][0] <= a["accuracy"] <= a["accuracy_ci"][1]
    assert result["predictions"]["A"].shape == (2, d["n_examples"])


def test_the_learning_rate_is_picked_on_validation_only(bert_dir, keyword_csv):
    task = load_task(keyword_csv)
    tokenizer = load_tokenizer(bert_dir)
    tokenized = {n: tokenize(task.split(n), tokenizer) for n in SPLITS}
    choice = pick_lr(bert_dir, tokenized, task, FAST)
    assert choice["lr"] in FAST.lr_grid and len(choice["grid"]) == 2
    assert choice["lr"] == max(choice["grid"], key=lambda g: g["validation_accuracy"])["lr"]
    scrambled = dataclasses.replace(task, test=dataclasses.replace(
        task.test, labels=np.random.default_rng(0).permutation(task.test.labels)))
    assert pick_lr(bert_dir, tokenized, scrambled, FAST) == choice
    given = pick_lr(bert_dir, tokenized, task, dataclasses.replace(FAST, lr=2e-3))
    assert given == {"lr": 2e-3, "chosen_by": "given", "grid": []}


def test_finetune_reports_its_lr_choice_and_an_interval(atb_dir, keyword_csv):
    from atb.eval import evaluate

    result = evaluate(atb_dir, keyword_csv, EvalConfig("finetune", seeds=2, finetune=FAST, threads=1))
    assert result["lr"]["lr"] in FAST.lr_grid and result["lr"]["chosen_by"].startswith("valid")
    assert {s["lr"] for s in result["seeds"]} == {result["lr"]["lr"]}
    low, high = result["accuracy_ci"]
    assert low <= result["accuracy"] <= high
    assert "predictions" not in result


def test_predictions_file_recomputes_the_accuracy(bert_dir, keyword_csv, tmp_path, capsys):
    out = tmp_path / "preds" / "p.jsonl"
    rc = main(["--model", str(bert_dir), "--task", str(keyword_csv), "--seeds", "2",
               "--predictions", str(out), "--json"])
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    labels, *rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(r["model"], r["seed"], r["split"]) for r in rows] == [("model", 0, "test"),
                                                                    ("model", 1, "test")]
    assert len(labels["labels"]) == result["n_test"]  # one class digit per test example
    per_seed = [np.mean([p == y for p, y in zip(r["predicted"], labels["labels"])]) for r in rows]
    assert [s["accuracy"] for s in result["seeds"]] == pytest.approx(per_seed)
    read = read_predictions(out)  # what a later paired interval starts from
    assert read["predictions"]["model"].shape == (2, result["n_test"])
    assert correctness(read["predictions"]["model"], read["test_labels"]).mean(axis=1) \
        == pytest.approx(per_seed)


def test_a_file_that_is_not_a_predictions_file_is_one_line(tmp_path):
    from atb.errors import AtbError

    (tmp_path / "x.jsonl").write_text("not json\n")
    for path in (tmp_path / "x.jsonl", tmp_path / "missing.jsonl"):
        with pytest.raises(AtbError):
            read_predictions(path)


def test_compare_cli_prints_the_verdict(bert_dir, atb_dir, keyword_csv, tmp_path, capsys):
    out = tmp_path / "pairs.jsonl"
    rc = main(["compare", "--model", str(bert_dir), "--model", str(atb_dir), "--task",
               str(keyword_csv), "--method", "probe", "--seeds", "1", "--predictions", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "A - B:" in text and "95% CI" in text
    read = read_predictions(out)
    assert set(read["models"]) == {"A", "B"} and read["models"]["B"]["model"] == str(atb_dir)


def test_baselines_state_majority_bag_of_words_and_random_init(keyword_csv):
    from atb.arch import Arch

    task = load_task(keyword_csv)
    result = baselines(task, Arch(1, 32, 64, 2, 32), EvalConfig("probe", seeds=1, threads=1))
    rows = {r["name"]: r for r in result["baselines"]}
    assert set(rows) == {"majority", "bag of words", "random-init encoder 1-32-64-2-32"}
    assert rows["majority"]["accuracy"] == pytest.approx(
        float(np.mean(task.test.labels == np.bincount(task.train.labels).argmax())))
    assert rows["bag of words"]["accuracy"] > rows["majority"]["accuracy"] + 0.3  # keywords
    for r in rows.values():
        assert r["accuracy_ci"][0] <= r["accuracy"] <= r["accuracy_ci"][1]


def test_a_predictions_file_of_the_first_format_still_reads(tmp_path):
    # the first lines of data/teacher-kjv-next-predictions.jsonl
    (tmp_path / "old.jsonl").write_text(
        '{"task": "kjv-next", "method": "finetune", "models": {"model": {"model": "M", '
        '"seeds": [0, 1, 2]}}}\n'
        '{"index": 0, "label": 0, "predicted": {"model": [0, 0, 0]}}\n'
        '{"index": 1, "label": 0, "predicted": {"model": [0, 1, 0]}}\n')
    read = read_predictions(tmp_path / "old.jsonl")
    assert read["task"] == "kjv-next" and read["models"] == {"model": {"model": "M",
                                                                        "seeds": [0, 1, 2]}}
    assert read["test_labels"].tolist() == [0, 0]
    assert read["predictions"]["model"].tolist() == [[0, 0], [0, 1], [0, 0]]
