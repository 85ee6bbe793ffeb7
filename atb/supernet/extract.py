"""Sub-model extraction: SuperPLM + arch -> a standalone 🤗-format model directory.

The extracted weights are exactly the slices :class:`~atb.supernet.elastic.SuperPLM` uses in
its forward, copied into the parameter names of 🤗 ``BertModel`` (sub-model layer ``i`` from
the supernet layer its ``depth`` rule maps it to). The directory holds
``config.json``, ``model.safetensors`` and the tokenizer files, so
``transformers.AutoModel.from_pretrained(dir)`` loads it:

* ``dqkv == dm``: the config is a stock ``BertConfig`` (``model_type: bert``) and stock
  transformers loads a ``BertModel`` without atb installed;
* otherwise: an :class:`atb.modeling.AtbBertConfig` (``model_type: atb-bert``). The directory
  also carries atb-bert's code (``configuration_atb_bert.py``, ``modeling_atb_bert.py``) and
  an ``auto_map`` naming it, so ``from_pretrained(dir, trust_remote_code=True)`` loads it where
  atb is not installed; after ``import atb``, plain ``from_pretrained(dir)`` uses atb's classes.

With ``onnx`` the directory also holds ``model.onnx`` (fp32), and with ``quantize="int8"`` an
INT8 copy of it made by :func:`atb.devices.quantization.quantize_with_library`:
``model.int8-dynamic.onnx`` (ONNX Runtime's dynamic quantization of the linear layers, the
scheme atb times on ONNX Runtime) or ``model.int8-qdq.onnx`` (a static QDQ graph, the scheme
atb times on OpenVINO, its activation scales calibrated on the workspace's held-out text).
"""

from __future__ import annotations

import logging
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch

from atb.arch import Arch
from atb.devices.quantization import QuantScheme, quantize_with_library, scheme_for
from atb.errors import MissingInputError, SupernetError, UsageError
from atb.modeling import AtbBertConfig, AtbBertModel
from atb.supernet.config import ExportOptions
from atb.supernet.data import (as_workspace, load_split, make_sequences, quiet_transformers,
                               tokenizer_dir)
from atb.supernet.elastic import SuperPLM, layer_indices, qkv_rows
from atb.supernet.pretrained import TOKENIZER_FILES

log = logging.getLogger("atb.supernet.extract")

QUANTIZE = ("int8",)  # what --quantize accepts
INT8_BACKENDS = ("onnxruntime", "openvino")  # extraction writes the INT8 scheme each one times
CALIBRATION_SEQUENCES = 32  # held-out sequences that set a static scheme's activation scales
CALIBRATION_LENGTH = 128  # tokens per calibration sequence: the length atb profiles
CALIBRATION_BATCH = 8  # sequences per calibration feed


def _take(weight: torch.Tensor, rows, cols=None) -> torch.Tensor:
    out = weight.index_select(0, rows) if isinstance(rows, torch.Tensor) else weight[rows]
    if cols is not None:
        out = out.index_select(1, cols) if isinstance(cols, torch.Tensor) else out[:, cols]
    return out.detach().clone().contiguous()


def sub_state_dict(supernet: SuperPLM, arch: Arch,
                   depth: str | None = None) -> dict[str, torch.Tensor]:
    """The weights of ``arch`` in 🤗 ``BertModel`` names (``embeddings.*``, ``encoder.*``,
    ``pooler.*``), sliced exactly as the supernet's forward slices them; ``depth`` (default:
    the supernet's own) picks the layers, for a supernet built without the run's rule."""
    arch = supernet.space.validate(arch)
    layers = layer_indices(arch.lt, supernet.super_arch.lt, depth or supernet.depth)
    dm, df = slice(0, arch.dm), slice(0, arch.df)
    rows = qkv_rows(supernet.space, arch)
    full = dict(supernet.named_parameters())
    out = {}
    for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        key = f"embeddings.{name}.weight"
        out[key] = _take(full[key], slice(None), dm)
    for part in ("weight", "bias"):
        out[f"embeddings.LayerNorm.{part}"] = _take(full[f"embeddings.LayerNorm.{part}"], dm)
    for i, j in enumerate(layers):  # sub-model layer i <- supernet layer j
        p, src = f"encoder.layer.{i}.", f"encoder.layer.{j}."
        for qkv in ("query", "key", "value"):
            w = f"attention.self.{qkv}."
            out[p + w + "weight"] = _take(full[src + w + "weight"], rows, dm)
            out[p + w + "bias"] = _take(full[src + w + "bias"], rows)
        shapes = {
            "attention.output.dense": (dm, rows),
            "intermediate.dense": (df, dm),
            "output.dense": (dm, df),
        }
        for module, (r, c) in shapes.items():
            out[f"{p}{module}.weight"] = _take(full[f"{src}{module}.weight"], r, c)
            out[f"{p}{module}.bias"] = _take(full[f"{src}{module}.bias"], r)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            for part in ("weight", "bias"):
                out[f"{p}{norm}.{part}"] = _take(full[f"{src}{norm}.{part}"], dm)
    out["pooler.dense.weight"] = _take(full["pooler.dense.weight"], dm, dm)
    out["pooler.dense.bias"] = _take(full["pooler.dense.bias"], dm)
    return out


