"""Further training (AutoTinyBERT §3.6, ``atb-supernet distill``): what a budget of stand-alone
distillation steps buys a sub-model, measured by held-out distillation loss and linear probes on
the validation splits of mr and kjv-next, and by kjv-next fine-tuning.

Sections (each appends its rows to ``data/further-*.csv`` as they finish and skips rows that are
there, so a killed run resumes; ``report`` reads the files alone):

- ``objective``: the supernet's own objective against every layer's hidden states, and the
  workspace's text against 25,000 IMDB reviews, on two archs at 1,000 steps;
- ``budget``: four archs at 0 / 300 / 1,000 / 1,800 steps (``--objective``, ``--corpus``);
- ``finetune``: the 15x rule arch as a slice (0 steps), after 300 steps and after ``--steps``,
  fine-tuned on kjv-next (3 seeds, lr 1e-4, test split), paired;
- ``precision``: the 15x rule arch at the default budget, 3 seeds, trained in fp32 and under
  bf16 autocast (only on a device with bf16 arithmetic), probed alike;
- ``cut``: the teacher's first three layers (``3-384-1536-12-384``, untrained) probed the same
  way, the layer-cut baseline of the mr probe;
- ``report``: every table, the default budget by the rule (the smallest budget whose mean mr
  probe over the four archs is within 1 point of the largest), and the paired intervals.

Only validation splits are read for choices: the mr probe's test split is replaced by its
validation split before anything is encoded.

    python -m bench.further --workspace WS --sections objective budget cut report
"""

from __future__ import annotations

import dataclasses
import logging
import time

from atb import jsonl, predictions
from atb.arch import Arch
from bench.common import DATA, append_csv, commit, parser, read_csv, section

log = logging.getLogger("bench.further")

RULE_15, RULE_25 = "4-320-1280-10-320", "2-352-1408-11-352"
BUDGET_ARCHS = (RULE_15, RULE_25, "5-384-232-4-128", "6-144-1520-12-384")
OBJECTIVE_ARCHS = (RULE_15, "5-384-232-4-128")
VARIANTS = (("supernet", "workspace"), ("layers", "workspace"), ("supernet", "imdb"))
BUDGETS = (0, 300, 1000, 1800)  # --budgets picks some of them
LAYER_CUT = "3-384-1536-12-384"  # MiniLM's first three layers at full width
PROBE_TASKS = ("mr", "kjv-next")
FINETUNE_LR, FINETUNE_SEEDS = 1e-4, 3
PRECISION_SEEDS = 3

PROBES_CSV = DATA / "further-probes.csv"
CORRECT_JSONL = DATA / "further-probes-correct.jsonl"  # validation correctness, for pairing
FINETUNE_CSV = DATA / "further-kjv-next.csv"
FINETUNE_JSONL = DATA / "further-kjv-next-predictions.jsonl"
PROBE_FIELDS = ["arch", "steps", "objective", "corpus", "task", "validation_accuracy",
                "validation_log_loss", "heldout_loss_before", "heldout_loss_after",
                "train_seconds", "tokens", "supernet", "supernet_step", "commit", "finished_at"]
PRECISION_CSV = DATA / "further-precision.csv"
PRECISION_FIELDS = ["arch", "steps", "precision", "seed", "task", "validation_accuracy",
                    "validation_log_loss", "heldout_loss_before", "heldout_loss_after", "device",
                    "commit", "finished_at"]
FINETUNE_FIELDS = ["arch", "steps", "objective", "corpus", "seed", "accuracy",
                   "validation_accuracy", "lr", "best_epoch", "commit", "finished_at"]


def model_name(arch: str, steps: int, objective: str, corpus: str) -> str:
    return f"{arch}@{steps}:{objective}:{corpus}"


class Prober:
    """Linear probes on the validation splits (the test split never encoded), one tokenisation
    per task for every model."""

    def __init__(self):
        from atb.eval import Probe, load_task
        from atb.eval.models import load_tokenizer

        tokenizer = load_tokenizer()
        self.probes = {}
        for name in PROBE_TASKS:
            task = load_task(name)
            self.probes[name] = Probe(dataclasses.replace(task, test=task.validation), tokenizer)

    def __call__(self, encoder) -> dict[str, dict]:
        from atb.eval.probe import fit_probe

        out = {}
        for name, probe in self.probes.items():
            fit = fit_probe(probe.features(encoder), probe.task, seed=0, c_grid=probe.c_grid)
            out[name] = fit
        return out


def _supernet(ws):
    from atb.supernet import checkpoint as ckpt

    path = ckpt.find_checkpoint(ws.supernet_dir)
    return path, ckpt.read_state(path)["step"]


def _encoder(checkpoint, arch: Arch):
    import functools

    from atb.supernet import checkpoint as ckpt

    supernet = ckpt.load_trainable(checkpoint)[0]["supernet"]
    return functools.partial(supernet, arch=arch)


