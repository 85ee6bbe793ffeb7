"""A graded ground truth on ``mr``, read on its **validation** split only: within a latency
window, which archs fine-tune best? (The test split is kept for the registered claim: nothing
here predicts it.)

Each arch of a window is trained further for the default budget (``atb-supernet distill``'s
300 steps; the layer cut is the teacher's first k layers, untrained, as a user gets it), then
fine-tuned with 3 seeds at the fixed lr 1e-4 of ``bench.mr_separation``; each seed's
validation accuracy and predicted classes are appended as it finishes, so a killed run
resumes. Archs that ``bench.mr_separation`` fine-tuned under the same protocol (the rule arch,
the cut) are taken from its files, not trained twice.

A window holds archs timed in one profiler call, and what the two-stage search picks there.
The 14x window takes ``data/ranking-archs.csv``'s 15x window (1-thread ONNX Runtime, device key
``...923072e7``, measured 14.1-15.3x) and MiniLM's 3-layer cut (14.3x). The 21x window is timed
here (``--sections time``, on the machine at hand, idle): MiniLM's 2-layer cut, the BERT rule's
arch and the reference predictor's candidates per depth, in one call; the window is the cut's
measured speedup, and a candidate measured outside +-4.5% of it is dropped
(``data/mr-truth-timed.csv``). For each search seed, ``atb-search --target-speedup X --task mr``'s
first-stage favourite, its winner and its BERT-rule arch join (``--sections search``: the
predictor fitted on the committed labels of device key ``...923072e7``,
``data/reference-ort-t1-p4.csv``, without re-measuring, so these speedups are predicted; a
search reads mr's validation split only), appended to ``data/mr-truth-searches.csv``.

    python -m bench.mr_truth --workspace WS --sections time --window 21   # idle machine
    python -m bench.mr_truth --workspace WS --sections search --window 21 --search-seeds 0 1 2
    python -m bench.mr_truth --workspace WS --sections train --window 21 [--only ARCH ...]
    python -m bench.mr_truth                                              # the report, data/ only
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from atb import jsonl, predictions
from atb.errors import AtbError, MissingInputError
from bench.common import (DATA, append_csv, commit, parser, read_csv, section,
                          separated_pairs, write_csv)
from bench.mr_separation import LR
from bench.mr_separation import PREDICTIONS_JSONL as SEPARATION_JSONL
from bench.mr_separation import SCORES_CSV as SEPARATION_CSV

log = logging.getLogger("bench.mr_truth")

SCORES_CSV = DATA / "mr-truth.csv"
PREDICTIONS_JSONL = DATA / "mr-truth-predictions.jsonl"  # validation predictions only
FIELDS = ["window", "arch", "role", "seed", "validation_accuracy", "lr", "best_epoch",
          "epochs_run", "further_steps", "seconds", "source", "commit", "finished_at"]
SEEDS = 3
SEARCHES_CSV = DATA / "mr-truth-searches.csv"
SEARCH_FIELDS = ["window", "target", "seed", "favourite", "winner", "rule", "favourite_speedup",
                 "winner_speedup", "rule_speedup", "chosen_by", "runtime_s", "device_key",
                 "commit", "finished_at"]
REFERENCE_LABELS = DATA / "reference-ort-t1-p4.csv"  # the 14x window's device key, protocol 4
TIMED_CSV = DATA / "mr-truth-timed.csv"  # windows timed by --sections time
TIMED_FIELDS = ["window", "arch", "role", "predicted_speedup", "measured_speedup", "inside",
                "device_key", "protocol_version", "measured_at"]
MARGIN = 0.045  # bench.ranking's: a candidate inside +-4.5% of the window's centre
CUTS = {14: "3-384-1536-12-384", 21: "2-384-1536-12-384"}  # MiniLM's first 3 and 2 layers
# window: (arch, role, measured speedup); roles: rule (the BERT rule's arch of the window), cut
# (the teacher's first k layers), candidate (the predictor's picks, one profiler call)
TIMED_14 = (("3-356-1516-12-384", "candidate", 14.83), ("4-384-1532-2-64", "candidate", 14.15),
            ("5-384-800-5-160", "candidate", 14.53), ("6-384-324-8-256", "candidate", 14.31),
            ("4-320-1280-10-320", "rule", 14.34), (CUTS[14], "cut", 14.3))
WINDOWS = (14, 21)
# bench.mr_separation's names of the archs it fine-tuned under this protocol
SEPARATION_MODEL = {(14, "rule"): "rule-15", (14, "cut"): "cut-3", (21, "cut"): "cut-2"}


def timed(window: int) -> tuple[tuple[str, str, float], ...]:
    """(arch, role, measured speedup) of a window's one profiler call; the cut whatever its
    speed, the others only inside the window."""
    if window == 14:
        return TIMED_14
    return tuple((r["arch"], r["role"], float(r["measured_speedup"]))
                 for r in read_csv(TIMED_CSV) if int(r["window"]) == window
                 and (r["role"] == "cut" or int(r["inside"])))


def search_target(window: int) -> float:
    """The searches' target: the measured speedup of the window's layer cut."""
    found = [x for arch, role, x in timed(window) if role == "cut"]
    if not found:
        raise MissingInputError(f"the {window}x window is not timed yet",
                                hint=f"run --sections time --window {window} first")
    return round(found[0], 1)


def window_archs(window: int) -> list[tuple[str, str, float]]:
    """(arch, role, speedup) of a window: the timed archs, then each search's picks (roles
    joined where one arch plays several)."""
    archs = {a: [role, x] for a, role, x in timed(window)}
    for row in read_csv(SEARCHES_CSV):
        if int(row["window"]) != window:
            continue
        for role in ("winner", "favourite", "rule"):
            arch = row[role]
            speedup = float(row[f"{role}_speedup"])
            name = f"search-{role} s{row['seed']}"
            if arch in archs:
                archs[arch][0] += f", {name}"
            else:
                archs[arch] = [name, speedup]
    return [(a, role, x) for a, (role, x) in archs.items()]


def time_window(ws, window: int, per_depth: int, seed: int) -> None:
    """Time the window's layer cut, the rule arch and the reference predictor's candidates near
    ``window`` in one profiler call on this machine (idle); write their rows."""
    from atb.arch import Arch, archs_to_array, get_space
    from atb.compose import search_measure
    from atb.devices.setting import device_key_from_flags
    from bench.ranking.timing import pick_candidates

    if any(int(r["window"]) == window for r in read_csv(TIMED_CSV)):
        print(f"the {window}x window is timed already ({TIMED_CSV.name})")
        return
    key = device_key_from_flags(backend="onnxruntime", threads=1)
    predictor = _device_predictor(ws, key)
    space = get_space("pretrain", "minilm")  # the --init minilm supernet's space
    chosen = pick_candidates(space, predictor, float(window), per_depth,
                             np.random.default_rng(seed))
    cut = Arch.parse(CUTS[window])
    chosen.append((cut, "cut", float(predictor.predict_speedup(archs_to_array([cut]))[0])))
    log.info("timing %d archs of the %dx window in one profiler call under %s", len(chosen),
             window, key)
    measured = search_measure(ws, key)([arch for arch, _, _ in chosen])
    centre = measured[-1]  # the cut's
    rows = []
    for (arch, role, predicted), speedup in zip(chosen, measured):
        inside = role == "cut" or abs(speedup / centre - 1) <= MARGIN
        rows.append({"window": window, "arch": str(arch), "role": role,
                     "predicted_speedup": f"{predicted:.3f}",
                     "measured_speedup": f"{speedup:.3f}", "inside": int(inside),
                     "device_key": key, "protocol_version": predictor.protocol_version,
                     "measured_at": int(time.time())})
        print(f"{window}x {role:>9} {arch} predicted {predicted:.2f}x measured {speedup:.2f}x"
              f"{'' if inside else '  (outside: dropped)'}", flush=True)
    write_csv(TIMED_CSV, TIMED_FIELDS, read_csv(TIMED_CSV) + rows)


def _device_predictor(ws, key: str):
    """This workspace's predictor for ``key``, fitted on its labels (``atb-profile --samples
    auto --threads 1 --super minilm`` on the idle machine first)."""
    from atb.predictor.auto import load_or_fit

    return load_or_fit(ws, key)


def _search_predictor(ws, window: int):
    """The predictor of the window's device: the 14x window's is the reference labels' (no
    store in the workspace holds them), another window's is fitted on the labels profiled
    where it was timed."""
    if window == 14:
        return _reference_predictor(ws)
    return _device_predictor(ws, _timed_device_key(window))


def _timed_device_key(window: int) -> str:
    """The device key a window was timed under."""
    return next(r["device_key"] for r in read_csv(TIMED_CSV) if int(r["window"]) == window)


def _reference_predictor(ws):
    """The predictor fitted on the committed reference labels (cached in the workspace)."""
    from atb.predictor.artefact import artefact_name
    from atb.predictor.fit import fit_predictor
    from atb.predictor.predictor import LatencyPredictor
    from atb.profiler.labels import LabelSet

    labels = LabelSet.from_csv(REFERENCE_LABELS)
    path = ws.root / "predictors" / artefact_name(labels.device_key)
    if not path.is_file():
        fit_predictor(labels, None, source=str(REFERENCE_LABELS)).save(path)
    return LatencyPredictor.load(path, allow_other_device=True)


def search(ws, window: int, seeds: list[int]) -> None:
    """Each missing search seed's two-stage search at the window's target (validation split
    only), with the window's device predictor and no re-measurement; its picks appended."""
    import json

    from atb.compose import search_ports
    from atb.search.api import run_search
    from atb.search.config import SearchConfig
    from atb.search.ports import SearchPorts

    target = search_target(window)
    predictor = _search_predictor(ws, window)
    done = {(int(r["window"]), int(r["seed"])) for r in read_csv(SEARCHES_CSV)}
    for seed in seeds:
        if (window, seed) in done:
            continue
        config = SearchConfig(targets=(target,), seed=seed, task="mr", verify=False,
                              device_key=predictor.device_key)
        name = f"mr-{target:g}-seed{seed}"
        report_json = ws.root / "runs" / name / "report.json"
        if report_json.is_file():  # a finished run: its report is the result
            report = json.loads(report_json.read_text())
        else:
            ports = search_ports(config, ws, SearchPorts(latency=predictor))
            report = run_search(config, ws, ports, run_name=name).to_dict()
        rerank, rule = report["reranking"], report["baselines"][0]
        speedup = {c["arch"]: c["predicted_speedup"] for c in rerank["ranked"]}
        append_csv(SEARCHES_CSV, SEARCH_FIELDS, {
            "window": window, "target": target, "seed": seed,
            "favourite": rerank["favourite"], "winner": rerank["winner"]["arch"],
            "rule": rule["arch"], "favourite_speedup": f"{speedup[rerank['favourite']]:.3f}",
            "winner_speedup": f"{rerank['winner']['predicted_speedup']:.3f}",
            "rule_speedup": f"{rule['predicted_speedup']:.3f}", "chosen_by": rerank["chosen_by"],
            "runtime_s": f"{report['runtime_s']:.0f}", "device_key": predictor.device_key,
            "commit": commit(), "finished_at": int(time.time())})
        print(f"search seed {seed}: favourite {rerank['favourite']}, winner "
              f"{rerank['winner']['arch']} ({rerank['chosen_by']})", flush=True)


