"""Algorithm 2 of AutoTinyBERT: evolution under a latency window.

Generation 1 is ``S`` archs sampled in the window. Each later generation is filled, ``S``
children at a time, by (with probability ``pe``) a fresh arch sampled in the window or
(otherwise) a parent chosen by Russian roulette on the previous generation's fitness, each
gene resampled with probability ``pm``; children whose predicted speedup misses the window are
dropped. Children are generated in vectorised batches with a bounded number of rounds; a
generation that stays short is topped up by :func:`sample_in_window` (itself capped) and, in
the worst case, runs smaller, with a warning. All randomness comes from one generator, so a
seed reproduces a run, and its state is checkpointed after every generation.
:class:`Evolution` (``--algorithm evolution``) and :class:`RandomSearch` (``random``: pe = 1)
are the algorithms over :func:`evolve`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from atb.arch import FIELDS, SearchSpace
from atb.progress import progress
from atb.search.algorithm import AlgorithmSettings, SearchAlgorithm, SearchProblem
from atb.search.fitness_cache import Evaluator
from atb.search.ports import SpeedupModel
from atb.search.window import InWindow, Window, sample_in_window

log = logging.getLogger("atb.search.evolution")

MAX_ROUNDS = 20  # vectorised child-generation rounds per generation before topping up


@dataclass
class Generation:
    """One generation: its archs (n, 5), their fitness and predicted speedup."""

    index: int
    archs: np.ndarray
    fitness: np.ndarray
    predicted: np.ndarray

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "archs": ["-".join(map(str, r)) for r in self.archs],
            "fitness": self.fitness.tolist(),
            "predicted": self.predicted.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Generation":
        archs = np.array([[int(x) for x in a.split("-")] for a in d["archs"]], dtype=np.int64)
        return cls(d["index"], archs.reshape(-1, len(FIELDS)), np.asarray(d["fitness"], dtype=np.float64),
                   np.asarray(d["predicted"], dtype=np.float64))


@dataclass(frozen=True)
class WindowSearch:
    """What an evolution in one window works with: the space, the latency model that places an
    arch in (or out of) ``window``, the evaluator that scores it and the run's one generator."""

    space: SearchSpace
    latency: SpeedupModel
    evaluator: Evaluator
    window: Window
    rng: np.random.Generator


@dataclass
class EvolutionConfig:
    generations: int = 4  # T
    population: int = 25  # S
    mutation_prob: float = 0.5  # pm: each gene resampled with this probability
    explore_prob: float = 0.5  # pe: a child is a fresh arch with this probability


