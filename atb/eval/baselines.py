"""What a task gives away without reading: the floors every encoder's score is read against.

* ``majority``: always the most frequent training class;
* ``bag of words``: TF-IDF of word uni- and bigrams + logistic regression, ``C`` picked on the
  validation split; for a pair task over the joined pair (the sum of the two texts' vectors:
  the pair's bag, blind to which text comes first), and ``bag of words, side by side`` over the
  two texts' vectors concatenated (which can see in which text a word stands, not how the
  texts connect);
* ``random-init encoder``: an encoder of a given arch with random weights, evaluated with the
  same method as the models (what the architecture learns from the task alone, so a model's
  margin over it is what pre-training or distillation gave).

Each gets a 95% interval (bootstrap over test examples and, for the encoder, seeds).
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np

from atb.eval.metrics import majority_baseline, scores
from atb.stats import accuracy_interval, correctness
from atb.eval.tasks import Task

log = logging.getLogger("atb.eval.baselines")

C_GRID = (0.1, 1.0, 10.0, 100.0)


def _fit_linear(x: dict, task: Task) -> dict:
    """Logistic regression per ``C``, the best validation accuracy kept, scored on test."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    best = None
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for c in C_GRID:
            model = LogisticRegression(C=c, max_iter=2000).fit(x["train"], task.train.labels)
            accuracy = float(np.mean(model.predict(x["validation"]) == task.validation.labels))
            if best is None or accuracy > best[0]:
                best = (accuracy, c, model)
    accuracy, c, model = best
    predicted = model.predict(x["test"])
    return {"C": c, "validation_accuracy": accuracy,
            **scores(task.test.labels, predicted, task.num_classes), "predictions": predicted}


def _vectorizer():
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)


def bag_of_words(task: Task, side_by_side: bool = False) -> dict:
    """TF-IDF + logistic regression; a pair task's texts joined, or ``side_by_side``."""
    from scipy.sparse import hstack

    splits = {name: task.split(name) for name in ("train", "validation", "test")}
    if not task.is_pair_task:
        vectorizer = _vectorizer().fit(splits["train"].texts)
        return _fit_linear({n: vectorizer.transform(s.texts) for n, s in splits.items()}, task)
    vectorizer = _vectorizer().fit(splits["train"].texts + splits["train"].pairs)
    first = {n: vectorizer.transform(s.texts) for n, s in splits.items()}
    second = {n: vectorizer.transform(s.pairs) for n, s in splits.items()}
    if side_by_side:
        x = {n: hstack([first[n], second[n]]).tocsr() for n in splits}
    else:  # the pair's bag: the sum of its texts' vectors (no n-gram across the junction)
        x = {n: first[n] + second[n] for n in splits}
    return _fit_linear(x, task)


def random_encoder(task: Task, arch, config=None, *, init_seed: int = 0) -> dict:
    """``atb.eval.evaluate`` (``config``, an :class:`~atb.eval.api.EvalConfig`; default:
    fine-tuning with 3 seeds; the predictions always returned) of a randomly initialised
    encoder of ``arch`` (BERT's init, std 0.02, drawn with ``init_seed``), written to a
    temporary 🤗 directory with atb's tokenizer."""
    from dataclasses import replace

    from atb.eval.api import EvalConfig, evaluate
    from atb.modeling import build_model
    from atb.supernet.extract import save_model

    config = replace(config or EvalConfig(method="finetune"), predictions=True)
    with tempfile.TemporaryDirectory(prefix="atb-random-") as tmp:
        save_model(build_model(arch, seed=init_seed), arch, Path(tmp))
        return evaluate(tmp, task, config)


def baselines(task: Task, arch=None, config=None) -> dict:
    """Every baseline of the task (the random-init encoder, evaluated with ``config`` as
    :func:`random_encoder` does, only when ``arch`` is given).

    Returns ``task``, the split sizes and ``baselines``: one dict per baseline with ``name``,
    ``accuracy``, ``accuracy_ci`` and ``macro_f1`` (plus its own details)."""
    from atb.eval.api import EvalConfig

    method = (config or EvalConfig(method="finetune")).method
    rows = []
    labels = task.test.labels
    majority = majority_baseline(task.train.labels, labels, task.num_classes)
    constant = np.full((1, len(labels)), majority["majority_class"])
    rows.append({"name": "majority", "accuracy": majority["majority_accuracy"],
                 "macro_f1": majority["majority_macro_f1"],
                 "accuracy_ci": list(accuracy_interval(correctness(constant, labels))),
                 "class": task.label_names[majority["majority_class"]]})
    kinds = [("bag of words", False)]
    if task.is_pair_task:
        kinds = [("bag of words, joined pair", False), ("bag of words, side by side", True)]
    for name, side in kinds:
        log.info("%s on %s", name, task.name)
        result = bag_of_words(task, side_by_side=side)
        predicted = result.pop("predictions")
        rows.append({"name": name, **result,
                     "accuracy_ci": list(accuracy_interval(correctness(predicted, labels)))})
    if arch is not None:
        log.info("random-init encoder %s, %s", arch, method)
        result = random_encoder(task, arch, config)
        rows.append({"name": f"random-init encoder {arch}", "method": method,
                     "arch": str(arch), **{k: result[k] for k in (
                         "accuracy", "accuracy_std", "accuracy_ci", "macro_f1", "seeds")},
                     **({"lr": result["lr"]} if "lr" in result else {})})
    return {"task": task.name, **task.sizes(), "baselines": rows}
