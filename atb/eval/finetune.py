"""Fine-tuning: a classification head on the encoder, trained end to end (the paper's measure).

The protocol: the peak learning rate is picked on the validation split (one run per rate of a
small grid with an extra seed, :func:`pick_lr`), or given; then per seed the model is loaded
afresh with a new head and trained at that rate with AdamW under a linear schedule with
warm-up; after each epoch the validation accuracy is measured, training stops once it has not
improved for ``patience`` epochs, and the best epoch's weights predict the test split (the
predictions are kept, so paired intervals can be computed later, :mod:`atb.stats`). The
seed draws the head's initial weights, dropout and the order of the training batches.

The head reads the mean of the last hidden states by default (``pooling``; see
:func:`atb.eval.models.load_classifier`), not BERT's [CLS] pooler: the pooler of a
sentence-embedding model such as MiniLM, and of every sub-model cut from a supernet distilled
from it, was never trained, and on ``kjv-genre`` a head on it scored 43-46% where the same
models mean-pooled scored 56-59% (``bench/claim.py``; docs/results.md).
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
from atb.eval.runs import Runner
from atb.eval.tasks import SPLITS, Task

log = logging.getLogger("atb.eval.finetune")

BUCKET_BATCHES = 50  # batches whose examples are length-sorted together (less padding)


# Peak learning rates tried on the validation split. 1e-3 was dropped: on the rule archs of
# three windows it never learned kjv-next (validation 50.1-51.4%, docs/results.md).
LR_GRID = (1e-4, 3e-4)
LR_SEED = 1000  # the extra seed of the learning-rate pick, never one of the reported seeds


@dataclass(frozen=True)
class FinetuneConfig:
    """Hyper-parameters of the fine-tuning protocol (docs/eval.md, "Protocol").

    ``lr=None`` (the default) picks the peak learning rate: one run per value of ``lr_grid``
    with seed ``lr_seed``, the best *validation* accuracy wins; the reported seeds then all
    train at that rate. A given ``lr`` skips the pick.
    """

    epochs: int = 3  # at most: the best validation epoch is kept, early stopping may end sooner
    lr: float | None = None  # peak AdamW learning rate; None: picked from lr_grid on validation
    lr_grid: tuple[float, ...] = LR_GRID
    lr_seed: int = LR_SEED
    batch_size: int = 32
    warmup_fraction: float = 0.1  # of all steps: linear warm-up, then linear decay to 0
    weight_decay: float = 0.01  # not applied to biases and LayerNorm weights
    patience: int = 2  # epochs without a better validation accuracy before stopping
    max_grad_norm: float = 1.0
    eval_batch_size: int = 64
    pooling: str | None = None  # "mean" or "cls"; None: mean where the encoder allows it

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise UsageError("epochs, batch size and patience must be at least 1")
        rates = (self.lr,) if self.lr is not None else self.lr_grid
        if not rates or not all(r > 0 for r in rates) or not 0 <= self.warmup_fraction < 1:
            raise UsageError(f"need learning rates > 0 and a warm-up fraction in [0, 1), "
                             f"not lr={self.lr}, lr_grid={self.lr_grid}, "
                             f"warmup_fraction={self.warmup_fraction}")
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


def optimizer_and_schedule(model, config: FinetuneConfig, lr: float, total_steps: int):
    """AdamW (no decay on biases and LayerNorm weights) with linear warm-up then linear decay."""
    import torch

    decay, no_decay = [], []
    for param in model.parameters():
        (no_decay if param.ndim < 2 else decay).append(param)  # biases and LayerNorm weights
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    warmup = max(1, int(config.warmup_fraction * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass(frozen=True)
class Run:
    """One fine-tuning run: ``seed`` at peak rate ``lr``. ``test``: predict the test split (the
    learning-rate pick's runs never do); ``keep_state``: return the best epoch's weights."""

    seed: int
    lr: float
    test: bool = True
    keep_state: bool = False


@dataclass(frozen=True)
class FinetuneSetup:
    """How :func:`finetune` cuts the examples and where its runs go (what they learn is the
    :class:`FinetuneConfig`'s)."""

    max_length: int = MAX_LENGTH  # tokens per example; longer ones are cut
    save_dir: Path | None = None  # write the classifier of the best validation seed there
    jobs: int = 1  # runs of a stage trained side by side, one process each
    cores: int | None = None  # threads the processes share (None: every core this one may use)


def train_step(model, batch: dict, labels, optimizer, schedule, max_grad_norm: float):
    """One AdamW step on ``batch`` (collated inputs) with its ``labels`` (a tensor); returns
    the batch's loss tensor (detached from the graph by the step)."""
    import torch

    loss = model(**batch, labels=labels).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    schedule.step()
    optimizer.zero_grad(set_to_none=True)
    return loss


def train(model, tokenized: dict[str, Tokenized], task: Task, config: FinetuneConfig,
          run: Run) -> dict:
    """Train ``model`` at peak rate ``run.lr`` on the training split (``run.seed`` orders the
    batches), keep its best validation epoch, score the test split. Returns the seed's result
    (``best_epoch``, ``epochs_run``, ``validation_accuracy``, ``validation_predictions`` (the
    best epoch's predicted classes) and, with ``run.test``,
    ``accuracy``, ``macro_f1`` and ``predictions``, the test split's predicted classes);
    ``model`` ends with the best epoch's weights."""
    import torch

    seed, lr = run.seed, run.lr

    generator = torch.Generator().manual_seed(seed)
    lengths = tokenized["train"].lengths()
    per_epoch = -(-len(lengths) // config.batch_size)
    steps = per_epoch * config.epochs
    optimizer, schedule = optimizer_and_schedule(model, config, lr, steps)
    labels = torch.from_numpy(task.train.labels)
    best_accuracy, best_state, best_epoch, epoch = -1.0, None, 0, 0
    with progress.progress(steps, f"fine-tuning seed {seed}, lr {lr:g}", unit="step") as bar:
        for epoch in range(1, config.epochs + 1):
            model.train()
            for indices in shuffled_batches(lengths, config.batch_size, generator):
                batch = collate(tokenized["train"], indices)
                loss = train_step(model, batch, labels[torch.from_numpy(indices)], optimizer,
                                  schedule, config.max_grad_norm)
                bar.update(1)
            predicted = predict(model, tokenized["validation"], config.eval_batch_size)
            accuracy = float(np.mean(predicted == task.validation.labels))
            bar.set_postfix_str(f"epoch {epoch} validation {accuracy:.3f}")
            log.debug("seed %d epoch %d: last batch loss %.4f, validation accuracy %.4f",
                      seed, epoch, loss.item(), accuracy)
            if accuracy > best_accuracy:
                best_accuracy, best_epoch, best_predicted = accuracy, epoch, predicted
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            elif epoch - best_epoch >= config.patience:
                break
    model.load_state_dict(best_state)
    result = {"seed": seed, "lr": lr, "best_epoch": best_epoch, "epochs_run": epoch,
              "validation_accuracy": best_accuracy, "validation_predictions": best_predicted}
    if not run.test:
        return result
    predicted = predict(model, tokenized["test"], config.eval_batch_size)
    return {**result, **scores(task.test.labels, predicted, task.num_classes),
            "predictions": predicted}


def train_run(model_dir: Path, tokenized: dict[str, Tokenized], task: Task,
              config: FinetuneConfig, run: Run) -> dict:
    """Load ``model_dir`` with a new head drawn from ``run.seed`` and :func:`train` it; adds
    ``pooling`` and, when asked, ``state``. Where it runs (this process or another,
    :mod:`atb.eval.runs`) does not change what it learns: the seed draws the head, the dropout
    and the batch order."""
    import torch

    torch.manual_seed(run.seed)  # the head's initial weights and dropout
    model = load_classifier(model_dir, task.label_names, config.pooling)
    result = train(model, tokenized, task, config, run)
    result["pooling"] = getattr(model.config, "classifier_pooling", "cls")
    if run.keep_state:
        result["state"] = model.state_dict()
    return result


def pick_lr(model_dir: Path, tokenized: dict[str, Tokenized], task: Task,
            config: FinetuneConfig, runner: Runner | None = None) -> dict:
    """The learning-rate choice: ``config.lr`` when given, else one run of seed
    ``config.lr_seed`` per rate of ``config.lr_grid`` (on ``runner``, in this process by
    default) and the best validation accuracy (ties: the smaller rate). These runs never
    predict the test split."""
    if config.lr is not None:
        return {"lr": config.lr, "chosen_by": "given", "grid": []}
    runner = runner or Runner(train_run, (Path(model_dir), tokenized, task, config))
    rates = sorted(config.lr_grid)
    runs = runner.map([Run(config.lr_seed, lr, test=False) for lr in rates],
                      "learning-rate pick")
    grid = [{"lr": lr, "validation_accuracy": run["validation_accuracy"],
             "best_epoch": run["best_epoch"]} for lr, run in zip(rates, runs)]
    for g in grid:
        log.info("lr %g: validation accuracy %.4f (seed %d)", g["lr"], g["validation_accuracy"],
                 config.lr_seed)
    best = max(grid, key=lambda g: g["validation_accuracy"])  # first max: the smaller rate
    return {"lr": best["lr"], "chosen_by": f"validation accuracy, seed {config.lr_seed}",
            "grid": grid}


def finetune(model_dir: Path, task: Task, tokenizer, seeds: Sequence[int],
             config: FinetuneConfig = FinetuneConfig(),
             setup: FinetuneSetup = FinetuneSetup()) -> tuple[dict, list[dict]]:
    """Fine-tune ``model_dir`` on ``task``: pick the learning rate (:func:`pick_lr`), then one
    run per seed at that rate. Returns ``(lr choice, one result per seed)``.

    ``setup.jobs`` > 1 trains a stage's runs side by side in that many processes sharing
    ``setup.cores`` threads (default: every core this process may use), :mod:`atb.eval.runs`;
    the results are those of the same seeds trained one after another. With
    ``setup.save_dir`` the classifier of the seed with the best validation accuracy is
    written there as a 🤗 directory (weights, config with the label names, tokenizer).
    """
    tokenized = {name: tokenize(task.split(name), tokenizer, setup.max_length) for name in SPLITS}
    stage_runs = max(len(seeds), 0 if config.lr is not None else len(config.lr_grid))
    inputs = (Path(model_dir), tokenized, task, config)
    save_dir = setup.save_dir
    with Runner(train_run, inputs, min(setup.jobs, stage_runs), setup.cores) as runner:
        choice = pick_lr(model_dir, tokenized, task, config, runner)
        results = runner.map([Run(seed, choice["lr"], keep_state=save_dir is not None)
                              for seed in seeds], f"fine-tuning at lr {choice['lr']:g}")
    for result in results:
        log.info("seed %d: test accuracy %.4f (best epoch %d of %d)", result["seed"],
                 result["accuracy"], result["best_epoch"], result["epochs_run"])
    if save_dir is not None:
        _save_best(model_dir, task, tokenizer, config, results, Path(save_dir))
    for result in results:
        result.pop("state", None)
    return choice, results


def _save_best(model_dir, task: Task, tokenizer, config: FinetuneConfig, results: list[dict],
               save_dir: Path) -> None:
    """The classifier of the best validation seed (first max: the earliest), as 🤗 files."""
    best = max(results, key=lambda r: r["validation_accuracy"])
    model = load_classifier(model_dir, task.label_names, config.pooling)
    model.load_state_dict(best["state"])
    save_dir.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        model.save_pretrained(save_dir)
        tokenizer.save_pretrained(save_dir)
    log.info("saved the classifier of seed %d to %s", best["seed"], save_dir)
