"""Tiny models and a tiny separable task, sized for a 2-core machine.

The models are randomly initialised (2 layers, 32 wide) and saved with ``save_pretrained``;
the task's label is which group of keywords a sentence of filler words contains.
"""

from __future__ import annotations

import csv
import random
import shutil

import pytest

KEYWORDS = {
    "fruit": ["apple", "banana", "cherry", "grape"],
    "water": ["river", "ocean", "lake", "rain"],
    "stone": ["rock", "mountain", "cliff", "granite"],
}
SHARES = (0.45, 0.35, 0.20)  # unequal classes: the majority baseline is 0.45, not 1/3
FILLER = ("the a man woman walked quickly today yesterday house city road tree window old new "
          "small large green blue saw found near under over with without").split()
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json",
                   "special_tokens_map.json")
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def keyword_rows(n: int, seed: int = 0) -> list[dict]:
    """``n`` rows ``{"text", "label"}``: filler words with one keyword of the label's group."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.choices(list(KEYWORDS), weights=SHARES)[0]
        words = rng.choices(FILLER, k=rng.randint(4, 10))
        words.insert(rng.randrange(len(words) + 1), rng.choice(KEYWORDS[label]))
        rows.append({"text": " ".join(words), "label": label})
    return rows


def write_csv(path, rows: list[dict], delimiter: str = ",") -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)


def copy_tokenizer(model_dir) -> None:
    from atb.eval.models import fallback_tokenizer_dir

    for name in TOKENIZER_FILES:
        shutil.copyfile(fallback_tokenizer_dir() / name, model_dir / name)


@pytest.fixture(scope="session")
def keyword_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("task") / "keywords.csv"
    write_csv(path, keyword_rows(300))
    return path


@pytest.fixture(scope="session")
def bert_dir(tmp_path_factory):
    """A stock ``BertModel`` directory with the MiniLM tokenizer."""
    import torch
    from transformers import BertConfig, BertModel

    out = tmp_path_factory.mktemp("bert")
    torch.manual_seed(0)
    BertModel(BertConfig(**TINY)).save_pretrained(out)
    copy_tokenizer(out)
    return out


@pytest.fixture(scope="session")
def atb_dir(tmp_path_factory):
    """An ``atb-bert`` directory with ``qkv_size != hidden_size`` and no tokenizer."""
    import torch

    from atb.modeling import AtbBertConfig, AtbBertModel

    out = tmp_path_factory.mktemp("atb-bert")
    torch.manual_seed(0)
    model = AtbBertModel(AtbBertConfig(qkv_size=16, **TINY))
    model.config.architectures = ["AtbBertModel"]
    model.save_pretrained(out)
    return out


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models run fastest on one thread, and a busy machine cannot stall them."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
