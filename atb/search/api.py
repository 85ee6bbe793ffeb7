"""``run_search``: the search engine behind ``atb-search``.

It checks the target against what the space can reach, runs the algorithm the registry makes
for ``--algorithm`` (:mod:`atb.search.registry`), re-measures the top-k on the device, compares
with the BERT-rule baseline under the same window, computes the Pareto front of everything
evaluated, writes the run directory's reports and returns a :class:`SearchResult`.

The engine imports no other atb package: it is handed a speedup model, a fitness, a
``measure`` function and an ``extract_model`` function (:class:`~atb.search.ports.SearchPorts`;
tests and notebooks hand in their own, ``atb.compose.search_ports`` builds the workspace's).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from atb.arch import Arch, SearchSpace
from atb.errors import DeviceKeyMismatchError, UsageError
from atb.search.algorithm import SearchProblem
from atb.search.baselines import LayerCut, RuleArch, layer_cut
from atb.search.config import SearchConfig
from atb.search.fitness_cache import SEARCH_SOURCES, Evaluator, Record
from atb.search.evolution import EvolutionConfig, WindowSearch, evolve
from atb.search.pareto import hypervolume, pareto_front
from atb.search.ports import ExtractModel, SearchPorts
from atb.search.registry import ALGORITHMS, make_algorithm
from atb.search.rerank import Reranking, depth_spread, rerank
from atb.search.run import RunDir, open_run
from atb.search.verify import Beside, Verification, verify_top_k
from atb.search.window import ACCEPT_BAND, Window, check_feasible
from atb.workspace import Workspace

log = logging.getLogger("atb.search")

__all__ = ["ALGORITHMS", "Candidate", "TargetResult", "SearchResult", "run_search", "ExtractModel",
           "SearchPorts"]


@dataclass
class Candidate:
    """One returned architecture."""

    arch: Arch
    fitness: float
    predicted_speedup: float
    measured_speedup: float | None = None

    @classmethod
    def from_record(cls, r: Record) -> "Candidate":
        return cls(Arch.parse(r.arch), r.fitness, r.predicted_speedup, r.measured_speedup)

    def to_dict(self) -> dict:
        return {"arch": str(self.arch), "fitness": self.fitness,
                "predicted_speedup": self.predicted_speedup, "measured_speedup": self.measured_speedup}


@dataclass
class TargetResult:
    """What one target got: window, accepted top-k, dropped archs, BERT-rule baseline and,
    with a task, the re-ranking (then ``top_k`` is in its order); the layer cut nearest the
    target, measured beside them."""

    window: Window
    top_k: list[Candidate]
    dropped: list[Candidate] = field(default_factory=list)
    baseline: Candidate | None = None
    reranking: Reranking | None = None
    layer_cut: LayerCut | None = None

    @property
    def best(self) -> Candidate | None:
        return self.top_k[0] if self.top_k else None

    def to_dict(self) -> dict:
        return {"window": self.window.as_dict(),
                "best": self.best.to_dict() if self.best else None,
                "top_k": [c.to_dict() for c in self.top_k],
                "dropped": [c.to_dict() for c in self.dropped],
                "baseline": self.baseline.to_dict() if self.baseline else None,
                "reranking": self.reranking.to_dict() if self.reranking else None,
                "layer_cut": self.layer_cut.to_dict() if self.layer_cut else None}


@dataclass
class SearchResult:
    """The outcome of :func:`run_search`; ``to_dict()`` is the ``atb-search --json`` object."""

    target_speedup: float
    algorithm: str
    space: str
    device_key: str
    targets: dict[float, TargetResult]  # the first one is the primary target
    evaluated: int
    run_dir: Path
    runtime_s: float
    reachable: tuple[float, float]
    verified: bool
    front: list[Candidate] = field(default_factory=list)
    hypervolume: float = 0.0
    hv_reference: tuple[float, float] | None = None
    history: list[dict] = field(default_factory=list)
    extracted: str | None = None
    config: SearchConfig | None = None  # the settings the run used (its config.json)

    @property
    def primary(self) -> TargetResult:
        return self.targets[self.target_speedup]

    @property
    def best(self) -> Candidate | None:
        return self.primary.best

    @property
    def top_k(self) -> list[Candidate]:
        return self.primary.top_k

    def to_dict(self) -> dict:
        p = self.primary
        out = {
            "target_speedup": self.target_speedup,
            "best": p.best.to_dict() if p.best else None,
            "top_k": [c.to_dict() for c in p.top_k],
            "evaluated": self.evaluated,
            "run_dir": str(self.run_dir),
            "algorithm": self.algorithm,
            "space": self.space,
            "device_key": self.device_key,
            "window": p.window.as_dict(),
            "accept_band": list(ACCEPT_BAND),
            "reachable": list(self.reachable),
            "verified": self.verified,
            "dropped": [c.to_dict() for c in p.dropped],
            "baselines": [p.baseline.to_dict()] if p.baseline else [],
            "layer_cut": p.layer_cut.to_dict() if p.layer_cut else None,
            "runtime_s": self.runtime_s,
            "history": self.history,
            "front": [c.to_dict() for c in self.front],
            "hypervolume": self.hypervolume,
            "hv_reference": list(self.hv_reference) if self.hv_reference else None,
            "extracted": self.extracted,
            "config": self.config.to_dict() if self.config else None,
            "reranking": p.reranking.to_dict() if p.reranking else None,
        }
        if len(self.targets) > 1:
            out["targets"] = list(self.targets)
            out["per_target"] = {f"{t:g}": r.to_dict() for t, r in self.targets.items()}
        return out


def _resolve_space(cfg: SearchConfig, fitness) -> SearchSpace:
    """The space searched: the fitness evaluator's, checked against what the config names."""
    fspace = getattr(fitness, "space", None)
    if fspace is None:
        raise UsageError("the fitness evaluator names no search space")
    if cfg.space is not None and cfg.space != fspace.strategy:
        raise UsageError(
            f"the supernet was trained for the {fspace.strategy} space, not {cfg.space}",
            hint=f"pass --space {fspace.strategy} or train a {cfg.space} supernet",
        )
    if cfg.super_arch is not None and cfg.super_arch != str(fspace.super_arch):
        raise UsageError(
            f"the run searched the space of super arch {cfg.super_arch}, the supernet's is "
            f"{fspace.super_arch}",
            hint="resume with the supernet the run started with, or start a new run",
        )
    return fspace