def extract_model(supernet: SuperPLM, arch: Arch) -> AtbBertModel:
    """A standalone :class:`AtbBertModel` (eval mode) with the weights of ``arch``."""
    emb = supernet.embeddings
    sizes = {"vocab_size": emb.word_embeddings.num_embeddings,
             "max_position_embeddings": emb.position_embeddings.num_embeddings,
             "type_vocab_size": emb.token_type_embeddings.num_embeddings}
    with torch.device("meta"):  # no random init of weights that are overwritten at once
        model = AtbBertModel(AtbBertConfig.from_arch(arch, **sizes))
    model.load_state_dict(sub_state_dict(supernet, arch), strict=True, assign=True)
    return model.eval()


def _stock_bert_config(config: AtbBertConfig):
    from transformers import BertConfig

    keep = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
            "intermediate_size", "hidden_act", "hidden_dropout_prob",
            "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size",
            "initializer_range", "layer_norm_eps", "pad_token_id")
    return BertConfig(**{k: getattr(config, k) for k in keep})


def save_model(model: AtbBertModel, arch: Arch, out_dir: Path,
               export: ExportOptions = ExportOptions(), tokenizer: Path | None = None,
               calibration=None) -> dict:
    """Write ``model`` to ``out_dir`` in 🤗 format with the tokenizer files of ``tokenizer``
    (default: atb's uncased WordPiece), plus ``model.onnx`` when ``export`` asks.

    ``export.quantize="int8"`` also writes ``model.onnx`` and its INT8 copy
    ``model.int8-<scheme>.onnx`` (:func:`quantize_onnx`; ``scheme`` ``"dynamic"`` or ``"qdq"``,
    which needs ``calibration``, e.g. :func:`calibration_feeds`). The summary names each file
    with its size in bytes (``onnx``/``onnx_bytes``, ``int8``/``int8_scheme``/``int8_bytes``).
    """
    onnx, quantize, scheme = export.onnx, export.quantize, export.scheme
    check_quantize(quantize, scheme)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"output {out_dir} exists and is not a directory")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # e.g. under /proc, or below a regular file
        raise UsageError(f"cannot write {out_dir}: {exc.strerror or exc}") from exc
    quiet_transformers()
    stock = arch.dqkv == arch.dm
    if stock:  # a plain BERT checkpoint: stock transformers loads it without atb
        from transformers import BertModel

        bert = BertModel(_stock_bert_config(model.config), add_pooling_layer=True)
        bert.load_state_dict(model.state_dict(), strict=True)
        bert.save_pretrained(out_dir, safe_serialization=True)
    else:  # atb-bert's save_pretrained also writes its code files and the config's auto_map
        model.config.architectures = ["AtbBertModel"]
        model.save_pretrained(out_dir, safe_serialization=True)
    src = Path(tokenizer) if tokenizer else tokenizer_dir()
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, out_dir / name)
    summary = {"arch": str(arch), "out_dir": str(out_dir),
               "model_type": "bert" if stock else "atb-bert",
               "params": sum(p.numel() for p in model.parameters())}
    if onnx or quantize:
        fp32 = export_onnx(model, out_dir / "model.onnx")
        summary.update(onnx=str(fp32), onnx_bytes=fp32.stat().st_size)
        if quantize:
            int8 = quantize_onnx(fp32, scheme, calibration)
            summary.update(int8=str(int8), int8_scheme=scheme, int8_bytes=int8.stat().st_size)
    return summary


def int8_schemes() -> dict[str, QuantScheme]:
    """The INT8 schemes extraction writes, by name: ``dynamic`` (what atb times on ONNX
    Runtime) and ``qdq`` (what it times on OpenVINO)."""
    return {s.name: s for s in map(scheme_for, INT8_BACKENDS)}


def check_quantize(quantize: str | None, scheme: str) -> None:
    """Refuse a precision or an INT8 scheme that extraction does not write."""
    if quantize is not None and quantize not in QUANTIZE:
        raise UsageError(f"cannot quantize to {quantize!r}", hint=f"use {' or '.join(QUANTIZE)}")
    if scheme not in int8_schemes():
        raise UsageError(f"unknown INT8 scheme {scheme!r}",
                         hint=f"use {' or '.join(int8_schemes())}")


