"""Algorithm 1 (batch-wise training) of SuperPLM, on ``torch.distributed`` or in one process.

For every step the global batch is split into N sub-batches, one per worker; every worker
samples its own sub-model M times, accumulating the gradients of each on its sub-batch; the
gradients are averaged over workers and one AdamW update is made. ``N`` workers are spread
over the processes (``torchrun --nproc_per_node P``; gloo on CPU, nccl on GPU), so one
process simulating N workers by accumulation makes exactly the same update as N processes.

Every random draw (data order, sub-model choice, MLM masks) is derived from
``(seed, step, worker)``; a run is reproducible and a resumed run continues as if it had never
stopped. Run as (the entry point is ``atb.supernet.cli``'s)::

    python -m atb.supernet --workspace WS --super small --space pretrain --steps 300
    torchrun --nproc_per_node 2 -m atb.supernet --workspace WS --steps 300
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch

from atb import progress
from atb.arch import Arch, SearchSpace, get_space
from atb.errors import MissingInputError, UsageError
from atb.supernet import checkpoint as ckpt
from atb.supernet.config import (DEPTHS, IMPORTANCE, INIT_LR, PRECISIONS, SAMPLING, SCRATCH_LR, TrainConfig,
                                 TrainTarget)
from atb.supernet.data import as_workspace, load_split, make_sequences

log = logging.getLogger("atb.supernet.train")


def _lr_factor(step: int, cfg: TrainConfig) -> float:
    warm = max(1, int(cfg.warmup * cfg.steps))
    if step < warm:
        return (step + 1) / warm
    return max(0.0, (cfg.steps - step) / max(1, cfg.steps - warm))


class _Schedule:
    """Which sequences and which sub-models a (step, worker) gets; pure functions of the seed."""

    def __init__(self, n_rows: int, cfg: TrainConfig, space: SearchSpace, fixed: Arch | None):
        self.n, self.cfg, self.space, self.fixed = n_rows, cfg, space, fixed
        self._perms: dict[int, np.ndarray] = {}

    def rows(self, step: int) -> np.ndarray:
        b = self.cfg.batch_size
        flat = np.arange(step * b, (step + 1) * b)
        out = np.empty(b, dtype=np.int64)
        for i, g in enumerate(flat):
            epoch = int(g // self.n)
            if epoch not in self._perms:
                rng = np.random.default_rng([self.cfg.seed, epoch])
                self._perms = {epoch: rng.permutation(self.n)}  # one epoch cached at a time
            out[i] = self._perms[epoch][g % self.n]
        return out

    def archs(self, step: int, worker: int) -> list[Arch]:
        if self.fixed is not None:
            return [self.fixed] * self.cfg.samples
        rng = np.random.default_rng([self.cfg.seed, step, worker, 1])
        if self.cfg.sampling == "sandwich":  # the extremes every step, uniform draws between
            return [self.space.super_arch, self.space.smallest,
                    *self.space.sample(rng, self.cfg.samples - 2)]
        return self.space.sample(rng, self.cfg.samples)

    def generator(self, step: int, worker: int) -> torch.Generator:
        """A CPU generator for the MLM masks (the same draws on every device)."""
        seed = np.random.SeedSequence([self.cfg.seed, step, worker, 2]).generate_state(1)[0]
        return torch.Generator().manual_seed(int(seed))


def _dist():
    """``(rank, world_size)``; initialises the process group under torchrun."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world


