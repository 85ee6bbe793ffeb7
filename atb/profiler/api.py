"""The profiler's library API: what ``atb-profile`` calls, and what the search calls to
re-measure its results."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from atb.arch import Arch, get_space
from atb.devices import DeviceSetting
from atb.errors import MissingInputError, UsageError
from atb.profiler.drift import corrected_rows
from atb.profiler.labels import write_csv
from atb.profiler.sampling import plan_uncertain, plan_uniform
from atb.profiler.session import ProfileReport, results_of_run, run_profile
from atb.profiler.store import LatencyStore
from atb.profiler.timing import TimingRule
from atb.workspace import Workspace

log = logging.getLogger("atb.profiler")
STRATEGIES = ("uniform", "uncertainty")


def _setting(backend: str, threads: int | None, precision: str, seq_len: int, device: str = "cpu"):
    return DeviceSetting(device, backend, threads or 0, precision, seq_len, 1).resolve()


def profile(
    workspace: Workspace | str | Path | None = None,
    *,
    samples: int | None = None,
    archs: list[Arch | str] | None = None,
    backend: str = "onnxruntime",
    threads: int | None = None,
    precision: str = "fp32",
    seq_len: int = 128,
    space: str = "pretrain",
    super_config: str = "base",
    seed: int = 0,
    strategy: str = "uniform",
    role: str | None = None,
    rule: TimingRule | None = None,
    careful_rule: TimingRule | None = None,
    device: str = "cpu",
) -> ProfileReport:
    """Time archs on this CPU into the workspace store and return drift-corrected results.

    Either ``samples=N`` (the store ends up holding N sampled archs of ``space`` -- of the
    ``super_config`` supernet, ``base`` by default -- for this device key; a re-run continues where the last one stopped) or ``archs=[...]`` (time exactly these,
    inside the space or not, e.g. BERT-rule baselines). ``strategy="uncertainty"`` picks sampled
    archs where the current latency predictor is least sure (after a uniform warm start).
    ``rule``/``careful_rule`` override the timing rules (see :mod:`atb.profiler.timing`).
    """
    if (samples is None) == (archs is None):
        raise UsageError("give either a number of samples or a list of archs to time")
    if samples is not None and samples < 0:
        raise UsageError(f"--samples must be at least 0 (got {samples})")
    if strategy not in STRATEGIES:
        raise UsageError(f"unknown strategy {strategy!r}", hint=f"use one of: {', '.join(STRATEGIES)}")
    ws = workspace if isinstance(workspace, Workspace) else Workspace.resolve(workspace)
    setting = _setting(backend, threads, precision, seq_len, device)
    key = setting.key()
    search_space = get_space(space, super_config)
    with LatencyStore.open(ws.store_path) as store:
        if archs is not None:
            todo = [a if isinstance(a, Arch) else Arch.parse(a) for a in archs]
            order = list(np.random.default_rng(seed).permutation(len(todo)))
            batches, expected, role = [[todo[i] for i in order]], len(todo), role or "requested"
        else:
            done = store.sampled_archs(key)
            need = samples - len(done)
            if need <= 0:
                log.info("the store already holds %d sampled archs for %s; nothing to time", len(done), key)
                return _nothing_to_do(store, key, len(done))
            if strategy == "uniform":
                batches = [plan_uniform(search_space, seed, need, done)]
            else:
                batches = plan_uncertain(search_space, seed, need, done, _uncertainty_proposer(store, key, seed))
            expected, role, todo = need, "sampled", None
        run, timed, errors = run_profile(
            store, setting, batches, role, expected, space=search_space.name,
            rule=rule, careful_rule=careful_rule, seed=seed,
        )
        results, bert = results_of_run(store, key, run.run_id, todo if todo is not None else timed, errors)
        total = len(store.sampled_archs(key))
    return ProfileReport(key, run.run_id, total, run.stats.archs, bert, results, run.stats.to_dict())


def profile_archs(
    archs: list[Arch | str],
    workspace: Workspace | str | Path | None = None,
    backend: str = "onnxruntime",
    threads: int | None = None,
    precision: str = "fp32",
    seq_len: int = 128,
    source: str = "verify",
) -> ProfileReport:
    """Re-measure ``archs`` (e.g. a search's top-k) and add them to the store."""
    return profile(workspace, archs=archs, backend=backend, threads=threads, precision=precision,
                   seq_len=seq_len, role=source)


def export_csv(workspace: Workspace | str | Path | None, out: str | Path, device_key: str | None = None) -> dict:
    """Write the drift-corrected labels (every device key, or one) to a CSV file."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace.resolve(workspace, create=False)
    with LatencyStore.open(ws.store_path, readonly=True) as store:
        keys = [store.choose_device_key(device_key)] if device_key else list(store.device_keys())
        rows = [r for k in keys for r in corrected_rows(store, k)]
    try:
        n = write_csv(rows, out)
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from exc
    return {"path": str(out), "rows": n, "device_keys": keys}


def _nothing_to_do(store: LatencyStore, key: str, total: int) -> ProfileReport:
    try:
        bert = store.labels(key).bert_base_ms
    except Exception:  # an empty key has no BERT-base yet
        bert = None
    return ProfileReport(key, -1, total, 0, bert, [], {})


def _uncertainty_proposer(store: LatencyStore, key: str, seed: int):
    """``propose(candidates, n)`` backed by the predictor's committee, refitted per batch."""
    from atb.predictor import propose_uncertain

    rng = np.random.default_rng(seed)

    def propose(candidates: np.ndarray, n: int) -> np.ndarray:
        try:
            labels = store.labels(key)
        except MissingInputError:  # nothing measured yet (all failed): pick uniformly
            return rng.permutation(len(candidates))[:n]
        return propose_uncertain(labels, candidates, n, rng)

    return propose
