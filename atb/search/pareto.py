"""Pareto tools: the non-dominated front, the hypervolume, and an NSGA-II search over a range
of speedups (several targets at once).

Both objectives are maximised: speedup (faster) and fitness (better). The front and the
hypervolume are computed here (not by Optuna) so that they are defined once for every source of
points: evolution runs, NSGA-II runs, measured points. :class:`NSGA2` is the algorithm
(``--algorithm pareto``).
"""

from __future__ import annotations

import logging
import numpy as np

from atb.arch import FIELDS, SearchSpace
from atb.search.algorithm import AlgorithmSettings, SearchAlgorithm, SearchProblem
from atb.search.fitness_cache import Evaluator
from atb.search.ports import SpeedupModel
from atb.search.window import Window, sample_in_window

log = logging.getLogger("atb.search.pareto")


def pareto_front(points: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated rows of ``points`` (n, d), every column maximised.

    A row is dominated when another is >= in every column and > in one. Duplicates of a
    front point are all on the front. Rows with a non-finite value are never on it.
    Returned in order of the first column, descending.
    """
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError("points must be a 2-d array (n, d)")
    finite = np.flatnonzero(np.isfinite(p).all(axis=1))
    q = p[finite]
    keep = np.ones(len(q), dtype=bool)
    for start in range(0, len(q), 512):  # chunks bound the (chunk, n, d) comparison
        block = q[start:start + 512, None, :]
        ge = (q[None, :, :] >= block).all(axis=2)
        gt = (q[None, :, :] > block).any(axis=2)
        keep[start:start + 512] = ~(ge & gt).any(axis=1)
    idx = finite[keep]
    return idx[np.argsort(-p[idx, 0], kind="stable")]


def hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """Volume dominated by ``points`` (every column maximised) and bounded by ``reference``.

    Points not strictly better than the reference in every column add nothing. Exact; a
    sweep in 2-d (O(n log n)) and recursive slicing above (fine for a few hundred points).
    """
    p = np.asarray(points, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64).reshape(-1)
    if p.size == 0:
        return 0.0
    p = p.reshape(-1, len(ref))
    q = p - ref  # gains over the reference; boxes [0, q] anchored at the origin
    q = q[np.isfinite(q).all(axis=1) & (q > 0).all(axis=1)]
    if not len(q):
        return 0.0
    return float(_hv(q[pareto_front(q)]))


def _hv(q: np.ndarray) -> float:
    d = q.shape[1]
    if d == 1:
        return float(q[:, 0].max())
    order = np.argsort(-q[:, -1], kind="stable")
    q = q[order]
    if d == 2:
        # Sorted by y descending: each point adds the strip above the next one's y.
        x_max = np.maximum.accumulate(q[:, 0])
        y_next = np.append(q[1:, 1], 0.0)
        return float(np.sum(x_max * (q[:, 1] - y_next)))
    vol = 0.0
    for i in range(len(q)):
        bottom = q[i + 1, -1] if i + 1 < len(q) else 0.0
        if q[i, -1] > bottom:
            vol += (q[i, -1] - bottom) * _hv(q[: i + 1, :-1])
    return vol


def _suggest(trial, space: SearchSpace) -> np.ndarray:
    """An arch of ``space`` from an Optuna trial (dqkv follows h in the pretrain space)."""
    r = space.ranges
    lt = trial.suggest_int("lt", r["lt"].lo, r["lt"].hi)
    dm = trial.suggest_int("dm", r["dm"].lo, r["dm"].hi, step=r["dm"].step)
    df = trial.suggest_int("df", r["df"].lo, r["df"].hi, step=r["df"].step)
    if space.strategy == "pretrain":
        h = trial.suggest_int("h", r["h"].lo, r["h"].hi)
        dqkv = space.head_size * h
    else:
        h = r["h"].lo
        dqkv = trial.suggest_int("dqkv", r["dqkv"].lo, r["dqkv"].hi, step=r["dqkv"].step)
    return np.array([[lt, dm, df, h, dqkv]], dtype=np.int64)


def repair(row: np.ndarray, space: SearchSpace, latency: SpeedupModel,
           windows: list[Window]) -> tuple[np.ndarray, float] | None:
    """The in-window arch nearest to ``row`` that differs from it in one gene (df, dm or the
    heads), or None. Vectorised: every single-gene variant is predicted at once.

    Why: NSGA-II's crossover rarely lands in narrow windows (about 1 trial in 8 in tests);
    repairing the evaluated arch (the trial keeps its genes: Baldwinian repair) makes almost
    every trial count without changing what the sampler explores.
    """
    r = space.ranges
    genes = [("df", 2), ("dm", 1)] + ([("h", 3)] if space.strategy == "pretrain" else [("dqkv", 4)])
    best, best_cost, best_s = None, np.inf, np.nan
    for name, col in genes:
        values = r[name].values
        cands = np.repeat(row.reshape(1, -1), len(values), axis=0)
        cands[:, col] = values
        space.tie_heads(cands)
        s = np.asarray(latency.predict_speedup(cands), dtype=np.float64)
        ok = np.zeros(len(cands), dtype=bool)
        for w in windows:
            ok |= w.contains(s)
        if not ok.any():
            continue
        cost = np.abs(values - row[col]) / (r[name].hi - r[name].lo + 1)  # relative move
        i = np.flatnonzero(ok)[np.argmin(cost[ok])]
        if cost[i] < best_cost:
            best, best_cost, best_s = cands[i], cost[i], s[i]
    return None if best is None else (best, float(best_s))


def nsga2_search(problem: SearchProblem, n_evals: int, population: int, seed: int) -> int:
    """NSGA-II (Optuna) maximising (fitness, predicted speedup) over archs inside any of
    ``problem.windows`` (one per target: several targets searched at once).

    A suggested arch outside every window is repaired (:func:`repair`); if that fails the
    trial is a constraint violation (its distance to the nearest window) and is *not*
    evaluated. The budget ``n_evals`` counts distinct evaluated archs; at most ``4 n_evals``
    trials are run. The first generation is seeded with in-window archs spread over the
    windows (drawn with ``problem.rng``). Resuming: archs already in ``problem.evaluator``
    with source ``pareto`` are replayed first as trials (their fitness is cached, so they
    cost nothing) and the search goes on. Returns the number of trials run.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
    study = optuna.create_study(sampler=sampler, directions=["maximize", "maximize"])
    evaluator = problem.evaluator

    def n_done() -> int:
        return sum(1 for r in evaluator.records.values() if r.source == "pareto")

    previous = _enqueue_first(study, problem, population)

    def stop(study_, trial) -> None:
        if n_done() >= n_evals:
            study_.stop()

    if n_done() < n_evals or previous:
        study.optimize(_Objective(problem, population), n_trials=4 * n_evals, callbacks=[stop],
                       gc_after_trial=False)
    log.info("NSGA-II: %d trials, %d archs evaluated", len(study.trials), n_done())
    return len(study.trials)


def _enqueue_first(study, problem: SearchProblem, population: int) -> bool:
    """Queue the first trials: a resumed run's evaluated archs (cached, so free), else
    in-window archs spread over the windows. Returns whether the run is resumed."""
    space = problem.space
    names = ("lt", "dm", "df", "h") if space.strategy == "pretrain" else ("lt", "dm", "df", "dqkv")

    def enqueue(rows) -> None:
        for row in rows:
            arch = dict(zip(FIELDS, map(int, row)))
            study.enqueue_trial({k: arch[k] for k in names})

    previous = [r for r in problem.evaluator.records.values() if r.source == "pareto"]
    if previous:  # resume: replay what was evaluated (cached)
        enqueue([[int(x) for x in r.arch.split("-")] for r in previous])
    else:
        per_window = -(-population // len(problem.windows))
        for w in problem.windows:
            enqueue(sample_in_window(space, problem.latency, w, problem.rng, per_window)[0])
    return bool(previous)


class _Objective:
    """One NSGA-II trial: the suggested arch (repaired into a window when it can be), scored
    by the evaluator when it is inside one; a constraint violation otherwise."""

    def __init__(self, problem: SearchProblem, population: int):
        self.problem, self.population = problem, population

    def __call__(self, trial) -> tuple[float, float]:
        space, latency, windows = self.problem.space, self.problem.latency, self.problem.windows
        row = _suggest(trial, space)
        s = float(np.asarray(latency.predict_speedup(row), dtype=np.float64)[0])
        inside = np.isfinite(s) and any(w.contains([s])[0] for w in windows)
        if not inside:
            fixed = repair(row[0], space, latency, windows)
            if fixed is not None:
                row, s, inside = fixed[0].reshape(1, -1), fixed[1], True
        trial.set_user_attr("arch", "-".join(map(str, row[0])))
        # Distance to the nearest window (0 inside one): NSGA-II ranks feasible trials first.
        gap = 0.0 if inside else (min(max(w.lo - s, s - w.hi) for w in windows) if np.isfinite(s) else 1e9)
        trial.set_constraint("window", gap)
        if not inside:  # infeasible: not evaluated, its objective values are never compared
            return 0.0, (s if np.isfinite(s) else 0.0)
        f = float(self.problem.evaluator.evaluate(row, generation=trial.number // self.population,
                                                  source="pareto", predicted=np.array([s]))[0])
        return (f if np.isfinite(f) else -1e30), s


class NSGA2(SearchAlgorithm):
    """NSGA-II over every window at once (several targets), T x S distinct evaluations."""

    name = "pareto"

    def __init__(self, n_evals: int, population: int, seed: int = 0):
        self.n_evals, self.population, self.seed = n_evals, population, seed

    @classmethod
    def from_settings(cls, settings: AlgorithmSettings) -> "NSGA2":
        return cls(settings.generations * settings.population, settings.population, settings.seed)

    def run(self, problem: SearchProblem) -> list[dict]:
        trials = nsga2_search(problem, self.n_evals, self.population, self.seed)
        return [{"trials": trials, "evaluated": len(problem.evaluator)}]
