"""A profiling run: BERT-base at both ends and every minute, archs in interleaved groups.

The flow of one run (see :mod:`atb.profiler.drift` for why):

1. take the host lock (one timer per machine) and open a run in the store;
2. time BERT-base interleaved with the reference, carefully (an *anchor point*);
3. re-time the sentinels of earlier runs (:mod:`atb.profiler.repeatability`), if any;
4. time the archs in random order, in groups of ``group_size`` loaded together and timed in
   alternating bursts with the reference (:func:`atb.profiler.timing.measure_group`); each
   group's measurements are committed as soon as the group is done; every
   ``ANCHOR_EVERY_S`` another, shorter anchor point; on a key's first run, a few of the run's
   own archs re-timed as sentinels once it has timed ``SENTINEL_AFTER`` (or at the end);
5. time BERT-base with the reference again, carefully.

An arch whose backend raises while it is loaded or timed is stored as failed with its reason
("load failed: ..." / "timing failed: ..."), dropped from its group, and the run goes on; so
is an arch too large for the shared weight pool ("too large to build: ...", decided before its
graph is built: :func:`~atb.profiler.onnx_builder.pool_overflow`). A failed arch is not
retried on resume. The reference model or BERT-base failing is no arch's
failure: the run stops with a :class:`~atb.errors.BackendFailedError`. That, Ctrl-C or a crash
keeps everything committed and loses at most the group in flight.
"""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from atb.arch import BERT_BASE, Arch
from atb.devices import DeviceSetting, Fingerprint, fingerprint, get_backend, setting_from_key
from atb.errors import AtbError, BackendFailedError, NothingMeasuredError
from atb.profiler.drift import corrected_rows
from atb.profiler.lock import HostLock
from atb.profiler.onnx_builder import pool_overflow
from atb.profiler.onnx_graph import default_pool, example_inputs, graph_for
from atb.profiler.repeatability import SENTINEL_ROLE, read_steal, steal_share
from atb.profiler.rows import MeasurementRecord, RunHeader, StoreSink
from atb.profiler.store import LatencyStore
from atb.profiler.timing import (
    NOISY_IQR, PROTOCOL_VERSION, Measurement, TimingFailure, TimingRule, anchor_rule_from_env, describe_exception,
    measure_group, rules_from_env,
)
from atb.progress import progress

log = logging.getLogger("atb.profiler")

# the interleaved reference: small enough to visit every round (~1/15 of BERT-base's cost),
# large enough to feel what slows the archs (two-thread matrix products)
REFERENCE_ARCH = Arch(2, 384, 1536, 6, 384)
GROUP_SIZE = 4  # archs loaded and timed together; larger groups dilute the reference's share
# BERT-base between groups: the anchor is pooled over these points (drift.py); at ~2 s a point
# every minute costs ~3% of a run
ANCHOR_EVERY_S = 60.0
SENTINEL_AFTER = 100  # a key's first run re-times its own sentinels after this many archs


@dataclass(frozen=True)
class ArchResult:
    """One arch of a run: drift-corrected latency and speedup (None when it failed)."""

    arch: Arch
    latency_ms: float | None
    raw_ms: float | None
    speedup: float | None
    p10_ms: float | None = None
    p90_ms: float | None = None
    runs: int = 0
    iqr_ms: float | None = None
    error: str | None = None

    @property
    def noisy(self) -> bool:
        """IQR above 5% of the median: the label is less precise than usual."""
        return bool(self.iqr_ms and self.latency_ms and self.iqr_ms > NOISY_IQR * self.latency_ms)

    def to_dict(self) -> dict:
        d = {"arch": str(self.arch), "latency_ms": self.latency_ms, "speedup": self.speedup,
             "raw_ms": self.raw_ms, "p10_ms": self.p10_ms, "p90_ms": self.p90_ms, "runs": self.runs,
             "noisy": self.noisy}
        if self.error:
            d["error"] = self.error
        return d


