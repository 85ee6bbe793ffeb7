"""``run_search``: the one library call behind ``atb-search``.

It checks the target against what the space can reach, runs the chosen algorithm with a
checkpoint per generation, re-measures the top-k on the device, compares with the BERT-rule
baseline under the same window, computes the Pareto front of everything evaluated, writes the
run directory's reports and returns a :class:`SearchResult`. The latency predictor, the
fitness evaluator and the measurement are injectable (tests, notebooks); by default they are
``atb.predictor.load_or_fit``, ``atb.supernet.FitnessEvaluator`` and ``atb.profiler``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from atb.arch import Arch, SearchSpace
from atb.errors import InfeasibleTargetError, MissingInputError, UsageError
from atb.progress import progress
from atb.search.baselines import bert_rule_baseline
from atb.search.evaluate import SEARCH_SOURCES, Evaluator, Record
from atb.search.evolution import EvolutionConfig, Generation, evolve
from atb.search.fast import fast_rule_candidates
from atb.search.fitness import parse_fitness
from atb.search.pareto import hypervolume, nsga2_search, pareto_front
from atb.search.run import RunDir
from atb.search.verify import Measure, verify_top_k
from atb.search.window import (ACCEPT_BAND, DEFAULT_HIGH_MARGIN, DEFAULT_LOW_MARGIN, Window,
                               check_feasible)
from atb.workspace import Workspace

log = logging.getLogger("atb.search")

ALGORITHMS = ("evolution", "fast", "random", "pareto")


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
    """What one target got: window, accepted top-k, dropped archs, BERT-rule baseline."""

    window: Window
    top_k: list[Candidate]
    dropped: list[Candidate] = field(default_factory=list)
    baseline: Candidate | None = None

    @property
    def best(self) -> Candidate | None:
        return self.top_k[0] if self.top_k else None

    def to_dict(self) -> dict:
        return {"window": self.window.as_dict(),
                "best": self.best.to_dict() if self.best else None,
                "top_k": [c.to_dict() for c in self.top_k],
                "dropped": [c.to_dict() for c in self.dropped],
                "baseline": self.baseline.to_dict() if self.baseline else None}


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
            "runtime_s": self.runtime_s,
            "history": self.history,
            "front": [c.to_dict() for c in self.front],
            "hypervolume": self.hypervolume,
            "hv_reference": list(self.hv_reference) if self.hv_reference else None,
            "extracted": self.extracted,
        }
        if len(self.targets) > 1:
            out["targets"] = list(self.targets)
            out["per_target"] = {f"{t:g}": r.to_dict() for t, r in self.targets.items()}
        return out


# -- the real collaborators (imported lazily: they are heavy and built by other packages) --
def _import(module: str, name: str, maker: str):
    import importlib

    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise MissingInputError(f"{module}.{name} is not available: {exc}", hint=maker) from exc


def _real_fitness(ws: Workspace, space, spec: str):
    from atb.search.fitness import make_fitness

    return make_fitness(ws, space, spec)


def _real_latency(ws: Workspace, device_key: str | None):
    load_or_fit = _import("atb.predictor", "load_or_fit", "install atb with its predictor package")
    return load_or_fit(ws, device_key=device_key)


def _real_measure(ws: Workspace, device_key: str, **profile_options) -> Measure:
    if not profile_options:  # time with the setting the predictor was fitted for
        from atb.devices import setting_from_key

        s = setting_from_key(device_key)
        profile_options = {"backend": s.backend, "threads": s.threads, "precision": s.precision,
                           "seq_len": s.seq_len}

    def measure(archs: list[Arch]) -> list[float]:
        profile_archs = _import("atb.profiler", "profile_archs", "install atb with its profiler package")
        report = profile_archs(archs, ws, source="verify", **profile_options)
        if report.device_key != device_key:
            log.warning("measured on %s but the predictor was fitted on %s", report.device_key, device_key)
        by_arch = {str(r.arch): r.speedup for r in report.results}
        return [by_arch.get(str(a), float("nan")) for a in archs]

    return measure


def _resolve_space(space, fitness) -> SearchSpace:
    fspace = getattr(fitness, "space", None)
    if isinstance(space, SearchSpace):
        return space
    if fspace is None:
        raise UsageError("the fitness evaluator names no search space")
    if space is not None and space != fspace.strategy:
        raise UsageError(
            f"the supernet was trained for the {fspace.strategy} space, not {space}",
            hint=f"pass --space {fspace.strategy} or train a {space} supernet",
        )
    return fspace


def _check_args(targets, algorithm, generations, population, top_k) -> None:
    if algorithm not in ALGORITHMS:
        raise UsageError(f"unknown algorithm {algorithm!r}", hint="use one of: " + ", ".join(ALGORITHMS))
    if generations < 1 or population < 1:
        raise UsageError(f"generations ({generations}) and population ({population}) must be >= 1")
    if top_k < 1:
        raise UsageError(f"top-k ({top_k}) must be >= 1")
    if not targets:
        raise UsageError("no target speedup given")
    if len(targets) > 1 and algorithm != "pareto":
        raise UsageError("several target speedups need --algorithm pareto")
    if len(set(targets)) != len(targets):
        raise UsageError("target speedups must be distinct")


def run_search(
    target_speedup: float | Sequence[float],
    *,
    workspace: str | Path | Workspace | None = None,
    space: str | SearchSpace | None = None,
    algorithm: str = "evolution",
    generations: int = 4,
    population: int = 25,
    seed: int = 0,
    top_k: int = 3,
    verify: bool = True,
    latency=None,
    fitness=None,
    measure: Measure | None = None,
    device_key: str | None = None,
    profile_options: dict | None = None,
    run_name: str | None = None,
    resume: str | Path | None = None,
    extract: bool = False,
    low_margin: float = DEFAULT_LOW_MARGIN,
    high_margin: float = DEFAULT_HIGH_MARGIN,
    mutation_prob: float = 0.5,
    explore_prob: float = 0.5,
    max_verify_rounds: int = 3,
    fitness_spec: str = "loss",
) -> SearchResult:
    """Search the best arch whose measured speedup over BERT-base is ``target_speedup``.

    ``target_speedup`` is one number, or several for ``algorithm="pareto"`` (the first is the
    primary target of the result). Defaults follow Algorithm 2 (T=4, S=25, pm=pe=1/2,
    roulette). Candidates must have a predicted speedup in ``[T (1+low_margin),
    T (1+high_margin)]`` (see :mod:`atb.search.window`). With ``verify`` the top-k are timed on
    the device and archs outside ``[0.95, 1.10] x T`` are replaced. ``resume`` continues the run
    in that directory with its own configuration. Raises ``InfeasibleTargetError`` when the
    space cannot reach the target, ``UsageError`` for bad arguments. ``fitness_spec`` picks
    the real fitness when ``fitness`` is not given: ``loss`` (the supernet's held-out loss) or
    ``probe:TASK`` (see :mod:`atb.search.fitness`).
    """
    t0 = time.perf_counter()
    run = RunDir.open(resume) if resume is not None else None
    if workspace is None and run is not None:  # a run lives in <workspace>/runs/<name>
        workspace = run.path.resolve().parent.parent
    ws = workspace if isinstance(workspace, Workspace) else Workspace.resolve(workspace)
    if run is not None:  # the run's own configuration wins over the arguments
        cfg = run.read_config()
        target_speedup, algorithm, space = cfg["targets"], cfg["algorithm"], cfg["space"]
        generations, population = cfg["generations"], cfg["population"]
        seed, top_k = cfg["seed"], cfg["top_k"]
        low_margin, high_margin = cfg["low_margin"], cfg["high_margin"]
        mutation_prob, explore_prob = cfg["mutation_prob"], cfg["explore_prob"]
        device_key = device_key or cfg.get("device_key")
        fitness_spec = cfg.get("fitness", "loss")
    many = isinstance(target_speedup, (list, tuple))
    targets = [float(t) for t in (target_speedup if many else [target_speedup])]
    _check_args(targets, algorithm, generations, population, top_k)
    windows = {t: Window.for_target(t, low_margin, high_margin) for t in targets}

    if fitness is None:
        parse_fitness(fitness_spec)  # a bad spec fails before the supernet is loaded
        fitness = _real_fitness(ws, space if isinstance(space, str) else None, fitness_spec)
    space = _resolve_space(space, fitness)
    latency = latency if latency is not None else _real_latency(ws, device_key)
    rng = np.random.default_rng(seed)
    reachable = check_feasible(list(windows.values()), space, latency, rng)
    log.info("%s; searching %s", space.describe(), "; ".join(w.describe() for w in windows.values()))

    if run is None:
        label = f"{algorithm}-{'-'.join(f'{t:g}' for t in targets)}x"
        run = RunDir.create(ws.runs_dir, run_name, label)
        run.write_config({
            "targets": targets, "algorithm": algorithm, "space": space.strategy,
            "super_arch": str(space.super_arch), "generations": generations,
            "population": population, "seed": seed, "top_k": top_k,
            "low_margin": low_margin, "high_margin": high_margin, "mutation_prob": mutation_prob,
            "explore_prob": explore_prob, "device_key": latency.device_key,
            "fitness": fitness_spec,
            "windows": [w.as_dict() for w in windows.values()],
        })
    evaluator = Evaluator(fitness, latency, on_record=run.append_record)
    evaluator.preload(run.read_records())
    log.info("run directory %s", run.path)

    history = _run_algorithm(algorithm, space, latency, evaluator, windows, rng, run,
                             EvolutionConfig(generations, population, mutation_prob, explore_prob), seed)

    measure_fn = None
    if verify:
        measure_fn = measure or _real_measure(ws, latency.device_key, **(profile_options or {}))
    results = {t: _finish_target(w, space, latency, evaluator, top_k, measure_fn, run, max_verify_rounds,
                                 EvolutionConfig(2, population, mutation_prob, explore_prob), rng)
               for t, w in windows.items()}

    searched = [r for r in evaluator.records.values()
                if r.source in SEARCH_SOURCES and np.isfinite(r.fitness)]
    front, hv, ref = [], 0.0, None
    if searched:
        pts = np.array([[r.predicted_speedup, r.fitness] for r in searched])
        ref = (float(pts[:, 0].min()), float(pts[:, 1].min()))
        front = [Candidate.from_record(searched[i]) for i in pareto_front(pts)]
        hv = hypervolume(pts, ref)

    result = SearchResult(
        target_speedup=targets[0], algorithm=algorithm, space=space.describe(),
        device_key=latency.device_key, targets=results, evaluated=len(evaluator),
        run_dir=run.path, runtime_s=0.0, reachable=reachable, verified=verify,
        front=front, hypervolume=hv, hv_reference=ref, history=history,
    )
    if extract and result.best is not None:
        result.extracted = _extract(ws, result.best.arch, run.path / "best-model")
    result.runtime_s = time.perf_counter() - t0
    run.write_reports(result.to_dict())
    return result


def _run_algorithm(algorithm, space, latency, evaluator, windows, rng, run, cfg, seed) -> list[dict]:
    """Run the search proper; returns the per-generation history."""
    if algorithm == "fast":
        window = next(iter(windows.values()))
        archs, pred = fast_rule_candidates(space, latency, window, rng)
        if not len(archs):
            raise InfeasibleTargetError(
                f"no arch that follows the fast rule (1.6 dm <= df <= 1.9 dm, 0.7 dm <= dqkv <= dm) "
                f"has a {window.describe()}",
                hint="use --algorithm evolution, or another target",
            )
        fit = evaluator.evaluate(archs, generation=0, source="fast", predicted=pred)
        return [{"generation": 1, "size": len(archs), "best_fitness": float(np.max(fit))}]
    if algorithm == "pareto":
        trials = nsga2_search(space, latency, evaluator, list(windows.values()),
                              n_evals=cfg.generations * cfg.population, population=cfg.population,
                              seed=seed, rng=rng)
        return [{"trials": trials, "evaluated": len(evaluator)}]
    if algorithm == "random":  # every child a fresh in-window arch: random search, same budget
        cfg = EvolutionConfig(cfg.generations, cfg.population, cfg.mutation_prob, 1.0)
    window = next(iter(windows.values()))
    resume_from, history = None, []
    ckpt = run.load_checkpoint()
    if ckpt is not None:
        resume_from, rng_state, history = ckpt
        rng.bit_generator.state = rng_state
        log.info("resuming after generation %d of %d", resume_from.index + 1, cfg.generations)

    start = 0 if resume_from is None else resume_from.index + 1
    with progress(total=cfg.generations, desc=f"{algorithm} search", unit="gen", initial=start) as bar:

        def on_generation(gen: Generation) -> None:
            history.append({"generation": gen.index + 1, "size": len(gen.archs),
                            "best_fitness": float(np.nanmax(gen.fitness)),
                            "mean_fitness": float(np.nanmean(gen.fitness))})
            run.save_checkpoint(gen, rng, history)  # resume point: a crash loses one generation at most
            bar.update(1)
            bar.set_postfix_str(f"best {history[-1]['best_fitness']:.4f}")

        evolve(space, latency, evaluator, window, rng, cfg, resume_from, on_generation, source=algorithm)
    return history


def _finish_target(window, space, latency, evaluator, top_k, measure, run, max_rounds,
                   replacement_cfg, rng) -> TargetResult:
    """Top-k of one target (measured when ``measure`` is given) and its BERT-rule baseline."""

    def replenish(corrected: Window) -> list[Record]:
        # A short evolution (2 generations) inside the window corrected by the measurements.
        gens = evolve(space, latency, evaluator, corrected, rng, replacement_cfg, source="replacement")
        keys = {"-".join(map(str, row)) for g in gens for row in g.archs}
        return [evaluator.records[k] for k in keys]

    baseline = bert_rule_baseline(space, latency, evaluator, window)
    dropped: list[Record] = []
    if measure is None:
        ranked = evaluator.ranked(SEARCH_SOURCES)
        top = [r for r in ranked if window.contains([r.predicted_speedup])[0]][:top_k]
    else:
        # A wider pool: after recalibration, archs just outside the window may be the right ones.
        wide = Window(window.target, window.lo * 0.9, window.hi * 1.1)
        pool = [r for r in evaluator.ranked(SEARCH_SOURCES) if wide.contains([r.predicted_speedup])[0]]
        top, dropped = verify_top_k(pool, window, top_k, measure, extra=[baseline] if baseline else [],
                                    max_rounds=max_rounds, replenish=replenish)
        for rec in top + dropped + ([baseline] if baseline else []):
            run.append_record(rec)  # the later line carries the measured speedup
    return TargetResult(window, [Candidate.from_record(r) for r in top],
                        [Candidate.from_record(r) for r in dropped],
                        Candidate.from_record(baseline) if baseline else None)


def _extract(ws: Workspace, arch: Arch, out_dir: Path) -> str:
    # the module, not the package: once atb.supernet.extract is imported, the package's
    # attribute "extract" is that module and no longer the function
    extract = _import("atb.supernet.extract", "extract", "install atb with its supernet package")
    info = extract(ws, arch, out_dir, onnx=False)  # logs where it wrote the model
    return str(info.get("out_dir", out_dir)) if isinstance(info, dict) else str(out_dir)
