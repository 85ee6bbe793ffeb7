"""Independent runs of one job (fine-tuning seeds), one after another in this process or side by
side in a pool of processes.

The protocol's runs (one per learning rate of the grid, then one per seed) are independent once
their inputs are fixed. A small encoder uses the cores of one process poorly: on a 2-core VM a
15x arch trains its 3 epochs in 283 s on 2 threads, while two 1-thread processes side by side
take 416 s, 1.36 times the throughput (``bench/finetune_cost.py``, docs/results.md). So the
runs of a stage go to a pool of processes, the cores shared among the runs in flight; a
stage's last runs, which would leave cores idle, get the spare threads.

Where a run trains does not change what it learns: its seed alone draws the head, the dropout
and the batch order, so a seed gives the same model in any process (up to the order of
floating-point sums across threads).
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import Callable

from atb import progress

log = logging.getLogger("atb.eval.runs")


def available_cores() -> int:
    """CPUs this process may run on (a container's or ``taskset``'s limit, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def thread_counts(n_runs: int, jobs: int, cores: int) -> list[int]:
    """Threads of each of a stage's ``n_runs`` runs on ``jobs`` processes sharing ``cores``:
    ``cores // jobs`` while every process is busy; the last ``n_runs % jobs`` runs, which train
    while the other processes wait, share the cores among themselves."""
    jobs = max(1, min(jobs, n_runs))
    full, tail = divmod(n_runs, jobs)
    return ([max(1, cores // jobs)] * (full * jobs)
            + ([max(1, cores // tail)] * tail if tail else []))


# What every run of a pool shares, sent once to each process when it starts.
_shared: dict = {}


def _start_process(work: Callable, inputs: tuple) -> None:
    progress.set_enabled(False)  # one bar, the parent's; interleaved bars would be unreadable
    _shared.update(work=work, inputs=inputs)


def _run_in_process(item, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    return _shared["work"](*_shared["inputs"], item)


class Runner:
    """Calls ``work(*inputs, item)`` for lists of items, in order here (``jobs`` 1) or in a
    pool of ``jobs`` processes sharing ``cores`` threads. ``work`` must be a module-level
    function (it is sent to the processes by name) and ``inputs`` picklable; they are sent once
    per process. Use it as a context manager: the pool starts with the first parallel stage and
    stops on leaving."""

    def __init__(self, work: Callable, inputs: tuple, jobs: int = 1, cores: int | None = None):
        self.work, self.inputs = work, inputs
        self.jobs = max(1, jobs)
        self.cores = cores or available_cores()
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            # after an error or Ctrl-C, runs not started yet are dropped, not waited for
            self._pool.shutdown(wait=exc[0] is None, cancel_futures=True)
            self._pool = None

    def map(self, items: list, what: str) -> list[dict]:
        """The results for ``items``, in their order; ``what`` names them in logs and the bar."""
        start = time.perf_counter()
        if self.jobs == 1 or len(items) == 1:
            results = [self.work(*self.inputs, item) for item in items]
        else:
            results = self._map_in_pool(items, what)
        log.info("%s: %d run(s) in %.0f s", what, len(items), time.perf_counter() - start)
        return results

    def _map_in_pool(self, items: list, what: str) -> list[dict]:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.jobs, mp_context=get_context("spawn"),
                                             initializer=_start_process,
                                             initargs=(self.work, self.inputs))
        threads = thread_counts(len(items), self.jobs, self.cores)
        log.info("%s: %d runs in %d processes, threads per run %s", what, len(items),
                 min(self.jobs, len(items)), threads)
        futures = {self._pool.submit(_run_in_process, item, t): i
                   for i, (item, t) in enumerate(zip(items, threads))}
        results: list[dict | None] = [None] * len(items)
        with progress.progress(len(items), what, unit="run") as bar:
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.update(1)
        return results