@dataclass
class RunStats:
    """Where a run's wall time went (for the overhead ratio)."""

    started: float = field(default_factory=time.perf_counter)
    wall_s: float = 0.0
    timed_s: float = 0.0  # sum of every timed run (archs, reference, BERT-base)
    arch_timed_s: float = 0.0  # the archs' timed runs only
    setup_s: float = 0.0  # graph build + load
    archs: int = 0
    anchor_points: int = 0  # BERT-base timings in this run
    steal_share: float | None = None  # CPU time the hypervisor took during the run (/proc/stat)

    def to_dict(self) -> dict:
        return {
            "wall_s": self.wall_s,
            "timed_s": self.timed_s,
            "arch_timed_s": self.arch_timed_s,
            "setup_s": self.setup_s,
            "overhead_ratio": self.wall_s / self.timed_s if self.timed_s else None,
            "archs_per_hour": 3600 * self.archs / self.wall_s if self.wall_s else None,
            "anchor_points": self.anchor_points,
            "steal_share": self.steal_share,
        }


@dataclass(frozen=True)
class ProfileReport:
    device_key: str
    run_id: int
    total: int  # sampled archs the store holds for this key
    new: int  # archs timed successfully in this call
    bert_base_ms: float | None
    results: list[ArchResult]
    stats: dict
    repeatability: dict | None = None  # this run's sentinels (atb.profiler.repeatability)
    key_repeatability: dict | None = None  # every sentinel of the key under this protocol
    anchor: dict | None = None  # the key's pooled anchor (drift.AnchorEstimate)
    auto: dict | None = None  # --samples auto: checkpoints and why it stopped

    @property
    def failed(self) -> list[ArchResult]:
        return [r for r in self.results if r.error]

    def require_measured(self) -> None:
        """Raise :class:`NothingMeasuredError` (one line: the first failure's reason) when
        every arch of the report failed. ``atb-profile --arch`` calls it: nothing the user asked
        for was measured. A sampled run does not: its failures are stored and it goes on."""
        if not self.results or len(self.failed) < len(self.results):
            return
        first = self.failed[0]
        more = len(self.failed) - 1
        rest = f"; {more} more failed (--json has each reason)" if more else ""
        raise NothingMeasuredError(f"nothing measured: arch {first.arch} failed: {first.error}{rest}")

    @property
    def noisy_share(self) -> float:
        """Fraction of the timed archs whose label is flagged noisy (0 when none was timed)."""
        timed = [r for r in self.results if not r.error]
        return sum(r.noisy for r in timed) / len(timed) if timed else 0.0

    @property
    def setting(self) -> DeviceSetting:
        return setting_from_key(self.device_key)

    def to_dict(self) -> dict:
        setting = self.setting
        return {
            "device_key": self.device_key,
            "precision": setting.precision,
            "quant_scheme": setting.quant_scheme,  # null unless int8 (atb.devices.quantization)
            "run_id": self.run_id,
            "total": self.total,
            "new": self.new,
            "failed": len(self.failed),
            "noisy_share": self.noisy_share,
            "bert_base_ms": self.bert_base_ms,
            "results": [r.to_dict() for r in self.results],
            "stats": self.stats,
            "repeatability": self.repeatability,
            "key_repeatability": self.key_repeatability,
            "anchor": self.anchor,
            "auto": self.auto,
        }


@dataclass(frozen=True)
class RunProtocol:
    """How a run times: its rules (None: this process's, ``ATB_TIMING_RULE``), its reference
    model and how often BERT-base is timed again."""

    rule: TimingRule | None = None  # the archs' and the reference's
    careful_rule: TimingRule | None = None  # BERT-base's at the run's ends
    reference_arch: Arch = REFERENCE_ARCH
    anchor_every_s: float = ANCHOR_EVERY_S


