"""Every ``atb-*`` command refuses bad input with exit code 2 and one line on stderr.

One table, one row per mistake: the command, its arguments and a short case id, plus the
name of a set-up where the mistake can only show behind a working part (a search needs a
supernet before it reads the latency store; the synthetic stand-ins of tests/search give it
one). ``{name}`` in an argument is a path made once per module by :func:`inputs` (valid
files to get past the first checks, and garbage and truncated ones), ``{tmp}`` the test's own
directory, ``{missing}`` a path in it that does not exist, ``{ARCH}``/``{SUB}`` an arch.

The commands run in this process through their ``main(argv)`` (seconds for the whole table
instead of minutes of interpreter start-ups); :func:`test_console_scripts_too` runs a few
through the installed console scripts, where logging goes to the real stderr. A row passes
when the command returns (or exits with) 2, writes no traceback, and its stderr is exactly
one non-empty line that starts with the command's name: atb's own errors and argparse's
(atb.cli.ArgumentParser makes those one line too). Log lines count as stderr lines here as
they do in a terminal.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import logging
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.conftest import cli_env
from tests.profiler.stores import add_record

MAINS = {  # pyproject.toml [project.scripts]
    "atb-profile": "atb.profiler.cli",
    "atb-predictor": "atb.predictor.cli",
    "atb-supernet": "atb.supernet.cli",
    "atb-search": "atb.search.cli",
    "atb-plot": "atb.plot_cli",
    "atb-demo": "atb.demo",
    "atb-eval": "atb.eval.cli",
    "atb-fleet": "atb.fleet.cli",
}

ARCH = "4-256-512-4-256"  # inside the small pretrain space
SUB = "1-128-128-1-64"  # inside the pretrain space of TINY_SUPER
TINY_SUPER = "2-160-192-2-128"  # the supernet of the module's checkpoint (seconds to build)
TRAIN = f"--super {TINY_SUPER} --steps 1 --batch-size 2 --seq-len 16 --samples 1"  # if it ran
FIT = "--models flops_linear --folds 2"


class Case(NamedTuple):
    command: str
    argv: str  # shell words; {name} is a path of inputs()
    id: str
    setup: str | None = None  # a fixture of this module: synthetic, synthetic_fitness or no_bf16


CASES = [
    # -- atb-profile ----------------------------------------------------------------------
    Case("atb-profile", "", "nothing-to-time"),
    Case("atb-profile", "--arch 5-564-1054", "arch-too-few-dims"),
    Case("atb-profile", "--arch 5-564-1054-8-51", "arch-heads-do-not-divide"),
    Case("atb-profile", "--arch five-564-1054-8-512", "arch-not-numbers"),
    Case("atb-profile", "--arch 0-564-1054-8-512", "arch-zero-layers"),
    Case("atb-profile", "--samples -5", "samples-negative"),
    Case("atb-profile", "--samples many", "samples-not-a-number"),
    Case("atb-profile", "--samples 3 --arch 4-256-512-4-256", "samples-and-arch"),
    Case("atb-profile", "--samples 3 --threads 0", "threads-zero"),
    Case("atb-profile", "--samples 3 --threads -2", "threads-negative"),
    Case("atb-profile", "--samples 3 --seq-len 0", "seq-len-zero"),
    Case("atb-profile", "--samples 3 --seed -1", "seed-negative"),
    Case("atb-profile", "--samples 3 --seed x", "seed-not-a-number"),
    Case("atb-profile", "--samples 3 --backend tvm", "backend-unknown"),
    Case("atb-profile", "--samples 3 --precision fp8", "precision-unknown"),
    Case("atb-profile", "--samples 3 --precision int8 --backend torch", "int8-on-torch-eager"),
    Case("atb-profile", "--arch {ARCH} --precision int8 --backend torch", "int8-arch-on-torch-eager"),
    Case("atb-profile", "--samples 3 --precision bf16 --backend openvino", "bf16-cpu-without-it", "no_bf16"),
    Case("atb-profile", "--samples 3 --precision bf16 --backend onnxruntime", "bf16-on-onnxruntime"),
    Case("atb-profile", "--samples 3 --super huge", "super-unknown"),
    Case("atb-profile", "--samples 3 --super 4-256-512", "super-malformed-arch"),
    Case("atb-profile", "--samples 3 --space xl", "space-unknown"),
    Case("atb-profile", "--samples 3 --device gpu", "device-unknown"),
    Case("atb-profile", "--samples 3 --workspace {garbage_store_ws}", "store-garbage"),
    Case("atb-profile", "--samples 3 --workspace {file}/ws", "workspace-under-a-file"),
    Case("atb-profile", "--arch {ARCH} --workspace /proc/nope", "workspace-unwritable"),
    # -- atb-profile export ---------------------------------------------------------------
    Case("atb-profile", "export", "export-no-output"),
    Case("atb-profile", "export -o {tmp}/x.csv --workspace {missing}", "export-workspace-missing"),
    Case("atb-profile", "export -o {tmp}/x.csv --workspace {empty_ws}", "export-no-store"),
    Case("atb-profile", "export -o {tmp}/x.csv --workspace {garbage_store_ws}", "export-store-garbage"),
    Case("atb-profile", "export -o {tmp}/x.csv --workspace {file}", "export-workspace-is-a-file"),
    Case("atb-profile", "export -o /proc/nope/x.csv --workspace {store_ws}", "export-output-unwritable"),
    Case("atb-profile", "export -o {store_ws} --workspace {store_ws}", "export-output-is-a-dir"),
    Case("atb-profile", "export -o {tmp}/x.csv --workspace {store_ws} --device-key nope",
         "export-device-key-unknown"),
    # -- atb-predictor --------------------------------------------------------------------
    Case("atb-predictor", "", "no-sub-command"),
    Case("atb-predictor", "refit", "sub-command-unknown"),
    Case("atb-predictor", "fit --labels {missing}.csv", "fit-labels-missing"),
    Case("atb-predictor", "fit --labels {garbage_csv}", "fit-labels-garbage"),
    Case("atb-predictor", "fit --labels {binary_csv}", "fit-labels-binary"),
    Case("atb-predictor", "fit --labels {truncated_csv}", "fit-labels-truncated"),
    Case("atb-predictor", "fit --labels {empty_csv}", "fit-labels-empty"),
    Case("atb-predictor", "fit --labels {bad_numbers_csv}", "fit-labels-not-numbers"),
    Case("atb-predictor", "fit --labels {labels_csv} --folds 1", "fit-folds-one"),
    Case("atb-predictor", "fit --labels {labels_csv} --folds x", "fit-folds-not-a-number"),
    Case("atb-predictor", "fit --labels {labels_csv} --test-fraction 0.9", "fit-test-fraction-0.9"),
    Case("atb-predictor", "fit --labels {labels_csv} --test-fraction 1.5", "fit-test-fraction-above-1"),
    Case("atb-predictor", "fit --labels {labels_csv} --test-fraction -0.2", "fit-test-fraction-negative"),
    Case("atb-predictor", "fit --labels {labels_csv} --models forest", "fit-model-unknown"),
    Case("atb-predictor", "fit --labels {labels_csv} --models ,", "fit-models-empty"),
    Case("atb-predictor", "fit --labels {labels_csv} --seed -1 " + FIT, "fit-seed-negative"),
    Case("atb-predictor", "fit --labels {labels_csv} --device-key nope " + FIT, "fit-device-key-unknown"),
    Case("atb-predictor", "fit --labels {labels_csv} -o /proc/nope/p.json " + FIT, "fit-output-unwritable"),
    Case("atb-predictor", "fit --labels {labels_csv} -o {file}/p.json " + FIT, "fit-output-under-a-file"),
    Case("atb-predictor", "fit --workspace {empty_ws} " + FIT, "fit-no-store"),
    Case("atb-predictor", "fit --workspace {garbage_store_ws} " + FIT, "fit-store-garbage"),
    Case("atb-predictor", "fit --workspace {file}/ws " + FIT, "fit-workspace-under-a-file"),
    Case("atb-predictor", "fit --backend tvm --threads 1 --workspace {store_ws}", "fit-backend-unknown"),
    Case("atb-predictor", "fit --backend onnxruntime --threads 0 --workspace {store_ws}",
         "fit-threads-zero"),
    Case("atb-predictor", "eval", "eval-no-predictor"),
    Case("atb-predictor", "eval --predictor {missing}.json --labels {labels_csv}", "eval-predictor-missing"),
    Case("atb-predictor", "eval --predictor {garbage_predictor} --labels {labels_csv}",
         "eval-predictor-garbage"),
    Case("atb-predictor", "eval --predictor {predictor_no_npz} --labels {labels_csv}",
         "eval-predictor-npz-missing"),
    Case("atb-predictor", "eval --predictor {predictor_garbage_npz} --labels {labels_csv}",
         "eval-predictor-npz-garbage"),
    Case("atb-predictor", "eval --predictor {predictor_wrong_fields} --labels {labels_csv}",
         "eval-predictor-fields-wrong"),
    Case("atb-predictor", "eval --predictor {predictor} --labels {garbage_csv}", "eval-labels-garbage"),
    Case("atb-predictor", "eval --predictor {predictor} --labels {truncated_csv}", "eval-labels-truncated"),
    Case("atb-predictor", "eval --predictor {predictor} --workspace {garbage_store_ws}",
         "eval-store-garbage"),
    Case("atb-predictor", "eval --predictor {predictor} --workspace {empty_ws}", "eval-no-store"),
    Case("atb-predictor", "eval --predictor {predictor} --labels {labels_csv} --device-key other",
         "eval-other-device-key"),
    Case("atb-predictor", "predict", "predict-no-arch"),
    Case("atb-predictor", "predict 4-512 --predictor {predictor}", "predict-arch-malformed"),
    Case("atb-predictor", "predict 4-512-1024-8-51 --predictor {predictor}", "predict-arch-heads"),
    Case("atb-predictor", "predict -- -4-512-1024-8-512 --predictor {predictor}", "predict-arch-negative"),
    Case("atb-predictor", "predict {ARCH} --predictor {missing}.json", "predict-predictor-missing"),
    Case("atb-predictor", "predict {ARCH} --predictor {garbage_predictor}", "predict-predictor-garbage"),
    Case("atb-predictor", "predict {ARCH} --predictor {predictor_no_npz}", "predict-predictor-npz-missing"),
    Case("atb-predictor", "predict {ARCH} --predictor {predictor} --device-key other",
         "predict-other-device-key"),
    Case("atb-predictor", "predict {ARCH} --workspace {empty_ws}", "predict-no-store"),
    Case("atb-predictor", "predict {ARCH} --workspace {garbage_store_ws}", "predict-store-garbage"),
    Case("atb-predictor", "predict {ARCH} --workspace {file}/ws", "predict-workspace-under-a-file"),
    Case("atb-predictor", "predict {ARCH} --threads 2 --predictor {predictor}", "predict-threads-alone"),
    Case("atb-predictor", "predict {ARCH} --backend onnxruntime --threads 0 --predictor {predictor}",
         "predict-threads-zero"),
    Case("atb-predictor", "transfer --labels {labels_csv}", "transfer-no-base"),
    Case("atb-predictor", "transfer --base {missing}.json --labels {other_labels_csv}",
         "transfer-base-missing"),
    Case("atb-predictor", "transfer --base {garbage_predictor} --labels {other_labels_csv}",
         "transfer-base-garbage"),
    Case("atb-predictor", "transfer --base {predictor} --labels {garbage_csv}", "transfer-labels-garbage"),
    Case("atb-predictor", "transfer --base {predictor} --labels {labels_csv}", "transfer-same-key"),
    Case("atb-predictor", "transfer --base {predictor} --labels {other_labels_csv} -n 2",
         "transfer-samples-two"),
    Case("atb-predictor", "transfer --base {predictor} --labels {other_labels_csv} -n -4",
         "transfer-samples-negative"),
    Case("atb-predictor", "transfer --base {predictor} --labels {other_labels_csv} -o /proc/nope/t.json",
         "transfer-output-unwritable"),
    Case("atb-predictor", "transfer --base {predictor} --labels {other_labels_csv} -o {file}/t.json",
         "transfer-output-under-a-file"),
    # -- atb-supernet ---------------------------------------------------------------------
    Case("atb-supernet", "", "no-sub-command"),
    Case("atb-supernet", "pretrain", "sub-command-unknown"),
    Case("atb-supernet", "data --workspace {tmp}/d --heldout 0", "data-heldout-zero"),
    Case("atb-supernet", "data --workspace {tmp}/d --heldout 1.5", "data-heldout-above-1"),
    Case("atb-supernet", "data --workspace {tmp}/d --heldout x", "data-heldout-not-a-number"),
    Case("atb-supernet", "data --workspace {tmp}/d --max-documents 0", "data-max-documents-zero"),
    Case("atb-supernet", "data --workspace {tmp}/d --max-documents -3", "data-max-documents-negative"),
    Case("atb-supernet", "data --workspace {tmp}/d --text {missing}.txt", "data-text-missing"),
    Case("atb-supernet", "data --workspace {tmp}/d --text {binary_txt}", "data-text-binary"),
    Case("atb-supernet", "data --workspace {tmp}/d --text {empty_txt}", "data-text-empty"),
    Case("atb-supernet", "data --workspace {tmp}/d --text {garbage_jsonl}", "data-jsonl-garbage"),
    Case("atb-supernet", "data --workspace {tmp}/d --text {labels_csv}", "data-text-wrong-type"),
    Case("atb-supernet", "data --workspace {file}/ws --text {corpus}", "data-workspace-under-a-file"),
    Case("atb-supernet", "train --workspace {empty_ws} " + TRAIN, "train-no-data"),
    Case("atb-supernet", "train --workspace {garbage_data_ws} " + TRAIN, "train-data-garbage"),
    Case("atb-supernet", "train --workspace {file}/ws " + TRAIN, "train-workspace-under-a-file"),
    Case("atb-supernet", "train --workspace {data_ws} " + TRAIN + " --steps -1", "train-steps-negative"),
    Case("atb-supernet", "train --workspace {data_ws} " + TRAIN + " --steps x", "train-steps-not-a-number"),
    Case("atb-supernet", "train --workspace {data_ws} " + TRAIN + " --batch-size 0", "train-batch-size-zero"),
    Case("atb-supernet", "train --workspace {data_ws} " + TRAIN + " --seq-len 0", "train-seq-len-zero"),
    Case("atb-supernet", "train --workspace {data_ws} " + TRAIN + " --seq-len 100000", "train-seq-len-huge"),
    Case("atb-supernet", "train --workspace {data_ws} " + TRAIN + " --samples 0", "train-samples-zero"),
    Case("atb-supernet", "train --workspace {data_ws} " + TRAIN + " --sampling sandwich",
         "train-sandwich-of-one"),
    Case("atb-supernet", "train --workspace {data_ws} " + TRAIN + " --sampling best", "train-sampling-unknown"),
    Case("atb-supernet", "train --workspace {data_ws} " + TRAIN + " --workers -1", "train-workers-negative"),
    Case("atb-supernet", "train --workspace {data_ws} " + TRAIN + " --lr -1", "train-lr-negative"),
    Case("atb-supernet", "train --workspace {data_ws} " + TRAIN + " --lr 0", "train-lr-zero"),
    Case("atb-supernet", "train --workspace {data_ws} " + TRAIN + " --seed -1", "train-seed-negative"),
    Case("atb-supernet", "train --workspace {data_ws} " + TRAIN + " --save-every 0", "train-save-every-zero"),
    Case("atb-supernet", "train --workspace {data_ws} " + TRAIN + " --calibration 0",
         "train-calibration-zero"),
    Case("atb-supernet", "train --workspace {data_ws} " + TRAIN + " --super huge", "train-super-unknown"),
    Case("atb-supernet", "train --workspace {data_ws} " + TRAIN + " --super 2-160-192-3-128",
         "train-super-heads-do-not-divide"),
    Case("atb-supernet", "train --workspace {data_ws} --init {missing} --steps 0", "train-init-missing"),
    Case("atb-supernet", "train --workspace {data_ws} --init {garbage_model} --steps 0",
         "train-init-config-garbage"),
    Case("atb-supernet", "train --workspace {data_ws} --init minilm " + TRAIN, "train-init-and-super"),
    Case("atb-supernet", "train --workspace {data_ws} --resume " + TRAIN, "train-nothing-to-resume"),
    Case("atb-supernet", "train --workspace {garbage_state_ws} --resume " + TRAIN,
         "train-resume-state-garbage"),
    Case("atb-supernet", "extract --arch {SUB}", "extract-no-output"),
    Case("atb-supernet", "extract --arch 4-256 -o {tmp}/m --workspace {ckpt_ws}", "extract-arch-malformed"),
    Case("atb-supernet", "extract --arch 12-768-3072-12-768 -o {tmp}/m --workspace {ckpt_ws}",
         "extract-arch-outside-space"),
    Case("atb-supernet", "extract --arch {SUB} -o {tmp}/m --workspace {empty_ws}", "extract-no-checkpoint"),
    Case("atb-supernet", "extract --arch {SUB} -o {tmp}/m --workspace {garbage_state_ws}",
         "extract-state-garbage"),
    Case("atb-supernet", "extract --arch {SUB} -o {tmp}/m --workspace {garbage_weights_ws}",
         "extract-weights-garbage"),
    Case("atb-supernet", "extract --arch {SUB} -o /proc/nope/m --workspace {ckpt_ws}",
         "extract-output-unwritable"),
    Case("atb-supernet", "extract --arch {SUB} -o {file} --workspace {ckpt_ws}", "extract-output-is-a-file"),
    Case("atb-supernet", "extract --arch {SUB} -o {tmp}/m --workspace {ckpt_ws} --space xl",
         "extract-space-unknown"),
    Case("atb-supernet", "extract --arch {SUB} -o {tmp}/m --workspace {ckpt_ws} --quantize int4",
         "extract-quantize-unknown"),
    Case("atb-supernet", "extract --arch {SUB} -o {tmp}/m --workspace {ckpt_ws} --quantize int8 "
         "--scheme static", "extract-int8-scheme-unknown"),
    Case("atb-supernet", "extract --arch {SUB} -o {tmp}/m --workspace {ckpt_ws} --scheme qdq",
         "extract-scheme-without-quantize"),
    Case("atb-supernet", "extract --arch {SUB} -o {tmp}/m --workspace {no_data_ws} --quantize int8 "
         "--scheme qdq", "extract-qdq-without-calibration-data"),
    Case("atb-supernet", "evaluate", "evaluate-no-arch"),
    Case("atb-supernet", "evaluate --arch 4-256-x-4-256 --workspace {ckpt_ws}", "evaluate-arch-malformed"),
    Case("atb-supernet", "evaluate --arch {SUB} --workspace {empty_ws}", "evaluate-no-checkpoint"),
    Case("atb-supernet", "evaluate --arch {SUB} --workspace {garbage_state_ws}", "evaluate-state-garbage"),
    Case("atb-supernet", "evaluate --arch {SUB} --workspace {garbage_weights_ws}",
         "evaluate-weights-garbage"),
    Case("atb-supernet", "evaluate --arch {SUB} --workspace {ckpt_ws} --space kd",
         "evaluate-no-checkpoint-of-space"),
    Case("atb-supernet", "evaluate --arch {SUB} --workspace {no_data_ws}", "evaluate-data-missing"),
    # -- atb-search -----------------------------------------------------------------------
    Case("atb-search", "", "no-target"),
    Case("atb-search", "--target-speedup 0", "target-zero"),
    Case("atb-search", "--target-speedup -3", "target-negative"),
    Case("atb-search", "--target-speedup 1", "target-one"),
    Case("atb-search", "--target-speedup fast", "target-not-a-number"),
    Case("atb-search", "--target-speedup nan", "target-nan"),
    Case("atb-search", "--target-speedup inf --workspace {tmp}", "target-inf", "synthetic"),
    Case("atb-search", "--target-speedup 1e9 --workspace {tmp}", "target-1e9", "synthetic"),
    Case("atb-search", "--target-speedup 10 15 --workspace {tmp}", "targets-without-pareto", "synthetic"),
    Case("atb-search", "--target-speedup 10 --generations 0", "generations-zero"),
    Case("atb-search", "--target-speedup 10 --population -1", "population-negative"),
    Case("atb-search", "--target-speedup 10 --top-k 0", "top-k-zero"),
    Case("atb-search", "--target-speedup 10 --threads 0", "threads-zero"),
    Case("atb-search", "--target-speedup 10 --seed -1 --workspace {tmp}", "seed-negative", "synthetic"),
    Case("atb-search", "--target-speedup 10 --algorithm genetic --workspace {tmp}", "algorithm-unknown"),
    Case("atb-search", "--target-speedup 10 --space xl", "space-unknown"),
    Case("atb-search", "--target-speedup 10 --fitness accuracy --workspace {tmp}", "fitness-unknown"),
    Case("atb-search", "--target-speedup 10 --fitness probe:nope --workspace {ckpt_ws}",
         "fitness-probe-task-unknown"),
    Case("atb-search", "--target-speedup 10 --task nope --workspace {ckpt_ws}", "task-unknown"),
    Case("atb-search", "--target-speedup 10 --rerank 3", "rerank-without-task"),
    Case("atb-search", "--target-speedup 10 --task kjv-next --rerank 0", "rerank-zero"),
    Case("atb-search", "--target-speedup 10 --task kjv-next --rerank-by votes", "rerank-by-unknown"),
    Case("atb-search", "--target-speedup 10 --rerank-by probe", "rerank-by-without-task"),
    Case("atb-search", "--target-speedup 10 --task kjv-next --screen-steps -5", "screen-steps-negative"),
    Case("atb-search", "--target-speedup 10 --task kjv-next --screen-lr 0", "screen-lr-zero"),
    Case("atb-search", "--target-speedup 10 --workspace {empty_ws}", "no-supernet"),
    Case("atb-search", "--target-speedup 10 --workspace {garbage_state_ws}", "supernet-state-garbage"),
    Case("atb-search", "--target-speedup 10 --workspace {tmp}", "no-store", "synthetic_fitness"),
    Case("atb-search", "--target-speedup 10 --workspace {garbage_store_ws}", "store-garbage",
         "synthetic_fitness"),
    Case("atb-search", "--target-speedup 10 --workspace {file}/ws", "workspace-under-a-file"),
    Case("atb-search", "--target-speedup 10 --workspace {store_ws} --device-key nope",
         "device-key-unknown", "synthetic_fitness"),
    Case("atb-search", "--target-speedup 10 --workspace {store_ws} --backend tvm",
         "backend-not-in-store", "synthetic_fitness"),
    Case("atb-search", "--resume {missing}", "resume-missing"),
    Case("atb-search", "--resume {garbage_run}", "resume-config-garbage"),
    Case("atb-search", "--resume {run} --name again", "resume-and-name"),
    # -- atb-plot -------------------------------------------------------------------------
    Case("atb-plot", "", "no-sub-command"),
    Case("atb-plot", "histogram", "sub-command-unknown"),
    Case("atb-plot", "predictor --predictor {missing}.json", "predictor-missing"),
    Case("atb-plot", "predictor --predictor {garbage_predictor}", "predictor-garbage"),
    Case("atb-plot", "predictor --predictor {predictor_garbage_npz}", "predictor-npz-garbage"),
    Case("atb-plot", "predictor --predictor {predictor} --labels {garbage_csv}", "predictor-labels-garbage"),
    Case("atb-plot", "predictor --predictor {predictor} --labels {missing}.csv", "predictor-labels-missing"),
    Case("atb-plot", "predictor --predictor {predictor} -o /proc/nope/p.png", "predictor-output-unwritable"),
    Case("atb-plot", "predictor --predictor {predictor} -o {file}/p.png", "predictor-output-under-a-file"),
    Case("atb-plot", "predictor --workspace {empty_ws}", "predictor-no-store"),
    Case("atb-plot", "predictor --workspace {garbage_store_ws}", "predictor-store-garbage"),
    Case("atb-plot", "predictor --workspace {file}/ws", "predictor-workspace-under-a-file"),
    Case("atb-plot", "pareto --run {missing}", "pareto-run-missing"),
    Case("atb-plot", "pareto --run {garbage_run}", "pareto-run-garbage"),
    Case("atb-plot", "pareto --run {run_garbage_report}", "pareto-report-garbage"),
    Case("atb-plot", "pareto --workspace {empty_ws}", "pareto-no-runs"),
    Case("atb-plot", "pareto --workspace {file}/ws", "pareto-workspace-under-a-file"),
    Case("atb-plot", "pareto --run {run} -o /proc/nope/p.png", "pareto-output-unwritable"),
    Case("atb-plot", "devices --workspace {empty_ws}", "devices-no-store"),
    Case("atb-plot", "devices --workspace {garbage_store_ws}", "devices-store-garbage"),
    Case("atb-plot", "devices --workspace {file}/ws", "devices-workspace-under-a-file"),
    Case("atb-plot", "devices --workspace {store_ws}", "devices-one-key"),
    Case("atb-plot", "devices --workspace {store_ws} --device-key nope --device-key other", "devices-key-unknown"),
    # -- atb-demo -------------------------------------------------------------------------
    Case("atb-demo", "--samples 5", "samples-too-few"),
    Case("atb-demo", "--samples -1", "samples-negative"),
    Case("atb-demo", "--samples x", "samples-not-a-number"),
    Case("atb-demo", "--train-steps -1", "train-steps-negative"),
    Case("atb-demo", "--target-speedup 0", "target-zero"),
    Case("atb-demo", "--target-speedup -3", "target-negative"),
    Case("atb-demo", "--target-speedup nan", "target-nan"),
    Case("atb-demo", "--seed -1", "seed-negative"),
    Case("atb-demo", "--workspace {file}/ws", "workspace-under-a-file"),
    Case("atb-demo", "--workspace /proc/nope", "workspace-unwritable"),
    Case("atb-demo", "--workspace {garbage_store_ws} --samples 30", "store-garbage"),
    # -- atb-eval -------------------------------------------------------------------------
    Case("atb-eval", "", "nothing-to-do"),
    Case("atb-eval", "--model {model} --task {task_csv} --method distil", "method-unknown"),
    Case("atb-eval", "--model {model} --task {task_csv} --seeds 0", "seeds-zero"),
    Case("atb-eval", "--model {model} --task {task_csv} --seeds -2", "seeds-negative"),
    Case("atb-eval", "--model {model} --task {task_csv} --seeds x", "seeds-not-a-number"),
    Case("atb-eval", "--model {model} --task {task_csv} --max-length 0", "max-length-zero"),
    Case("atb-eval", "--model {model} --task {task_csv} --batch-size 0", "batch-size-zero"),
    Case("atb-eval", "--model {model} --task {task_csv} --threads -1", "threads-negative"),
    Case("atb-eval", "--model {model} --task {task_csv} --threads 0", "threads-zero"),
    Case("atb-eval", "--model {model} --task {task_csv} --split-seed -1", "split-seed-negative"),
    Case("atb-eval", "--model {model} --task {task_csv} --epochs 3", "epochs-without-finetune"),
    Case("atb-eval", "--model {model} --task {task_csv} --method finetune --epochs 0", "epochs-zero"),
    Case("atb-eval", "--model {model} --task {task_csv} --method finetune --lr -1", "lr-negative"),
    Case("atb-eval", "--model {model} --task {task_csv} --method finetune --save {file}",
         "save-is-a-file"),
    Case("atb-eval", "--model {model} --task {task_csv} --method finetune --save /proc/nope/m",
         "save-unwritable"),
    Case("atb-eval", "--model {model} --task {task_csv} --method finetune --save {file}/m",
         "save-under-a-file"),
    Case("atb-eval", "--model {model} --task nope", "task-unknown"),
    Case("atb-eval", "--model {model} --task {missing}.csv", "task-file-missing"),
    Case("atb-eval", "--model {model} --task {garbage_csv}", "task-file-garbage"),
    Case("atb-eval", "--model {model} --task {binary_csv}", "task-file-binary"),
    Case("atb-eval", "--model {model} --task {truncated_task_csv}", "task-file-truncated"),
    Case("atb-eval", "--model {model} --task {empty_csv}", "task-file-empty"),
    Case("atb-eval", "--model {model} --task {garbage_jsonl}", "task-jsonl-garbage"),
    Case("atb-eval", "--model {model} --task {task_csv} --text-column body", "text-column-missing"),
    Case("atb-eval", "--model {model} --task {task_csv} --test {missing}.csv", "test-file-missing"),
    Case("atb-eval", "--model {model} --task kjv-genre --label-column x", "builtin-with-columns"),
    Case("atb-eval", "--model {missing} --task {task_csv}", "model-missing"),
    Case("atb-eval", "--model {empty_ws} --task {task_csv}", "model-no-config"),
    Case("atb-eval", "--model {garbage_model} --task {task_csv}", "model-config-garbage"),
    Case("atb-eval", "--model {model_garbage_weights} --task {task_csv}", "model-weights-garbage"),
    Case("atb-eval", "--model {file} --task {task_csv}", "model-is-a-file"),
    Case("atb-eval", "--list-tasks --model {model}", "list-tasks-with-model"),
    Case("atb-eval", "--model {encoder_onnx} --task {task_csv} --method finetune", "onnx-finetune"),
    Case("atb-eval", "--model {missing}.onnx --task {task_csv}", "onnx-missing"),
    Case("atb-eval", "--model {garbage_onnx} --task {task_csv}", "onnx-garbage"),
    Case("atb-eval", "--model {identity_onnx} --task {task_csv}", "onnx-without-encoder-inputs"),
    Case("atb-eval", "--model {model} --task {task_csv} --predictions /proc/nope/p.jsonl",
         "predictions-unwritable"),
    Case("atb-eval", "compare --model {model} --task {task_csv}", "compare-one-model"),
    Case("atb-eval", "compare --model {model} --model {model} --model {model} --task {task_csv}",
         "compare-three-models"),
    Case("atb-eval", "compare --model {model} --model {model}", "compare-no-task"),
    Case("atb-eval", "compare --model {model} --model {missing} --task {task_csv}",
         "compare-model-missing"),
    Case("atb-eval", "compare --model {model} --model {model} --task {task_csv} --latency",
         "compare-latency-without-workspace"),
    Case("atb-eval", "compare --model {model} --model {model} --task {task_csv} --lr 0",
         "compare-lr-zero"),
    Case("atb-eval", "compare --model {model} --model {model} --task {task_csv} --method probe "
         "--epochs 2", "compare-epochs-with-probe"),
    Case("atb-eval", "compare --model {model} --model {model} --task nope", "compare-task-unknown"),
    Case("atb-eval", "baselines", "baselines-no-task"),
    Case("atb-eval", "baselines --task nope", "baselines-task-unknown"),
    Case("atb-eval", "baselines --task {task_csv} --arch 4-x-1-1-1", "baselines-arch-malformed"),
    Case("atb-eval", "baselines --task {task_csv} --seeds 0", "baselines-seeds-zero"),
    # -- atb-fleet (no cluster is ever reached: {closed_port} has nothing listening) ------------
    Case("atb-fleet", "", "no-sub-command"),
    Case("atb-fleet", "launch", "sub-command-unknown"),
    Case("atb-fleet", "status", "no-ray", "no_ray"),
    Case("atb-fleet", "profile --address 127.0.0.1:6379 --samples 4", "profile-no-ray", "no_ray"),
    Case("atb-fleet", "profile --address 127.0.0.1:6379", "profile-no-samples"),
    Case("atb-fleet", "profile --address 127.0.0.1:6379 --samples x", "profile-samples-not-a-number"),
    Case("atb-fleet", "profile --address 127.0.0.1:6379 --samples -4 --workspace {tmp}/ws",
         "profile-samples-negative"),
    Case("atb-fleet", "profile --address 127.0.0.1:6379 --samples 4 --threads 0", "profile-threads-zero"),
    Case("atb-fleet", "profile --address 127.0.0.1:6379 --samples 4 --backend tvm", "profile-backend-unknown"),
    Case("atb-fleet", "profile --address 127.0.0.1:6379 --samples 4 --seq-len 0 --workspace {tmp}/ws",
         "profile-seq-len-zero"),
    Case("atb-fleet", "profile --address 127.0.0.1:6379 --samples 4 --super huge --workspace {tmp}/ws",
         "profile-super-unknown"),
    Case("atb-fleet", "profile --address 127.0.0.1:6379 --samples 4 --workspace {file}/ws",
         "profile-workspace-under-a-file"),
    Case("atb-fleet", "profile --address 127.0.0.1:6379 --samples 4 --workspace {garbage_store_ws}",
         "profile-store-garbage"),
    Case("atb-fleet", "profile --samples 4 --workspace {tmp}/ws", "profile-no-address", "loopback_ray"),
    Case("atb-fleet", "profile --address nohost --samples 4 --workspace {tmp}/ws", "profile-address-no-port"),
    Case("atb-fleet", "profile --address 127.0.0.1:port --samples 4 --workspace {tmp}/ws",
         "profile-address-port-not-a-number"),
    Case("atb-fleet", "profile --address ray://127.0.0.1:10001 --samples 4 --workspace {tmp}/ws",
         "profile-ray-client-address"),
    Case("atb-fleet", "profile --address 127.0.0.1:{closed_port} --samples 4 --workspace {tmp}/ws",
         "profile-nothing-at-address", "loopback_ray"),
    Case("atb-fleet", "status --workspace {missing}", "status-workspace-missing"),
    Case("atb-fleet", "status --workspace {empty_ws}", "status-no-store"),
    Case("atb-fleet", "status --workspace {garbage_store_ws}", "status-store-garbage"),
    Case("atb-fleet", "status --workspace {store_ws} --address 127.0.0.1", "status-address-no-port"),
    Case("atb-fleet", "status --workspace {store_ws} --address 127.0.0.1:{closed_port}",
         "status-nothing-at-address", "loopback_ray"),
]


# -- inputs ------------------------------------------------------------------------------
KEY = "cpu-onnxruntime-t1-fp32-s128-b1-0badf00d"  # a well-formed key of no machine
OTHER_KEY = "cpu-onnxruntime-t2-fp32-s128-b1-0badf00d"
GARBAGE = bytes(range(256)) * 8  # no text encoding, no file format
WORDS = ("the light shineth in darkness and the darkness comprehended it not for a word is "
         "spoken of kings and of rivers and of the seed that falleth on stony ground").split()


def _text(n_docs: int, words: int) -> str:
    """Blank-line separated documents of a few dozen words (enough for one training step)."""
    docs = [" ".join(WORDS[(d * 7 + i) % len(WORDS)] for i in range(words)) for d in range(n_docs)]
    return "\n\n".join(docs) + "\n"


def _put(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _store(ws: Path, labels) -> Path:
    """A workspace whose latency store holds ``labels`` as one profiling run (no timing)."""
    from atb.profiler.rows import RunHeader
    from atb.profiler.store import LatencyStore
    from atb.profiler.timing import PROTOCOL_VERSION, Measurement
    from atb.workspace import Workspace

    def measured(ms, t):
        return Measurement(tuple([ms / 1e3] * 5), tuple(t + 0.1 * i for i in range(5)), 1)

    key, ref = labels.device_key, "4-512-2048-8-512"
    with LatencyStore.open(Workspace.resolve(ws).store_path) as store:
        run = store.begin_run(RunHeader(key, {}, {}, PROTOCOL_VERSION, {}, ref, "test"))
        add_record(store, run, key, "12-768-3072-12-768", "bert_base", PROTOCOL_VERSION, measured(200.0, 1000))
        add_record(store, run, key, ref, "reference", PROTOCOL_VERSION, measured(30.0, 1001))
        for i, (arch, ms) in enumerate(zip(labels.arch_strings(), labels.latency_ms)):
            add_record(store, run, key, arch, "sampled", PROTOCOL_VERSION, measured(float(ms), 1002 + i),
                       space="pretrain")
        add_record(store, run, key, ref, "reference", PROTOCOL_VERSION, measured(30.0, 2000))
    return ws


def _synthetic_search(mp: pytest.MonkeyPatch, latency: bool = True) -> None:
    """The search's supernet (and predictor and device) replaced by tests/search's stand-ins."""
    from atb import compose
    from atb.arch import get_space
    from tests.search.synthetic import SyntheticFitness, SyntheticLatency, SyntheticMeasure

    space = get_space("pretrain", "small")
    mp.setattr(compose, "search_fitness", lambda ws, sp, spec: SyntheticFitness(space))
    if latency:
        mp.setattr(compose, "search_latency", lambda ws, key: SyntheticLatency())
        mp.setattr(compose, "search_measure", lambda ws, key: SyntheticMeasure())


def _label_files(root: Path) -> dict[str, Path]:
    """Label CSVs (valid, cut off, with a word for a number), a store, a fitted predictor
    and broken copies of its artefact."""
    from atb.predictor.artefact import artefact_name
    from atb.predictor.fit import FitConfig, fit_predictor
    from atb.predictor.synthetic import SyntheticDevice, synthetic_labels
    from tests.predictor.conftest import labels_to_csv

    labels = synthetic_labels(40, seed=1, device=SyntheticDevice(KEY))
    p = {"labels_csv": labels_to_csv(labels, root / "labels.csv"),
         "other_labels_csv": labels_to_csv(synthetic_labels(40, seed=2, device=SyntheticDevice(OTHER_KEY)),
                                           root / "other.csv")}
    text = p["labels_csv"].read_text()
    p["truncated_csv"] = _put(root / "truncated.csv", text[: len(text) // 2 - 7])  # inside a row
    header, first, *_ = text.splitlines()
    cells = first.split(",")
    cells[header.split(",").index("latency_ms")] = "fast"
    p["bad_numbers_csv"] = _put(root / "bad-numbers.csv", f"{header}\n{','.join(cells)}\n")
    p["store_ws"] = _store(root / "store_ws", labels)
    p["garbage_store_ws"] = _put(root / "garbage_store_ws" / "latency.sqlite", GARBAGE).parent

    pred = fit_predictor(labels, FitConfig(kinds=("flops_linear",), folds=2, seed=0))
    p["predictor"] = pred.save(root / "predictor" / "p.json")
    doc = json.loads(p["predictor"].read_text())
    p["predictor_no_npz"] = _put(root / "predictor_no_npz" / "p.json", json.dumps(doc))
    _put(root / "predictor_garbage_npz" / "p.npz", GARBAGE)  # with a matching checksum:
    p["predictor_garbage_npz"] = _put(root / "predictor_garbage_npz" / "p.json", json.dumps(
        {**doc, "arrays_sha256": hashlib.sha256(GARBAGE).hexdigest()}))
    p["predictor_wrong_fields"] = _put(root / "predictor_wrong_fields" / "p.json",
                                       json.dumps({"format": doc["format"]}))
    p["garbage_predictor"] = _put(root / "garbage_predictor.json", "{ this is not json")
    return p


def _supernet_files(root: Path, corpus: Path) -> dict[str, Path]:
    """Prepared data, a one-step checkpoint of a tiny supernet, a model extracted from it,
    and broken copies of each."""
    from atb.arch import Arch, SearchSpace
    from atb.supernet.data import prepare_data
    from atb.supernet.extract import extract
    from atb.supernet.config import ExportOptions, TrainConfig, TrainTarget
    from atb.supernet.train import train_supernet

    p = {"data_ws": root / "data_ws"}
    prepare_data(p["data_ws"], texts=[corpus], heldout_fraction=0.1)
    p["garbage_data_ws"] = _put(root / "garbage_data_ws" / "data" / "manifest.json", GARBAGE).parents[1]
    p["ckpt_ws"] = _copy(p["data_ws"], root / "ckpt_ws")
    summary = train_supernet(p["ckpt_ws"], TrainConfig(steps=1, batch_size=2, seq_len=16, samples=1,
                                                       log_every=1),
                             TrainTarget(space=SearchSpace("pretrain", Arch.parse(TINY_SUPER))))
    checkpoint = Path(summary["checkpoint"]).relative_to(p["ckpt_ws"])
    for name, broken in (("garbage_state_ws", "state.json"), ("garbage_weights_ws", "model.safetensors")):
        p[name] = _copy(p["ckpt_ws"], root / name)
        _put(p[name] / checkpoint / broken, GARBAGE)
    p["no_data_ws"] = _copy(p["ckpt_ws"], root / "no_data_ws")
    shutil.rmtree(p["no_data_ws"] / "data")

    p["model"] = root / "model"
    extract(p["ckpt_ws"], SUB, p["model"])
    p["garbage_model"] = _copy(p["model"], root / "garbage_model")
    _put(p["garbage_model"] / "config.json", "{ not json")
    p["model_garbage_weights"] = _copy(p["model"], root / "model_garbage_weights")
    _put(p["model_garbage_weights"] / "model.safetensors", GARBAGE)
    onnx_export = extract(p["ckpt_ws"], SUB, root / "model_onnx", ExportOptions(onnx=True))
    p["encoder_onnx"] = Path(onnx_export["onnx"])
    p["garbage_onnx"] = _put(root / "garbage.onnx", GARBAGE)
    p["identity_onnx"] = _identity_onnx(root / "identity.onnx")
    return p


def _identity_onnx(path: Path) -> Path:
    """A valid ONNX graph that is no encoder (x -> Identity -> y)."""
    import onnx
    from onnx import TensorProto, helper

    x, y = (helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in "xy")
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _search_runs(root: Path, mp: pytest.MonkeyPatch) -> dict[str, Path]:
    """A finished (synthetic) search run, and copies with a garbage configuration or report."""
    from atb.search.cli import main as search_main

    _synthetic_search(mp)
    argv = ["--target-speedup", "12", "--workspace", str(root / "runs_ws"), "--name", "r",
            "--no-verify", "--generations", "2", "--population", "6", "--json"]
    assert search_main(argv) == 0
    p = {"run": root / "runs_ws" / "runs" / "r"}
    p["garbage_run"] = _put(root / "garbage_run" / "config.json", GARBAGE).parent
    p["run_garbage_report"] = _copy(p["run"], root / "run_garbage_report")
    _put(p["run_garbage_report"] / "report.json", GARBAGE)
    return p


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, str]:
    """Every path the table names, made once: valid inputs and broken copies of them."""
    root = tmp_path_factory.mktemp("bad-inputs")
    p = {
        "file": _put(root / "file", "a regular file where a directory is expected\n"),
        "empty_ws": _put(root / "empty_ws" / "README", "").parent,
        "empty_csv": _put(root / "empty.csv", ""),
        "garbage_csv": _put(root / "garbage.csv", "this is not,a label file\n1,2\n"),
        "binary_csv": _put(root / "binary.csv", GARBAGE),
        "garbage_jsonl": _put(root / "garbage.jsonl", '{"text": "fine", "label": "a"}\n{not json\n'),
        "binary_txt": _put(root / "binary.txt", GARBAGE),
        "empty_txt": _put(root / "empty.txt", "\n\n"),
        "corpus": _put(root / "corpus.txt", _text(40, 60)),
        "closed_port": _closed_port(),
    }
    rows = [f'"{_text(1, 8 + i % 5).strip()} {i}",{"ab"[i % 2]}' for i in range(40)]
    p["task_csv"] = _put(root / "task.csv", "text,label\n" + "\n".join(rows) + "\n")
    p["truncated_task_csv"] = _put(root / "truncated-task.csv", p["task_csv"].read_text()[:40])
    with pytest.MonkeyPatch.context() as mp:  # the autouse fixtures are per test, not per module
        mp.setenv("ATB_TIMING_RULE", "smoke")
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.delenv("ATB_WORKSPACE", raising=False)
        p.update(_label_files(root))
        p.update(_supernet_files(root, p["corpus"]))
        p.update(_search_runs(root, mp))
    return {k: str(v) for k, v in p.items()}


def _closed_port() -> int:
    """A port of 127.0.0.1 with nothing listening (bound once, then let go)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def loopback_ray(monkeypatch):
    """Ray dials 127.0.0.1 as given (it swaps loopback for the machine's address otherwise), and
    no RAY_ADDRESS from the environment."""
    from tests.fleet.conftest import loopback_only

    loopback_only(monkeypatch)