def record_probes(fits: dict, scores: tuple, row: dict, name: str, seed: int = 0) -> None:
    """Each task's probe appended as a row of ``scores`` (a CSV and its fields: ``row``'s keys
    plus the probe's scores) and its validation correctness as ``name``'s line for ``seed``."""
    path, fields = scores
    for task, fit in fits.items():
        append_csv(path, fields, {**row, "task": task,
                                  "validation_accuracy": f"{fit['validation_accuracy']:.5f}",
                                  "validation_log_loss": f"{fit['validation_log_loss']:.5f}",
                                  "commit": commit(), "finished_at": int(time.time())})
        jsonl.append(CORRECT_JSONL, predictions.line(
            name, seed, "validation", correct=fit["validation_correct"], extra={"task": task}),
            fsync=True)


def probe_arch(ws, prober: Prober, arch: str, steps: int, variant: tuple[str, str]) -> None:
    """One arch at one budget: trained further (none at 0 steps), probed, rows appended."""
    from atb.supernet.further import FurtherConfig, heldout_loss, train_further

    objective, corpus = variant
    done = {(r["arch"], int(r["steps"]), r["objective"], r["corpus"], r["task"])
            for r in read_csv(PROBES_CSV)}
    if all((arch, steps, objective, corpus, t) in done for t in PROBE_TASKS):
        return
    supernet, supernet_step = _supernet(ws)
    if steps == 0:
        loss = heldout_loss(supernet, ws, Arch.parse(arch))  # inside the supernet
        record = {"checkpoint": supernet, "heldout_loss_before": loss, "heldout_loss_after": loss,
                  "seconds": 0.0, "tokens": 0}
    else:
        record = train_further(ws, arch, FurtherConfig(steps=steps, objective=objective,
                                                       corpus=corpus))
    fits = prober(_encoder(record["checkpoint"], Arch.parse(arch)))
    record_probes(fits, (PROBES_CSV, PROBE_FIELDS), {
        "arch": arch, "steps": steps, "objective": objective, "corpus": corpus,
        "heldout_loss_before": f"{record['heldout_loss_before']:.5f}",
        "heldout_loss_after": f"{record['heldout_loss_after']:.5f}",
        "train_seconds": record["seconds"], "tokens": record["tokens"],
        "supernet": supernet.name, "supernet_step": supernet_step},
        model_name(arch, steps, objective, corpus))
    print(f"{arch:>20} {steps:5d} steps {objective:>8} {corpus:>9}: "
          + "  ".join(f"{t} {f['validation_accuracy']:.2%}" for t, f in fits.items()), flush=True)


def precision_name(precision: str, steps: int) -> str:
    return f"{RULE_15}@{steps}:{precision}"


def precision_section(ws, prober: Prober, args) -> None:
    """The 15x rule arch at ``--steps``, seeds 0..2, in fp32 and under bf16 autocast; each
    seed's probes appended as they finish (seed-major: a session cut short has whole pairs)."""
    from atb.devices.fingerprint import fingerprint
    from atb.supernet.further import FurtherConfig, train_further
    from atb.supernet.train import bf16_support

    if why := bf16_support():
        print(f"precision: skipped, {why}")
        return
    done = {(r["precision"], int(r["seed"]), int(r["steps"]), r["task"])
            for r in read_csv(PRECISION_CSV)}
    for seed in range(PRECISION_SEEDS):
        for precision in ("fp32", "bf16"):
            if all((precision, seed, args.steps, t) in done for t in PROBE_TASKS):
                continue
            record = train_further(ws, RULE_15, FurtherConfig(steps=args.steps, seed=seed,
                                                              precision=precision))
            fits = prober(_encoder(record["checkpoint"], Arch.parse(RULE_15)))
            record_probes(fits, (PRECISION_CSV, PRECISION_FIELDS), {
                "arch": RULE_15, "steps": args.steps, "precision": precision, "seed": seed,
                "heldout_loss_before": f"{record['heldout_loss_before']:.5f}",
                "heldout_loss_after": f"{record['heldout_loss_after']:.5f}",
                "device": fingerprint().cpu_model}, precision_name(precision, args.steps), seed)
            print(f"{RULE_15} {args.steps} steps {precision} seed {seed}: "
                  + "  ".join(f"{t} {f['validation_accuracy']:.2%}" for t, f in fits.items()),
                  flush=True)


def objective_section(ws, prober: Prober, args) -> None:
    for arch in OBJECTIVE_ARCHS:  # arch by arch: a session cut short still compares one arch
        for variant in VARIANTS:
            probe_arch(ws, prober, arch, 1000, variant)


def budget_section(ws, prober: Prober, args) -> None:
    for steps in args.budgets:  # budget-major: a session cut short has every arch's low budgets
        for arch in BUDGET_ARCHS:
            probe_arch(ws, prober, arch, steps, (args.objective, args.corpus))