class ProfilingRun:
    """Times archs for one device setting into one store run (use as a context manager)."""

    def __init__(
        self,
        store: StoreSink,
        setting: DeviceSetting,
        protocol: RunProtocol | None = None,
        seed: int = 0,
        command: str | None = None,
        machine: Fingerprint | None = None,
    ):
        # store: a LatencyStore, or another StoreSink (atb.fleet records the rows on a node and
        # ships them to the one process that writes the store)
        self.store = store
        self.machine = machine or fingerprint()  # what the device key's hash covers
        self.setting = setting.resolve(self.machine)
        self.device_key = self.setting.key(self.machine)
        self.backend = get_backend(self.setting.backend)
        protocol = protocol or RunProtocol()
        default_rule, default_careful = rules_from_env()
        self.rule = protocol.rule or default_rule
        self.careful_rule = protocol.careful_rule or default_careful
        self.reference_arch = protocol.reference_arch
        self.command = command or " ".join(sys.argv)
        self.inputs = example_inputs(self.setting.seq_len, self.setting.batch)
        self.rng = np.random.default_rng(seed)
        self.stats = RunStats()
        self.run_id: int | None = None
        self._lock = HostLock(self.command)
        self._reference_runner = None
        self._bert_runner = None  # loaded once, timed at every anchor point
        self.anchor_every_s = protocol.anchor_every_s
        self.anchor_rule = anchor_rule_from_env()
        self._last_anchor = time.perf_counter()
        self._steal_before = read_steal()

    # -- life cycle -----------------------------------------------------------------------
    def __enter__(self) -> "ProfilingRun":
        self._lock.__enter__()
        try:
            with self._stops_the_run(f"the reference model {self.reference_arch}"):
                self._reference_runner = self._load(self.reference_arch)[0]
            self.run_id = self.store.begin_run(RunHeader(
                self.device_key, self.setting.record(), self.machine.to_dict(), PROTOCOL_VERSION,
                self.rule.to_dict(), str(self.reference_arch), self.command,
            ))
            self._time_bert_base(self.careful_rule)
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:  # after Ctrl-C or a crash, end at once: all is committed
                self._time_bert_base(self.careful_rule)
        finally:
            self._close()

    def _close(self) -> None:
        for runner in (self._reference_runner, self._bert_runner):
            if runner is not None:
                runner.close()
        self._reference_runner = self._bert_runner = None
        self.stats.wall_s = time.perf_counter() - self.stats.started
        self.stats.steal_share = steal_share(self._steal_before, read_steal())
        self._lock.__exit__(None, None, None)

    # -- timing ---------------------------------------------------------------------------
    def _load(self, arch: Arch):
        """Build the arch's graph and load it; returns (runner, setup seconds)."""
        t0 = time.perf_counter()
        graph: Path | None = None
        if self.backend.uses_onnx:
            pool = default_pool()
            graph = pool.save(graph_for(arch, self.setting, pool), f"atb-{arch}-{id(self)}")
        try:
            runner = self.backend.load(arch, graph, self.setting, self.inputs)
        finally:
            if graph is not None:
                graph.unlink(missing_ok=True)  # the runtime holds the model now
        setup = time.perf_counter() - t0
        self.stats.setup_s += setup
        return runner, setup

    def _measure(self, runners: list, rule: TimingRule) -> list[Measurement | TimingFailure]:
        """Time ``runners`` interleaved with the reference; commit the reference's timing.

        A runner that raises is dropped (a :class:`TimingFailure` in its place); the
        reference raising stops the run.
        """
        with self._stops_the_run(f"the reference model {self.reference_arch}"):
            results, ref = measure_group([r.run for r in runners], self._reference_runner.run, rule, self.rng,
                                         drop_failing=True)
        self.store.add(self._record(self.reference_arch, "reference", ref))
        self.stats.timed_s += ref.timed_s + sum(m.timed_s for m in results if isinstance(m, Measurement))
        return results

    def _time_bert_base(self, rule: TimingRule) -> None:
        """One anchor point: BERT-base timed with the reference under ``rule``."""
        what = f"BERT-base ({BERT_BASE})"
        setup = None
        if self._bert_runner is None:
            with self._stops_the_run(what):
                self._bert_runner, setup = self._load(BERT_BASE)
        (m,) = self._measure([self._bert_runner], rule)
        if isinstance(m, TimingFailure):
            raise self._run_failure(what, m.exception) from m.exception
        self.store.add(self._record(BERT_BASE, "bert_base", m, setup_s=setup))
        self.stats.anchor_points += 1
        self._last_anchor = time.perf_counter()
        log.debug("BERT-base: %.2f ms raw", m.median_ms)

    def anchor_if_due(self) -> None:
        """An anchor point between groups once ``anchor_every_s`` passed since the last."""
        if time.perf_counter() - self._last_anchor >= self.anchor_every_s:
            self._time_bert_base(self.anchor_rule)


    def time_group(self, archs: list[Arch], role: str, space: str | None = None) -> dict[Arch, Measurement | str]:
        """Time a few archs together and commit them.

        An exception from the backend while an arch is loaded or timed is that arch's failure:
        it is committed with its reason and the rest of the group is timed and committed as
        usual. Returns each arch's measurement, or the error text for an arch that failed.
        """
        self.anchor_if_due()
        loaded, outcome = [], {}
        try:
            for arch in archs:
                started = time.time()
                if self.backend.uses_onnx and (reason := pool_overflow(arch)):  # no graph to load
                    outcome[arch] = self._store_failure(arch, role, space, reason, started)
                    continue
                try:
                    runner, setup = self._load(arch)
                except Exception as exc:  # whatever the library raises; Ctrl-C is no Exception
                    outcome[arch] = self._store_failure(arch, role, space, f"load failed: {describe_exception(exc)}",
                                                        started)
                    continue
                loaded.append((arch, runner, setup))
            if loaded:
                started = time.time()
                results = self._measure([r for _, r, _ in loaded], self.rule)
                for (arch, _, setup), m in zip(loaded, results):
                    if isinstance(m, TimingFailure):  # its runs so far are discarded
                        outcome[arch] = self._store_failure(arch, role, space, f"timing failed: {m.reason}",
                                                            started, setup)
                        continue
                    self.store.add(self._record(arch, role, m, space=space, setup_s=setup))
                    self.stats.arch_timed_s += m.timed_s
                    self.stats.archs += role != SENTINEL_ROLE  # a re-timing adds no arch
                    outcome[arch] = m
        finally:
            for _, runner, _ in loaded:
                runner.close()
        return outcome

    def time_groups(self, archs: list[Arch], role: str, space: str | None = None,
                    group_size: int = GROUP_SIZE) -> Iterator[tuple[list[Arch], dict[Arch, Measurement | str]]]:
        """:meth:`time_group` over ``archs`` in groups of ``group_size`` (labels and sentinels
        alike, so both are timed under the same conditions); yields each group and its outcome."""
        for i in range(0, len(archs), group_size):
            group = archs[i : i + group_size]
            yield group, self.time_group(group, role, space)

    # -- failures -------------------------------------------------------------------------
    def _store_failure(self, arch: Arch, role: str, space: str | None, error: str, started: float,
                       setup: float | None = None) -> str:
        """Commit ``arch`` as failed with its reason (a sampled one is not retried on resume)."""
        log.warning("arch %s failed: %s", arch, error)
        self.store.add(self._record(arch, role, space=space, error=error, setup_s=setup, started_at=started))
        return error

    def _record(self, arch: Arch, role: str, measurement: Measurement | None = None, **fields) -> MeasurementRecord:
        """A record of this run and device key under the current protocol."""
        return MeasurementRecord(self.run_id, self.device_key, str(arch), role, PROTOCOL_VERSION, measurement,
                                 **fields)

    @contextmanager
    def _stops_the_run(self, what: str):
        """The reference or BERT-base failing is no arch's failure: every speedup needs them."""
        try:
            yield
        except AtbError:  # already one line (e.g. a library that cannot load the graph)
            raise
        except Exception as exc:
            raise self._run_failure(what, exc) from exc

    def _run_failure(self, what: str, exc: Exception) -> BackendFailedError:
        return BackendFailedError(
            f"the {self.setting.backend} backend failed on {what}: {describe_exception(exc)}",
            hint="the archs timed so far are stored; run the same command again to continue",
        )


