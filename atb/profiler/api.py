"""The profiler's library API: what ``atb-profile`` calls, and what the search calls to
re-measure its results.

The profiler knows nothing of the latency predictor. Uncertainty sampling needs one, so the
caller hands in the ranking as a plain function (``propose``); ``atb.compose.profile`` hands
in the predictor's committee.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from atb.arch import Arch, get_space
from atb.devices import DeviceSetting, setting_for_key
from atb.errors import DeviceKeyMismatchError, MissingInputError, UsageError
from atb.profiler.drift import anchor_estimate, corrected_rows
from atb.profiler.labels import TRAINING_SOURCES, VERIFICATION_SOURCE, LabelSet, write_csv
from atb.profiler.repeatability import Repeatability, repeatability, sentinel_count
from atb.profiler.sampling import plan_uncertain, plan_uniform
from atb.profiler.session import (ProfileReport, RunPlan, RunProtocol, Sentinels, results_of_run,
                                  run_profile)
from atb.profiler.stopping import AUTO, AUTO_FLOOR, DEFAULT_MAX_SAMPLES, AutoStop, LearningGain, plan_auto
from atb.profiler.store import LatencyStore
from atb.profiler.timing import PROTOCOL_VERSION, TimingRule
from atb.workspace import Workspace

log = logging.getLogger("atb.profiler")
STRATEGIES = ("uniform", "uncertainty")

# propose(labels so far, candidate archs (n, 5), how many, rng) -> indices into candidates
Propose = Callable[[LabelSet, np.ndarray, int, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class ProfileConfig:
    """What a profiling call times, and how: the setting and the sampling options.

    ``samples=N`` (the store ends up holding N sampled archs of ``space`` -- of the
    ``super_config`` supernet -- for the setting's device key), ``samples="auto"`` (sample
    until the predictor stops improving, at most ``max_samples``: :mod:`atb.profiler.stopping`)
    or ``archs`` (time exactly these). ``rule``/``careful_rule`` override the timing rules
    (:mod:`atb.profiler.timing`). The CLIs build it from their flags
    (``atb.profiler.cli.config_from_args``).
    """

    setting: DeviceSetting = field(default_factory=DeviceSetting)
    samples: int | str | None = None
    max_samples: int = DEFAULT_MAX_SAMPLES
    archs: tuple[Arch | str, ...] | None = None
    space: str = "pretrain"
    super_config: str = "base"
    seed: int = 0
    strategy: str = "uniform"
    rule: TimingRule | None = None
    careful_rule: TimingRule | None = None

    def __post_init__(self):
        if self.archs is not None:  # a list given: the config stays hashable and frozen
            object.__setattr__(self, "archs", tuple(self.archs))

    def check(self) -> "ProfileConfig":
        """Check the sampling options (not the setting: that needs a machine)."""
        if (self.samples is None) == (self.archs is None):
            raise UsageError("give either a number of samples or a list of archs to time")
        if isinstance(self.samples, str) and self.samples != AUTO:
            raise UsageError(f"--samples takes a number or 'auto' (got {self.samples!r})")
        if isinstance(self.samples, int) and self.samples < 0:
            raise UsageError(f"--samples must be at least 0 (got {self.samples})")
        if self.max_samples < 1:
            raise UsageError(f"--max-samples must be at least 1 (got {self.max_samples})")
        if self.samples == AUTO and self.strategy != "uniform":
            raise UsageError("--samples auto samples uniformly", hint="drop --strategy, or give --samples N")
        if self.strategy not in STRATEGIES:
            raise UsageError(f"unknown strategy {self.strategy!r}", hint=f"use one of: {', '.join(STRATEGIES)}")
        return self


@dataclass(frozen=True)
class ProfilePorts:
    """What the profiler is handed for the samplings that need the latency predictor (which
    it does not know): ``atb.compose.profile`` hands in the predictor's."""

    propose: Propose | None = None  # strategy "uncertainty": the ranking of candidates
    learning_gain: LearningGain | None = None  # samples "auto": the predictor's learning curve


