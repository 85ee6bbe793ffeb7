"""The composition root: the one module where the sub-packages are wired together.

Every package imports only downward (docs/architecture.md, "Layer order"): the profiler does
not know the predictor, and the search knows none of the profiler, predictor, supernet or
eval. What crosses those lines is built here and handed in as plain objects:

* :func:`profile` -- ``atb.profiler.profile`` with the predictor's committee
  (``atb.predictor.propose_uncertain``) as the ranking for ``strategy="uncertainty"``;
* :func:`run_search` -- the search engine (``atb.search.api.search``) on the run resolved
  once (``atb.search.run.open_run``), with the workspace's latency predictor
  (:func:`search_latency`), fitness (:func:`search_fitness`: the supernet's held-out loss, capacity,
  retention or an ``atb.eval`` probe of its sub-models), re-measurement under exactly the predictor's device
  key (:func:`search_measure`), extraction (:func:`search_extractor`) and, with a task, the
  re-ranking score (:class:`SubmodelScreen`: a sub-model fine-tuned briefly with
  ``atb.eval.screen``).

The CLIs and ``atb-demo`` call these. Supernet training needs no other package, so its
``torchrun`` entry point (``python -m atb.supernet``) is ``atb.supernet.cli``'s.
Everything heavy is imported inside the functions.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from atb.arch import Arch
from atb.errors import UsageError
from atb.workspace import Workspace

log = logging.getLogger("atb.compose")


# -- profiler + predictor ---------------------------------------------------------------------
def profile(workspace: Workspace | str | Path | None = None, config=None, **options):
    """``atb.profiler.profile`` (same config and options); ``strategy="uncertainty"`` ranks
    candidates by the latency predictor's committee unless ``propose`` is given, and
    ``samples="auto"`` reads the predictor's learning curve unless ``learning_gain`` is given."""
    from atb.profiler.api import profile as profile_store

    strategy = options.get("strategy", config.strategy if config is not None else None)
    if strategy == "uncertainty" and options.get("propose") is None:
        from atb.predictor.active import propose_uncertain

        options["propose"] = propose_uncertain
    samples = options.get("samples", config.samples if config is not None else None)
    if samples == "auto" and options.get("learning_gain") is None:
        from atb.predictor.fit import learning_gain

        options["learning_gain"] = learning_gain
    if config is not None:
        options["config"] = config
    return profile_store(workspace, **options)


# -- the search's collaborators ----------------------------------------------------------------
def search_latency(ws: Workspace, device_key: str | None = None):
    """The workspace's latency predictor for ``device_key`` (fitted or refreshed if needed)."""
    from atb.predictor.auto import load_or_fit

    return load_or_fit(ws, device_key=device_key)


def search_fitness(ws: Workspace, space: str | None = None, spec: str = "loss"):
    """The search's fitness: ``loss`` (the supernet's held-out loss), ``params`` (capacity,
    over the supernet's space), ``retention`` (the teacher's hidden states kept) or
    ``probe:TASK``."""
    from atb.search.fitness import ARCH_FITNESSES, parse_fitness
    from atb.supernet.heldout_loss import FitnessEvaluator

    kind, task = parse_fitness(spec)  # a bad spec fails before the supernet is loaded
    evaluator = FitnessEvaluator.from_workspace(ws, space=space)
    if kind in ARCH_FITNESSES:
        return ARCH_FITNESSES[kind](evaluator.space)
    return evaluator if kind == "loss" else probe_fitness(evaluator, task)


def probe_fitness(evaluator, task: str, seed: int = 0):
    """Sub-models of ``evaluator``'s supernet scored by a linear probe on ``task``."""
    from atb.eval import Probe, load_task, load_tokenizer
    from atb.search.fitness import ProbeFitness
    from atb.supernet.checkpoint import tokenizer_source

    probe = Probe(load_task(task), load_tokenizer(tokenizer_source(evaluator.checkpoint)))
    return ProbeFitness(evaluator, probe, seed)


