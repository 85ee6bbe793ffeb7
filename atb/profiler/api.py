"""The profiler's library API: what ``atb-profile`` calls, and what the search calls to
re-measure its results.

The profiler knows nothing of the latency predictor. Uncertainty sampling needs one, so the
caller hands in the ranking as a plain function (``propose``); ``atb.compose.profile`` hands
in the predictor's committee.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import numpy as np

from atb.arch import Arch, get_space
from atb.devices import DeviceSetting, setting_from_key
from atb.errors import DeviceKeyMismatchError, MissingInputError, UsageError
from atb.profiler.drift import corrected_rows
from atb.profiler.labels import VERIFICATION_SOURCE, LabelSet, write_csv
from atb.profiler.sampling import plan_uncertain, plan_uniform
from atb.profiler.session import ProfileReport, results_of_run, run_profile
from atb.profiler.store import LatencyStore
from atb.profiler.timing import TimingRule
from atb.workspace import Workspace

log = logging.getLogger("atb.profiler")
STRATEGIES = ("uniform", "uncertainty")

# propose(labels so far, candidate archs (n, 5), how many, rng) -> indices into candidates
Propose = Callable[[LabelSet, np.ndarray, int, np.random.Generator], np.ndarray]


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
    propose: Propose | None = None,
    role: str | None = None,
    rule: TimingRule | None = None,
    careful_rule: TimingRule | None = None,
    device: str = "cpu",
) -> ProfileReport:
    """Time archs on this CPU into the workspace store and return drift-corrected results.

    Either ``samples=N`` (the store ends up holding N sampled archs of ``space`` -- of the
    ``super_config`` supernet, ``base`` by default -- for this device key; a re-run continues
    where the last one stopped) or ``archs=[...]`` (time exactly these, inside the space or
    not, e.g. BERT-rule baselines). ``strategy="uncertainty"`` picks sampled archs where
    ``propose`` (refitted on the labels measured so far) is least sure, after a uniform warm
    start; ``atb.compose.profile`` supplies the latency predictor's committee.
    ``rule``/``careful_rule`` override the timing rules (see :mod:`atb.profiler.timing`).
    """
    if (samples is None) == (archs is None):
        raise UsageError("give either a number of samples or a list of archs to time")
    if samples is not None and samples < 0:
        raise UsageError(f"--samples must be at least 0 (got {samples})")
    if strategy not in STRATEGIES:
        raise UsageError(f"unknown strategy {strategy!r}", hint=f"use one of: {', '.join(STRATEGIES)}")
    if strategy == "uncertainty" and samples is not None and propose is None:
        raise UsageError("uncertainty sampling needs a ranking function (propose=...)",
                         hint="call atb.compose.profile, which hands in the latency predictor's")
    setting = _setting(backend, threads, precision, seq_len, device)
    return _profile(Workspace.of(workspace), setting, samples=samples, archs=archs, space=space,
                    super_config=super_config, seed=seed, strategy=strategy, propose=propose,
                    role=role, rule=rule, careful_rule=careful_rule)


def _profile(ws: Workspace, setting: DeviceSetting, *, samples, archs, space="pretrain",
             super_config="base", seed=0, strategy="uniform", propose=None, role=None, rule=None,
             careful_rule=None) -> ProfileReport:
    """:func:`profile` for a resolved setting."""
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
                ranked = _uncertainty_proposer(store, key, seed, propose)
                batches = plan_uncertain(search_space, seed, need, done, ranked)
            expected, role, todo = need, "sampled", None
        run, timed, errors = run_profile(
            store, setting, batches, role, expected, space=search_space.name,
            rule=rule, careful_rule=careful_rule, seed=seed,
        )
        results, bert = results_of_run(store, key, run.run_id, todo if todo is not None else timed, errors)
        total = len(store.sampled_archs(key))
    return ProfileReport(key, run.run_id, total, run.stats.archs, bert, results, run.stats.to_dict())


def setting_for_key(device_key: str, **flags) -> DeviceSetting:
    """The setting that times under exactly ``device_key`` on this machine.

    ``flags`` (``backend``, ``threads``, ``precision``, ``seq_len``; None = not given) must
    agree with the key. Raises ``DeviceKeyMismatchError`` when this machine, or the version of
    the key's backend library here, gives the same setting another key: timings taken here
    would not be labels of ``device_key``.
    """
    named = setting_from_key(device_key)
    for name, value in flags.items():
        if value is not None and value != getattr(named, name):
            raise DeviceKeyMismatchError(
                f"{name} {value} contradicts device key {device_key} ({name} {getattr(named, name)})",
                hint="re-measurement always uses the key's own setting; leave the flag out",
            )
    here = named.resolve()
    if here.key() != device_key:
        raise DeviceKeyMismatchError(
            f"this machine times the setting of {device_key} under another key, {here.key()} "
            "(another CPU or another version of its backend library)",
            hint="profile and fit a predictor on this machine (atb-profile, atb-predictor fit)",
        )
    return here


def profile_archs(
    archs: list[Arch | str],
    workspace: Workspace | str | Path | None = None,
    backend: str | None = None,
    threads: int | None = None,
    precision: str | None = None,
    seq_len: int | None = None,
    source: str = VERIFICATION_SOURCE,
    *,
    device_key: str | None = None,
) -> ProfileReport:
    """Re-measure ``archs`` (e.g. a search's top-k) and add them to the store as ``source``.

    With ``device_key`` the archs are timed under exactly that key (the predictor's), and a
    setting flag that contradicts it, or a machine that gives the setting another key, is a
    ``DeviceKeyMismatchError``; nothing is timed then. Without it the flags choose the setting
    (defaults: onnxruntime, physical cores, fp32, 128 tokens).
    """
    ws = Workspace.of(workspace)
    if device_key is not None:
        setting = setting_for_key(device_key, backend=backend, threads=threads, precision=precision,
                                  seq_len=seq_len)
    else:
        setting = _setting(backend or "onnxruntime", threads, precision or "fp32", seq_len or 128)
    report = _profile(ws, setting, samples=None, archs=archs, role=source)
    if device_key is not None and report.device_key != device_key:  # setting_for_key rules it out
        raise DeviceKeyMismatchError(f"timed under {report.device_key}, not {device_key}")
    return report


def export_csv(workspace: Workspace | str | Path | None, out: str | Path, device_key: str | None = None) -> dict:
    """Write the drift-corrected labels (every device key, or one) to a CSV file."""
    ws = Workspace.of(workspace, create=False)
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


def _uncertainty_proposer(store: LatencyStore, key: str, seed: int, propose: Propose):
    """``ranked(candidates, n)`` for :func:`plan_uncertain`: ``propose`` on the training
    labels measured so far (re-read per batch, so each batch sees the previous ones)."""
    rng = np.random.default_rng(seed)

    def ranked(candidates: np.ndarray, n: int) -> np.ndarray:
        try:
            labels = LabelSet.from_store(store, key)
        except MissingInputError:  # nothing measured yet (all failed): pick uniformly
            return rng.permutation(len(candidates))[:n]
        return propose(labels, candidates, n, rng)

    return ranked
