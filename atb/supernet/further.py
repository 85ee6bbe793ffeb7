"""Further training (AutoTinyBERT §3.6): a searched arch cut out of SuperPLM and distilled on
its own against the supernet's teacher, so that what a user takes home is trained, not a slice.

Each arch gets its own run (:func:`train_further`): its slice of the supernet becomes a
checkpoint of its own (:func:`~atb.supernet.extract.extract_trainable`), trained with
Algorithm 1 reduced to one member (``fixed_arch``) under its own warm-up and decay over
``steps``. A run lives in ``<workspace>/further/<arch>-<key>``, where the key hashes everything
that shapes the result (the supernet checkpoint, the arch, the objective, the corpus and its
tokens, the steps and the hyper-parameters): it is reused only on an exact match, and a killed
run resumes from its last checkpoint (every ``save_every`` steps). :func:`distill` trains
several archs and writes each as a stock-loadable 🤗 directory with a model card.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from atb.arch import Arch
from atb.errors import MissingInputError, UsageError
from atb.supernet.config import PRECISIONS, ExportOptions, TrainConfig

log = logging.getLogger("atb.supernet.further")

# The rule (bench/further.py): the smallest budget whose mean validation probe over four archs
# is within 1 point of the longest budget measured. Measured at 0 / 300 / 1,000 steps, no budget
# moved the mean mr probe by a point, so the rule gives the slice itself; 300 is the smallest
# budget measured, and it halves the held-out distillation loss (docs/results.md, "Further
# training").
DEFAULT_STEPS = 300
# What a sub-model learns from the teacher: "supernet" is the supernet's own objective (its
# last hidden states, self-kd); "layers" matches every layer (TinyBERT's uniform map).
OBJECTIVES = {"supernet": None, "layers": "self-kd-layers"}
CORPORA = ("workspace", "imdb")  # the workspace's prepared text, or 25,000 IMDB reviews
RUN_FILE = "further.json"  # what a run is (its key material) and what it measured
# The training checkpoint, in a directory of its own: a checkpoint is saved by swapping its
# whole directory, which must not take the run's record and lock with it.
CHECKPOINT = "checkpoint"


@dataclass(frozen=True)
class FurtherConfig:
    """How each arch is trained further (the paper: 5 epochs of its corpus; defaults: ours)."""

    steps: int = DEFAULT_STEPS  # optimizer updates of 16 sequences of 64 tokens
    objective: str = "supernet"  # a key of OBJECTIVES
    corpus: str = "workspace"  # one of CORPORA
    lr: float | None = None  # peak AdamW rate; None: the supernet's (TrainConfig's INIT_LR)
    seed: int = 0
    save_every: int = 100  # steps between checkpoints: what a killed run can lose
    precision: str = "fp32"  # "bf16": autocast forward passes (devices with bf16 arithmetic only)

    def check(self) -> "FurtherConfig":
        if self.steps < 1 or self.save_every < 1:
            raise UsageError(f"steps and save_every must be at least 1 (got {self.steps}, "
                             f"{self.save_every})")
        if self.objective not in OBJECTIVES:
            raise UsageError(f"unknown objective {self.objective!r}",
                             hint=f"choose one of {', '.join(OBJECTIVES)}")
        if self.corpus not in CORPORA:
            raise UsageError(f"unknown corpus {self.corpus!r}",
                             hint=f"choose one of {', '.join(CORPORA)}")
        if self.lr is not None and not self.lr > 0:
            raise UsageError(f"lr must be positive (got {self.lr})")
        if self.precision not in PRECISIONS:
            raise UsageError(f"unknown precision {self.precision!r}",
                             hint=f"choose one of {', '.join(PRECISIONS)}")
        return self

    def train_config(self, init: str) -> TrainConfig:
        """The supernet trainer's settings for one stand-alone arch."""
        base = TrainConfig(init=init, steps=self.steps, samples=1, seed=self.seed,
                           save_every=min(self.save_every, self.steps), precision=self.precision)
        return base if self.lr is None else TrainConfig(**{**asdict(base), "lr": self.lr})


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def corpus_workspace(workspace, corpus: str):
    """The workspace whose prepared text a run trains on: the workspace itself, or a corpus
    workspace ``<workspace>/further/corpus-imdb`` prepared once from the IMDB reviews."""
    from atb.supernet.data import as_workspace, prepare_data

    ws = as_workspace(workspace)
    if corpus == "workspace":
        return ws
    from atb import movie_reviews

    corpus_ws = as_workspace(ws.root / "further" / f"corpus-{corpus}")
    if not (corpus_ws.data_dir / "manifest.json").is_file():
        text = corpus_ws.root / "imdb.jsonl"
        text.write_text("".join(json.dumps({"text": t}) + "\n" for t in movie_reviews.imdb_reviews()),
                        encoding="utf-8")
        prepare_data(corpus_ws, texts=[text], builtin=False)
        text.unlink()
    return corpus_ws


