"""A standalone BERT encoder for any architecture ``lt-dm-df-h-dqkv`` (torch): atb's public
import path for it.

The code lives in two self-contained files that every saved model directory carries
(:mod:`atb.configuration_atb_bert`, :mod:`atb.modeling_atb_bert`; see there for the model).
Importing this module registers ``AtbBertConfig`` (``model_type: atb-bert``) with 🤗's
``AutoConfig``, ``AtbBertModel`` with ``AutoModel`` and ``AtbBertForSequenceClassification``
with ``AutoModelForSequenceClassification``; a plain ``import atb`` does the same lazily, when
transformers loads its Auto classes (:mod:`atb.hf_auto`). Nothing here imports the rest of
atb (but that registration): an ``arch`` argument is anything with ``lt, dm, df, h, dqkv``
attributes.
"""

from __future__ import annotations

import torch
import transformers

from atb import hf_auto
from atb.configuration_atb_bert import AtbBertConfig
from atb.modeling_atb_bert import (
    AUTO_MAP,
    CODE_FILES,
    AtbBertForSequenceClassification,
    AtbBertModel,
    AtbBertPreTrainedModel,
    additive_attention_mask,
    init_bert_weights,
    mean_pool,
)

__all__ = [
    "AtbBertConfig", "AtbBertPreTrainedModel", "AtbBertModel", "AtbBertForSequenceClassification",
    "additive_attention_mask", "init_bert_weights", "build_model", "AUTO_MAP", "CODE_FILES",
]


def build_model(arch, seed: int | None = 0) -> AtbBertModel:
    """A randomly initialised model of ``arch`` in eval mode (dropout off); ``seed`` None
    draws from torch's global generator as it stands."""
    if seed is not None:
        torch.manual_seed(seed)
    return AtbBertModel(AtbBertConfig.from_arch(arch)).eval()


hf_auto.register_config(transformers)
hf_auto.register_models(transformers)