def results_of_run(store: LatencyStore, device_key: str, run_id: int, archs: Iterable[Arch],
                   errors: dict[Arch, str]) -> tuple[list[ArchResult], float | None]:
    """Drift-corrected results of ``archs`` in one run (latest timing of each), and BERT-base."""
    rows = {r["arch"]: r for r in corrected_rows(store, device_key, run_id=run_id)}
    results, bert = [], None
    for arch in archs:
        row = rows.get(str(arch))
        if row is None:
            results.append(ArchResult(arch, None, None, None, error=errors.get(arch, "not timed")))
            continue
        bert = row["bert_base_ms"]
        results.append(ArchResult(arch, row["latency_ms"], row["raw_ms"], row["speedup"],
                                  row["p10_ms"], row["p90_ms"], row["runs"], row["iqr_ms"]))
    if bert is None:
        finite = [r["bert_base_ms"] for r in rows.values() if np.isfinite(r["bert_base_ms"])]
        bert = finite[0] if finite else None
    return results, bert


@dataclass(frozen=True)
class Sentinels:
    """The archs a run re-times (role ``sentinel``) to measure its labels' repeatability."""

    earlier: tuple[Arch, ...] = ()  # first timed in an earlier run: re-timed at the start
    own: int = 0  # without earlier ones: this many of the run's own archs, re-timed later