def profile(config: ProfileConfig, workspace: Workspace | str | Path | None = None,
            ports: ProfilePorts | None = None) -> ProfileReport:
    """Time archs on this CPU into the workspace store and return drift-corrected results.

    What is timed is ``config`` (a :class:`ProfileConfig`): either ``samples=N`` (the store
    ends up holding N sampled archs of ``space`` -- of the ``super_config`` supernet, ``base``
    by default -- for this device key; a re-run continues where the last one stopped) or
    ``archs`` (time exactly these, inside the space or not, e.g. BERT-rule baselines).
    ``strategy="uncertainty"`` picks sampled archs where ``ports.propose`` (refitted on the
    labels measured so far) is least sure, after a uniform warm start; ``samples="auto"``
    needs ``ports.learning_gain`` (:mod:`atb.profiler.stopping`). ``atb.compose.profile``
    supplies both from the latency predictor.
    """
    config, ports = config.check(), ports or ProfilePorts()
    if config.strategy == "uncertainty" and config.samples is not None and ports.propose is None:
        raise UsageError("uncertainty sampling needs a ranking function (ProfilePorts(propose=...))",
                         hint="call atb.compose.profile, which hands in the latency predictor's")
    if config.samples == AUTO and ports.learning_gain is None:
        raise UsageError("--samples auto needs the predictor's learning curve "
                         "(ProfilePorts(learning_gain=...))",
                         hint="call atb.compose.profile, which hands it in")
    config = replace(config, setting=config.setting.resolve())
    return _profile(Workspace.of(workspace), config, ports)


def _profile(ws: Workspace, config: ProfileConfig, ports: ProfilePorts | None = None,
             role: str | None = None) -> ProfileReport:
    """:func:`profile` for a config whose setting is resolved; requested archs are stored as
    ``role`` (default ``requested``)."""
    ports = ports or ProfilePorts()
    setting, samples, seed = config.setting, config.samples, config.seed
    key = setting.key()
    search_space = get_space(config.space, config.super_config)
    auto = None
    with LatencyStore.open(ws.store_path) as store:
        if config.archs is not None:
            todo = [a if isinstance(a, Arch) else Arch.parse(a) for a in config.archs]
            order = list(np.random.default_rng(seed).permutation(len(todo)))
            batches, expected, role = [[todo[i] for i in order]], len(todo), role or "requested"
        elif samples == AUTO:
            done = store.sampled_archs(key)
            auto = AutoStop(floor=min(AUTO_FLOOR, config.max_samples), cap=config.max_samples)
            batches = plan_auto(search_space, seed, done, auto, observe=lambda: _observe(store, key),
                                gain=ports.learning_gain)
            expected, role, todo = max(auto.floor - len(done), 0), "sampled", None
        else:
            done = store.sampled_archs(key)
            need = samples - len(done)
            if need <= 0:
                log.info("the store already holds %d sampled archs for %s; nothing to time", len(done), key)
                return _nothing_to_do(store, key, len(done))
            if config.strategy == "uniform":
                batches = [plan_uniform(search_space, seed, need, done)]
            else:
                ranked = _uncertainty_proposer(store, key, seed, ports.propose)
                batches = plan_uncertain(search_space, seed, need, done, ranked)
            expected, role, todo = need, "sampled", None
        sentinels = _sentinels(store, key, seed, expected if auto is None else config.max_samples)
        plan = RunPlan(role, expected, space=search_space.name, sentinels=sentinels)
        run, timed, errors = run_profile(store, setting, batches, plan,
                                         RunProtocol(config.rule, config.careful_rule), seed)
        results, bert = results_of_run(store, key, run.run_id, todo if todo is not None else timed, errors)
        total = len(store.sampled_archs(key))
        rows = _protocol_rows(store, key)
        anchor = anchor_estimate(store, key, PROTOCOL_VERSION)
    return ProfileReport(key, run.run_id, total, run.stats.archs, bert, results, run.stats.to_dict(),
                         repeatability=_as_dict(repeatability(rows, run.run_id)),
                         key_repeatability=_as_dict(repeatability(rows)),
                         anchor=anchor.to_dict() if anchor else None,
                         auto=auto.to_dict() if auto else None)