class _SubmodelScore:
    """What both re-ranking scores share: the task (loaded now, so a bad one fails before any
    search work), the workspace's supernet checkpoint and its tokenizer, and the supernet itself
    (loaded at the first arch)."""

    def __init__(self, ws: Workspace, task: str, space: str | None = None):
        from atb.eval import load_task
        from atb.eval.models import load_tokenizer
        from atb.supernet import checkpoint as ckpt

        self.loaded_task = load_task(task)
        self.task = self.loaded_task.name
        self.checkpoint = ckpt.find_checkpoint(ws.supernet_dir, space=space)
        self.tokenizer_source = ckpt.tokenizer_source(self.checkpoint)
        self.tokenizer = load_tokenizer(self.tokenizer_source)
        self._supernet = None

    @property
    def supernet(self):
        from atb.supernet import checkpoint as ckpt

        if self._supernet is None:
            self._supernet = ckpt.load_trainable(self.checkpoint)[0]["supernet"]
        return self._supernet


class SubmodelScreen(_SubmodelScore):
    """The re-ranking score of ``atb-search --task --rerank-by finetune`` (a
    :class:`atb.search.ports.TaskScore`): the arch cut out of the workspace's supernet, then
    fine-tuned briefly on the task (:class:`atb.eval.screen.Screen`, validation split only)."""

    def __init__(self, ws: Workspace, task: str, steps: int, lr: float, space: str | None = None):
        from atb.eval.screen import Screen, ScreenConfig

        super().__init__(ws, task, space)
        config = ScreenConfig(steps=steps, lr=lr)
        self.screen = Screen(self.loaded_task, self.tokenizer, config)
        self.settings = f"{steps} steps, lr {lr:g}, seed {config.seed}"

    def __call__(self, arch: Arch) -> dict:
        import tempfile

        from atb.supernet.extract import extract_model, save_model

        with tempfile.TemporaryDirectory(prefix="atb-screen-") as tmp:
            save_model(extract_model(self.supernet, arch), arch, Path(tmp),
                       tokenizer=self.tokenizer_source)
            return self.screen(Path(tmp))


class SubmodelProbe(_SubmodelScore):
    """The default re-ranking score of ``atb-search --task`` (``--rerank-by probe``): a linear
    probe of the sub-model's frozen mean-pooled states, sliced in memory from the supernet
    (:class:`atb.eval.Probe`, validation split; the probe's fit is convex, one seed suffices)."""

    def __init__(self, ws: Workspace, task: str, space: str | None = None):
        from atb.eval import Probe

        super().__init__(ws, task, space)
        self.probe = Probe(self.loaded_task, self.tokenizer)
        self.settings = "linear probe, seed 0"

    def __call__(self, arch: Arch) -> dict:
        import functools
        import time

        from atb.eval.probe import fit_probe

        start = time.perf_counter()
        features = self.probe.features(functools.partial(self.supernet, arch=arch))
        fit = fit_probe(features, self.probe.task, seed=0, c_grid=self.probe.c_grid)
        return {"validation_accuracy": fit["validation_accuracy"],
                "validation_loss": fit["validation_log_loss"],
                "correct": fit["validation_correct"], "seconds": time.perf_counter() - start}


def search_task_score(ws: Workspace, cfg):
    """The re-ranking score ``cfg.rerank_by`` names, on ``cfg.task``."""
    if cfg.rerank_by == "probe":
        return SubmodelProbe(ws, cfg.task, cfg.space)
    return SubmodelScreen(ws, cfg.task, cfg.screen_steps, cfg.screen_lr, cfg.space)


def search_measure(ws: Workspace, device_key: str):
    """``measure(archs) -> speedups``: the archs re-timed under exactly ``device_key`` and
    stored as verification labels (source ``verify``).

    Checked now, before any search work: a key this machine cannot time under (another CPU,
    another backend version) raises ``DeviceKeyMismatchError``.
    """
    from atb.devices import setting_for_key
    from atb.profiler.api import profile_archs
    from atb.profiler.labels import VERIFICATION_SOURCE

    setting_for_key(device_key)

    def measure(archs: list[Arch]) -> list[float]:
        report = profile_archs(archs, ws, device_key=device_key, source=VERIFICATION_SOURCE)
        by_arch = {str(r.arch): r.speedup for r in report.results}
        return [by_arch.get(str(a), float("nan")) for a in archs]

    return measure


