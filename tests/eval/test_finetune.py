import dataclasses

import pytest
from transformers import AutoModelForSequenceClassification

from atb.errors import UsageError
from atb.eval import FinetuneConfig, evaluate

FAST = FinetuneConfig(epochs=5, lr=5e-3, batch_size=16, patience=5)


@pytest.mark.parametrize("model, pooling", [("bert_dir", None), ("atb_dir", None),
                                            ("bert_dir", "cls")])
def test_finetune_beats_the_majority_and_repeats(model, pooling, keyword_csv, request):
    config = dataclasses.replace(FAST, pooling=pooling)
    result = evaluate(request.getfixturevalue(model), keyword_csv, method="finetune", seeds=[0, 0],
                      finetune_config=config, threads=1)
    assert result["pooling"] == (pooling or "mean")
    first, again = result["seeds"]
    assert first == again  # same head init, dropout and batch order
    assert result["accuracy"] > result["majority_accuracy"] + 0.15
    assert 1 <= first["best_epoch"] <= first["epochs_run"] <= FAST.epochs
    assert result["config"]["lr"] == FAST.lr


def test_saved_classifier_loads_with_its_labels(atb_dir, keyword_csv, tmp_path):
    import atb.modeling  # noqa: F401

    out = tmp_path / "classifier"
    result = evaluate(atb_dir, keyword_csv, method="finetune", seeds=1, finetune_config=FAST,
                      save_dir=out, threads=1)
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