def run_key(supernet: Path, arch: Arch, config: FurtherConfig, corpus_ws) -> dict:
    """Everything that shapes a further-trained arch, and its hash."""
    from atb.supernet import checkpoint as ckpt

    init = ckpt.read_state(supernet)["init"]["source"]
    manifest = corpus_ws.data_dir / "manifest.json"
    if not manifest.is_file():
        raise MissingInputError(f"no prepared text in {corpus_ws.data_dir}",
                                hint="run atb-supernet data first")
    state_bytes = (Path(supernet) / ckpt.STATE).read_bytes()
    train_config = asdict(config.train_config(init))
    material = {"supernet": str(Path(supernet).resolve()), "supernet_state": _sha256(state_bytes),
                "arch": str(arch), "objective": config.objective, "corpus": config.corpus,
                "corpus_tokens": _sha256(manifest.read_bytes()), "steps": config.steps,
                "seed": config.seed, "lr": config.lr, "train_config": train_config}
    if train_config.pop("precision") != "fp32":  # fp32 runs keep the keys they had before bf16
        material["precision"] = config.precision
    key = _sha256(json.dumps(material, sort_keys=True).encode())[:12]
    return {"key": key, **material}


def heldout_loss(checkpoint: Path, workspace, arch: Arch) -> float:
    """The checkpoint's objective on the held-out text of the corpus it trains on (32
    sequences of 128 tokens)."""
    from atb.supernet.heldout_loss import FitnessEvaluator

    return FitnessEvaluator.from_checkpoint(checkpoint, workspace).evaluate(arch)["loss"]


