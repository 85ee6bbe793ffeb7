"""Portable predictor artefacts: one JSON file plus one ``.npz`` of arrays, never pickles.

The JSON says what the predictor is (device key, search space, protocol version,
training-set hash, chosen model, every model's description and scores, the feature names
and normalisation); the npz holds the numbers. The JSON records the npz's sha256 so a
mismatched pair is refused. Arrays are read with ``allow_pickle=False``.

This module knows the format, not the class: :class:`~atb.predictor.predictor.LatencyPredictor`
saves and loads itself through it (``save`` / ``load``), so it imports this module and not the
other way round.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from pathlib import Path

import numpy as np

from atb.errors import DeviceKeyMismatchError, MissingInputError, PredictorError, UsageError
from atb.jsonl import atomic_path
from atb.predictor.features import FEATURE_NAMES
from atb.predictor.models import model_from_arrays

log = logging.getLogger("atb.predictor.artefact")

FORMAT = "atb-latency-predictor"
FORMAT_VERSION = 1


def artefact_name(device_key: str) -> str:
    """File name of a device key's artefact (characters unsafe in file names replaced)."""
    return re.sub(r"[^A-Za-z0-9._=+-]", "_", device_key) + ".json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _normalisation(model) -> dict | None:
    norm = getattr(model, "norm", None)
    if norm is None:
        return None
    return {"features": list(FEATURE_NAMES), "mean": norm.mean.tolist(), "std": norm.std.tolist()}


def save_predictor(pred, path: str | Path) -> Path:
    """Write a ``LatencyPredictor`` to ``path`` (.json) and ``path.with_suffix('.npz')``;
    returns the JSON path."""
    from atb import __version__

    path = Path(path)
    if path.suffix != ".json":
        path = path.with_suffix(".json")
    npz_path = path.with_suffix(".npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # e.g. -o /proc/x.json, or a regular file where the directory goes
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    arrays = {}
    for kind, model in pred.models.items():
        arrays.update({f"model.{kind}.{k}": np.asarray(v) for k, v in model.arrays().items()})
    arrays.update({f"heldout.{k}": np.asarray(v) for k, v in pred.heldout.items()})
    # both files go to temporaries first, the arrays replaced before the JSON that names their
    # hash: a crash never leaves a pair that loads as one
    with atomic_path(path) as tmp_json, atomic_path(npz_path) as tmp_npz:
        with open(tmp_npz, "wb") as f:  # a file object: np.savez would add ".npz" to a path
            np.savez(f, **arrays)
        doc = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "device_key": pred.device_key,
            "protocol_version": pred.protocol_version,
            "space": pred.space_info,
            "seq_len": pred.seq_len,
            "bert_base_ms": pred.bert_base_ms,
            "training": pred.training,
            "chosen": pred.chosen,
            "models": {kind: m.describe() for kind, m in pred.models.items()},
            "metrics": pred.metrics,
            "cv_scores": pred.cv_scores,
            "heldout_metrics": pred.heldout_metrics,
            "feature_names": list(FEATURE_NAMES),
            "feature_normalisation": _normalisation(pred.model),
            "transfer": pred.transfer,
            "store_last_modified": pred.store_last_modified,
            "created_at": pred.created_at or time.time(),
            "atb_version": __version__,
            "arrays_file": npz_path.name,
            "arrays_sha256": _sha256(tmp_npz),
        }
        tmp_json.write_text(json.dumps(_plain(doc), indent=2, allow_nan=False) + "\n")
    pred.path = path
    log.debug("saved predictor for %s to %s", pred.device_key, path)
    return path


def _plain(value):
    """JSON-safe copy: numpy scalars to Python numbers, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def predictor_fields(path: str | Path, device_key: str | None = None,
                     allow_other_device: bool = False) -> dict:
    """Read an artefact: the keyword arguments of its ``LatencyPredictor``. A ``device_key``
    other than the artefact's is refused with :class:`DeviceKeyMismatchError` unless
    ``allow_other_device`` is true."""
    path = Path(path)
    if path.suffix == ".npz":
        path = path.with_suffix(".json")
    doc = _read_document(path)
    key = doc["device_key"]
    if device_key is not None and device_key != key:
        if not allow_other_device:
            raise DeviceKeyMismatchError(
                f"predictor {path.name} was fitted for device key {key}, not {device_key}; "
                "its latencies would be wrong here",
                hint="fit one for this key (atb-predictor fit), transfer it with a few samples, "
                "or pass allow_other_device=True / --allow-other-device to use it anyway",
            )
        log.warning("using predictor of device key %s for %s (allowed explicitly)", key, device_key)
    arrays = _read_arrays(path, doc)
    models = {}
    for kind, describe in doc["models"].items():
        prefix = f"model.{kind}."
        models[kind] = model_from_arrays(
            describe, {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)})
    if doc["chosen"] not in models:
        raise PredictorError(f"{path} names chosen model {doc['chosen']!r} but holds no such model")
    return dict(
        device_key=key,
        model=models[doc["chosen"]],
        bert_base_ms=float(doc["bert_base_ms"]),
        protocol_version=int(doc.get("protocol_version", 0)),
        space_info=doc.get("space"),
        seq_len=int(doc.get("seq_len", 128)),
        chosen=doc["chosen"],
        models=models,
        cv_scores=doc.get("cv_scores", {}),
        heldout_metrics=doc.get("heldout_metrics", {}),
        metrics=doc.get("metrics", {}),
        training=doc.get("training", {}),
        heldout={k[len("heldout."):]: v for k, v in arrays.items() if k.startswith("heldout.")},
        transfer=doc.get("transfer"),
        store_last_modified=doc.get("store_last_modified"),
        created_at=float(doc.get("created_at", 0.0)),
        path=path,
    )


def _read_document(path: Path) -> dict:
    """The artefact's JSON, checked: atb's format, a version this atb reads, every field."""
    if not path.is_file():
        raise MissingInputError(f"no predictor artefact at {path}", hint="make one with atb-predictor fit")
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PredictorError(f"cannot read predictor artefact {path}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise PredictorError(f"{path} is not an atb latency predictor artefact")
    if doc.get("format_version", 0) > FORMAT_VERSION:
        raise PredictorError(
            f"{path} has format version {doc['format_version']}; this atb reads up to {FORMAT_VERSION}",
            hint="upgrade atb or refit with atb-predictor fit",
        )
    missing = [f for f in ("device_key", "chosen", "models", "bert_base_ms") if f not in doc]
    if missing:
        raise PredictorError(f"{path} is incomplete (no {', '.join(missing)})",
                             hint="refit with atb-predictor fit")
    return doc


def _read_arrays(path: Path, doc: dict) -> dict:
    """The artefact's arrays (the .npz beside it), checked against the JSON's checksum."""
    npz_path = path.with_name(doc.get("arrays_file", path.with_suffix(".npz").name))
    if not npz_path.is_file():
        raise PredictorError(f"predictor arrays {npz_path} are missing (the .npz belongs next to {path.name})")
    if doc.get("arrays_sha256") and _sha256(npz_path) != doc["arrays_sha256"]:
        raise PredictorError(f"{npz_path.name} does not match {path.name} (sha256 differs)",
                             hint="refit with atb-predictor fit")
    try:
        with np.load(npz_path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise PredictorError(f"cannot read predictor arrays {npz_path}: {exc}") from exc