def _check_ports(cfg: SearchConfig, ports: SearchPorts) -> None:
    builder = "atb.compose.search_ports builds the workspace's"
    if cfg.task is not None and ports.task_score is None:
        raise UsageError("re-ranking on a task needs a task_score function", hint=builder)
    if ports.latency is None or ports.fitness is None:
        raise UsageError("run_search needs a latency predictor and a fitness evaluator", hint=builder)
    if cfg.verify and ports.measure is None:
        raise UsageError("re-measuring the top-k needs a measure function",
                         hint=f"pass SearchPorts(measure=...), or verify=False; {builder}")
    if cfg.extract and ports.extract_model is None:
        raise UsageError("extracting the best arch needs an extract_model function", hint=builder)
    if cfg.device_key is not None and ports.latency.device_key != cfg.device_key:
        raise DeviceKeyMismatchError(
            f"the latency predictor is for device key {ports.latency.device_key}, the run for "
            f"{cfg.device_key}",
            hint="use the predictor of the run's key (--device-key), or start a new run",
        )


def run_search(config: SearchConfig, workspace: str | Path | Workspace | None = None,
               ports: SearchPorts | None = None, *, run_name: str | None = None,
               resume: str | Path | None = None) -> SearchResult:
    """Search the best arch whose measured speedup over BERT-base is ``config.targets[0]``.

    ``config`` (a :class:`SearchConfig`) holds the settings: one target, or several for
    ``algorithm="pareto"`` (the first is the primary target). Candidates must have a
    predicted speedup in ``[T (1+low_margin), T (1+high_margin)]`` (see
    :mod:`atb.search.window`); with ``verify`` the top-k are timed by ``measure`` and archs
    outside ``[0.95, 1.10] x T`` are replaced. A new run's directory is ``run_name`` (default:
    time, algorithm and targets) under ``workspace``'s runs. ``resume`` continues the run in
    that directory with its saved ``config.json``: only ``verify``, ``top_k``,
    ``max_verify_rounds`` and ``extract`` of ``config`` may differ from it (a field left None
    is not compared), and ``workspace`` defaults to the run's.

    With ``task`` (a two-stage search) the measured top ``rerank`` candidates, spread over
    depths, and the BERT-rule arch are scored by ``task_score``; the first stage's favourite
    stays the best unless a candidate is significantly better on validation
    (:mod:`atb.search.rerank`).

    ``ports`` (:class:`~atb.search.ports.SearchPorts`) hand in the latency model, fitness,
    ``measure``, ``extract_model`` and ``task_score`` as the settings need them;
    ``atb.compose.search_ports`` builds the workspace's. Raises ``InfeasibleTargetError`` when
    the space cannot reach the target, ``UsageError`` for bad settings,
    ``DeviceKeyMismatchError`` when the predictor is not the run's.
    """
    t0 = time.perf_counter()
    run, cfg, ws = open_run(config, workspace, run_name=run_name, resume=resume)
    ports = ports or SearchPorts()
    _check_ports(cfg, ports)
    space = _resolve_space(cfg, ports.fitness)
    cfg = replace(cfg, space=space.strategy, super_arch=str(space.super_arch),
                  device_key=ports.latency.device_key)
    windows = cfg.windows()  # built once: the search, the targets and the reports share them
    rng = np.random.default_rng(cfg.seed)
    reachable = check_feasible(list(windows.values()), space, ports.latency, rng)
    log.info("%s; searching %s", space.describe(), "; ".join(w.describe() for w in windows.values()))
    if run is None:
        label = f"{cfg.algorithm}-{'-'.join(f'{t:g}' for t in cfg.targets)}x"
        run = RunDir.create(ws.runs_dir, run_name, label)
    run.write_config(cfg)  # a resumed run records the overrides it ran with
    evaluator = Evaluator(ports.fitness, ports.latency, on_record=run.append_record)
    evaluator.preload(run.read_records())
    log.info("run directory %s", run.path)
    state = _Search(cfg, space, ports, evaluator, run, rng)
    history = make_algorithm(cfg.algorithm, cfg).run(
        SearchProblem(space, ports.latency, evaluator, list(windows.values()), rng, run))
    result = state.result(windows, reachable, history)
    if cfg.extract and result.best is not None:
        result.extracted = str(ports.extract_model(result.best.arch, run.path / "best-model"))
    result.runtime_s = time.perf_counter() - t0
    run.write_reports(result.to_dict())
    return result