def _done() -> set[tuple[str, int]]:
    return {(r["arch"], int(r["seed"])) for r in read_csv(SCORES_CSV)}


def _append(window: int, arch: str, role: str, result: dict, steps: int, source: str) -> None:
    append_csv(SCORES_CSV, FIELDS, {
        "window": window, "arch": arch, "role": role, "seed": result["seed"],
        "validation_accuracy": f"{result['validation_accuracy']:.5f}", "lr": LR,
        "best_epoch": result["best_epoch"], "epochs_run": result["epochs_run"],
        "further_steps": steps, "seconds": f"{result.get('seconds', float('nan')):.0f}",
        "source": source, "commit": commit(),
        "finished_at": int(time.time())})
    jsonl.append(PREDICTIONS_JSONL, predictions.line(
        arch, result["seed"], "validation", predicted=result["validation_predictions"]),
        fsync=True)


def import_separation(window: int) -> None:
    """The rule arch's and the cut's seeds that bench.mr_separation fine-tuned (same
    protocol), copied with their validation predictions."""
    lines, _ = predictions.read(SEPARATION_JSONL)
    found = predictions.by_model_and_seed(lines, match={"split": "validation"})
    rows = {(r["model"], int(r["seed"])): r for r in read_csv(SEPARATION_CSV)}
    done = _done()
    for arch, role, _ in window_archs(window):
        name = SEPARATION_MODEL.get((window, role.split(", ")[0]))  # its own role first
        for seed, predicted in sorted(found.get(name, {}).items()):
            if (arch, seed) in done or (name, seed) not in rows:
                continue
            row = rows[(name, seed)]
            _append(window, arch, role, {
                "seed": seed, "validation_accuracy": float(row["validation_accuracy"]),
                "best_epoch": row["best_epoch"], "epochs_run": row["epochs_run"],
                "validation_predictions": predicted},
                0 if role.startswith("cut") else _further_steps(),
                f"bench.mr_separation {name}")


