"""The workspace's predictor: load it, or fit/refresh it from the latency store.

``atb-predictor predict`` and ``atb-search`` call :func:`load_or_fit`: a predictor that is
missing, or older than the newest measurement in the store, is (re)fitted and saved under
``workspace.predictors_dir`` with a message saying so.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from atb.errors import MissingInputError, PredictorError
from atb.predictor.artefact import artefact_name
from atb.predictor.predictor import LatencyPredictor
from atb.workspace import Workspace

logger = logging.getLogger("atb.predictor")


def predictor_path(workspace: Workspace, device_key: str) -> Path:
    return workspace.predictors_dir / artefact_name(device_key)


def open_store(workspace: Workspace):
    """The workspace's latency store, read-only (MissingInputError when there is none)."""
    if not workspace.store_path.is_file():
        raise MissingInputError(f"no latency store in workspace {workspace.root}",
                                hint="measure latencies first with atb-profile")
    try:
        from atb.profiler.store import LatencyStore
    except ImportError as exc:  # the profiler is a sibling package; say what is missing
        raise MissingInputError(f"the latency store module is unavailable: {exc}") from exc
    return LatencyStore.open(workspace.store_path, readonly=True)


ANCHOR_TOLERANCE = 0.002  # a pooled anchor that moved less is left alone


def _follow_anchor(pred: LatencyPredictor, store, path: Path, say: Callable[[str], None]) -> LatencyPredictor:
    """``pred`` on the key's current BERT-base anchor (saved), when later runs moved it.

    No training label changed, but a run of any kind (a search's verification too) adds anchor
    points, and under protocol 4 every speedup of the key follows the pooled anchor: at one
    thread it moved 3.1% between a 2-minute first run and the next 30 minutes on our VM.
    """
    current = store.labels(pred.device_key).bert_base_ms
    if abs(current / pred.bert_base_ms - 1) <= ANCHOR_TOLERANCE:
        return pred
    say(f"the BERT-base anchor of {pred.device_key} moved from {pred.bert_base_ms:.2f} to {current:.2f} ms "
        f"({100 * (current / pred.bert_base_ms - 1):+.1f}%) since the predictor was fitted; its speedups follow it")
    moved = pred.reanchored(current)
    moved.save(path)
    return moved


def load_or_fit(workspace: Workspace | str | None = None, device_key: str | None = None,
                log: Callable[[str], None] | None = None, config=None) -> LatencyPredictor:
    """The workspace's predictor for ``device_key``; fitted (and saved) when missing or stale,
    as ``config`` (an :class:`~atb.predictor.fit.FitConfig`; default: its defaults) says.

    Stale means the store holds a measurement newer than the labels the predictor was
    fitted on. ``log`` receives the message saying a fit happens (default: logging INFO).
    """
    from atb.predictor.fit import fit_predictor
    from atb.profiler.labels import label_sources

    say = log or logger.info
    ws = Workspace.of(workspace)
    with open_store(ws) as store:
        key = store.choose_device_key(device_key)
        # verification labels (a search's re-measured top-k) are not training data: they
        # do not make the predictor stale
        last = float(store.last_modified(key, roles=label_sources()))
        path = predictor_path(ws, key)
        if path.is_file():
            try:
                pred = LatencyPredictor.load(path, device_key=key)
            except PredictorError as exc:  # a damaged artefact is rebuilt, not fatal
                say(f"predictor for {key} is unreadable ({exc}); refitting it")
            else:
                if pred.store_last_modified is not None and pred.store_last_modified >= last:
                    return _follow_anchor(pred, store, path, say)
                say(f"predictor for {key} is older than the latency store; refitting it")
        else:
            say(f"no predictor for {key} in {ws.root}; fitting one from the latency store")
        labels = store.labels(key)
    pred = fit_predictor(labels, config, source=str(ws.store_path))
    pred.store_last_modified = last
    pred.save(path)
    say(f"fitted predictor for {key} ({pred.chosen}, held-out MAPE "
        f"{100 * pred.metrics.get('mape', float('nan')):.2f}%) saved to {path}")
    return pred
