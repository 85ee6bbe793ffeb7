"""atb: hardware-aware design of tiny BERT models (after AutoTinyBERT, Yin et al. 2021).

The package is split by job (see docs/architecture.md):
``atb.arch`` (the search space), ``atb.modeling`` (the standalone encoder),
``atb.devices`` (where a timing is taken), ``atb.profiler`` (how it is taken and stored),
``atb.predictor`` (latency models), ``atb.supernet`` (SuperPLM) and ``atb.search``.
Heavy libraries (torch, onnxruntime, openvino, matplotlib) are imported lazily.

Importing atb registers the ``atb-bert`` model type with 🤗's ``AutoConfig``/``AutoModel``/
``AutoModelForSequenceClassification`` lazily: when transformers loads those classes, not now
(:mod:`atb.hf_auto`), so ``AutoModel.from_pretrained(dir)`` loads an extracted model.
"""

from atb import hf_auto
from atb.arch import BERT_BASE, SUPERPLM_BASE, Arch, SearchSpace, get_space
from atb.errors import AtbError

hf_auto.install()

__version__ = "0.1.0"
__all__ = ["Arch", "SearchSpace", "get_space", "BERT_BASE", "SUPERPLM_BASE", "AtbError"]
