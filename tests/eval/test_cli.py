import json

import pytest

from atb.eval.cli import main


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_probe_json_contract(bert_dir, keyword_csv, capsys):
    argv = ["--model", bert_dir, "--task", keyword_csv, "--seeds", 2, "--json"]
    code, out, _ = _run(argv, capsys)
    assert code == 0
    result = json.loads(out)  # exactly one JSON object on stdout
    assert {"task", "method", "model", "n_train", "n_validation", "n_test", "num_classes",
            "accuracy", "accuracy_std", "macro_f1", "majority_accuracy", "seeds",
            "seconds"} <= set(result)
    assert result["method"] == "probe" and len(result["seeds"]) == 2


def test_table_output(atb_dir, keyword_csv, capsys):
    code, out, _ = _run(["--model", atb_dir, "--task", keyword_csv, "--seeds", 1], capsys)
    assert code == 0
    assert "majority baseline (fruit)" in out and "test accuracy" in out and "wall time" in out


def test_list_tasks(capsys):
    code, out, _ = _run(["--list-tasks", "--json"], capsys)
    assert code == 0
    tasks = {t["name"]: t for t in json.loads(out)["tasks"]}
    assert set(tasks) == {"kjv-next", "kjv-genre", "mr"}
    genre, reading = tasks["kjv-genre"], tasks["kjv-next"]
    assert genre["num_classes"] == 8 and genre["n_test"] > 0
    assert reading["num_classes"] == 2 and reading["n_test"] > reading["n_validation"]
    assert all(t["tests"] and "majority" in t["reference"] for t in tasks.values())
    code, out, _ = _run(["--list-tasks"], capsys)
    assert code == 0 and "kjv-genre" in out and "kjv-next" in out and "tests: reading" in out


def _bad_csv(tmp_path, content):
    path = tmp_path / "task.csv"
    path.write_text(content)
    return path


@pytest.mark.parametrize("make_args, needle", [
    (lambda d, t: ["--task", _bad_csv(t, "words,label\nhi,a\nbye,b\n")], "no column 'text'"),
    (lambda d, t: ["--task", _bad_csv(t, "text,y\nhi,a\nbye,b\n")], "no column 'label'"),
    (lambda d, t: ["--task", _bad_csv(t, "text,label\n" + "hi,a\n" * 20)], "one class only"),
    (lambda d, t: ["--task", _bad_csv(t, "")], "no examples"),
    (lambda d, t: ["--task", t / "missing.csv"], "does not exist"),
    (lambda d, t: ["--task", "glue-sst2"], "unknown task"),
    (lambda d, t: ["--task", "kjv-genre", "--split-seed", 3], "built-in task"),
    (lambda d, t: ["--task", "kjv-genre", "--seeds", 0], "--seeds"),
    (lambda d, t: ["--task", "kjv-genre", "--epochs", 2], "only apply to --method finetune"),
    (lambda d, t: ["--task", "kjv-genre", "--pooling", "cls"], "only apply to --method finetune"),
    (lambda d, t: ["--task", "kjv-genre", "--jobs", 2], "only apply to --method finetune"),
    (lambda d, t: ["--task", "kjv-genre", "--method", "finetune", "--jobs", 0], "--jobs"),
    (lambda d, t: ["--task", "kjv-genre", "--threads", 0], "--threads"),
])
def test_bad_task_input_is_one_line_and_exit_2(bert_dir, tmp_path, capsys, make_args, needle):
    code, out, err = _run(["--model", bert_dir, *make_args(bert_dir, tmp_path)], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and needle in err


def _config_dir(tmp_path, config):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    return tmp_path / "m"


@pytest.mark.parametrize("model, needle", [
    (lambda t: t / "no-such-dir", "does not exist"),
    (lambda t: t, "no config.json"),
    (lambda t: _config_dir(t, {"model_type": "gpt2"}), "not a BERT-family encoder"),
    (lambda t: _config_dir(t, {"model_type": "bert"}), "has no weights"),
])
def test_bad_model_dir_is_one_line_and_exit_2(keyword_csv, tmp_path, capsys, model, needle):
    code, out, err = _run(["--model", model(tmp_path), "--task", keyword_csv], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and needle in err


def test_help_and_missing_arguments(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0 and "--list-tasks" in capsys.readouterr().out
    code, _, err = _run(["--task", "kjv-genre"], capsys)
    assert code == 2 and "--model" in err


def test_tokenizer_larger_than_the_vocabulary(tmp_path, keyword_csv, capsys):
    from atb.modeling import AtbBertConfig, AtbBertModel

    config = AtbBertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1,
                           num_attention_heads=2, intermediate_size=64)
    AtbBertModel(config).save_pretrained(tmp_path)
    code, _, err = _run(["--model", tmp_path, "--task", keyword_csv], capsys)
    assert code == 2 and "embeds 100" in err