def _further_steps() -> int:
    from atb.supernet.further import DEFAULT_STEPS

    return DEFAULT_STEPS


def _model_dir(ws, arch: str, role: str, tmp: Path) -> Path:
    from atb.supernet.further import FurtherConfig, distill
    from atb.supernet.layer_cut import save_layer_cut

    if role.startswith("cut"):
        return Path(save_layer_cut(int(arch.split("-")[0]), tmp / arch)["out_dir"])
    distill(ws, [arch], tmp / arch, FurtherConfig(steps=_further_steps()))
    return tmp / arch


def train(ws, window: int, only: list[str]) -> None:
    """Every arch's missing seeds: trained further once, fine-tuned seed by seed."""
    from atb.eval import FinetuneConfig, load_task
    from atb.eval.encode import tokenize
    from atb.eval.finetune import Run, train_run
    from atb.eval.models import load_tokenizer

    task, tokenizer = load_task("mr"), load_tokenizer()
    if "validation" not in predictions.read(PREDICTIONS_JSONL)[1]:
        jsonl.append(PREDICTIONS_JSONL, predictions.labels_line("validation",
                                                                task.validation.labels))
    tokenized = {s: tokenize(task.split(s), tokenizer) for s in ("train", "validation")}
    config = dataclasses.replace(FinetuneConfig(), lr=LR)
    import_separation(window)  # bench.mr_separation's seeds of the rule arch and the cut
    with tempfile.TemporaryDirectory(prefix="atb-mr-truth-") as tmp:
        for arch, role, _ in window_archs(window):
            seeds = [s for s in range(SEEDS) if (arch, s) not in _done()]
            if (only and arch not in only) or not seeds:
                continue
            model = _model_dir(ws, arch, role, Path(tmp))
            steps = 0 if role.startswith("cut") else _further_steps()
            for seed in seeds:
                start = time.perf_counter()
                result = train_run(model, tokenized, task, config, Run(seed, LR, test=False))
                result["seconds"] = time.perf_counter() - start  # one core, beside another job
                _append(window, arch, role, result, steps, "bench.mr_truth")
                print(f"{window}x {arch:>18} {role:>9} seed {seed}: "
                      f"validation {result['validation_accuracy']:.2%}", flush=True)