def quantize_onnx(fp32: Path, scheme: str = "dynamic", calibration=None) -> Path:
    """The INT8 copy of the fp32 graph ``fp32``, written next to it as
    ``model.int8-<scheme>.onnx`` by :func:`atb.devices.quantization.quantize_with_library`
    (:func:`int8_schemes`). ``calibration``: the input feeds a static scheme needs."""
    check_quantize("int8", scheme)
    chosen = int8_schemes()[scheme]
    if chosen.static and calibration is None:
        raise UsageError(f"the {scheme} scheme needs calibration text",
                         hint="extract from a workspace with prepared data (atb-supernet data)")
    out = Path(fp32).with_name(f"model.int8-{scheme}.onnx")
    return quantize_with_library(Path(fp32), out, chosen, calibration)


def calibration_feeds(workspace, sequences: int = CALIBRATION_SEQUENCES,
                      seq_len: int = CALIBRATION_LENGTH,
                      batch: int = CALIBRATION_BATCH) -> list[dict[str, np.ndarray]]:
    """ONNX input feeds of up to ``sequences`` held-out sequences of the workspace's prepared
    data (``[CLS] … [SEP]`` rows of ``seq_len`` tokens, taken evenly across the held-out
    documents), ``batch`` rows per feed: text the supernet was never trained on."""
    try:
        heldout = load_split(workspace, "heldout")
    except MissingInputError as exc:  # say why extraction wants data at all
        raise MissingInputError(f"a static INT8 scheme calibrates on held-out text, and {exc}",
                                hint=exc.hint) from exc
    ids, mask = make_sequences(heldout, seq_len)
    if not len(ids):
        raise SupernetError("the held-out split has no sequence to calibrate on",
                            hint="rerun atb-supernet data with more text")
    rows = np.unique(np.linspace(0, len(ids) - 1, min(sequences, len(ids))).round().astype(int))
    return [{"input_ids": ids[chunk], "attention_mask": mask[chunk],
             "token_type_ids": np.zeros_like(ids[chunk])}
            for chunk in np.array_split(rows, -(-len(rows) // batch))]


def export_onnx(model: AtbBertModel, path: Path, seq_len: int = 128) -> Path:
    """Export ``model`` to ONNX (inputs ``input_ids``, ``attention_mask``, ``token_type_ids``;
    outputs ``last_hidden_state``, ``pooler_output``; batch and sequence axes dynamic)."""
    ids = torch.ones(1, seq_len, dtype=torch.long)

    class _Plain(torch.nn.Module):  # tuple outputs, positional inputs: what the exporter needs
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids, attention_mask, token_type_ids, return_dict=False)

    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "sequence"} for n in names + ["last_hidden_state"]}
    axes["pooler_output"] = {0: "batch"}
    was_training = model.training
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's notice
            torch.onnx.export(  # the exporter restores the wrapper's mode, recursively: eval it
                _Plain(model).eval(), (ids, torch.ones_like(ids), torch.zeros_like(ids)),
                str(path), input_names=names, output_names=["last_hidden_state", "pooler_output"],
                dynamic_axes=axes, opset_version=17, dynamo=False,
            )
    except Exception as exc:  # the exporter raises many types; the user only needs the reason
        raise SupernetError(f"ONNX export failed: {str(exc).splitlines()[0]}") from exc
    finally:
        model.train(was_training)
    return Path(path)


def extract(workspace, arch: Arch | str, out_dir: Path, export: ExportOptions = ExportOptions(),
            space: str | None = None, checkpoint: Path | None = None) -> dict:
    """Extract ``arch`` from the workspace's supernet checkpoint of ``space`` (or
    ``checkpoint``, a checkpoint directory) into ``out_dir``; ``export.quantize="int8"`` adds
    ``model.onnx`` and its INT8 copy under ``export.scheme`` (see :func:`save_model`), a
    ``qdq`` one calibrated on the workspace's held-out text (:func:`calibration_feeds`).

    Raises :class:`~atb.errors.MissingInputError` when there is no checkpoint (or, for ``qdq``,
    no prepared data) and :class:`~atb.errors.ArchSpecError` when ``arch`` lies outside the
    supernet's space.
    """
    from atb.supernet import checkpoint as ckpt

    check_quantize(export.quantize, export.scheme)
    ws = as_workspace(workspace)
    arch = Arch.parse(arch) if isinstance(arch, str) else arch
    path = Path(checkpoint) if checkpoint else ckpt.find_checkpoint(ws.supernet_dir, space=space)
    trainable, state = ckpt.load_trainable(path)
    supernet = trainable["supernet"]
    arch = supernet.space.validate(arch)
    calibration = None
    if export.quantize and int8_schemes()[export.scheme].static:  # read before anything is written
        length = min(CALIBRATION_LENGTH, supernet.embeddings.position_embeddings.num_embeddings)
        calibration = calibration_feeds(ws, seq_len=length)
    summary = save_model(extract_model(supernet, arch), arch, Path(out_dir), export,
                         tokenizer=ckpt.tokenizer_source(path), calibration=calibration)
    if calibration is not None:
        summary["int8_calibration"] = (f"{sum(len(f['input_ids']) for f in calibration)} "
                                       f"held-out sequences of {length} tokens")
    summary.update(checkpoint=str(path), step=state["step"], space=state["space"],
                   init=(state.get("init") or {}).get("name"))
    slice_card(ws, arch, path, state).write(out_dir)
    log.info("extracted %s to %s", arch, out_dir)
    return summary