def _device() -> torch.device:
    """This process's GPU under torchrun (``LOCAL_RANK``) when there is one, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def bf16_support(device: torch.device | None = None) -> str | None:
    """Why ``device`` (default: the one training runs on) cannot train under bf16 autocast, or
    None when it can: a GPU that reports bf16 support, or a CPU with bf16 instructions (without
    them bf16 is emulated and slower than fp32)."""
    device = device or _device()
    if device.type == "cuda":
        supported = torch.cuda.is_bf16_supported()
        return None if supported else f"{torch.cuda.get_device_name(device)} has no bf16"
    from atb.devices.fingerprint import fingerprint

    fp = fingerprint()
    return None if fp.has_bf16 else (f"this CPU ({fp.cpu_model}) has no bf16 instructions "
                                     "(avx512_bf16 / amx_bf16)")


def _average_gradients(params: list[torch.nn.Parameter]) -> None:
    """All-reduce every gradient in one flat buffer (the losses are already divided by N)."""
    import torch.distributed as dist

    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dist.all_reduce(flat)
    offset = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[offset : offset + n].view_as(p))
        offset += n


def _update(step: int, model, optimizer, schedule: _Schedule, data, local: range, world: int):
    """One update of Algorithm 1; returns (mean loss over all sampled sub-models, tokens)."""
    ids, mask = data
    cfg, device = schedule.cfg, next(model.parameters()).device
    supernet, objective = model["supernet"], model["objective"]
    params = [p for p in model.parameters() if p.requires_grad]
    autocast = partial(torch.autocast, device.type, torch.bfloat16, enabled=cfg.precision == "bf16")
    optimizer.zero_grad(set_to_none=False)
    totals = torch.zeros(3)  # sum of losses, number of sub-model passes, tokens
    for worker, part in enumerate(np.array_split(schedule.rows(step), cfg.workers)):
        if worker not in local:  # another process's sub-batch
            continue
        length = int(mask[part].sum(1).max())  # trim padding columns
        batch = {"input_ids": torch.from_numpy(ids[part, :length]).to(device),
                 "attention_mask": torch.from_numpy(mask[part, :length]).to(device)}
        with autocast():
            prepared = objective.prepare(batch, schedule.generator(step, worker))
        for arch in schedule.archs(step, worker):
            with autocast():  # the forward pass only: backward follows the ops autocast chose
                loss, _ = objective.loss(supernet, prepared, arch)
            (loss / (cfg.samples * cfg.workers)).backward()  # the average over M x N passes
            totals[:2] += torch.tensor([loss.item(), 1.0])
        totals[2] += float(batch["attention_mask"].sum().item())
    for p in params:  # a weight no sampled sub-model used still gets a (zero) gradient
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    if world > 1:
        import torch.distributed as dist

        _average_gradients(params)
        totals = totals.to(device)
        dist.all_reduce(totals)
        totals = totals.cpu()
    torch.nn.utils.clip_grad_norm_(params, cfg.clip_norm)
    for group in optimizer.param_groups:
        group["lr"] = cfg.lr * _lr_factor(step, cfg)
    optimizer.step()
    return float(totals[0] / totals[1]), int(totals[2])


def make_optimizer(params, lr: float, weight_decay: float = 0.01) -> torch.optim.AdamW:
    """AdamW, fused where torch has a fused kernel: on CPU it is ~8x faster than the loop,
    which matters because Algorithm 1 updates the whole supernet after every batch."""
    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def resolve_space(super_config: str | Arch = "small", space: str | SearchSpace = "pretrain"):
    if isinstance(space, SearchSpace):
        return space
    return get_space(space, super_config)


def _check_config(cfg: TrainConfig, world: int, super_config) -> None:
    """One-line errors for option combinations that cannot train."""
    if cfg.sampling not in SAMPLING or (cfg.sampling == "sandwich" and cfg.samples < 2):
        raise UsageError(f"sampling must be one of {', '.join(SAMPLING)}, and sandwich needs "
                         f"samples >= 2 (got {cfg.sampling!r} with samples={cfg.samples})")
    min_steps = 0 if cfg.init else 1  # --init --steps 0 saves the reordered supernet
    if (cfg.steps < min_steps or cfg.samples < 1 or cfg.workers < 1 or cfg.workers % world
            or cfg.batch_size < cfg.workers):
        raise UsageError(
            f"need steps>={min_steps}, samples>=1, workers a positive multiple of the {world} "
            f"processes and batch_size>={cfg.workers} (got steps={cfg.steps}, samples={cfg.samples}, "
            f"workers={cfg.workers}, batch_size={cfg.batch_size})"
        )
    if cfg.save_every < 1 or cfg.log_every < 1:  # both are step intervals
        raise UsageError(f"save_every and log_every must be at least 1 (got {cfg.save_every}, "
                         f"{cfg.log_every})")
    if cfg.init and super_config is not None:
        raise UsageError("--super and --init exclude each other: the pretrained checkpoint "
                         "defines the super-configuration")
    if cfg.objective not in (None, "mlm", "kd") or (cfg.init and cfg.objective):
        raise UsageError(f"objective must be mlm or kd, and only without --init (got "
                         f"{cfg.objective!r}; --init distils from the init checkpoint)")
    if cfg.importance not in IMPORTANCE or cfg.calibration < 1:
        raise UsageError(f"importance must be one of {', '.join(IMPORTANCE)} and calibration "
                         f">= 1 (got {cfg.importance!r}, {cfg.calibration})")
    if cfg.depth not in DEPTHS:
        raise UsageError(f"depth must be one of {', '.join(DEPTHS)} (got {cfg.depth!r})")
    if cfg.precision not in PRECISIONS:
        raise UsageError(f"precision must be one of {', '.join(PRECISIONS)} (got {cfg.precision!r})")
    if cfg.precision == "bf16" and (why := bf16_support()):
        raise UsageError(f"bf16 asked, but {why}", hint="train in fp32")


def _resolve_config(options: TrainConfig, world: int, super_config,
                    fixed_arch: Arch | None) -> TrainConfig:
    """A new, complete config: the defaults that depend on the run (workers, lr, sampling)
    filled in and every option checked; ``options`` is left as the caller gave it."""
    lr = options.lr
    if lr is not None and not lr > 0:  # 0 is not "the default", and AdamW refuses < 0
        raise UsageError(f"the learning rate must be positive (got {lr})")
    sandwich = options.init and fixed_arch is None and options.samples >= 2  # TrainConfig.sampling
    cfg = replace(options, workers=options.workers or world,
                  lr=lr or (INIT_LR if options.init else SCRATCH_LR),
                  sampling=options.sampling or ("sandwich" if sandwich else "uniform"))
    _check_config(cfg, world, super_config)
    return cfg


@dataclass(frozen=True)
class _Target:
    """What a run trains and where it saves it, resolved once from the options."""

    full: SearchSpace  # the super-configuration's whole space (the teacher's, with --init)
    space: SearchSpace  # the space sampled: ``full``, or only ``fixed``
    fixed: Arch | None  # the one arch of a stand-alone run
    path: Path  # the checkpoint directory
    pretrained: object | None = None  # the --init model (a pretrained.PretrainedBert)
    init_info: dict | None = None  # what state.json records about it


def _load_init(cfg: TrainConfig):
    """The ``--init`` checkpoint, refused when its tokenizer or its positions do not fit."""
    from atb.supernet.pretrained import check_tokenizer, load_pretrained

    pretrained = load_pretrained(cfg.init)
    check_tokenizer(pretrained)
    if cfg.seq_len > pretrained.max_positions:
        raise UsageError(f"--seq-len {cfg.seq_len} exceeds the {pretrained.max_positions} "
                         f"positions of {pretrained.source}")
    return pretrained


def _target(ws, cfg: TrainConfig, wanted: TrainTarget) -> _Target:
    """The spaces (``--init``'s checkpoint defines the super-configuration, else
    ``wanted.super_config``) and the checkpoint directory."""
    space, fixed_arch, out_dir = wanted.space, wanted.fixed_arch, wanted.out_dir
    pretrained = _load_init(cfg) if cfg.init else None
    if pretrained:
        strategy = space.strategy if isinstance(space, SearchSpace) else space
        full = SearchSpace(strategy, pretrained.super_arch)
    else:
        full = resolve_space(wanted.super_config or "small", space)
    sp = full if fixed_arch is None else SearchSpace(full.strategy, full.validate(fixed_arch))
    path = Path(out_dir) if out_dir else ckpt.checkpoint_dir(
        ws.supernet_dir, sp, pretrained.name if pretrained else None)
    if not pretrained:
        return _Target(full, sp, fixed_arch, path)
    init_info = {**pretrained.describe(), "importance": cfg.importance,
                 "reorder_hidden": cfg.reorder_hidden, "calibration": cfg.calibration}
    return _Target(full, sp, fixed_arch, path, pretrained, init_info)


def _sequences(ws, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """The training split as ``seq_len`` sequences (ids, attention mask): at least one batch."""
    ids, mask = make_sequences(load_split(ws, "train"), cfg.seq_len)
    if len(ids) < cfg.batch_size:
        raise UsageError(f"the training split has {len(ids)} sequences, fewer than one batch "
                         f"of {cfg.batch_size}", hint="prepare more text with atb-supernet data")
    return ids, mask


@dataclass
class _Start:
    """Where a run begins, and what each of its checkpoints carries along."""

    model: torch.nn.ModuleDict  # supernet + objective, still on the CPU
    step: int = 0
    history: list = field(default_factory=list)  # [step, loss] at every log_every
    extras: dict = field(default_factory=dict)  # saved beside the weights (ranking, teacher)
    tokenizer: Path | None = None  # saved with the checkpoint (--init's own)
    init_info: dict | None = None
    optimizer_from: Path | None = None  # the checkpoint whose AdamW state is loaded on device


def _trainable(target: _Target, cfg: TrainConfig, saved: str | None = None) -> torch.nn.ModuleDict:
    """Fresh supernet + objective; with ``--init`` the objective distils from the init (as
    ``saved``, a resumed checkpoint's objective, when given: further training may match
    every layer)."""
    objective = (saved or "self-kd") if target.pretrained else cfg.objective
    return ckpt.build_trainable(target.space, objective, target.init_info, target.full,
                                cfg.depth)


def _from_scratch(target: _Target, cfg: TrainConfig) -> _Start:
    """Seeded random weights, step 0."""
    return _Start(_trainable(target, cfg))


def _from_init(target: _Target, cfg: TrainConfig, ids, mask) -> _Start:
    """Step 0 from the importance-reordered pretrained weights, in the student (sliced to
    the fixed arch of a stand-alone run, its layers picked by ``depth``) and the teacher; the
    ranking is saved with it."""
    from atb.supernet.extract import sub_state_dict
    from atb.supernet.importance import calibration_batches, reordered_supernet

    model = _trainable(target, cfg)
    batches = calibration_batches(ids, mask, cfg.calibration, cfg.seed)
    reordered, reordering = reordered_supernet(target.pretrained, target.full, batches,
                                               cfg.importance, cfg.reorder_hidden)
    model["objective"].teacher.load_state_dict(reordered.state_dict())
    model["objective"].calibrate(batches)
    fixed = target.fixed
    model["supernet"].load_state_dict(
        reordered.state_dict() if fixed is None else sub_state_dict(reordered, fixed, cfg.depth))
    extras = {} if reordering is None else {ckpt.IMPORTANCE: reordering.to_tensors()}
    return _Start(model, extras=extras, tokenizer=target.pretrained.tokenizer_dir,
                  init_info=target.init_info)


def _resume(target: _Target, cfg: TrainConfig) -> _Start:
    """The weights, step and history saved in ``target.path``; with ``--init`` also its
    teacher, ranking and tokenizer, which are the checkpoint's, not re-measured."""
    path, sp = target.path, target.space
    if not (path / ckpt.STATE).is_file():
        raise MissingInputError(f"nothing to resume in {path}",
                                hint="run atb-supernet train without --resume")
    state = ckpt.read_state(path)
    model = _trainable(target, cfg, state.get("objective"))
    if state["super_arch"] != str(sp.super_arch) or state["space"] != sp.strategy:
        raise UsageError(f"checkpoint {path} is {state['super_arch']} {state['space']}, not "
                         f"{sp.super_arch} {sp.strategy}")
    saved = {**state.get("config", {}), "depth": ckpt.depth_of(state)}  # older: "first"
    changed = {k: (v, getattr(cfg, k)) for k, v in saved.items()
               if k not in ("steps", "save_every", "log_every") and getattr(cfg, k, v) != v}
    if changed and state["step"] > 0:  # allowed (a new lr), but no longer one schedule
        log.warning("resuming with changed options (saved, now): %s", changed)
    ckpt.load_weights(path, model)
    start = _Start(model, init_info=target.init_info, optimizer_from=path)
    if target.pretrained:
        ckpt.load_weights(path, model["objective"].teacher, ckpt.TEACHER)
        start.extras = ckpt.read_extras(path, [ckpt.IMPORTANCE])
        start.tokenizer = ckpt.tokenizer_source(path)
        start.init_info = state.get("init", target.init_info)
    start.step, start.history = int(state["step"]), state.get("history", [])
    return start