def _read_run(path: Path) -> dict:
    try:
        return json.loads((path / RUN_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _write_run(path: Path, record: dict) -> None:
    from atb.jsonl import write_atomic

    write_atomic(path / RUN_FILE, json.dumps(record, indent=2))


def train_further(workspace, arch: Arch | str, config: FurtherConfig | None = None,
                  supernet: Path | None = None) -> dict:
    """Train ``arch``'s slice of the workspace's supernet (or ``supernet``, a checkpoint
    directory) further on its own; return the run's record: ``checkpoint``, ``key``,
    ``steps``, ``tokens``, ``seconds`` (this call's training), ``heldout_loss_before`` /
    ``_after`` and ``reused`` (the finished run was found and nothing was trained)."""
    from atb.supernet import checkpoint as ckpt
    from atb.supernet.data import as_workspace

    config = (config or FurtherConfig()).check()
    ws = as_workspace(workspace)
    supernet = Path(supernet) if supernet else ckpt.find_checkpoint(ws.supernet_dir)
    state = ckpt.read_state(supernet)
    if not state.get("init"):
        raise UsageError(f"{supernet} was trained from scratch; further training distils from "
                         "the pretrained model a supernet was built from",
                         hint="train the supernet with atb-supernet train --init minilm")
    arch = ckpt.space_of(state).validate(Arch.parse(arch) if isinstance(arch, str) else arch)
    corpus_ws = corpus_workspace(ws, config.corpus)
    key = run_key(supernet, arch, config, corpus_ws)
    path = ws.subdir("further") / f"{arch}-{key['key']}"
    path.mkdir(parents=True, exist_ok=True)
    with _one_trainer(path):  # a second process asking for the same run waits, then reuses it
        record = _read_run(path)
        if record.get("finished"):
            return {**record, "reused": True, "seconds": 0.0}
        return _train(corpus_ws, path, (supernet, state, arch), config, key)


@contextmanager
def _one_trainer(path: Path):
    """Hold ``path/.lock`` (rank 0 only: under torchrun the ranks meet at barriers instead)."""
    if _rank() != 0:
        yield
        return
    import fcntl

    with open(path / ".lock", "w") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        yield


def _train(corpus_ws, path: Path, source: tuple, config: FurtherConfig, key: dict) -> dict:
    """Start (or resume) the run in ``path`` and train it to ``config.steps``."""
    from atb.supernet import checkpoint as ckpt
    from atb.supernet.config import TrainTarget
    from atb.supernet.extract import extract_trainable
    from atb.supernet.train import train_supernet

    supernet, state, arch = source
    rank, checkpoint = _rank(), path / CHECKPOINT
    if rank == 0 and not (checkpoint / ckpt.STATE).is_file():  # a fresh run: the slice, its loss
        extract_trainable(supernet, arch, checkpoint, objective=OBJECTIVES[config.objective])
        _write_run(path, {**key, "heldout_loss_before": heldout_loss(checkpoint, corpus_ws, arch),
                          "finished": False})
    _barrier()  # under torchrun every process starts from rank 0's slice
    record = _read_run(path)
    done = int(ckpt.read_state(checkpoint)["step"])
    log.info("training %s further: steps %d to %d (%s, corpus %s)", arch, done, config.steps,
             config.objective, config.corpus)
    start = time.perf_counter()
    summary = train_supernet(corpus_ws, config.train_config(state["init"]["source"]),
                             TrainTarget(space=state["space"], fixed_arch=arch, out_dir=checkpoint),
                             resume=True)
    record.update(checkpoint=str(checkpoint), arch=str(arch), steps=config.steps,
                  tokens=config.steps * TrainConfig.batch_size * TrainConfig.seq_len,
                  seconds=round(time.perf_counter() - start, 3),
                  tokens_per_s=summary.get("tokens_per_s"),
                  finished=True, reused=False,
                  resumed_from_step=done, processes=summary["processes"])
    if rank == 0:
        record["heldout_loss_after"] = heldout_loss(checkpoint, corpus_ws, arch)
        _write_run(path, record)
    _barrier()
    return record


def _rank() -> int:
    """This process's rank under torchrun (the process group is started here), else 0."""
    from atb.supernet.train import _dist

    return _dist()[0]


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def corpus_source(workspace, corpus: str) -> str:
    """The name of a corpus's text for the model card (its licence is looked up by it)."""
    if corpus != "workspace":
        return corpus
    from atb.supernet.data import as_workspace

    try:
        manifest = json.loads((as_workspace(workspace).data_dir / "manifest.json").read_text())
        return ", ".join(str(s.get("source", s)) if isinstance(s, dict) else str(s)
                         for s in manifest.get("sources", [])) or "the workspace's text"
    except (OSError, ValueError):
        return "the workspace's text"


def distill(workspace, archs: list[Arch | str], out: Path, config: FurtherConfig | None = None,
            export: ExportOptions | None = None) -> list[dict]:
    """Train every arch further (:func:`train_further`) and write it as a 🤗 directory with a
    model card: ``out`` itself for one arch, ``out/<arch>`` for several. Returns one summary
    per arch: the run's record plus what ``extract`` wrote."""
    from atb.model_card import ModelCard
    from atb.profiler.api import measured_speedup
    from atb.supernet.extract import extract

    config, export = (config or FurtherConfig()).check(), export or ExportOptions()
    if not archs:
        raise UsageError("name at least one arch to train further")
    summaries = []
    for arch in archs:
        arch = Arch.parse(arch) if isinstance(arch, str) else arch
        record = train_further(workspace, arch, config)
        target = Path(out) if len(archs) == 1 else Path(out) / str(arch)
        if _rank() != 0:  # under torchrun rank 0 writes
            continue
        written = extract(workspace, arch, target, export, checkpoint=Path(record["checkpoint"]))
        further = {**record, "corpus_source": corpus_source(workspace, config.corpus)}
        ModelCard(arch, source=f"sliced from the supernet, then trained further on its own "
                               f"({config.steps:,} steps)", supernet=record["supernet"],
                  further_training=further, speedup=measured_speedup(workspace, arch)).write(target)
        summaries.append({**record, **written, "out_dir": str(target)})
    return summaries


def estimate_seconds(workspace, arch: Arch | str, config: FurtherConfig | None = None,
                     probe_steps: int = 3) -> float:
    """What training ``arch`` further would take on this machine now: ``probe_steps`` real
    steps timed on a scratch copy of its slice (discarded), scaled to ``config.steps``.
    The first step's start-up is included, so the estimate leans high."""
    import tempfile

    from atb.supernet import checkpoint as ckpt
    from atb.supernet.config import TrainTarget
    from atb.supernet.data import as_workspace
    from atb.supernet.extract import extract_trainable
    from atb.supernet.train import train_supernet

    config, ws = (config or FurtherConfig()).check(), as_workspace(workspace)
    supernet = ckpt.find_checkpoint(ws.supernet_dir)
    state = ckpt.read_state(supernet)
    arch = Arch.parse(arch) if isinstance(arch, str) else arch
    with tempfile.TemporaryDirectory(prefix="atb-further-estimate-") as tmp:
        extract_trainable(supernet, arch, Path(tmp) / "run", OBJECTIVES[config.objective])
        summary = train_supernet(corpus_workspace(ws, config.corpus),
                                 config.train_config(state["init"]["source"]),
                                 TrainTarget(space=state["space"], fixed_arch=arch,
                                             out_dir=Path(tmp) / "run"),
                                 resume=True, stop_at=probe_steps)
    return summary["seconds"] / max(1, summary["steps_run"]) * config.steps