def label_noise(store: LatencyStore, device_key: str) -> Repeatability | None:
    """How well the labels of ``device_key`` (today's protocol) repeat: every sentinel's
    difference from its first label (:mod:`atb.profiler.repeatability`); None without any."""
    return repeatability(_protocol_rows(store, device_key))


def _protocol_rows(store: LatencyStore, key: str) -> list[dict]:
    return [r for r in corrected_rows(store, key) if r["protocol_version"] == PROTOCOL_VERSION]


def _as_dict(rep: Repeatability | None) -> dict | None:
    return rep.to_dict() if rep else None


def _observe(store: LatencyStore, key: str) -> tuple[LabelSet, float | None]:
    """The key's training labels and label noise so far (the median sentinel difference), from
    one pass of the drift correction, for a ``--samples auto`` checkpoint."""
    rows = _protocol_rows(store, key)
    rep = repeatability(rows)
    return LabelSet.from_rows([r for r in rows if r["role"] in TRAINING_SOURCES], key), rep.median if rep else None


def _sentinels(store: LatencyStore, key: str, seed: int, archs_in_run: int) -> Sentinels:
    """Sentinels of a run: archs of earlier runs of the key when there are any (so the figure
    spans processes), else a few of the run's own (atb.profiler.repeatability)."""
    n = sentinel_count(archs_in_run)
    if not n:
        return Sentinels()
    pool = store.labelled_archs(key)
    if not pool:
        return Sentinels(own=n)
    rng = np.random.default_rng([seed, len(store.runs(key))])  # another set each run
    chosen = rng.choice(len(pool), size=min(n, len(pool)), replace=False)
    return Sentinels(earlier=tuple(Arch.parse(pool[i]) for i in sorted(chosen)))


def profile_archs(archs: list[Arch | str], workspace: Workspace | str | Path | None = None,
                  setting: DeviceSetting | None = None, source: str = VERIFICATION_SOURCE, *,
                  device_key: str | None = None) -> ProfileReport:
    """Re-measure ``archs`` (e.g. a search's top-k) and add them to the store as ``source``.

    With ``device_key`` the archs are timed under exactly that key (the predictor's), and a
    ``setting`` that contradicts it, or a machine that gives the setting another key, is a
    ``DeviceKeyMismatchError`` (:func:`atb.devices.setting_for_key`); nothing is timed then.
    Without it ``setting`` is timed (default: onnxruntime, physical cores, fp32, 128 tokens).
    """
    ws = Workspace.of(workspace)
    if device_key is not None:
        setting = setting_for_key(device_key, given=setting)
    else:
        setting = (setting or DeviceSetting()).resolve()
    report = _profile(ws, ProfileConfig(setting, archs=tuple(archs)), role=source)
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


def measured_speedup(workspace, arch) -> dict | None:
    """The newest drift-corrected label of ``arch`` in the workspace's latency store (any
    device key: the card names it), or None when the arch was never timed there."""
    import sqlite3

    from atb.errors import AtbError
    from atb.profiler.labels import label_sources
    from atb.profiler.store import LatencyStore
    from atb.workspace import Workspace

    ws = Workspace.of(workspace, create=False)
    if not ws.store_path.is_file():
        return None
    store = LatencyStore.open(ws.store_path, readonly=True)
    try:
        found = None
        for key in store.device_keys():
            labels = store.labels(key, roles=label_sources(include_verification=True))
            hits = [i for i, a in enumerate(labels.arch_strings()) if a == str(arch)]
            if hits:
                i = hits[-1]
                found = {"speedup": float(labels.speedup[i]), "device_key": key,
                         "latency_ms": float(labels.latency_ms[i])}
        return found
    except (AtbError, sqlite3.Error) as exc:  # a card never fails the model it describes
        log.warning("could not read %s's speedup from %s: %s", arch, ws.store_path, exc)
        return None
    finally:
        store.close()
