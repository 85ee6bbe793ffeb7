"""Which architectures a profiling run times, in which order.

Sampling is seeded and resumable: the archs of ``--samples N --seed S`` are the first ones of
a fixed random stream that the store does not already hold, so a stopped run continues where
it stopped and a larger N extends the same set. The stream is random, so the timing order is
random too (no drift can line up with a trend in the space).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from atb.arch import Arch, SearchSpace, array_to_archs

_CHUNK = 512


def arch_stream(space: SearchSpace, seed: int) -> Iterator[Arch]:
    """Distinct archs drawn uniformly from ``space``, forever (or until it is exhausted)."""
    rng = np.random.default_rng(seed)
    seen: set[Arch] = set()
    misses = 0
    while len(seen) < space.size and misses < 50:
        fresh = 0
        for arch in array_to_archs(space.sample_array(rng, _CHUNK)):
            if arch not in seen:
                seen.add(arch)
                fresh += 1
                yield arch
        misses = 0 if fresh else misses + 1


def plan_uniform(space: SearchSpace, seed: int, need: int, exclude: set[str]) -> list[Arch]:
    """The next ``need`` archs of the seeded stream that are not in ``exclude``."""
    planned: list[Arch] = []
    if need <= 0:
        return planned
    for arch in arch_stream(space, seed):
        if str(arch) not in exclude:
            planned.append(arch)
            if len(planned) == need:
                break
    return planned


@dataclass(frozen=True)
class UncertainBatches:
    """The shape of uncertainty sampling's batches."""

    warm_start: int = 100  # uniform archs first: a predictor needs something to learn from
    batch: int = 50  # archs per batch after the warm start
    pool_factor: int = 40  # fresh candidates ranked per chosen arch


def plan_uncertain(
    space: SearchSpace,
    seed: int,
    need: int,
    exclude: set[str],
    propose: Callable[[np.ndarray, int], np.ndarray],
    shape: UncertainBatches = UncertainBatches(),
) -> Iterator[list[Arch]]:
    """Batches of archs chosen where the current predictor is least sure.

    The first ``shape.warm_start`` archs are uniform; then each batch is the ``shape.batch``
    most uncertain of ``shape.pool_factor * shape.batch`` fresh candidates, as ranked by
    ``propose(candidates, n) -> indices`` (which refits on the labels measured so far).
    """
    warm_start, batch, pool_factor = shape.warm_start, shape.batch, shape.pool_factor
    stream = (a for a in arch_stream(space, seed) if str(a) not in exclude)
    done = 0
    first = [a for _, a in zip(range(min(need, max(0, warm_start - len(exclude)))), stream)]
    if first:
        done += len(first)
        yield first
    while done < need:
        n = min(batch, need - done)
        pool = [a for _, a in zip(range(pool_factor * n), stream)]
        if not pool:
            return
        chosen_idx = propose(np.array([a.as_tuple() for a in pool], dtype=np.int64), n)
        chosen = [pool[i] for i in np.asarray(chosen_idx)[:n]]
        done += len(chosen)
        yield chosen
