"""Fine-tuning runs, one after another in this process or side by side in a pool of processes.

The protocol's runs (one per learning rate of the grid, then one per seed) are independent once
their inputs are fixed. A small encoder uses the cores of one process poorly: on a 2-core VM a
15x arch trains its 3 epochs in 288 s on 2 threads, while two 1-thread processes side by side
take about 383 s each, 1.5 times the throughput (docs/results.md). So the runs of a stage go to
a pool of processes, the cores shared among the runs in flight; a stage's last runs, which
would leave cores idle, get the spare threads.

Where a run trains does not change what it learns: its seed alone draws the head, the dropout
and the batch order, so a seed gives the same model in any process (up to the order of
floating-point sums across threads).
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from atb import progress
from atb.eval.encode import Tokenized
from atb.eval.tasks import Task

log = logging.getLogger("atb.eval.runs")


@dataclass(frozen=True)
class Run:
    """One fine-tuning run: ``seed`` at peak rate ``lr``. ``test``: predict the test split (the
    learning-rate pick's runs never do); ``keep_state``: return the best epoch's weights."""

    seed: int
    lr: float
    test: bool = True
    keep_state: bool = False


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


def train_run(model_dir: Path, tokenized: dict[str, Tokenized], task: Task, config,
              run: Run) -> dict:
    """Load ``model_dir`` with a new head drawn from ``run.seed`` and train it (see
    :func:`atb.eval.finetune.train`); adds ``pooling`` and, when asked, ``state``."""
    import torch

    from atb.eval.finetune import train
    from atb.eval.models import load_classifier

    torch.manual_seed(run.seed)  # the head's initial weights and dropout
    model = load_classifier(model_dir, task.label_names, config.pooling)
    result = train(model, tokenized, task, config, run.seed, run.lr, score_test=run.test)
    result["pooling"] = getattr(model.config, "classifier_pooling", "cls")
    if run.keep_state:
        result["state"] = model.state_dict()
    return result


# What every run of a pool shares, sent once to each process when it starts.
_shared: dict = {}


def _start_process(model_dir, tokenized, task, config) -> None:
    progress.set_enabled(False)  # one bar, the parent's; interleaved bars would be unreadable
    _shared.update(model_dir=model_dir, tokenized=tokenized, task=task, config=config)


def _train_in_process(run: Run, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    return train_run(_shared["model_dir"], _shared["tokenized"], _shared["task"],
                     _shared["config"], run)


class Runner:
    """Trains lists of :class:`Run` of one model on one task, in order here (``jobs`` 1) or in
    a pool of ``jobs`` processes sharing ``cores`` threads. Use it as a context manager: the
    pool starts with the first parallel stage and stops on leaving."""

    def __init__(self, model_dir: Path, tokenized: dict[str, Tokenized], task: Task, config,
                 jobs: int = 1, cores: int | None = None):
        self.inputs = (Path(model_dir), tokenized, task, config)
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

    def train(self, runs: list[Run], what: str) -> list[dict]:
        """The results of ``runs``, in their order; ``what`` names them in logs and the bar."""
        start = time.perf_counter()
        if self.jobs == 1 or len(runs) == 1:
            results = [train_run(*self.inputs, run) for run in runs]
        else:
            results = self._train_in_pool(runs, what)
        log.info("%s: %d run(s) in %.0f s", what, len(runs), time.perf_counter() - start)
        return results

    def _train_in_pool(self, runs: list[Run], what: str) -> list[dict]:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.jobs, mp_context=get_context("spawn"),
                                             initializer=_start_process, initargs=self.inputs)
        threads = thread_counts(len(runs), self.jobs, self.cores)
        log.info("%s: %d runs in %d processes, threads per run %s", what, len(runs),
                 min(self.jobs, len(runs)), threads)
        futures = {self._pool.submit(_train_in_process, run, t): i
                   for i, (run, t) in enumerate(zip(runs, threads))}
        results: list[dict | None] = [None] * len(runs)
        with progress.progress(len(runs), what, unit="run") as bar:
            for future in as_completed(futures):
                i = futures[future]
                results[i] = future.result()
                bar.update(1)
                log.info("%s: seed %d, lr %g done (validation accuracy %.4f)", what,
                         runs[i].seed, runs[i].lr, results[i]["validation_accuracy"])
        return results