def ground_truth() -> dict[float, dict]:
    """``bench.fitness``'s view of this ground truth: per window, every measured arch's mean
    validation accuracy, (seeds, examples) correctness, role and size, and the pairs the
    paired interval separates (``{(a, b): a - b}``)."""
    from atb.arch import Arch

    lines, labels = predictions.read(PREDICTIONS_JSONL)
    found = predictions.by_model_and_seed(lines, match={"split": "validation"})
    out: dict[float, dict] = {}
    for window in WINDOWS:
        entry = out.setdefault(float(window), {"archs": {}, "separated": {}})
        for arch, role, _ in window_archs(window):
            if arch in found:
                correct = np.stack([found[arch][s] == labels["validation"]
                                    for s in sorted(found[arch])])
                entry["archs"][arch] = {"accuracy": float(correct.mean()), "correct": correct,
                                        "role": role, "non_embedding_params":
                                            Arch.parse(arch).non_embedding_params()}
        entry["separated"] = separated_pairs(entry["archs"])
    return out


def validation_baselines() -> dict[str, np.ndarray]:
    """(seeds, examples) validation correctness of what reading is measured against: the bag
    of words (C picked on validation; deterministic, one row) and the random-init encoder of
    the 3-layer cut's shape (bench.mr_separation's seeds)."""
    import dataclasses

    from atb.eval import load_task
    from atb.eval.baselines import bag_of_words

    task = load_task("mr")
    on_validation = dataclasses.replace(task, test=task.validation)  # test never encoded
    out = {"bag of words": (bag_of_words(on_validation)["predictions"] == task.validation.labels)[None]}
    lines, _ = predictions.read(SEPARATION_JSONL)
    random = predictions.by_model_and_seed(lines, match={"split": "validation"}).get("random-3")
    if random:
        out["random-init 3-layer"] = np.stack([random[s] == task.validation.labels
                                               for s in sorted(random)])
    return out


