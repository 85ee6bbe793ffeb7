"""Fitting, model selection and evaluation of latency predictors.

:func:`fit_predictor` holds out a share of the *architectures* (repeated measurements of
one arch never straddle the split), compares every model family by k-fold cross-validation
on the rest, keeps the family with the lowest CV MAPE, and records every family's CV and
held-out scores. Targets are log latency: relative errors are what a speedup target needs.
Every score holds both metric families (latency in ms and speedup over BERT-base, see
:mod:`atb.predictor.metrics`); :func:`session_check` says whether evaluation labels come
from the profiling session the predictor was fitted on.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, replace

import numpy as np

from atb import progress
from atb.errors import PredictorError
from atb.predictor.base import LatencyModel
from atb.predictor.metrics import prediction_metrics
from atb.predictor.models import CANDIDATE_KINDS, make_model
from atb.predictor.predictor import LatencyPredictor, infer_space
from atb.profiler.labels import LabelSet

log = logging.getLogger("atb.predictor.fit")

MIN_LABELS = 20  # below this neither CV nor a held-out split says anything
_SEQ_RE = re.compile(r"-s(\d+)-")  # device keys name the sequence length: cpu-...-s128-b1-...


def seq_len_from_key(device_key: str, default: int = 128) -> int:
    """Sequence length named in a device key (``...-s128-...``), else ``default``."""
    match = _SEQ_RE.search(device_key)
    return int(match.group(1)) if match else default


def check_labels(labels: LabelSet) -> None:
    if len(labels) < MIN_LABELS:
        raise PredictorError(
            f"{len(labels)} measurements of {labels.device_key} are too few to fit a predictor "
            f"(need at least {MIN_LABELS})",
            hint="profile more architectures with atb-profile, or use transfer() from another key",
        )
    lat = np.asarray(labels.latency_ms, dtype=np.float64)
    if not (np.isfinite(lat).all() and (lat > 0).all()):
        raise PredictorError(f"labels of {labels.device_key} hold non-positive or non-finite latencies")


def label_metrics(log_ms_pred: np.ndarray, labels: LabelSet) -> dict:
    """Both metric families of log-latency predictions on ``labels``; predicted speedups use
    the labels' own BERT-base latency, which is what the predictor fitted on them records."""
    pred_ms = np.exp(log_ms_pred)
    return prediction_metrics(pred_ms, labels.latency_ms, labels.bert_base_ms / pred_ms, labels.speedup)


