import json

import numpy as np
import pytest

from atb.errors import EvalError, MissingInputError
from atb.eval import TaskFiles, load_task
from atb.eval.tasks import stratified_split
from tests.eval.conftest import keyword_rows, write_csv


def _sizes(task):
    return len(task.train), len(task.validation), len(task.test)


def test_csv_string_labels_and_default_split(keyword_csv):
    task = load_task(keyword_csv)
    assert task.label_names == ["fruit", "stone", "water"]  # sorted names, kept
    assert sum(_sizes(task)) == 300
    assert _sizes(task) == pytest.approx((210, 30, 60), abs=3)  # 70/10/20, stratified
    assert task.train.pairs is None and task.train.labels.dtype == np.int64
    assert load_task(keyword_csv).test.texts == task.test.texts  # deterministic
    assert load_task(keyword_csv, TaskFiles(split_seed=1)).test.texts != task.test.texts


def test_stratified_split_keeps_class_shares():
    labels = np.array([0] * 80 + [1] * 20)
    parts = stratified_split(labels, {"validation": 0.1, "test": 0.2}, seed=0)
    assert [int(np.sum(labels[parts["test"]] == c)) for c in (0, 1)] == [16, 4]
    assert [int(np.sum(labels[parts["validation"]] == c)) for c in (0, 1)] == [8, 2]
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(100))


def test_glue_tsv_sentence_column_with_quotes(tmp_path):
    path = tmp_path / "train.tsv"  # GLUE TSVs quote nothing, and sentences hold bare quotes
    lines = [f'" {w} , it \'s a "{w}" film\t{i % 2}' for i, w in enumerate(["good", "bad"] * 20)]
    path.write_text("sentence\tlabel\n" + "\n".join(lines) + "\n")
    task = load_task(path)
    assert task.source["text_column"] == "sentence"
    assert task.label_names == ["0", "1"]
    texts = task.train.texts + task.validation.texts + task.test.texts
    assert '" good , it \'s a "good" film' in texts


def test_jsonl_pairs_with_int_labels_sorted_numerically(tmp_path):
    path = tmp_path / "pairs.jsonl"
    lines = [json.dumps({"a": f"first {i}", "b": f"second {i}", "y": [10, 2, 3][i % 3]})
             for i in range(60)]
    path.write_text("\n".join(lines) + "\n\n")
    task = load_task(path, TaskFiles(text_column="a", text_pair_column="b", label_column="y"))
    assert task.label_names == ["2", "3", "10"]
    assert task.is_pair_task
    i = task.train.texts.index("first 0")
    assert task.train.pairs[i] == "second 0" and task.label_names[task.train.labels[i]] == "10"


def test_glue_pair_columns_are_recognised(tmp_path):
    path = tmp_path / "mrpc.tsv"
    write_csv(path, [{"sentence1": f"a {i}", "sentence2": f"b {i}", "label": i % 2}
                     for i in range(40)], delimiter="\t")
    task = load_task(path)
    columns = task.source["text_column"], task.source["text_pair_column"]
    assert columns == ("sentence1", "sentence2")


def test_validation_and_test_files(tmp_path):
    for name, seed in (("train", 0), ("dev", 1), ("test", 2)):
        write_csv(tmp_path / f"{name}.csv", keyword_rows(40, seed))
    task = load_task(tmp_path / "train.csv", TaskFiles(validation=tmp_path / "dev.csv",
                                                       test=tmp_path / "test.csv"))
    assert _sizes(task) == (40, 40, 40)
    only_test = load_task(tmp_path / "train.csv", TaskFiles(test=tmp_path / "test.csv"))
    assert _sizes(only_test) == pytest.approx((36, 4, 40), abs=1)  # validation carved from train


def test_label_only_in_test_file_is_an_error(tmp_path):
    write_csv(tmp_path / "train.csv", keyword_rows(40))
    write_csv(tmp_path / "test.csv", [{"text": "x", "label": "unseen"}])
    with pytest.raises(EvalError, match="unseen"):
        load_task(tmp_path / "train.csv", TaskFiles(test=tmp_path / "test.csv"))


@pytest.mark.parametrize("content, message", [
    ("text,label\n", "no examples"),
    ("", "no examples"),
    ("words,label\nhello,a\nbye,b\n", "no column 'text'"),
    ("text,y\nhello,a\nbye,b\n", "no column 'label'"),
    ("text,label\n" + "hello,a\n" * 30, "one class only"),
    ("text,label\nhello,\nbye,b\n", "no value in column 'label'"),
    ("text,label\n" + "".join(f"t{i},{i / 7:.3f}\n" for i in range(60)), "continuous target"),
])
def test_bad_files(tmp_path, content, message):
    path = tmp_path / "task.csv"
    path.write_text(content)
    with pytest.raises(EvalError, match=message):
        load_task(path)


def test_missing_file_and_unknown_task(tmp_path):
    with pytest.raises(MissingInputError):
        load_task(tmp_path / "nope.csv")
    with pytest.raises(EvalError, match="unknown task"):
        load_task("sst-2")
