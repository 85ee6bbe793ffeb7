"""Fine-tuning: a classification head on the encoder, trained end to end (the paper's measure).

Per seed the model is loaded afresh with a new head and trained with AdamW under a linear schedule with warm-up; after each
epoch the validation accuracy is measured, training stops once it has not improved for
``patience`` epochs, and the best epoch's weights are scored on the test split. The seed draws
the head's initial weights, dropout and the order of the training batches.

The head reads the mean of the last hidden states by default (``pooling``; see
:func:`atb.eval.models.load_classifier`), not BERT's [CLS] pooler: the pooler of a
sentence-embedding model such as MiniLM, and of every sub-model cut from a supernet distilled
from it, was never trained, and on ``kjv-genre`` a head on it scored 43-46% where the same
models mean-pooled scored 56-59% (``bench/claim.py``; docs/architecture.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from atb import progress
from atb.errors import UsageError
from atb.eval.encode import MAX_LENGTH, Tokenized, collate, sorted_batches, tokenize
from atb.eval.metrics import scores
from atb.eval.models import POOLINGS, load_classifier, quiet_transformers
from atb.eval.tasks import SPLITS, Task

log = logging.getLogger("atb.eval.finetune")

BUCKET_BATCHES = 50  # batches whose examples are length-sorted together (less padding)


@dataclass(frozen=True)
class FinetuneConfig:
    """Hyper-parameters; the defaults suit a small encoder and a few thousand examples."""

    epochs: int = 4  # at most: early stopping may end sooner
    lr: float = 1e-4  # peak AdamW learning rate
    batch_size: int = 32
    warmup_fraction: float = 0.1  # of all steps: linear warm-up, then linear decay to 0
    weight_decay: float = 0.01  # not applied to biases and LayerNorm weights
    patience: int = 1  # epochs without a better validation accuracy before stopping
    max_grad_norm: float = 1.0
    eval_batch_size: int = 64
    pooling: str | None = None  # "mean" or "cls"; None: mean where the encoder allows it

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise UsageError("epochs, batch size and patience must be at least 1")
        if not self.lr > 0 or not 0 <= self.warmup_fraction < 1:
            raise UsageError(f"need lr > 0 and a warm-up fraction in [0, 1), "
                             f"not lr={self.lr}, warmup_fraction={self.warmup_fraction}")
        if self.pooling not in (None, *POOLINGS):
            raise UsageError(f"unknown pooling {self.pooling!r}", hint=f"use {' or '.join(POOLINGS)}")


def shuffled_batches(lengths: np.ndarray, batch_size: int, generator) -> list[np.ndarray]:
    """Seeded random batches of similar lengths: shuffle, sort windows of ``BUCKET_BATCHES``
    batches by length, cut, and shuffle the batches."""
    import torch

    order = torch.randperm(len(lengths), generator=generator).numpy()
    batches = []
    for start in range(0, len(order), batch_size * BUCKET_BATCHES):
        window = order[start:start + batch_size * BUCKET_BATCHES]
        window = window[np.argsort(-lengths[window], kind="stable")]
        batches += [window[i:i + batch_size] for i in range(0, len(window), batch_size)]
    return [batches[int(i)] for i in torch.randperm(len(batches), generator=generator)]


def predict(model, tokenized: Tokenized, batch_size: int) -> np.ndarray:
    """Predicted class of every example, in example order."""
    import torch

    model.eval()
    out = np.empty(len(tokenized), dtype=np.int64)
    with torch.inference_mode():
        for indices in sorted_batches(tokenized, batch_size):
            out[indices] = model(**collate(tokenized, indices)).logits.argmax(-1).numpy()
    return out


def _optimizer(model, config: FinetuneConfig, total_steps: int):
    import torch

    decay, no_decay = [], []
    for param in model.parameters():
        (no_decay if param.ndim < 2 else decay).append(param)  # biases and LayerNorm weights
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=config.lr)
    warmup = max(1, int(config.warmup_fraction * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train(model, tokenized: dict[str, Tokenized], task: Task, config: FinetuneConfig,
          seed: int) -> dict:
    """Train ``model`` on the training split, keep its best validation epoch, score the test
    split. Returns the seed's result (``best_epoch``, ``epochs_run``, ``validation_accuracy``,
    ``accuracy``, ``macro_f1``); ``model`` ends with the best epoch's weights."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    lengths = tokenized["train"].lengths()
    per_epoch = -(-len(lengths) // config.batch_size)
    steps = per_epoch * config.epochs
    optimizer, schedule = _optimizer(model, config, steps)
    labels = torch.from_numpy(task.train.labels)
    best_accuracy, best_state, best_epoch, epoch = -1.0, None, 0, 0
    with progress.progress(steps, f"fine-tuning seed {seed}", unit="step") as bar:
        for epoch in range(1, config.epochs + 1):
            model.train()
            for indices in shuffled_batches(lengths, config.batch_size, generator):
                batch = collate(tokenized["train"], indices)
                loss = model(**batch, labels=labels[torch.from_numpy(indices)]).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
                bar.update(1)
            predicted = predict(model, tokenized["validation"], config.eval_batch_size)
            accuracy = float(np.mean(predicted == task.validation.labels))
            bar.set_postfix_str(f"epoch {epoch} validation {accuracy:.3f}")
            log.debug("seed %d epoch %d: last batch loss %.4f, validation accuracy %.4f",
                      seed, epoch, loss.item(), accuracy)
            if accuracy > best_accuracy:
                best_accuracy, best_epoch = accuracy, epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            elif epoch - best_epoch >= config.patience:
                break
    model.load_state_dict(best_state)
    test = scores(task.test.labels, predict(model, tokenized["test"], config.eval_batch_size),
                  task.num_classes)
    return {"seed": seed, "best_epoch": best_epoch, "epochs_run": epoch,
            "validation_accuracy": best_accuracy, **test}


def finetune(model_dir: Path, task: Task, tokenizer, seeds: Sequence[int],
             config: FinetuneConfig = FinetuneConfig(), max_length: int = MAX_LENGTH,
             save_dir: Path | None = None) -> list[dict]:
    """Fine-tune ``model_dir`` on ``task`` once per seed; one result per seed.

    With ``save_dir`` the classifier of the seed with the best validation accuracy is written
    there as a 🤗 directory (weights, config with the label names, tokenizer).
    """
    import torch

    tokenized = {name: tokenize(task.split(name), tokenizer, max_length) for name in SPLITS}
    results, best = [], None
    for seed in seeds:
        torch.manual_seed(seed)  # the head's initial weights and dropout
        model = load_classifier(model_dir, task.label_names, config.pooling)
        result = train(model, tokenized, task, config, seed)
        result["pooling"] = getattr(model.config, "classifier_pooling", "cls")
        log.info("seed %d: test accuracy %.4f (best epoch %d of %d)", seed, result["accuracy"],
                 result["best_epoch"], result["epochs_run"])
        results.append(result)
        if save_dir is not None and (best is None or result["validation_accuracy"] > best[0]):
            best = (result["validation_accuracy"], seed, model)
    if best is not None:
        _, seed, model = best
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        with quiet_transformers():
            model.save_pretrained(save_dir)
            tokenizer.save_pretrained(save_dir)
        log.info("saved the classifier of seed %d to %s", seed, save_dir)
    return results
