"""Screening (a short fine-tuning run on the validation split): it learns, it repeats, and it
never looks at the test split."""

import dataclasses

import numpy as np
import pytest

from atb.errors import UsageError
from atb.eval import load_task
from atb.eval.models import load_tokenizer
from atb.eval.screen import Screen, ScreenConfig

FAST = ScreenConfig(steps=60, lr=5e-3, batch_size=16)


def test_screen_learns_repeats_and_ignores_the_test_split(bert_dir, keyword_csv):
    task = load_task(keyword_csv)
    tokenizer = load_tokenizer(bert_dir)
    first = Screen(task, tokenizer, FAST)(bert_dir)
    majority = np.bincount(task.validation.labels).max() / len(task.validation)
    assert first["validation_accuracy"] > majority + 0.15
    assert first["correct"].shape == (len(task.validation),)
    assert first["validation_accuracy"] == pytest.approx(first["correct"].mean())
    scrambled = dataclasses.replace(task, test=dataclasses.replace(
        task.test, labels=np.roll(task.test.labels, 1)))
    again = Screen(scrambled, tokenizer, FAST)(bert_dir)
    assert again["validation_loss"] == first["validation_loss"]  # same head, batches, dropout
    assert (again["correct"] == first["correct"]).all()


@pytest.mark.parametrize("bad", [dict(steps=0), dict(lr=0.0), dict(batch_size=0)])
def test_bad_screen_config(bad):
    with pytest.raises(UsageError):
        ScreenConfig(**bad)


def test_probe_reports_which_validation_examples_it_got_right(bert_dir, keyword_csv):
    """The probe re-ranker pairs two archs on validation examples, so the fit must say which."""
    from atb.eval import Probe
    from atb.eval.models import load_encoder
    from atb.eval.probe import fit_probe

    task = load_task(keyword_csv)
    probe = Probe(task, load_tokenizer(bert_dir))
    fit = fit_probe(probe.features(load_encoder(bert_dir)), task, seed=0)
    assert fit["validation_correct"].shape == (len(task.validation),)
    assert fit["validation_correct"].mean() == pytest.approx(fit["validation_accuracy"])
    assert "validation_correct" not in probe(load_encoder(bert_dir))["seeds"][0]  # JSON-safe
