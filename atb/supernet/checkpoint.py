"""Supernet checkpoints: safetensors + JSON, never pickles.

A checkpoint is one directory ``<workspace>/supernet/<super>-<space>/`` (``init-<name>-<space>``
for a supernet built from a pretrained model with ``--init``) holding

* ``model.safetensors``: the SuperPLM (``supernet.*``, 🤗 BertModel names) and the
  objective's head (``objective.*``: MLM head, distillation projection, or
  the self-kd channel scales);
* ``optimizer.safetensors``: AdamW moments per parameter (``<name>.exp_avg``,
  ``<name>.exp_avg_sq``, ``<name>.step``) and the torch RNG state (``rng.torch``);
* ``state.json``: super-architecture, space, objective, step, hyper-parameters (``config``,
  among them the ``depth`` rule the supernet was trained under), the loss log, and for
  ``--init`` what it was built from (``init``);
* with ``--init`` also ``teacher.safetensors`` (the reordered pretrained encoder, the frozen
  teacher of ``self-kd``), ``importance.safetensors`` (every unit's importance score and the
  permutations applied) and ``tokenizer/`` (the pretrained model's tokenizer files).

It is written to a temporary directory and renamed into place, so an interrupted save leaves
the previous checkpoint intact.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Sequence

import torch

from atb.arch import Arch, SearchSpace, super_config_name
from atb.errors import MissingInputError, SupernetError

log = logging.getLogger("atb.supernet.checkpoint")

FORMAT_VERSION = 1
STATE = "state.json"
MODEL = "model.safetensors"
OPTIMIZER = "optimizer.safetensors"
TEACHER = "teacher.safetensors"
IMPORTANCE = "importance.safetensors"
TOKENIZER = "tokenizer"


def super_name(space: SearchSpace) -> str:
    """``base``/``small``/``minilm`` for the named super-configurations, else the arch string."""
    return super_config_name(space.super_arch)


def checkpoint_dir(supernet_root: Path, space: SearchSpace, init_name: str | None = None) -> Path:
    prefix = f"init-{init_name}" if init_name else super_name(space)
    return Path(supernet_root) / f"{prefix}-{space.strategy}"


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer, state: dict,
                    extras: dict[str, dict[str, torch.Tensor]] | None = None,
                    tokenizer: Path | None = None) -> Path:
    """Write ``model`` (named parameters), AdamW state and ``state`` to ``path`` atomically,
    plus ``extras`` (file name -> tensors) and a copy of the ``tokenizer`` directory."""
    from safetensors.torch import save_file

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(tensors, str(tmp / MODEL))
    for name, extra in (extras or {}).items():
        save_file({k: v.detach().contiguous().cpu() for k, v in extra.items()}, str(tmp / name))
    if tokenizer is not None:
        from atb.supernet.pretrained import TOKENIZER_FILES

        (tmp / TOKENIZER).mkdir()
        for name in TOKENIZER_FILES:
            if (Path(tokenizer) / name).is_file():
                shutil.copyfile(Path(tokenizer) / name, tmp / TOKENIZER / name)
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


def load_weights(path: Path, model: torch.nn.Module, file: str = MODEL) -> None:
    """Load ``file`` of a checkpoint into ``model`` (strict: every name and shape must match)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(Path(path) / file))
        model.load_state_dict(tensors, strict=True)
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise SupernetError(
            f"supernet weights in {path} are missing or corrupt: {str(exc).splitlines()[0]}",
            hint="retrain with atb-supernet train",
        ) from exc


def read_extras(path: Path, files: Sequence[str]) -> dict[str, dict[str, torch.Tensor]]:
    """The extra tensor ``files`` of a checkpoint that exist (e.g. ``importance.safetensors``)."""
    from safetensors.torch import load_file

    return {f: load_file(str(Path(path) / f)) for f in files if (Path(path) / f).is_file()}


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


def build_trainable(space: SearchSpace, objective: str | None = None, init: dict | None = None,
                    teacher_space: SearchSpace | None = None,
                    depth: str = "first") -> torch.nn.ModuleDict:
    """The trainable pair saved in a checkpoint: ``supernet`` and its ``objective`` head.

    ``objective`` defaults to the strategy's from-scratch objective; ``init`` (the
    ``state.json`` record of ``--init``) gives the embedding sizes of the pretrained model;
    ``self-kd`` also builds its (untrained, to be loaded) teacher of ``teacher_space``, which
    always runs in full, so ``depth`` (the supernet's layer rule) is the student's alone.
    """
    from atb.supernet.elastic import SuperPLM
    from atb.supernet.objectives import DEFAULT_OBJECTIVE, SELF_DISTILLATION, make_objective

    sizes = {} if not init else {"vocab_size": init["vocab_size"],
                                 "max_positions": init["max_positions"],
                                 "type_vocab_size": init["type_vocab_size"]}
    supernet = SuperPLM(space, **sizes, depth=depth)
    objective = objective or DEFAULT_OBJECTIVE[space.strategy]
    teacher = (SuperPLM(teacher_space or space, **sizes) if objective in SELF_DISTILLATION
               else None)
    return torch.nn.ModuleDict({"supernet": supernet,
                                "objective": make_objective(objective, supernet, teacher)})


def depth_of(state: dict) -> str:
    """The layer rule a checkpoint was trained under; ``first`` for one older than the rule."""
    return (state.get("config") or {}).get("depth", "first")


def load_trainable(path: Path) -> tuple[torch.nn.ModuleDict, dict]:
    """Rebuild and load the supernet + objective (+ teacher) of a checkpoint (eval mode)."""
    state = read_state(path)
    init = state.get("init")
    teacher_space = SearchSpace(state["space"], Arch.parse(init["super_arch"])) if init else None
    model = build_trainable(space_of(state), state.get("objective"), init, teacher_space,
                            depth_of(state))
    load_weights(path, model)
    if getattr(model["objective"], "teacher", None) is not None:  # self-distillation's, frozen
        load_weights(path, model["objective"].teacher, TEACHER)
    return model.eval(), state


def tokenizer_source(path: Path) -> Path:
    """The tokenizer directory of a checkpoint: its own copy (``--init``), else atb's default."""
    from atb.supernet.data import tokenizer_dir

    own = Path(path) / TOKENIZER
    return own if own.is_dir() else tokenizer_dir()