@dataclass
class _Search:
    """One search's state once its algorithm has run: what finishing each target and the
    Pareto front read."""

    cfg: SearchConfig
    space: SearchSpace
    ports: SearchPorts
    evaluator: Evaluator
    run: RunDir
    rng: np.random.Generator

    def result(self, windows: dict[float, Window], reachable, history: list[dict]) -> SearchResult:
        """Every target finished, the front of the searched archs, as one result."""
        cfg = self.cfg
        targets = {t: self.target_result(t, w) for t, w in windows.items()}
        front, hv, ref = self.front()
        return SearchResult(
            target_speedup=cfg.targets[0], algorithm=cfg.algorithm, space=self.space.describe(),
            device_key=self.ports.latency.device_key, targets=targets,
            evaluated=len(self.evaluator), run_dir=self.run.path, runtime_s=0.0,
            reachable=reachable, verified=cfg.verify, front=front, hypervolume=hv,
            hv_reference=ref, history=history, config=cfg,
        )

    def target_result(self, target: float, window: Window) -> TargetResult:
        """One target's top-k (re-ranked on the task when there is one), dropped archs and
        BERT-rule baseline."""
        cfg = self.cfg
        pool_size = max(cfg.top_k, cfg.rerank) if cfg.task else cfg.top_k
        top, dropped, baseline, cut = self.finish(window, pool_size)
        reranking = None
        if cfg.task is not None and top:
            reranking = rerank(target, top[:cfg.rerank], baseline, self.ports.task_score,
                               self.run.path)
            order = {s.arch: i for i, s in enumerate(reranking.ranked)}
            top = sorted(top[:cfg.rerank], key=lambda r: order[r.arch])
        return TargetResult(window, [Candidate.from_record(r) for r in top[:cfg.top_k]],
                            [Candidate.from_record(r) for r in dropped],
                            Candidate.from_record(baseline) if baseline else None, reranking,
                            cut)

    def front(self) -> tuple[list[Candidate], float, tuple[float, float] | None]:
        """The Pareto front of the searched archs, its hypervolume and reference point."""
        searched = [r for r in self.evaluator.records.values()
                    if r.source in SEARCH_SOURCES and np.isfinite(r.fitness)]
        if not searched:
            return [], 0.0, None
        pts = np.array([[r.predicted_speedup, r.fitness] for r in searched])
        ref = (float(pts[:, 0].min()), float(pts[:, 1].min()))
        return [Candidate.from_record(searched[i]) for i in pareto_front(pts)], hypervolume(pts, ref), ref

    def finish(self, window: Window,
               top_k: int) -> tuple[list, list, Record | None, LayerCut | None]:
        """Top-k records of one target (measured with ``verify``; with a task taken
        round-robin over depths), the dropped ones, its BERT-rule baseline record (held to
        the band) and the layer cut nearest the target (measured in the first call)."""
        spread = self.cfg.task is not None
        latency, evaluator = self.ports.latency, self.evaluator
        rule = RuleArch(self.space, latency, evaluator, window)
        baseline, cut = rule.first(), layer_cut(self.space, latency, window.target)
        if not self.cfg.verify:
            top = [r for r in evaluator.ranked(SEARCH_SOURCES) if window.contains([r.predicted_speedup])[0]]
            return (depth_spread(top) if spread else top)[:top_k], [], baseline, cut
        # A wider pool: after recalibration, archs just outside the window may be the right ones.
        wide = Window(window.target, window.lo * 0.9, window.hi * 1.1)
        pool = [r for r in evaluator.ranked(SEARCH_SOURCES) if wide.contains([r.predicted_speedup])[0]]
        pool = depth_spread(pool) if spread else pool
        check = Verification(self.ports.measure, self.cfg.max_verify_rounds, self.replenish)
        beside = Beside(baseline, rule.next, [cut] if cut else [])
        top, dropped = verify_top_k(pool, window, top_k, check, beside)
        for rec in top + dropped + beside.rules_measured:
            self.run.append_record(rec)  # the later line carries the measured speedup
        return (depth_spread(top) if spread else top), dropped, beside.rule, cut  # by fitness

    def replenish(self, corrected: Window) -> list[Record]:
        """A short evolution (2 generations) inside the window corrected by the measurements."""
        cfg = self.cfg
        replacement = EvolutionConfig(2, cfg.population, cfg.mutation_prob, cfg.explore_prob)
        search = WindowSearch(self.space, self.ports.latency, self.evaluator, corrected, self.rng)
        gens = evolve(search, replacement, source="replacement")
        keys = {"-".join(map(str, row)) for g in gens for row in g.archs}
        return [self.evaluator.records[k] for k in keys]
