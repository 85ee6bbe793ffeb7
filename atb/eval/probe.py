"""Linear probe (SentEval-style): frozen mean-pooled embeddings + logistic regression.

The encoder runs once over every example of the task (:func:`atb.eval.encode.embed`); then,
for each seed, features are standardised on the training split, a multinomial logistic
regression is fitted for every ``C`` of :data:`C_GRID`, the ``C`` with the best validation
accuracy is kept, and its test predictions are scored. The fit is convex (L-BFGS), so seeds
agree: the probe's spread over seeds is zero and its cost per seed is a few small fits.

Cost per model is one forward pass over the task (kjv-genre: 4,000 passages of ~50 tokens)
plus the fits; :class:`Probe` tokenises a task once so that many encoders (every candidate of a
search) are probed on exactly the same inputs without paying for tokenisation again.
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import Callable, Sequence

import numpy as np

from atb.eval.encode import BATCH_SIZE, MAX_LENGTH, Tokenized, embed, tokenize
from atb.eval.metrics import report, scores, seed_list
from atb.eval.tasks import SPLITS, Task

log = logging.getLogger("atb.eval.probe")

C_GRID = (0.001, 0.01, 0.1, 1.0)  # inverse L2 strength on standardised features
MAX_ITER = 1000


def fit_probe(features: dict[str, np.ndarray], task: Task, seed: int,
              c_grid: Sequence[float] = C_GRID) -> dict:
    """One seed's probe on precomputed ``features`` (split name -> (n, d)): chosen ``C``, its
    validation accuracy and log-loss (a finer signal than accuracy for ranking encoders), test
    accuracy and macro-F1, and the test split's ``predictions``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    scaler = StandardScaler().fit(features["train"])
    x = {name: scaler.transform(features[name]) for name in SPLITS}
    best = None
    # One thread: these fits are small, and on 2 cores BLAS and OpenMP threads contend (~6x slower).
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter is a budget, not a bug
        for c in c_grid:
            model = LogisticRegression(C=c, max_iter=MAX_ITER, random_state=seed)
            model.fit(x["train"], task.train.labels)
            accuracy = float(np.mean(model.predict(x["validation"]) == task.validation.labels))
            log.debug("seed %d, C=%g: validation accuracy %.4f", seed, c, accuracy)
            if best is None or accuracy > best[0]:  # ties keep the stronger regularisation
                best = (accuracy, c, model)
        accuracy, c, model = best
        loss = log_loss(task.validation.labels, model.predict_proba(x["validation"]),
                        labels=model.classes_)
        predicted = model.predict(x["test"])
    return {"seed": seed, "C": c, "validation_accuracy": accuracy,
            "validation_log_loss": float(loss),
            "validation_correct": model.predict(x["validation"]) == task.validation.labels,
            **scores(task.test.labels, predicted, task.num_classes), "predictions": predicted}


class Probe:
    """A task tokenised once, ready to probe any number of encoders on the same inputs.

    >>> probe = Probe(load_task("kjv-genre"), load_tokenizer())
    >>> probe(functools.partial(supernet, arch=arch))["accuracy"]   # an in-memory sub-model
    """

    def __init__(self, task: Task, tokenizer, max_length: int = MAX_LENGTH,
                 batch_size: int = BATCH_SIZE, c_grid: Sequence[float] = C_GRID):
        self.task = task
        self.batch_size = batch_size
        self.c_grid = tuple(c_grid)
        self.tokenized: dict[str, Tokenized] = {
            name: tokenize(task.split(name), tokenizer, max_length) for name in SPLITS}

    def features(self, encoder: Callable) -> dict[str, np.ndarray]:
        """Mean-pooled embeddings of every split."""
        return {name: embed(encoder, self.tokenized[name], self.batch_size, desc=f"encoding {name}")
                for name in SPLITS}

    def __call__(self, encoder: Callable, seeds: int | Sequence[int] = 1) -> dict:
        """Probe ``encoder`` (see :mod:`atb.eval.encode` for what qualifies).

        Returns ``accuracy``, ``accuracy_std``, ``macro_f1``, ``macro_f1_std`` (over seeds, on
        the test split), the majority baseline, split sizes, ``seeds`` (one dict per seed),
        ``encode_seconds`` and ``seconds``.
        """
        start = time.perf_counter()
        features = self.features(encoder)
        encoded = time.perf_counter()
        per_seed = [fit_probe(features, self.task, seed, self.c_grid) for seed in seed_list(seeds)]
        return {"task": self.task.name, "method": "probe", **self.task.sizes(),
                **report(self.task, per_seed), "embedding_dim": int(features["train"].shape[1]),
                "encode_seconds": encoded - start, "seconds": time.perf_counter() - start}
