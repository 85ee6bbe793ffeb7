"""Downstream evaluation of encoders (``atb-eval``): a linear probe or fine-tuning on a
text-classification task, built in (``kjv-genre``) or from a local file. See
``docs/eval.md``."""

from atb.eval.api import METHODS, EvalConfig, evaluate, list_tasks, load_task
from atb.eval.files import TaskFiles
from atb.eval.finetune import FinetuneConfig
from atb.eval.models import load_encoder, load_tokenizer
from atb.eval.onnx_encoder import OnnxEncoder, load_onnx_encoder
from atb.eval.probe import Probe
from atb.eval.tasks import Split, Task

__all__ = ["METHODS", "EvalConfig", "TaskFiles", "evaluate", "list_tasks", "load_task",
           "FinetuneConfig", "load_encoder",
           "load_tokenizer", "OnnxEncoder", "load_onnx_encoder", "Probe", "Split",
           "Task"]
