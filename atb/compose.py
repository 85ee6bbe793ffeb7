"""The composition root: the one module where the sub-packages are wired together.

Every package imports only downward (docs/architecture.md, "Layer order"): the profiler does
not know the predictor, and the search knows none of the profiler, predictor, supernet or
eval. What crosses those lines is built here and handed in as plain objects:

* :func:`profile` -- ``atb.profiler.profile`` with the predictor's committee
  (``atb.predictor.propose_uncertain``) as the ranking for ``strategy="uncertainty"`` and its
  learning curve for ``samples="auto"``;
* :func:`search_ports` -- what ``atb.search.run_search`` is handed: the workspace's latency
  predictor (:func:`search_latency`), fitness (:func:`search_fitness`: the supernet's held-out
  loss, capacity, retention or an ``atb.eval`` probe of its sub-models), re-measurement under
  exactly the predictor's device key (:func:`search_measure`), extraction
  (:func:`search_extractor`) and, with a task, the re-ranking score (:class:`SubmodelProbe`, or
  :class:`SubmodelScreen`: a sub-model fine-tuned briefly with ``atb.eval.screen``).

The CLIs and ``atb-demo`` call these. Supernet training needs no other package, so its
``torchrun`` entry point (``python -m atb.supernet``) is ``atb.supernet.cli``'s.
Everything heavy is imported inside the functions.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from atb.arch import Arch
from atb.errors import UsageError
from atb.workspace import Workspace

if TYPE_CHECKING:
    from atb.profiler.api import ProfileConfig
    from atb.search.config import SearchConfig
    from atb.search.ports import SearchPorts

log = logging.getLogger("atb.compose")


# -- profiler + predictor ---------------------------------------------------------------------
def profile(config: ProfileConfig, workspace: Workspace | str | Path | None = None):
    """``atb.profiler.profile`` of ``config`` with the latency predictor handed in where the
    sampling needs it: its committee ranks the candidates of ``strategy="uncertainty"``, its
    learning curve stops ``samples="auto"``."""
    from atb.profiler.api import ProfilePorts
    from atb.profiler.api import profile as profile_store

    propose = learning_gain = None
    if config.strategy == "uncertainty":
        from atb.predictor.active import propose_uncertain as propose
    if config.samples == "auto":
        from atb.predictor.fit import learning_gain
    return profile_store(config, workspace, ProfilePorts(propose, learning_gain))


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

    def score_trained(self, model_dir: Path, checkpoint: Path, arch: Arch) -> dict:
        """The same score of a model trained further (its 🤗 directory)."""
        return self.screen(Path(model_dir))


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

        return self._score(functools.partial(self.supernet, arch=arch))

    def score_trained(self, model_dir: Path, checkpoint: Path, arch: Arch) -> dict:
        """The same score of a model trained further (its training checkpoint, in memory)."""
        import functools

        from atb.supernet import checkpoint as ckpt

        supernet = ckpt.load_trainable(Path(checkpoint))[0]["supernet"]
        return self._score(functools.partial(supernet, arch=arch))

    def score_model(self, model_dir: Path) -> dict:
        """The same score of a 🤗 model directory (e.g. the teacher's layer cut)."""
        from atb.eval.models import load_encoder

        return self._score(load_encoder(Path(model_dir)))

    def _score(self, encoder) -> dict:
        import time

        from atb.eval.probe import fit_probe

        start = time.perf_counter()
        features = self.probe.features(encoder)
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

        info = extract(ws, arch, out_dir)  # logs where it wrote the model
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
def search_ports(config: SearchConfig, workspace: Workspace, given: SearchPorts | None = None, *,
                 backend: str | None = None, threads: int | None = None) -> SearchPorts:
    """The collaborators ``config`` needs, for ``atb.search.run_search``: those ``given`` as
    they are, the rest built from the workspace's predictor, supernet and profiler.

    ``backend``/``threads`` (``atb-search --backend/--threads``) pick the store's device key
    of that setting when ``config`` names none, and must agree with the predictor's key
    otherwise (what these flags mean in each command: :mod:`atb.devices.setting`). Everything
    that can fail is checked here, before any search work: an unknown task, a missing
    supernet or predictor, a device key this machine cannot time under.
    """
    from atb.devices import check_flags
    from atb.search.ports import SearchPorts

    given = given or SearchPorts()
    device_key = config.device_key
    if device_key is not None:
        check_flags(device_key, backend=backend, threads=threads)
    elif given.latency is None and (backend is not None or threads is not None):
        device_key = device_key_for_flags(workspace, backend, threads)
    task_score = given.task_score
    if task_score is None and config.task is not None:  # an unknown task fails before any work
        task_score = search_task_score(workspace, config)
    fitness, latency = given.fitness, given.latency
    if fitness is None:
        fitness = search_fitness(workspace, config.space, config.fitness_spec)
    if latency is None:
        latency = search_latency(workspace, device_key)
    check_flags(latency.device_key, backend=backend, threads=threads)
    measure = given.measure
    if measure is None and config.verify:
        check_label_protocol(latency)
        measure = search_measure(workspace, latency.device_key)
    extract_model = given.extract_model
    if extract_model is None and config.extract:
        extract_model = search_extractor(workspace)
    return SearchPorts(latency, fitness, measure, extract_model, task_score)


# -- after the search: further training (AutoTinyBERT §3.6) ----------------------------------
def train_further_after_search(result, workspace: Workspace, steps: int,
                               task_score=None) -> dict:
    """The search's winner and the BERT-rule arch of its window, trained further with the
    same budget into ``RUN_DIR/models/<arch>`` (:func:`atb.supernet.further.distill`), each
    with its held-out distillation loss and, when the search had a task, its validation score
    before (the slice) and after. Saved as ``RUN_DIR/further.json``; runs are reused and
    resumed by :mod:`atb.supernet.further`, so ``atb-search --resume`` continues them."""
    import json

    from atb.jsonl import write_atomic
    from atb.supernet.further import FurtherConfig, corpus_source, distill

    if result.best is None:
        raise UsageError("no winner to train further: no architecture met the target")
    roles = {str(result.best.arch): "winner"}
    baseline = result.primary.baseline
    if baseline is not None:
        roles.setdefault(str(baseline.arch), "bert-rule")
    models_dir = Path(result.run_dir) / "models"
    summaries = [distill(workspace, [arch], models_dir / arch, FurtherConfig(steps=steps))[0]
                 for arch in roles]
    models = []
    for s in summaries:
        row = {"arch": s["arch"], "role": roles[s["arch"]], "out_dir": s["out_dir"],
               "steps": s["steps"], "tokens": s["tokens"], "seconds": s["seconds"],
               "heldout_loss_before": s["heldout_loss_before"],
               "heldout_loss_after": s["heldout_loss_after"]}
        if task_score is not None:
            arch = Arch.parse(s["arch"])
            row["validation_before"] = task_score(arch)["validation_accuracy"]
            row["validation_after"] = task_score.score_trained(
                s["out_dir"], s["checkpoint"], arch)["validation_accuracy"]
        models.append(row)
        card = search_card(result, s["arch"], scores=_further_scores(row, task_score))
        card.source = f"sliced from the supernet, then trained further on its own ({steps:,} steps)"
        card.supernet = s["supernet"]
        card.further_training = {**s, "corpus_source": corpus_source(workspace, s["corpus"])}
        card.write(Path(s["out_dir"]))
    report = {"steps": steps, "task": getattr(task_score, "task", None), "models": models}
    write_atomic(Path(result.run_dir) / "further.json", json.dumps(report, indent=2))
    return report


def _further_scores(row: dict, task_score) -> list[dict]:
    if task_score is None:
        return []
    note = "linear probe, validation split" if hasattr(task_score, "probe") else "validation split"
    return [{"task": task_score.task, "metric": "accuracy (slice)", "value": row["validation_before"],
             "note": note},
            {"task": task_score.task, "metric": f"accuracy (after {row['steps']:,} steps)",
             "value": row["validation_after"], "note": note}]


def search_card(result, arch: str, scores: list[dict] | None = None):
    """The model card of ``arch`` as the search saw it: the speedup measured in its
    verification call (winner and rule arch are timed together) and, with a task, the
    re-ranking's validation accuracy with its 95% interval."""
    from atb.model_card import ModelCard

    measured = {str(c.arch): c.measured_speedup
                for c in [*result.top_k, result.primary.baseline] if c is not None}
    speedup = ({"speedup": measured[arch], "device_key": result.device_key}
               if measured.get(arch) else None)
    ranked = result.primary.reranking
    if scores is None and ranked is not None:
        scores = [{"task": ranked.task, "metric": "accuracy", "value": s.validation_accuracy,
                   "interval": tuple(s.validation_ci), "note": f"validation split; {ranked.settings}"}
                  for s in [*ranked.ranked, ranked.baseline] if s is not None and s.arch == arch]
    return ModelCard(Arch.parse(arch), source="sliced from the supernet, not trained further",
                     speedup=speedup, scores=scores or [])