def cut_section(ws, prober: Prober, args) -> None:
    """MiniLM's first three layers, untrained (what a user gets for free), probed alike."""
    from transformers import BertModel

    from atb.supernet.data import quiet_transformers, tokenizer_dir

    done = {(r["arch"], r["task"]) for r in read_csv(PROBES_CSV) if r["objective"] == "cut"}
    if all((LAYER_CUT, t) in done for t in PROBE_TASKS):
        return
    quiet_transformers()
    teacher = BertModel.from_pretrained(str(tokenizer_dir()), local_files_only=True).eval()
    teacher.encoder.layer = teacher.encoder.layer[:3]
    teacher.config.num_hidden_layers = 3
    fits = prober(teacher)
    record_probes(fits, (PROBES_CSV, PROBE_FIELDS),
                  {"arch": LAYER_CUT, "steps": 0, "objective": "cut", "corpus": "none"},
                  model_name(LAYER_CUT, 0, "cut", "none"))
    for task, fit in fits.items():
        print(f"{LAYER_CUT:>20} layer cut: {task} {fit['validation_accuracy']:.2%}", flush=True)


def finetune_section(ws, args) -> None:
    """The 15x rule arch as a slice, after 300 steps and after ``--steps``, fine-tuned on
    kjv-next, one seed at a time, each appended as it finishes."""
    from atb.eval import FinetuneConfig, load_task
    from atb.eval.finetune import finetune
    from atb.eval.models import load_tokenizer
    from atb.supernet.extract import extract
    from atb.supernet.further import FurtherConfig, distill

    task, tokenizer = load_task("kjv-next"), load_tokenizer()
    if "test" not in predictions.read(FINETUNE_JSONL)[1]:  # the true classes, for pairing
        jsonl.append(FINETUNE_JSONL, predictions.labels_line("test", task.test.labels))
    for steps in sorted({0, 300, args.steps}):  # 0: the slice a user got before further training
        done = {int(r["seed"]) for r in read_csv(FINETUNE_CSV) if r["arch"] == RULE_15
                and int(r["steps"]) == steps and r["objective"] == args.objective
                and r["corpus"] == args.corpus}
        seeds = [s for s in range(FINETUNE_SEEDS) if s not in done]
        if not seeds:
            continue
        out = ws.root / "bench-further" / f"{RULE_15}-{steps}-{args.objective}-{args.corpus}"
        if steps == 0:
            extract(ws, RULE_15, out)
        else:
            distill(ws, [RULE_15], out, FurtherConfig(steps=steps, objective=args.objective,
                                                      corpus=args.corpus))
        for seed in seeds:
            _, (result,) = finetune(out, task, tokenizer, [seed],
                                    dataclasses.replace(FinetuneConfig(), lr=FINETUNE_LR))
            append_csv(FINETUNE_CSV, FINETUNE_FIELDS, {
                "arch": RULE_15, "steps": steps, "objective": args.objective,
                "corpus": args.corpus, "seed": seed, "accuracy": f"{result['accuracy']:.5f}",
                "validation_accuracy": f"{result['validation_accuracy']:.5f}",
                "lr": FINETUNE_LR, "best_epoch": result["best_epoch"], "commit": commit(),
                "finished_at": int(time.time())})
            jsonl.append(FINETUNE_JSONL, predictions.line(
                model_name(RULE_15, steps, args.objective, args.corpus), seed, "test",
                predicted=result["predictions"]), fsync=True)
            print(f"{RULE_15} after {steps} steps, seed {seed}: {result['accuracy']:.2%}",
                  flush=True)


def main(argv=None) -> int:
    from bench.further_report import report

    p = parser("bench.further", __doc__)
    p.add_argument("--workspace", default=None, help="a workspace with an --init supernet")
    p.add_argument("--sections", nargs="+", default=["report"],
                   choices=["objective", "budget", "precision", "cut", "finetune", "report"])
    p.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS),
                   help="the budget curve's steps (default: 0 300 1000 1800)")
    p.add_argument("--objective", default="supernet", help="the budget curve's objective")
    p.add_argument("--corpus", default="workspace", help="the budget curve's corpus")
    p.add_argument("--steps", type=int, default=None,
                   help="finetune: the budget to compare with 300; precision: the budget "
                        "(default: the default budget)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if set(args.sections) - {"report"}:
        from atb.supernet.data import as_workspace
        from atb.supernet.further import DEFAULT_STEPS

        ws = as_workspace(args.workspace)
        args.steps = args.steps or DEFAULT_STEPS
        prober = (Prober() if set(args.sections) & {"objective", "budget", "precision", "cut"}
                  else None)
        for name, body in (("objective", objective_section), ("budget", budget_section),
                           ("precision", precision_section), ("cut", cut_section)):
            if name in args.sections:
                section(name)
                body(ws, prober, args)
        if "finetune" in args.sections:
            section("finetune")
            finetune_section(ws, args)
    if "report" in args.sections:
        report()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
