import dataclasses

import pytest
from transformers import AutoModelForSequenceClassification

from atb.errors import UsageError
from atb.eval import EvalConfig, FinetuneConfig, evaluate

FAST = FinetuneConfig(epochs=5, lr=5e-3, batch_size=16, patience=5)


@pytest.mark.parametrize("model, pooling", [("bert_dir", None), ("atb_dir", None),
                                            ("bert_dir", "cls")])
def test_finetune_beats_the_majority_and_repeats(model, pooling, keyword_csv, request):
    config = dataclasses.replace(FAST, pooling=pooling)
    result = evaluate(request.getfixturevalue(model), keyword_csv,
                      EvalConfig(method="finetune", seeds=[0, 0], finetune=config, threads=1))
    assert result["pooling"] == (pooling or "mean")
    first, again = result["seeds"]
    assert first == again  # same head init, dropout and batch order
    assert result["accuracy"] > result["majority_accuracy"] + 0.15
    assert 1 <= first["best_epoch"] <= first["epochs_run"] <= FAST.epochs
    assert result["config"]["lr"] == FAST.lr


def test_saved_classifier_loads_with_its_labels(atb_dir, keyword_csv, tmp_path):
    import atb.modeling  # noqa: F401

    out = tmp_path / "classifier"
    result = evaluate(atb_dir, keyword_csv, EvalConfig(method="finetune", seeds=1, finetune=FAST,
                                                       save_dir=out, threads=1))
    assert result["saved"] == str(out)
    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert type(model).__name__ == "AtbBertForSequenceClassification"
    assert model.config.id2label == {0: "fruit", 1: "stone", 2: "water"}
    assert (out / "tokenizer.json").is_file()


@pytest.mark.parametrize("bad", [dict(epochs=0), dict(lr=0.0), dict(warmup_fraction=1.0),
                                 dict(pooling="max")])
def test_bad_config(bad):
    with pytest.raises(UsageError):
        FinetuneConfig(**bad)


def test_runs_side_by_side_learn_what_they_learn_one_after_another(bert_dir, keyword_csv,
                                                                   tmp_path):
    config = dataclasses.replace(FAST, epochs=2, lr=None, lr_grid=(1e-3, 5e-3))
    one = evaluate(bert_dir, keyword_csv, EvalConfig("finetune", seeds=2, finetune=config, threads=1))
    # two processes, one thread each: the same seeds give the same models
    side = evaluate(bert_dir, keyword_csv, EvalConfig("finetune", seeds=2, finetune=config,
                                                      threads=2, jobs=2, save_dir=tmp_path / "best"))
    assert side["lr"] == one["lr"] and side["seeds"] == one["seeds"]
    best = max(side["seeds"], key=lambda s: s["validation_accuracy"])
    saved = AutoModelForSequenceClassification.from_pretrained(tmp_path / "best")
    assert saved.config.num_labels == 3 and best["seed"] in (0, 1)


@pytest.mark.parametrize("runs, jobs, cores, threads", [
    (3, 2, 2, [1, 1, 2]),  # the third seed trains alone, on both cores
    (2, 2, 2, [1, 1]),
    (2, 4, 16, [8, 8]),    # never more processes than runs
    (5, 2, 4, [2, 2, 2, 2, 4]),
    (1, 1, 2, [2]),
])
def test_thread_counts_share_the_cores_among_the_runs_in_flight(runs, jobs, cores, threads):
    from atb.eval.runs import thread_counts

    assert thread_counts(runs, jobs, cores) == threads


def test_the_pick_runs_never_predict_the_test_split(bert_dir, keyword_csv, monkeypatch):
    from atb.eval import finetune as module

    calls = []
    real = module.train
    monkeypatch.setattr(module, "train",
                        lambda *a: calls.append(a[4].test) or real(*a))
    evaluate(bert_dir, keyword_csv, EvalConfig("finetune", seeds=1, threads=1, finetune=
             dataclasses.replace(FAST, epochs=1, lr=None, lr_grid=(1e-3, 5e-3))))
    assert calls == [False, False, True]
