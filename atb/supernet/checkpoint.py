"""Supernet checkpoints: safetensors + JSON, never pickles.

A checkpoint is one directory ``<workspace>/supernet/<super>-<space>/`` holding

* ``model.safetensors``: the SuperPLM (``supernet.*``, 🤗 BertModel names) and the
  objective's head (``objective.*``: MLM head or distillation projection);
* ``optimizer.safetensors``: AdamW moments per parameter (``<name>.exp_avg``,
  ``<name>.exp_avg_sq``, ``<name>.step``) and the torch RNG state (``rng.torch``);
* ``state.json``: super-architecture, space, step, hyper-parameters and the loss log.

It is written to a temporary directory and renamed into place, so an interrupted save leaves
the previous checkpoint intact.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch

from atb.arch import SUPER_CONFIGS, Arch, SearchSpace
from atb.errors import MissingInputError, SupernetError

log = logging.getLogger("atb.supernet.checkpoint")

FORMAT_VERSION = 1
STATE = "state.json"
MODEL = "model.safetensors"
OPTIMIZER = "optimizer.safetensors"


def super_name(space: SearchSpace) -> str:
    """``base``/``small`` for the named super-configurations, else the arch string."""
    for name, arch in SUPER_CONFIGS.items():
        if arch == space.super_arch:
            return name
    return str(space.super_arch)


def checkpoint_dir(supernet_root: Path, space: SearchSpace) -> Path:
    return Path(supernet_root) / f"{super_name(space)}-{space.strategy}"


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer, state: dict) -> Path:
    """Write ``model`` (named parameters), AdamW state and ``state`` to ``path`` atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(tensors, str(tmp / MODEL))
    opt = {"rng.torch": torch.get_rng_state()}
    names = {id(p): n for n, p in model.named_parameters()}
    for group in optimizer.param_groups:
        for p in group["params"]:
            for key, value in optimizer.state.get(p, {}).items():
                value = torch.as_tensor(value).detach().cpu()
                value = value.reshape(-1) if key == "step" else value  # safetensors: no 0-d
                opt[f"{names[id(p)]}.{key}"] = value.contiguous()
    save_file(opt, str(tmp / OPTIMIZER))
    (tmp / STATE).write_text(json.dumps({"format": FORMAT_VERSION, **state}, indent=2))
    old = path.with_name(path.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)
    return path


def read_state(path: Path) -> dict:
    """``state.json`` of a checkpoint, or :class:`SupernetError` when it is unreadable."""
    state_path = Path(path) / STATE
    try:
        state = json.loads(state_path.read_text())
        Arch.parse(state["super_arch"]), state["space"], int(state["step"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise SupernetError(
            f"supernet checkpoint {path} is corrupt ({STATE} unreadable)",
            hint="retrain with atb-supernet train",
        ) from exc
    return state


def space_of(state: dict) -> SearchSpace:
    return SearchSpace(state["space"], Arch.parse(state["super_arch"]))


def load_weights(path: Path, model: torch.nn.Module) -> None:
    """Load ``model.safetensors`` into ``model`` (strict: every name and shape must match)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(Path(path) / MODEL))
        model.load_state_dict(tensors, strict=True)
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise SupernetError(
            f"supernet weights in {path} are missing or corrupt: {str(exc).splitlines()[0]}",
            hint="retrain with atb-supernet train",
        ) from exc


def load_optimizer(path: Path, model: torch.nn.Module, optimizer) -> None:
    """Restore AdamW moments and the torch RNG state saved by :func:`save_checkpoint`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(Path(path) / OPTIMIZER))
    except (SafetensorError, OSError) as exc:
        raise SupernetError(f"optimizer state in {path} is corrupt",
                            hint="retrain without --resume") from exc
    for name, p in model.named_parameters():
        state = {k.rsplit(".", 1)[1]: v.to(p.device) for k, v in tensors.items()
                 if k.rsplit(".", 1)[0] == name}
        if state:
            # the loop AdamW keeps its step on the CPU, the fused one next to the parameter
            fused = optimizer.defaults.get("fused")
            state["step"] = state["step"].reshape(()).to(p.device if fused else "cpu")
            optimizer.state[p] = state
    if "rng.torch" in tensors:
        torch.set_rng_state(tensors["rng.torch"])


def find_checkpoint(supernet_root: Path, space: str | None = None,
                    super_config: str | None = None) -> Path:
    """The checkpoint directory to use: the one matching ``space``/``super_config``; among
    several, the most recently written. Raises :class:`MissingInputError` when none."""
    candidates = []
    for d in sorted(Path(supernet_root).glob("*")):
        if not (d / STATE).is_file() or d.name.endswith((".tmp", ".old")):
            continue
        sup, _, strategy = d.name.rpartition("-")
        if (space and strategy != space) or (super_config and sup != super_config):
            continue
        candidates.append(d)
    if not candidates:
        wanted = " ".join(x for x in (super_config, space) if x)
        raise MissingInputError(
            f"no {wanted + ' ' if wanted else ''}supernet checkpoint in {supernet_root}",
            hint="run atb-supernet train",
        )
    chosen = max(candidates, key=lambda d: (d / STATE).stat().st_mtime)
    if len(candidates) > 1:
        log.info("using supernet checkpoint %s (pass a space to choose another)", chosen.name)
    return chosen


def build_trainable(space: SearchSpace) -> torch.nn.ModuleDict:
    """The trainable pair saved in a checkpoint: ``supernet`` and its ``objective`` head."""
    from atb.supernet.elastic import SuperPLM
    from atb.supernet.objectives import make_objective

    supernet = SuperPLM(space)
    return torch.nn.ModuleDict({"supernet": supernet,
                                "objective": make_objective(space.strategy, supernet)})


def load_trainable(path: Path) -> tuple[torch.nn.ModuleDict, dict]:
    """Rebuild and load the supernet + objective of a checkpoint directory (eval mode)."""
    state = read_state(path)
    model = build_trainable(space_of(state))
    load_weights(path, model)
    return model.eval(), state