def report() -> None:
    """Per window: each arch's mean and seed spread, its rank, whether it beats the bag of
    words (paired), and every pair's paired 95% interval over the validation examples and the
    seeds both have."""
    from atb.stats import paired_difference

    truth = {w: t for w, t in ground_truth().items() if t["archs"]}
    if not truth:
        return
    baselines = validation_baselines()
    section("mr validation baselines")
    for name, correct in baselines.items():
        print(f"{name}: {correct.mean():.2%} ({correct.shape[0]} seed(s))")
    speedups = {a: x for w in WINDOWS for a, _, x in window_archs(w)}
    for window, entry in truth.items():
        archs = entry["archs"]
        ranked = sorted(archs, key=lambda a: -archs[a]["accuracy"])
        section(f"mr ground truth, {window:g}x window: validation accuracy (3 seeds, lr {LR:g})")
        learners = 0
        for rank, arch in enumerate(ranked, 1):
            seeds = archs[arch]["correct"].mean(axis=1)
            versus_bow = paired_difference(archs[arch]["correct"], baselines["bag of words"])
            learners += versus_bow.low > 0
            print(f"{rank:2d}. {arch:>18} {speedups[arch]:6.2f}x {archs[arch]['accuracy']:.2%} "
                  f"(seeds {' / '.join(f'{a:.2%}' for a in seeds)}, std "
                  f"{seeds.std(ddof=1) if len(seeds) > 1 else 0:.2%}); - bag of words "
                  f"{versus_bow.difference:+.2%} [{versus_bow.low:+.2%}, {versus_bow.high:+.2%}]"
                  f"  {archs[arch]['role']}")
        pairs = len(ranked) * (len(ranked) - 1) // 2
        print(f"{learners} of {len(ranked)} archs beat the bag of words (paired, validation); "
              f"{len(entry['separated'])} of {pairs} pairs separated; {len(ranked)} of "
              f"{len(window_archs(int(window)))} archs measured")
        for (a, b), difference in sorted(entry["separated"].items(), key=lambda x: -abs(x[1])):
            better, worse = (a, b) if difference > 0 else (b, a)
            print(f"  separated: {better} - {worse} {abs(difference):+.2%}")


def main(argv=None) -> int:
    p = parser("bench.mr_truth", __doc__)
    p.add_argument("--workspace", default=None, help="a workspace with an --init minilm supernet")
    p.add_argument("--sections", nargs="+", default=["report"],
                   choices=["time", "search", "train", "report"])
    p.add_argument("--window", type=int, choices=WINDOWS, default=14)
    p.add_argument("--per-depth", type=int, default=2, help="candidates timed per depth (time)")
    p.add_argument("--seed", type=int, default=0, help="the candidates' sampling seed (time)")
    p.add_argument("--search-seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--only", nargs="+", default=[], metavar="ARCH")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if set(args.sections) - {"report"}:
        from atb.supernet.data import as_workspace

        if args.workspace is None:
            p.error(f"--sections {' '.join(args.sections)}: name the --workspace")
        try:
            ws = as_workspace(args.workspace)
            if "time" in args.sections:
                time_window(ws, args.window, args.per_depth, args.seed)
            if "search" in args.sections:
                search(ws, args.window, args.search_seeds)
            if "train" in args.sections:
                train(ws, args.window, args.only)
        except AtbError as exc:
            print(f"error: {exc.one_line()}", file=sys.stderr)
            return 2
    if "report" in args.sections:
        report()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