@pytest.fixture
def no_ray(monkeypatch):
    """``import ray`` fails, as where the fleet extra is not installed."""
    monkeypatch.setitem(sys.modules, "ray", None)


@pytest.fixture
def no_bf16(monkeypatch):
    """This machine's fingerprint without bf16 instructions (the case fails alike everywhere)."""
    import dataclasses

    from atb.devices import fingerprint, setting

    plain = dataclasses.replace(fingerprint(), isa_flags=tuple(
        f for f in fingerprint().isa_flags if f not in ("avx512_bf16", "amx_bf16")))
    monkeypatch.setattr(setting, "fingerprint", lambda: plain)


@pytest.fixture
def synthetic(monkeypatch):
    _synthetic_search(monkeypatch)


@pytest.fixture
def synthetic_fitness(monkeypatch):
    _synthetic_search(monkeypatch, latency=False)


# -- running a command -------------------------------------------------------------------
@contextlib.contextmanager
def logging_to_stderr():
    """Log records on (captured) stderr, where atb.cli.configure puts them outside pytest."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(handler)


def run_in_process(command: str, argv: list[str], capsys) -> tuple[int, str, str]:
    main = importlib.import_module(MAINS[command]).main
    capsys.readouterr()
    with logging_to_stderr():
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse's errors
            rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def check_one_line_error(command: str, rc, out: str, err: str) -> None:
    assert "Traceback" not in out + err, err
    assert rc == 2, f"exit code {rc}, stderr:\n{err}"
    lines = err.splitlines()
    assert len(lines) == 1, f"{len(lines)} lines on stderr:\n{err}"
    assert lines[0].startswith(command) and ": error: " in lines[0], err


def argv_of(case_argv: str, names: dict[str, str]) -> list[str]:
    return [word.format(**names) for word in shlex.split(case_argv)]


PER_TEST_COPIES = ("data_ws", "store_ws")  # a command that wrongly runs would write into them


@pytest.mark.parametrize("case", CASES, ids=[f"{c.command}:{c.id}" for c in CASES])
def test_bad_input_is_one_line_and_exit_2(case, inputs, tmp_path, capsys, request, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a command that wrongly runs writes its default workspace here
    if case.setup:
        request.getfixturevalue(case.setup)
    names = {**inputs, "tmp": str(tmp_path), "missing": str(tmp_path / "missing"),
             "ARCH": ARCH, "SUB": SUB}
    for name in PER_TEST_COPIES:
        if "{" + name + "}" in case.argv:
            names[name] = str(_copy(Path(inputs[name]), tmp_path / name))
    rc, out, err = run_in_process(case.command, argv_of(case.argv, names), capsys)
    check_one_line_error(case.command, rc, out, err)


def test_table_covers_every_command_and_sub_command():
    scripts = Path(__file__).parents[1].joinpath("pyproject.toml").read_text()
    assert set(MAINS) == {line.split("=")[0].strip() for line in scripts.splitlines()
                          if line.startswith("atb-")}
    first_words = {(c.command, c.argv.split()[0] if c.argv and not c.argv.startswith("-") else "")
                   for c in CASES}
    wanted = {("atb-profile", ""), ("atb-profile", "export"), ("atb-search", ""), ("atb-demo", ""),
              ("atb-eval", ""), ("atb-eval", "compare"), ("atb-eval", "baselines"),
              ("atb-plot", "predictor"), ("atb-plot", "pareto"), ("atb-plot", "devices"),
              ("atb-fleet", "profile"), ("atb-fleet", "status")}
    wanted |= {("atb-predictor", s) for s in ("fit", "eval", "predict", "transfer")}
    wanted |= {("atb-supernet", s) for s in ("data", "train", "extract", "evaluate")}
    assert wanted <= first_words


CONSOLE_CASES = [  # the installed entry points, logging configured as in a terminal
    ("atb-profile", "--arch 5-564-1054"),
    ("atb-predictor", "predict 4-512 --predictor {predictor}"),
    ("atb-search", "--target-speedup 0"),
    ("atb-eval", "--model {missing} --task {task_csv}"),
    ("atb-fleet", "profile --address nohost --samples 1"),
]


@pytest.mark.parametrize("command,argv", CONSOLE_CASES, ids=[c for c, _ in CONSOLE_CASES])
def test_console_scripts_too(command, argv, inputs, tmp_path):
    exe = Path(sys.executable).with_name(command)
    if not exe.is_file():
        pytest.skip(f"{command} is not installed next to {sys.executable}")
    proc = subprocess.run([str(exe), *argv_of(argv, {**inputs, "missing": str(tmp_path / "x")})],
                          capture_output=True, text=True, timeout=60, env=cli_env(), cwd=tmp_path)
    check_one_line_error(command, proc.returncode, proc.stdout, proc.stderr)