def roulette_select(fitness: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """Indices of ``n`` parents drawn with probability proportional to shifted fitness.

    Fitness may be negative (a loss), so weights are ``f - min f`` plus 5 % of the spread:
    the worst member keeps a small chance and equal fitness gives a uniform draw.
    Non-finite fitness gets weight 0 (unless all are non-finite: uniform).
    """
    f = np.asarray(fitness, dtype=np.float64)
    if len(f) == 0:
        raise ValueError("roulette over an empty generation")
    finite = np.isfinite(f)
    if not finite.any():
        return rng.integers(0, len(f), n)
    lo, hi = f[finite].min(), f[finite].max()
    spread = hi - lo
    w = np.where(finite, f - lo + (0.05 * spread if spread > 0 else 1.0), 0.0)
    return rng.choice(len(f), size=n, p=w / w.sum())


def _children(search: WindowSearch, parents: Generation, n: int, cfg: EvolutionConfig,
              exclude: set[str]) -> tuple[list[np.ndarray], list[float]]:
    """Up to ``n`` distinct in-window children of ``parents`` (vectorised, bounded)."""
    space, rng = search.space, search.rng
    found = InWindow(space, search.latency, search.window, n, exclude)
    for _ in range(MAX_ROUNDS):
        need = found.missing
        if need <= 0:
            break
        m = max(4 * need, 32)  # oversample: many children miss the window
        explore = rng.random(m) < cfg.explore_prob
        cands = space.sample_array(rng, m)
        idx = roulette_select(parents.fitness, rng, m)
        mutated = space.mutate_array(parents.archs[idx], rng, cfg.mutation_prob)
        cands[~explore] = mutated[~explore]
        found.offer(cands)
    return found.rows, found.speedups


def next_generation(search: WindowSearch, parents: Generation | None, cfg: EvolutionConfig,
                    source: str = "evolution") -> Generation:
    """Generation ``parents.index + 1`` (or the first when ``parents`` is None), evaluated."""
    index = 0 if parents is None else parents.index + 1
    n, evaluator = cfg.population, search.evaluator
    sample = (search.space, search.latency, search.window, search.rng)
    if parents is None or len(parents.archs) == 0:
        archs, pred = sample_in_window(*sample, n, exclude=set(evaluator.records))
    else:
        # Children are archs not evaluated before, so every generation spends its S
        # evaluations on new archs (the best ones are kept in the records, not re-evaluated).
        seen = set(evaluator.records)
        rows, speeds = _children(search, parents, n, cfg, seen)
        if len(rows) < n:  # top up with fresh in-window archs (bounded)
            extra, extra_s = sample_in_window(
                *sample, n - len(rows), exclude=seen | {"-".join(map(str, r)) for r in rows},
            )
            rows += list(extra)
            speeds += list(extra_s)
        archs = np.asarray(rows, dtype=np.int64).reshape(-1, len(FIELDS))
        pred = np.asarray(speeds, dtype=np.float64)
    if len(archs) < n:
        log.warning("generation %d has %d of %d archs (window too narrow)", index + 1, len(archs), n)
    fit = evaluator.evaluate(archs, generation=index, source=source, predicted=pred)
    return Generation(index, archs, fit, pred)


def evolve(search: WindowSearch, cfg: EvolutionConfig | None = None,
           resume_from: Generation | None = None,
           on_generation: Callable[[Generation], None] | None = None,
           source: str = "evolution") -> list[Generation]:
    """Run Algorithm 2 in ``search.window`` and return the generations run by this call.

    ``resume_from`` is the last checkpointed generation (the generator must be restored to
    its state at that checkpoint); ``on_generation`` is called after each generation
    (checkpointing, progress). With ``explore_prob = 1`` this is random search under the
    constraint (every child a fresh in-window arch), which ``source="random"`` labels.
    """
    cfg, evaluator = cfg or EvolutionConfig(), search.evaluator
    last = resume_from
    done: list[Generation] = []
    start = 0 if last is None else last.index + 1
    best_so_far = max((r.fitness for r in evaluator.records.values()  # a resumed run's too
                       if r.generation >= 0 and np.isfinite(r.fitness)), default=-np.inf)
    for _ in range(start, cfg.generations):
        gen = next_generation(search, last, cfg, source)
        if len(gen.archs) == 0:
            log.warning("generation %d is empty; stopping", gen.index + 1)
            break
        # A generation holds new archs only, so its best can fall below an earlier one's.
        best = np.nanmax(gen.fitness)
        best_so_far = max(best_so_far, best)
        log.info("generation %d/%d: %d archs, best fitness %.6g (so far %.6g), %d evaluated in "
                 "total", gen.index + 1, cfg.generations, len(gen.archs), best, best_so_far,
                 len(evaluator))
        done.append(gen)
        if on_generation:
            on_generation(gen)
        last = gen
    return done


class Evolution(SearchAlgorithm):
    """Algorithm 2 in the first window, checkpointed after every generation (resumable)."""

    name = "evolution"

    def __init__(self, config: EvolutionConfig | None = None):
        self.config = config or EvolutionConfig()

    @classmethod
    def from_settings(cls, settings: AlgorithmSettings) -> "Evolution":
        return cls(EvolutionConfig(settings.generations, settings.population, settings.mutation_prob,
                                   settings.explore_prob))

    def run(self, problem: SearchProblem) -> list[dict]:
        cfg, rng, checkpoints = self.config, problem.rng, problem.checkpoints
        resume_from, history = None, []
        ckpt = checkpoints.load_checkpoint()
        if ckpt is not None:
            resume_from, rng_state, history = ckpt
            rng.bit_generator.state = rng_state
            log.info("resuming after generation %d of %d", resume_from.index + 1, cfg.generations)

        start = 0 if resume_from is None else resume_from.index + 1
        with progress(total=cfg.generations, desc=f"{self.name} search", unit="gen", initial=start) as bar:

            def on_generation(gen: Generation) -> None:
                history.append({"generation": gen.index + 1, "size": len(gen.archs),
                                "best_fitness": float(np.nanmax(gen.fitness)),
                                "mean_fitness": float(np.nanmean(gen.fitness))})
                checkpoints.save_checkpoint(gen, rng, history)  # resume point: a crash loses one generation at most
                bar.update(1)
                bar.set_postfix_str(f"best {history[-1]['best_fitness']:.4f}")

            search = WindowSearch(problem.space, problem.latency, problem.evaluator,
                                  problem.windows[0], rng)
            evolve(search, cfg, resume_from, on_generation, source=self.name)
        return history


class RandomSearch(Evolution):
    """Random search under the constraint, same budget: evolution whose every child is a fresh
    in-window arch (pe = 1), the control for "does evolution help"."""

    name = "random"

    def __init__(self, config: EvolutionConfig | None = None):
        super().__init__(replace(config or EvolutionConfig(), explore_prob=1.0))
