"""The layer cut: a pretrained BERT's first ``k`` layers at full width, as a 🤗 directory.

What a user gets for free without atb (DistilBERT's initialisation, used untrained): keep the
teacher's embeddings and its first ``k`` Transformer layers (and its pooler), drop the rest.
Nothing is sliced or trained, so the cut's layer ``i`` computes exactly the teacher's layer
``i``: the cut's last hidden state is the teacher's hidden state after layer ``k``. The
directory is a stock ``BertModel`` checkpoint with the teacher's tokenizer files, so
``transformers.AutoModel.from_pretrained(dir)`` and ``atb-eval --model dir`` load it; its
``config.json`` says what it is (``atb_layer_cut``: teacher and layers; ``atb-eval compare``
prints it). It is the baseline ``atb-search`` measures beside its winner and ``atb-demo``
compares with.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from atb.arch import Arch
from atb.errors import UsageError

log = logging.getLogger("atb.supernet.layer_cut")

# BertConfig fields a cut keeps from its teacher's config.json (the layer count is the cut's).
KEPT_CONFIG = ("vocab_size", "hidden_size", "num_attention_heads", "intermediate_size",
               "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob",
               "max_position_embeddings", "type_vocab_size", "initializer_range",
               "layer_norm_eps", "pad_token_id")


def layer_cut_arch(teacher_arch: Arch, k: int) -> Arch:
    """``k``-Dm-Df-H-Dqkv of a teacher of arch ``teacher_arch``; ``k`` must be in 1..L."""
    if not 1 <= k <= teacher_arch.lt:
        raise UsageError(f"a layer cut keeps 1 to {teacher_arch.lt} layers of the teacher "
                         f"{teacher_arch}, not {k}")
    return Arch(k, teacher_arch.dm, teacher_arch.df, teacher_arch.h, teacher_arch.dqkv)


def save_layer_cut(k: int, out_dir: str | Path, teacher: str | Path = "minilm") -> dict:
    """Write ``teacher``'s first ``k`` layers (a 🤗 BERT directory, or ``minilm``: the bundled
    MiniLM) to ``out_dir`` as a stock ``BertModel`` with the teacher's tokenizer files.

    Returns ``arch``, ``layers``, ``teacher``, ``out_dir`` and ``params``. Raises
    ``UsageError`` for a ``k`` outside 1..L or a teacher whose attention width is not its
    hidden width (not a stock BERT), and what :func:`~atb.supernet.pretrained.load_pretrained`
    raises for a bad teacher.
    """
    import json

    from atb.supernet.data import quiet_transformers, tokenizer_dir
    from atb.supernet.pretrained import TOKENIZER_FILES, load_pretrained, resolve_dir

    pretrained = load_pretrained(teacher)
    arch = layer_cut_arch(pretrained.super_arch, k)
    if arch.dqkv != arch.dm:
        raise UsageError(f"the teacher {pretrained.super_arch} is not a stock BERT "
                         "(attention width != hidden width)", hint="cut a bert-type teacher")
    config = json.loads((resolve_dir(teacher)[1] / "config.json").read_text())
    out_dir = _writable(out_dir)
    quiet_transformers()
    bert = _cut_model(pretrained, config, k)
    bert.config.atb_layer_cut = {"teacher": pretrained.name, "layers": k,  # for atb-eval compare
                                 "teacher_arch": str(pretrained.super_arch)}
    bert.save_pretrained(out_dir, safe_serialization=True)
    source = pretrained.tokenizer_dir or tokenizer_dir()
    for name in TOKENIZER_FILES:
        if (Path(source) / name).is_file():
            shutil.copyfile(Path(source) / name, out_dir / name)
    log.info("wrote the first %d layers of %s (%s) to %s", k, pretrained.name, arch, out_dir)
    return {"arch": str(arch), "layers": k, "teacher": pretrained.source, "out_dir": str(out_dir),
            "params": sum(p.numel() for p in bert.parameters())}


def _cut_model(pretrained, config: dict, k: int):
    """A stock ``BertModel`` of ``k`` layers holding the teacher's own tensors."""
    from transformers import BertConfig, BertModel

    kept = {key: config[key] for key in KEPT_CONFIG if key in config}
    bert_config = BertConfig(**{**kept, "num_hidden_layers": k})
    cut_layers = tuple(f"encoder.layer.{i}." for i in range(k))
    state = {name: tensor for name, tensor in pretrained.weights.items()
             if not name.startswith("encoder.") or name.startswith(cut_layers)}
    bert = BertModel(bert_config, add_pooling_layer=pretrained.has_pooler)
    bert.load_state_dict(state, strict=True)
    return bert.eval()


def _writable(out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"output {out_dir} exists and is not a directory")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write {out_dir}: {exc.strerror or exc}") from exc
    return out_dir