@dataclass(frozen=True)
class RunPlan:
    """What :func:`run_profile` stores its archs as, and what it times besides them."""

    role: str  # of the batches' archs: sampled, requested, verify
    expected: int  # archs the progress bar counts on
    space: str | None = None  # the space the archs were sampled from (stored with them)
    sentinels: Sentinels = Sentinels()
    group_size: int = GROUP_SIZE
    desc: str = "profiling"  # the progress bar's


def run_profile(store: StoreSink, setting: DeviceSetting, batches: Iterable[list[Arch]],
                plan: RunPlan, protocol: RunProtocol | None = None,
                seed: int = 0) -> tuple[ProfilingRun, list[Arch], dict[Arch, str]]:
    """Time every arch of ``batches`` (lists, so a strategy can pick each batch after seeing
    the previous ones) in one run, with a progress bar; returns the run, archs, errors.

    ``plan.sentinels``: the earlier runs' archs are re-timed first; a run's own ones once it
    has timed :data:`SENTINEL_AFTER` archs (before the next batch is asked for, so a stopping
    rule sees the figure), or at its end.
    """
    timed: list[Arch] = []
    errors: dict[Arch, str] = {}
    sentinels, role, space, group_size = plan.sentinels, plan.role, plan.space, plan.group_size
    pending = sentinels.own
    with ProfilingRun(store, setting, protocol, seed) as run, \
            progress(plan.expected, plan.desc, "arch") as bar:
        for _ in run.time_groups(list(sentinels.earlier), SENTINEL_ROLE, space, group_size):
            pass
        for batch in batches:
            for group, outcome in run.time_groups(batch, role, space, group_size):
                for arch, result in outcome.items():
                    if isinstance(result, str):
                        errors[arch] = result
                    else:
                        bar.set_postfix_str(f"{arch} {result.median_ms:.2f} ms", refresh=False)
                timed.extend(group)
                bar.update(len(group))
            if pending and len(timed) >= SENTINEL_AFTER:
                _retime_own(run, timed, errors, pending, space, group_size)
                pending = 0
        if pending:
            _retime_own(run, timed, errors, pending, space, group_size)
    return run, timed, errors


def _retime_own(run: ProfilingRun, timed: list[Arch], errors: dict[Arch, str], n: int, space: str | None,
                group_size: int) -> None:
    """Re-time ``n`` archs of the first half of the run (the longest gap to their first
    timing) as sentinels."""
    pool = [a for a in timed[: max(1, len(timed) // 2)] if a not in errors]
    if pool:
        chosen = run.rng.choice(len(pool), size=min(n, len(pool)), replace=False)
        for _ in run.time_groups([pool[i] for i in sorted(chosen)], SENTINEL_ROLE, space, group_size):
            pass