def slice_card(workspace, arch: Arch, checkpoint: Path, state: dict):
    """The model card of ``arch`` cut from ``checkpoint`` as it is (no further training), with
    the speedup the workspace's latency store measured for it, if any."""
    from atb.model_card import ModelCard
    from atb.profiler.api import measured_speedup

    source = (f"sliced from the supernet at step {state['step']}, not trained further"
              if not state.get("fixed_arch") else
              f"trained on its own from the supernet's slice for {state['step']} steps")
    return ModelCard(arch, source=source, supernet=str(checkpoint),
                     speedup=measured_speedup(workspace, arch))


def extract_trainable(checkpoint: Path, arch: Arch | str, out_dir: Path,
                      objective: str | None = None) -> Path:
    """Write ``arch``'s slice of a supernet checkpoint as a checkpoint of its own (a supernet
    whose only member is ``arch``, at step 0, with the objective's head sliced to it and the
    same teacher), so that ``train_supernet(..., TrainTarget(fixed_arch=arch, out_dir=...), resume=True)``
    trains the extracted sub-model further under the same objective (the paper's "extracted
    and trained further"; the benchmarks give searched and BERT-rule archs the same budget).
    Its layers are the ones the supernet's depth rule gave ``arch``; as a supernet of ``lt``
    layers it keeps them all, so it is recorded with depth ``first``. ``objective``
    ``self-kd-layers`` (a supernet distilled with ``self-kd`` only) trains it against every
    layer of the same teacher instead (:class:`~atb.supernet.objectives.LayerwiseSelfDistillation`)."""
    from atb.arch import SearchSpace
    from atb.supernet import checkpoint as ckpt

    trainable, state = ckpt.load_trainable(Path(checkpoint))
    full = trainable["supernet"].space
    arch = full.validate(Arch.parse(arch) if isinstance(arch, str) else arch)
    init, objective = state.get("init"), objective or state["objective"]
    if objective != state["objective"] and (state["objective"], objective) != ("self-kd", "self-kd-layers"):
        raise UsageError(f"a {state['objective']} supernet cannot be trained further with "
                         f"{objective}", hint="use its own objective")
    alone = ckpt.build_trainable(SearchSpace(full.strategy, arch), objective, init, full)
    alone["supernet"].load_state_dict(sub_state_dict(trainable["supernet"], arch))
    head, extras = trainable["objective"], {}
    with torch.no_grad():
        if objective == "self-kd-layers":  # scales measured on its first batch; same teacher
            alone["objective"].teacher.load_state_dict(head.teacher.state_dict())
        elif state["objective"] == "kd":  # the first dm inputs of the projection
            alone["objective"].projection.dense.weight.copy_(head.projection.dense.weight[:, : arch.dm])
            alone["objective"].projection.dense.bias.copy_(head.projection.dense.bias)
        elif state["objective"] == "mlm":  # the transform's leading block, the vocabulary bias
            alone["objective"].load_state_dict(
                {k: _take(v, slice(0, arch.dm), slice(0, arch.dm)) if v.dim() == 2 else
                 (v.clone() if k == "head.bias" else v[: arch.dm].clone())
                 for k, v in head.state_dict().items()})
        else:  # self-kd: no trained head, only the teacher's channel scales
            alone["objective"].load_state_dict(head.state_dict())
    if state["objective"] == "self-kd":
        extras[ckpt.TEACHER] = head.teacher.state_dict()
    optimizer = torch.optim.AdamW(alone.parameters())  # no moments yet: a fresh start
    new_state = {**state, "super_arch": str(arch), "fixed_arch": str(arch), "step": 0,
                 "objective": objective,
                 "history": [], "extracted_from": str(checkpoint),
                 "config": {**state.get("config", {}), "depth": "first"}}
    tokenizer = ckpt.tokenizer_source(Path(checkpoint)) if init else None
    return ckpt.save_checkpoint(Path(out_dir), alone, optimizer, new_state, extras, tokenizer)