def group_folds(archs: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Fold number (0..k-1) of each row; identical archs always share a fold."""
    _, group = np.unique(archs, axis=0, return_inverse=True)
    group = group.ravel()
    order = rng.permutation(group.max() + 1)
    return (order % k)[group]


def _fit_one(kind: str, archs, log_ms, seq_len: int, rng, config: dict) -> LatencyModel:
    from threadpoolctl import threadpool_limits

    # one BLAS thread: the fits are tiny, and oversubscribed threads on a shared machine
    # made lbfgs 5x slower in practice
    with threadpool_limits(1):
        return make_model(kind, seq_len, config.get(kind)).fit(archs, log_ms, rng)


# predict-time cost order (cheapest first): among statistically tied models, take the cheaper
PREDICT_COST = ("flops_linear", "additive", "mlp", "hybrid", "gbt")
TIE_TOLERANCE = 0.02  # CV MAPEs within 2 % (relative) of the best count as tied


def choose_kind(cv: dict[str, dict], tolerance: float = TIE_TOLERANCE) -> str:
    """The kind with the lowest CV MAPE, or the cheapest to predict among those within
    ``tolerance`` (relative) of it: the search predicts millions of archs, and a MAPE
    difference of a few hundredths of a percent is inside the noise of the labels."""
    best = min(v["mape"] for v in cv.values())
    tied = [k for k, v in cv.items() if v["mape"] <= best * (1 + tolerance)]
    return min(tied, key=lambda k: (PREDICT_COST.index(k) if k in PREDICT_COST else len(PREDICT_COST),
                                    cv[k]["mape"]))


def cross_validate(labels: LabelSet, kinds=CANDIDATE_KINDS, folds: int = 5, seed: int = 0,
                   seq_len: int = 128, configs: dict | None = None) -> dict[str, dict]:
    """Out-of-fold metrics (plus ``fit_s``) of every model kind on ``labels``."""
    configs = configs or {}
    rng = np.random.default_rng(seed)
    fold = group_folds(labels.archs, folds, rng)
    log_ms = np.log(labels.latency_ms)
    scores = {}
    with progress.progress(total=len(kinds) * folds, desc="cross-validation", unit="fit") as bar:
        for kind in kinds:
            oof = np.empty(len(labels))
            t0 = time.perf_counter()
            for f in range(folds):
                train, test = fold != f, fold == f
                model = _fit_one(kind, labels.archs[train], log_ms[train], seq_len, rng, configs)
                oof[test] = model.predict_log(labels.archs[test])
                bar.update(1)
            scores[kind] = label_metrics(oof, labels)
            scores[kind]["fit_s"] = (time.perf_counter() - t0) / folds
            log.debug("CV %-12s MAPE %.2f%%  within 10%% %.1f%%  tau %.3f", kind,
                     100 * scores[kind]["mape"], 100 * scores[kind]["within_10"],
                     scores[kind]["kendall_tau"])
    return scores


LEARNING_KIND = "additive"  # the cheapest kind within a few hundredths of the best CV MAPE


def learning_gain(labels: LabelSet, folds: int = 5, repeats: int = 5, seed: int = 0,
                  kind: str = LEARNING_KIND) -> tuple[float, float]:
    """(out-of-fold speedup MAPE trained on all training rows, the same trained on a random
    half of them), on the same folds, averaged over ``repeats`` fold draws: what the last
    doubling of the labels bought (``atb-profile --samples auto``, :mod:`atb.profiler.stopping`).
    One draw moved the gain by ±0.2 points at 100 labels; five cost 0.1 s at 1,000."""
    rng = np.random.default_rng(seed)
    log_ms = np.log(labels.latency_ms)
    seq_len = seq_len_from_key(labels.device_key)
    scores = []
    for _ in range(repeats):
        fold = group_folds(labels.archs, folds, rng)
        full, half = np.empty(len(labels)), np.empty(len(labels))
        for f in range(folds):
            train, test = np.flatnonzero(fold != f), fold == f
            some = rng.choice(train, size=max(1, len(train) // 2), replace=False)
            for rows, out in ((train, full), (some, half)):
                out[test] = _fit_one(kind, labels.archs[rows], log_ms[rows], seq_len, rng, {}).predict_log(
                    labels.archs[test])
        scores.append((label_metrics(full, labels)["speedup_mape"], label_metrics(half, labels)["speedup_mape"]))
    mape, mape_half = np.mean(scores, axis=0)
    return float(mape), float(mape_half)


@dataclass(frozen=True)
class FitConfig:
    """How :func:`fit_predictor` fits: the families compared, the folds, the hold-out."""

    kinds: tuple[str, ...] = CANDIDATE_KINDS  # model families compared by cross-validation
    folds: int = 5
    test_fraction: float = 0.2  # architectures held out from selection and fitting
    seed: int = 0
    seq_len: int | None = None  # None: the one the device key names (128 if it names none)
    configs: dict | None = None  # kind -> hyper-parameters, e.g. {"gbt": {"n_estimators": 100}}


def fit_predictor(labels: LabelSet, config: FitConfig | None = None,
                  source: str = "") -> LatencyPredictor:
    """Fit a :class:`LatencyPredictor` for ``labels.device_key`` (``source``: where the labels
    came from, recorded in the artefact).

    ``config.test_fraction`` of the architectures is held out and never seen by selection or
    fitting; the rest is split into ``config.folds`` for cross-validation of every kind in
    ``config.kinds``. The kind with the lowest CV MAPE is chosen (the cheapest to predict among
    those within 2 % of it, see :func:`choose_kind`); all kinds are refitted on the
    whole training part and scored on the held-out part (all scores go in the artefact).
    """
    config = _checked(labels, config or FitConfig())
    kinds, folds, seed, seq_len = config.kinds, config.folds, config.seed, config.seq_len
    configs = config.configs or {}
    rng = np.random.default_rng(seed)
    # hold out whole architectures: fold 0 of a 1/test_fraction split
    if config.test_fraction > 0:
        test = group_folds(labels.archs, max(2, round(1 / config.test_fraction)), rng) == 0
    else:
        test = np.zeros(len(labels), bool)
    train_labels, test_labels = labels.subset(np.flatnonzero(~test)), labels.subset(np.flatnonzero(test))
    check_labels(train_labels)
    cv = cross_validate(train_labels, kinds, folds, seed, seq_len, configs) if len(kinds) > 1 else {}
    chosen = choose_kind(cv) if cv else kinds[0]
    log.info("chose %s by %d-fold cross-validation on %d measurements", chosen, folds, len(train_labels))
    log_ms = np.log(train_labels.latency_ms)
    models, heldout = {}, {}
    for kind in kinds:
        t0 = time.perf_counter()
        models[kind] = _fit_one(kind, train_labels.archs, log_ms, seq_len, rng, configs)
        if kind in cv:
            cv[kind]["fit_s_full"] = time.perf_counter() - t0
        if len(test_labels):
            heldout[kind] = label_metrics(models[kind].predict_log(test_labels.archs), test_labels)
    pred = LatencyPredictor(
        device_key=labels.device_key, model=models[chosen], bert_base_ms=float(labels.bert_base_ms),
        protocol_version=int(labels.protocol_version), space_info=infer_space(labels.archs),
        seq_len=seq_len, chosen=chosen, models=models, cv_scores=cv, heldout_metrics=heldout,
        metrics=heldout.get(chosen, {}),
        training={"hash": labels.content_hash(), "n": len(labels), "n_train": len(train_labels),
                  "n_test": len(test_labels), "seed": seed, "folds": folds,
                  "test_fraction": config.test_fraction, "source": source},
        heldout={"archs": test_labels.archs, "measured_ms": test_labels.latency_ms,
                 "measured_speedup": test_labels.speedup},
        created_at=time.time(),
    )
    _log_heldout(pred.metrics)
    return pred


def _checked(labels: LabelSet, config: FitConfig) -> FitConfig:
    """``config`` with its kinds as a tuple and its sequence length filled in, checked."""
    check_labels(labels)
    kinds = tuple(config.kinds)
    unknown = set(kinds) - set(CANDIDATE_KINDS)
    if not kinds or unknown:
        raise PredictorError(f"unknown model kinds {sorted(unknown)}",
                             hint="choose from: " + ", ".join(CANDIDATE_KINDS))
    if not 0.0 <= config.test_fraction < 0.9:
        raise PredictorError(f"test_fraction={config.test_fraction} must be in [0, 0.9)")
    return replace(config, kinds=kinds, seq_len=config.seq_len or seq_len_from_key(labels.device_key))


def _log_heldout(m: dict) -> None:
    if m:
        log.info("held-out (%d archs): latency MAPE %.2f%%, within 5%% %.1f%%, within 10%% %.1f%%, "
                 "tau %.3f; speedup MAPE %.2f%%", m["n"], 100 * m["mape"], 100 * m["within_5"],
                 100 * m["within_10"], m["kendall_tau"], 100 * m["speedup_mape"])


def evaluate_predictor(pred: LatencyPredictor, labels: LabelSet,
                       allow_other_device: bool = False) -> dict:
    """Both metric families of ``pred`` on ``labels`` (keys
    :data:`~atb.predictor.metrics.PREDICTION_KEYS`, fractions 0..1 except ``rmse_ms``).

    Labels of another device key are refused unless ``allow_other_device``. Predicted
    speedups are :meth:`LatencyPredictor.predict_speedup` (the training session's BERT-base
    latency over the predicted latency), compared with the labels' own speedups.
    """
    from atb.errors import DeviceKeyMismatchError

    if labels.device_key != pred.device_key and not allow_other_device:
        raise DeviceKeyMismatchError(
            f"predictor is for device key {pred.device_key}, labels are for {labels.device_key}")
    log_ms = pred.predict_log_ms(labels.archs)
    return prediction_metrics(np.exp(log_ms), labels.latency_ms,
                              pred.bert_base_ms * np.exp(-log_ms), labels.speedup)


# Within one store every label is scaled by one anchor (the reference's median in the device
# key's first run) and BERT-base is timed to <= 0.25 %, so the labels' BERT-base latency moves
# far less than 1 % as the store grows; two stores of one device key profiled minutes apart
# differed by 8 % (90.3 vs 83.3 ms).
SESSION_TOLERANCE = 0.01


def session_check(pred: LatencyPredictor, labels: LabelSet) -> dict:
    """Whether ``labels`` come from the profiling session ``pred`` was fitted on.

    They do when the device key and profiler protocol version match and the labels'
    BERT-base latency is within :data:`SESSION_TOLERANCE` (relative) of the one recorded in
    the artefact (the training labels'). Otherwise latency errors include the drift between
    sessions, and the speedup errors are the ones to read. Returns ``same_session``,
    ``session_note`` (why not, or None), both BERT-base latencies and their relative shift.
    """
    shift = labels.bert_base_ms / pred.bert_base_ms - 1.0
    if labels.device_key != pred.device_key:
        note = f"labels are for device key {labels.device_key}, the predictor for {pred.device_key}"
    elif labels.protocol_version != pred.protocol_version:
        note = (f"labels were measured with profiler protocol {labels.protocol_version}, "
                f"the predictor's training labels with {pred.protocol_version}")
    elif not abs(shift) <= SESSION_TOLERANCE:  # NaN (no BERT-base timing) is not a match either
        note = (f"BERT-base {labels.bert_base_ms:.2f} ms in these labels vs "
                f"{pred.bert_base_ms:.2f} ms in the training labels ({100 * shift:+.1f}%)")
    else:
        note = None
    return {"same_session": note is None, "session_note": note,
            "bert_base_ms_labels": float(labels.bert_base_ms),
            "bert_base_ms_predictor": float(pred.bert_base_ms), "bert_base_shift": float(shift)}
