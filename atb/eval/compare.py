"""Is model A really better than model B on a task? Both evaluated on the same splits with the
same seeds, and the paired difference of their test accuracies with its 95% interval
(:mod:`atb.stats`).

The verdict is "A better" or "B better" only when the interval excludes 0; otherwise "no
difference at this size": the task's test split and the seeds cannot tell the two apart, which
is a result, not a failure. With a workspace the report adds each model's latency labels
(speedup over BERT-base and latency), when the workspace's store holds its arch. A model whose
``config.json`` says what it is -- the teacher's layer cut (:mod:`atb.supernet.layer_cut`),
the baseline a user gets for free beside the BERT-rule arch -- is named so (``origin``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from atb.errors import UsageError
from atb.stats import correctness, paired_difference

log = logging.getLogger("atb.eval.compare")


def compare(model_a, model_b, task, config=None, workspace=None) -> dict:
    """Evaluate ``model_a`` and ``model_b`` (paths, see :func:`atb.eval.evaluate`) on ``task``
    with the same seeds and the paired difference A - B.

    ``config`` is :func:`~atb.eval.evaluate`'s (an :class:`~atb.eval.api.EvalConfig`; default:
    fine-tuning with 3 seeds). Returns ``task``, ``method``, ``models`` (the two results, each
    with ``name`` "A"/"B", ``origin`` (:func:`origin_of`) and ``latency`` when
    ``workspace``'s store holds its arch),
    ``difference`` (``difference``, ``ci_low``, ``ci_high``, ``level``, ``n_examples``,
    ``verdict``) and ``predictions`` (per model, seeds x test examples) with ``test_labels``.
    """
    from dataclasses import replace

    from atb.eval.api import EvalConfig, evaluate, load_task

    config = replace(config or EvalConfig(method="finetune"), predictions=True)

    for model in (model_a, model_b):  # both checked before either is trained
        check_model(model)
    if Path(model_a).resolve() == Path(model_b).resolve():
        log.warning("A and B are the same model: the difference measures only seed noise")
    task = load_task(task)
    results = []
    for name, model in (("A", model_a), ("B", model_b)):
        log.info("model %s: %s", name, model)
        results.append({"name": name, **evaluate(model, task, config),
                        "origin": origin_of(model)})
    a, b = (correctness(r["predictions"], task.test.labels) for r in results)
    diff = paired_difference(a, b)
    if workspace is not None:
        for r in results:
            r["latency"] = latency_of(r["model"], workspace)
    predictions = {r["name"]: r.pop("predictions") for r in results}
    for r in results:
        r.pop("test_labels")
    return {"task": task.name, "method": config.method, "models": results,
            "difference": diff.as_dict(), "predictions": predictions,
            "test_labels": task.test.labels}


def check_model(model) -> None:
    """Refuse a model that ``evaluate`` would refuse, without loading it."""
    from atb.errors import MissingInputError
    from atb.eval.models import read_config
    from atb.eval.onnx_encoder import is_onnx_model

    if not is_onnx_model(model):
        read_config(Path(model))
    elif not Path(model).is_file():
        raise MissingInputError(f"ONNX model {model} does not exist")


def _config_of(model) -> dict | None:
    """``config.json`` of a model directory (or of the directory of an ``.onnx`` file), or
    None when it cannot be read."""
    path = Path(model)
    config_path = (path.parent if path.suffix == ".onnx" else path) / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def arch_of(model) -> str | None:
    """``lt-dm-df-h-dqkv`` of a BERT-family model directory (or the directory of an ``.onnx``
    file), or None when its config does not say."""
    c = _config_of(model)
    try:
        return "-".join(str(int(v)) for v in (
            c["num_hidden_layers"], c["hidden_size"], c["intermediate_size"],
            c["num_attention_heads"], c.get("qkv_size") or c["hidden_size"]))
    except (KeyError, TypeError, ValueError):
        return None


def origin_of(model) -> str | None:
    """What a model is, in words, when its ``config.json`` says: a layer cut
    (``atb_layer_cut``, :func:`atb.supernet.layer_cut.save_layer_cut`) names its teacher and
    depth. None for any other model."""
    cut = (_config_of(model) or {}).get("atb_layer_cut")
    if not isinstance(cut, dict):
        return None
    layers = cut.get("layers", "?")
    return f"layer cut: {cut.get('teacher', '?')}'s first {layers} layer{'' if layers == 1 else 's'}"


def latency_of(model, workspace) -> dict | None:
    """The newest label of the model's arch in the workspace's store (any device key, the
    store's own choice when it holds one): ``device_key``, ``speedup``, ``latency_ms``; None
    when the arch was never timed there."""
    from atb.profiler.store import LatencyStore
    from atb.workspace import Workspace

    arch = arch_of(model)
    ws = Workspace.of(workspace, create=False)
    if arch is None or not ws.store_path.is_file():
        return None
    with LatencyStore.open(ws.store_path, readonly=True) as store:
        labels = store.labels(roles=("sampled", "requested", "verify"))
    hits = [i for i, a in enumerate(labels.arch_strings()) if a == arch]
    if not hits:
        return None
    i = hits[-1]
    return {"arch": arch, "device_key": labels.device_key, "speedup": float(labels.speedup[i]),
            "latency_ms": float(labels.latency_ms[i])}


def check_writable(path) -> None:
    """Refuse a predictions file that cannot be written, before any work is done."""
    import tempfile

    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path} is a directory", hint="give a file name for the predictions")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):  # where write_predictions' temporary goes
            pass
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc


def write_predictions(path, result: dict) -> Path:
    """Every test prediction per model and seed, in the format of :mod:`atb.predictions`: a
    line with the test split's labels, then one line per model and seed (``model`` its name,
    "A"/"B" or "model"; ``path`` the model given), each with the task and method. Written in
    one step; paired intervals can be recomputed from this file alone."""
    from atb import predictions as fmt
    from atb.jsonl import write_atomic

    path = Path(path)
    models = result.get("models") or [{"name": "model", "model": result["model"],
                                       "seeds": result["seeds"]}]
    matrices = result["predictions"]
    if not isinstance(matrices, dict):
        matrices = {"model": matrices}
    common = {"task": result["task"], "method": result["method"]}
    lines = [fmt.labels_line("test", result["test_labels"], common)]
    for m in models:
        for s, predicted in zip(m["seeds"], np.atleast_2d(matrices[m["name"]])):
            lines.append(fmt.line(m["name"], s["seed"], "test", predicted=predicted,
                                  extra={"path": str(m["model"]), **common}))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, "".join(json.dumps(x) + "\n" for x in lines))
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


def read_predictions(path) -> dict:
    """A predictions file of ``atb-eval`` (:func:`write_predictions`'s, or its first format):
    ``task``, ``method``, ``models`` (name -> the model and its seeds), ``test_labels``
    (examples) and ``predictions`` (name -> seeds x examples), ready for
    :func:`atb.stats.correctness`."""
    from atb import predictions as fmt
    from atb.errors import MissingInputError

    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"predictions file {path} does not exist")
    try:
        lines, labels = fmt.read(path)
    except UsageError as exc:
        raise UsageError(f"{path} is not a predictions file of atb-eval: {exc}") from exc
    lines = [x for x in lines if x.get("split") == "test" and "predicted" in x]
    if not lines or "test" not in labels:
        raise UsageError(f"{path} is not a predictions file of atb-eval: no test predictions "
                         "with their labels")
    by_name = fmt.by_model_and_seed(lines)
    first = {x["model"]: x for x in reversed(lines)}  # each model's first line
    return {"task": lines[0].get("task"), "method": lines[0].get("method"),
            "models": {name: {"model": first[name].get("path", name), "seeds": list(seeds)}
                       for name, seeds in by_name.items()},
            "test_labels": labels["test"],
            "predictions": {name: np.stack(list(seeds.values()))
                            for name, seeds in by_name.items()}}