def _start(target: _Target, cfg: TrainConfig, ids, mask, resume: bool) -> _Start:
    """The saved checkpoint's state, the reordered init, or seeded random weights."""
    if resume:
        return _resume(target, cfg)
    if target.pretrained:
        return _from_init(target, cfg, ids, mask)
    return _from_scratch(target, cfg)


def _broadcast(model) -> None:
    """Every process starts from rank 0's weights (and teacher): the importance ranking is
    computed on each rank, and floating-point ties must not make the ranks disagree."""
    import torch.distributed as dist

    modules = [model] + ([model["objective"].teacher] if hasattr(model["objective"], "teacher") else [])
    for module in modules:
        for tensor in module.state_dict().values():
            dist.broadcast(tensor, 0)


def _on_device(start: _Start, cfg: TrainConfig, world: int):
    """The model on this process's device, rank 0's weights on every rank, in train mode; its
    AdamW, holding the saved moments when the run resumes."""
    model = start.model.to(_device())
    if world > 1:
        _broadcast(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(params, cfg.lr, cfg.weight_decay)
    if start.optimizer_from:
        ckpt.load_optimizer(start.optimizer_from, model, optimizer)
    model.train()
    return model, optimizer


def _save(step: int, target: _Target, start: _Start, cfg: TrainConfig, model, optimizer) -> None:
    """The checkpoint after ``step``: weights, AdamW state, the run's record (and teacher)."""
    sp, objective = target.space, model["objective"]
    state = {"super_arch": str(sp.super_arch), "super_config": ckpt.super_name(sp),
             "space": sp.strategy, "objective": objective.name, "step": step,
             "fixed_arch": str(target.fixed) if target.fixed else None,
             "init": start.init_info, "config": asdict(cfg), "history": start.history}
    if target.pretrained:
        start.extras[ckpt.TEACHER] = objective.teacher.state_dict()
    ckpt.save_checkpoint(target.path, model, optimizer, state, start.extras, start.tokenizer)


def _loop(update, save, start: _Start, end: int, cfg: TrainConfig, rank: int):
    """Steps ``start.step`` to ``end``, logged and saved (by rank 0) every ``log_every`` and
    ``save_every`` steps and at the end; return (last loss, tokens, seconds)."""
    loss_value = start.history[-1][1] if start.history else float("nan")  # if no step is left
    tokens_done, t0 = 0, time.perf_counter()
    if end <= start.step and not start.optimizer_from and rank == 0:
        save(start.step)  # --init --steps 0: the reordered supernet, untrained
    with progress.progress(total=cfg.steps, initial=start.step, desc="supernet",
                           unit="step") as bar:
        for step in range(start.step, end):
            loss_value, tokens = update(step)
            tokens_done += tokens
            rate = tokens_done / max(time.perf_counter() - t0, 1e-9)
            bar.update(1)
            bar.set_postfix_str(f"loss {loss_value:.3f} {rate:,.0f} tok/s")
            if (step + 1) % cfg.log_every == 0 or step + 1 == end:
                start.history.append([step + 1, round(loss_value, 5)])
                if rank == 0:
                    log.info("step %d/%d loss %.4f %.0f tok/s",
                             step + 1, cfg.steps, loss_value, rate)
            if ((step + 1) % cfg.save_every == 0 or step + 1 == end) and rank == 0:
                save(step + 1)
    return loss_value, tokens_done, time.perf_counter() - t0


def train_supernet(workspace, config: TrainConfig | None = None,
                   target: TrainTarget | None = None, *, resume: bool = False,
                   stop_at: int | None = None) -> dict:
    """Train SuperPLM with Algorithm 1; return a summary including the checkpoint path.

    ``config`` holds the hyper-parameters (``steps``, ``batch_size``, ``lr``, ``seed``,
    ``init``, ``depth``, ...; :class:`TrainConfig`'s defaults when None). ``target`` says what is
    trained (:class:`TrainTarget`): ``super_config`` (default ``small``) names the
    super-configuration of a from-scratch supernet; with ``config.init`` (a local 🤗 BERT
    directory or ``minilm``) the checkpoint defines it, its units are importance-reordered on
    calibration text and the supernet is distilled from it (objective ``self-kd``); ``steps=0``
    then saves the reordered supernet untrained. ``fixed_arch`` trains one architecture alone
    (a supernet whose only member is that arch; with ``init`` it starts from that arch's slice
    of the reordered checkpoint), the stand-alone baseline of the benchmarks. ``out_dir``
    replaces the default checkpoint directory. With ``resume`` the run continues from the saved
    step up to ``steps``. ``stop_at`` ends the run (with a checkpoint) after that step while the
    schedule still aims at ``steps``: a long run can be trained in chunks with ``resume``.
    """
    ws = as_workspace(workspace)
    wanted = target or TrainTarget()
    rank, world = _dist()
    cfg = _resolve_config(config or TrainConfig(), world, wanted.super_config, wanted.fixed_arch)
    resolved = _target(ws, cfg, wanted)
    ids, mask = _sequences(ws, cfg)
    torch.manual_seed(cfg.seed)
    start = _start(resolved, cfg, ids, mask, resume)
    model, optimizer = _on_device(start, cfg, world)
    local = range(rank * cfg.workers // world, (rank + 1) * cfg.workers // world)
    schedule = _Schedule(len(ids), cfg, resolved.space, resolved.fixed)
    update = partial(_update, model=model, optimizer=optimizer, schedule=schedule,
                     data=(ids, mask), local=local, world=world)
    save = partial(_save, target=resolved, start=start, cfg=cfg, model=model, optimizer=optimizer)
    end = min(cfg.steps, stop_at or cfg.steps)
    loss_value, tokens, seconds = _loop(update, save, start, end, cfg, rank)
    sp = resolved.space
    return {
        "checkpoint": str(resolved.path), "super_arch": str(sp.super_arch),
        "super_config": ckpt.super_name(sp),
        "init": resolved.pretrained.name if resolved.pretrained else None,
        "space": sp.strategy, "objective": model["objective"].name,
        "step": max(start.step, end), "steps_run": max(0, end - start.step),
        "loss": loss_value, "tokens": tokens, "seconds": round(seconds, 3),
        "tokens_per_s": tokens / seconds if seconds > 0 else None,
        "workers": cfg.workers, "processes": world, "rank": rank,
    }

if __name__ == "__main__":  # the entry point moved to the package (docs/supernet.md)
    sys.exit("run: python -m atb.supernet ... (or torchrun --nproc_per_node P -m atb.supernet ...)")