def check_label_protocol(predictor) -> None:
    """Re-measurement times with today's profiler protocol: a predictor that learned from
    labels of another protocol would be checked against timings of a different kind."""
    from atb.profiler import PROTOCOL_VERSION

    version = int(getattr(predictor, "protocol_version", 0) or 0)  # 0: not timed by atb
    if version and version != PROTOCOL_VERSION:
        raise UsageError(
            f"the predictor for {predictor.device_key} learned from labels of profiler protocol "
            f"{version}, but re-measurement times with protocol {PROTOCOL_VERSION} (docs/protocol.md): "
            "its check would compare two protocols",
            hint="re-profile: run the same atb-profile --samples N command again (the key is timed anew "
                 "and the predictor refits on the new labels), or search with --no-verify",
        )


def search_extractor(ws: Workspace):
    """``extract_model(arch, out_dir) -> path``: the sub-model as a 🤗 directory."""

    def extract_model(arch: Arch, out_dir: Path) -> str:
        from atb.supernet.extract import extract

        info = extract(ws, arch, out_dir, onnx=False)  # logs where it wrote the model
        return str(info.get("out_dir", out_dir)) if isinstance(info, dict) else str(out_dir)

    return extract_model


# -- one device key ---------------------------------------------------------------------------
def device_key_for_flags(ws: Workspace, backend: str | None, threads: int | None) -> str:
    """The store's one device key whose setting has ``backend`` and ``threads`` (as given):
    :func:`atb.devices.key_matching_flags` on the workspace store's keys."""
    from atb.devices import key_matching_flags
    from atb.predictor.auto import open_store

    with open_store(ws) as store:
        keys = list(store.device_keys())
    return key_matching_flags(keys, backend, threads)


# -- the search -------------------------------------------------------------------------------
SEARCH_PORTS = ("latency", "fitness", "measure", "extract_model", "task_score")  # built here unless given


def run_search(target_speedup: float | Sequence[float] | None = None,
               workspace: Workspace | str | Path | None = None, *, config=None, **options):
    """``atb.search.run_search`` with the workspace's predictor, supernet and profiler.

    Takes the same settings (``config``, ``target_speedup``, ``options``: SearchConfig fields,
    ``resume``, which loads the run's config.json, and ``run_name``), resolved here once and
    handed to the engine with the collaborators they need. A collaborator given in
    ``options`` (``latency``, ``fitness``, ``measure``, ``extract_model``) is used as it is.
    ``backend``/``threads`` (``atb-search --backend/--threads``) pick the store's device key
    of that setting when no key is named, and must agree with the predictor's key otherwise
    (what these flags mean in each command: :mod:`atb.devices.setting`). Every other name goes
    to the settings, which reject an unknown one as ``atb.search.run_search`` does.
    """
    from atb.devices import check_flags
    from atb.search.api import search
    from atb.search.run import open_run

    latency, fitness, measure, extract_model, task_score = (options.pop(name, None)
                                                            for name in SEARCH_PORTS)
    backend, threads, run_name = (options.pop(name, None) for name in ("backend", "threads", "run_name"))
    run, cfg, ws = open_run(target_speedup, config, workspace=workspace, run_name=run_name, **options)
    if cfg.device_key is not None:
        check_flags(cfg.device_key, backend=backend, threads=threads)
    elif latency is None and (backend is not None or threads is not None):
        cfg = cfg.replace(device_key=device_key_for_flags(ws, backend, threads))
    if task_score is None and cfg.task is not None:  # an unknown task fails before any work
        task_score = search_task_score(ws, cfg)
    if fitness is None:
        fitness = search_fitness(ws, cfg.space, cfg.fitness_spec)
    if latency is None:
        latency = search_latency(ws, cfg.device_key)
    check_flags(latency.device_key, backend=backend, threads=threads)
    if measure is None and cfg.verify:
        check_label_protocol(latency)
        measure = search_measure(ws, latency.device_key)
    if extract_model is None and cfg.extract:
        extract_model = search_extractor(ws)
    return search(cfg, ws, run, run_name=run_name, latency=latency, fitness=fitness, measure=measure,
                  extract_model=extract_model, task_score=task_score)
