"""Which fitness ranks archs like their fine-tuned task accuracy? Candidates scored offline
against the committed ground truth of ``python -m bench.ranking`` (no retraining of the ground
truth).

Within each latency window the ground truth is every arch's mean test accuracy on the reading
task over its seeds (``data/ranking-<task>-predictions.jsonl``), and the pairs of archs it
separates (paired 95% interval excluding 0). With ``--task mr`` it is ``bench.mr_truth``'s, read
on mr's validation split (``--windows 14``): the split the task-based candidates score on too,
so there they see the examples they are judged by. Each candidate fitness scores the same archs, cut
from the workspace's ``--init minilm`` supernet, and is judged by:

* Kendall's tau against the mean accuracies;
* pairwise accuracy over the pairs the ground truth separates;
* regret: the best arch's accuracy minus the accuracy of the arch the fitness ranks first;
* its cost per arch (seconds on this machine; the figures of a busy machine are upper bounds).

Candidates (task-based ones see the validation split only, never test):

* ``loss``: today's default, the negative self-distillation loss of the leading channels;
* ``fidelity``: held-out ridge R² from the sub-model's last states to all of the teacher's;
* ``params``: non-embedding parameters (a capacity prior), ``retention``: layers x hidden
  width, the teacher's hidden states kept (ties: params), ``width-first``: hidden width, then
  depth, then params (the 18.6x window's pre-registered hypothesis), ``params+fidelity``: their sum in
  z-scores over the window, ``fidelity`` weighted by ``--weight``;
* ``probe``: a linear probe of the sliced sub-model on the task (validation accuracy);
* ``screen``: the extracted sub-model fine-tuned for ``--screen-steps`` steps (the paper's
  choice: task results), validation accuracy (``screen-loss``: minus its validation loss);
* ``distill-screen``: ``--distill-steps`` of stand-alone distillation first, then ``screen``
  (Minitron's recipe);
* ``two-stage``: what ``atb-search --task`` does, applied to the window's archs: ``retention``
  orders them, the first ``--rerank`` of that order taken round-robin over depths are probed on
  the task's validation split (``compose.SubmodelProbe``, the search's own re-ranking score) and
  the winner is decided by "the prior holds unless the task overturns it"
  (:func:`atb.search.rerank.decide`); the ranking is the decided one, then the archs not
  re-ranked in ``retention`` order. The window's rule arch is one of the archs here (in the
  search it is the baseline the winner is compared with);
* ``random``: the expected figures of a random ranking (a baseline).

Every arch's raw score is cached in ``data/fitness-scores.csv`` as it completes, and the
re-ranking probe's per-example validation results in ``data/fitness-validation.jsonl`` (the
decision rule needs them for its paired intervals).

    python -m bench.fitness --workspace WS --candidates params,loss,fidelity,probe,screen
    python -m bench.fitness --workspace WS --report-only --json
    python -m bench.fitness --workspace WS --task mr --windows 14 --candidates random,params,retention,loss,probe,two-stage
"""

from __future__ import annotations

import json
import logging
import sys
import time

import numpy as np

from atb import jsonl, predictions
from atb.arch import Arch
from atb.errors import AtbError
from bench.common import DATA, append_csv, commit, read_csv, separated_pairs
from bench.common import parser as bench_parser
from bench.ranking import truth

log = logging.getLogger("bench.fitness")
SCORES_CSV = DATA / "fitness-scores.csv"
VALIDATION_JSONL = DATA / "fitness-validation.jsonl"
SCORE_FIELDS = ["candidate", "arch", "score", "seconds", "validation_accuracy",
                "validation_loss", "settings", "supernet", "commit", "finished_at"]
CANDIDATES = ("loss", "fidelity", "params", "retention", "width-first", "params+fidelity",
              "probe", "screen", "screen-loss", "distill-screen", "two-stage", "random")
TASK_BASED = ("probe", "screen", "distill-screen")  # scored on the task's validation split
FIRST_TASK = "kjv-next"  # the cached rows and re-ranking probes without a task key are its
MODEL_FREE = ("params", "retention", "width-first")  # scored from the arch alone: no supernet, any workspace
DERIVED = {"params+fidelity": ("params", "fidelity"), "screen-loss": ("screen",)}


# -- the ground truth --------------------------------------------------------------------------

def ground_truth(task_name: str, distill_steps: int) -> dict[float, dict]:
    """Per window: archs (best first) with their mean accuracy, the (seeds, examples)
    correctness matrices, and the set of pairs the paired interval separates."""
    from atb.eval import load_task

    task = load_task(task_name)
    preds = truth.read_predictions(task.name, distill_steps)
    rows = {(float(r["window"]), r["arch"]): r for r in read_csv(truth.ARCHS_CSV)}
    out: dict[float, dict] = {}
    for (window, arch), by_seed in sorted(preds.items()):
        correct = np.stack([by_seed[s] == task.test.labels for s in sorted(by_seed)])
        entry = out.setdefault(window, {"archs": {}, "separated": {}})
        entry["archs"][arch] = {"accuracy": float(correct.mean()), "correct": correct,
                                "role": rows.get((window, arch), {}).get("role", "?"),
                                "non_embedding_params": int(rows[(window, arch)]["non_embedding_params"])}
    for entry in out.values():
        entry["separated"] = separated_pairs(entry["archs"])
    return out


# -- scoring the archs -------------------------------------------------------------------------

class Scorers:
    """The raw scores of every candidate for an arch, computed lazily and cached on disk."""

    def __init__(self, ws, args):
        self.ws = ws
        self.args = args
        self.cache = {(r["candidate"], r["arch"], r["settings"]): r
                      for r in read_csv(SCORES_CSV)}
        self._evaluator = self._fidelity_model = self._probe_model = self._screen_model = None
        self._rerank_probe = None
        # arch -> its line of fitness-validation.jsonl (a predictions file: ``correct`` bools)
        self.validation = {(d["model"], d.get("task", FIRST_TASK)): d
                           for d in predictions.read(VALIDATION_JSONL)[0]}

    @property
    def evaluator(self):
        if self._evaluator is None:
            from atb.supernet.heldout_loss import FitnessEvaluator

            self._evaluator = FitnessEvaluator.from_workspace(self.ws)
        return self._evaluator

    def settings(self, candidate: str) -> str:
        # the task is named where it is not the first ground truth's (whose rows predate it)
        task = f"task {self.args.task} " if self.args.task != FIRST_TASK else ""
        if candidate == "screen":
            return f"{task}steps {self.args.screen_steps} lr {self.args.screen_lr:g} seed 0"
        if candidate == "distill-screen":
            return (f"{task}distill {self.args.distill_steps} then steps "
                    f"{self.args.screen_steps} lr {self.args.screen_lr:g} seed 0")
        return task.strip() if candidate in TASK_BASED else ""

    def score(self, candidate: str, arch: str) -> dict:
        settings = self.settings(candidate)
        key = (candidate, arch, settings)
        if key in self.cache:
            return self.cache[key]
        start = time.perf_counter()
        result = getattr(self, "_" + candidate.replace("-", "_"))(Arch.parse(arch))
        row = {"candidate": candidate, "arch": arch, "seconds": f"{time.perf_counter() - start:.1f}",
               "settings": settings,
               "supernet": "" if candidate in MODEL_FREE else self.evaluator.checkpoint.name,
               "commit": commit(), "finished_at": int(time.time()), **result}
        append_csv(SCORES_CSV, SCORE_FIELDS, row)
        self.cache[key] = row
        log.info("%s %s: %s (%s s)", candidate, arch, row["score"], row["seconds"])
        return row

    def _loss(self, arch: Arch) -> dict:
        return {"score": f"{self.evaluator.fitness([arch])[0]:.6f}"}

    def _fidelity(self, arch: Arch) -> dict:
        from atb.supernet.fidelity import FidelityFitness

        if self._fidelity_model is None:
            self._fidelity_model = FidelityFitness(self.evaluator)
        return {"score": f"{self._fidelity_model.fitness([arch])[0]:.6f}"}

    def _params(self, arch: Arch) -> dict:
        return {"score": str(arch.non_embedding_params())}

    def _retention(self, arch: Arch) -> dict:
        from atb.search.fitness import RetentionFitness

        return {"score": f"{RetentionFitness.score(arch):.6f}"}

    def _width_first(self, arch: Arch) -> dict:
        # dm first, then depth, then params: each term below the previous one's step
        return {"score": f"{arch.dm * 100 + arch.lt + arch.non_embedding_params() * 1e-9:.6f}"}

    def _probe(self, arch: Arch) -> dict:
        if self._probe_model is None:
            from atb.compose import probe_fitness

            self._probe_model = probe_fitness(self.evaluator, self.args.task)
        return {"score": f"{self._probe_model.fitness([arch])[0]:.6f}"}

    def rerank_probe(self, arch: str) -> dict:
        """atb-search's re-ranking score of ``arch`` (``compose.SubmodelProbe``): validation
        accuracy, loss, and which validation examples it got right (``correct``, bools)."""
        key = (arch, self.args.task)
        if key not in self.validation:
            if self.ws is None:
                raise AtbError(f"no cached re-ranking probe of {arch} in {VALIDATION_JSONL.name}",
                               hint="score it with --workspace")
            if self._rerank_probe is None:
                from atb.compose import SubmodelProbe

                self._rerank_probe = SubmodelProbe(self.ws, self.args.task)
            result = self._rerank_probe(Arch.parse(arch))
            line = predictions.line(arch, None, "validation", correct=result["correct"], extra={
                "task": self.args.task, "settings": self._rerank_probe.settings,
                "supernet": self._rerank_probe.checkpoint.name,
                "validation_accuracy": float(result["validation_accuracy"]),
                "validation_loss": float(result["validation_loss"]),
                "seconds": round(float(result["seconds"]), 1), "commit": commit(),
                "finished_at": int(time.time())})
            jsonl.append(VALIDATION_JSONL, line, fsync=True)
            self.validation[key] = {**line, "correct": np.asarray(result["correct"], bool)}
            log.info("re-ranking probe %s: %.2f%% (%.0f s)", arch,
                     100 * line["validation_accuracy"], line["seconds"])
        return self.validation[key]

    def _screener(self):
        """atb-search's fine-tuning re-ranker (``compose.SubmodelScreen``) with this run's budget."""
        if self._screen_model is None:
            from atb.compose import SubmodelScreen

            self._screen_model = SubmodelScreen(self.ws, self.args.task, self.args.screen_steps,
                                                self.args.screen_lr)
        return self._screen_model

    @staticmethod
    def _screened(result: dict) -> dict:
        return {"score": f"{result['validation_accuracy']:.6f}",
                "validation_accuracy": f"{result['validation_accuracy']:.6f}",
                "validation_loss": f"{result['validation_loss']:.6f}"}

    def _screen(self, arch: Arch) -> dict:
        return self._screened(self._screener()(arch))

    def _distill_screen(self, arch: Arch) -> dict:
        from atb.supernet.alone import distill_alone

        model = distill_alone(self.ws, self.evaluator.checkpoint, arch, self.args.distill_steps,
                              self.ws.root / "bench-fitness")
        return self._screened(self._screener().screen(model))


def two_stage(scorers: Scorers, archs: list[str]) -> tuple[np.ndarray, dict]:
    """``atb-search --task``'s ranking of ``archs`` (see the module's ``two-stage``): scores
    that order them as the two stages would, and what the second stage decided."""
    from atb.search.fitness_cache import Record
    from atb.search.rerank import Screened, decide, depth_spread

    retention = [float(scorers.score("retention", a)["score"]) for a in archs]
    first = sorted((Record(a, f, 0.0, -1, "ground-truth") for a, f in zip(archs, retention)),
                   key=lambda r: -r.fitness)
    probed = depth_spread(first)[:scorers.args.rerank]
    screened = []
    for record in probed:
        v = scorers.rerank_probe(record.arch)
        screened.append(Screened(record.arch, "candidate", record.fitness, 0.0, None,
                                 v["validation_accuracy"], v["validation_loss"], v["seconds"],
                                 v["correct"]))
    ranked, favourite, chosen_by, _ = decide(screened)
    order = [s.arch for s in ranked] + [r.arch for r in first if r.arch not in {s.arch for s in ranked}]
    scores = np.array([len(order) - order.index(a) for a in archs], dtype=float)
    return scores, {"favourite": favourite, "chosen_by": chosen_by,
                    "reranked": {s.arch: s.validation_accuracy for s in screened},
                    "seconds_per_arch": sum(s.seconds for s in screened) / len(archs)}


def candidate_scores(scorers: Scorers, candidate: str, archs: list[str],
                     window: dict) -> np.ndarray:
    """Every arch's fitness under ``candidate`` (higher is better)."""
    if candidate == "screen-loss":
        return np.array([-float(scorers.score("screen", a)["validation_loss"]) for a in archs])
    if candidate == "params+fidelity":
        parts = [candidate_scores(scorers, c, archs, window) for c in DERIVED[candidate]]
        z = [(p - p.mean()) / (p.std() or 1.0) for p in parts]
        return z[0] + scorers.args.weight * z[1]
    return np.array([float(scorers.score(candidate, a)["score"]) for a in archs])


# -- judging -----------------------------------------------------------------------------------

def judge(scores: np.ndarray, archs: list[str], window: dict) -> dict:
    """Kendall's tau, pairwise accuracy over separated pairs, and regret, for one window."""
    from scipy.stats import kendalltau

    accuracy = np.array([window["archs"][a]["accuracy"] for a in archs])
    tau = kendalltau(scores, accuracy).statistic
    index = {a: i for i, a in enumerate(archs)}
    agree = [np.sign(scores[index[a]] - scores[index[b]]) == np.sign(diff)
             for (a, b), diff in window["separated"].items()]
    top = np.flatnonzero(scores == scores.max())  # ties: the expected regret over them
    return {"kendall_tau": float(tau), "pairwise_accuracy": float(np.mean(agree)) if agree else None,
            "separated_pairs": len(agree), "picked": archs[int(top[0])],
            "regret": float(accuracy.max() - accuracy[top].mean())}


def random_baseline(archs: list[str], window: dict) -> dict:
    """What a random ranking scores on average: tau 0, pairwise 50%, regret best - mean."""
    accuracy = np.array([window["archs"][a]["accuracy"] for a in archs])
    return {"kendall_tau": 0.0, "pairwise_accuracy": 0.5,
            "separated_pairs": len(window["separated"]), "picked": "(random)",
            "regret": float(accuracy.max() - accuracy.mean())}


def run(ws, args) -> dict:
    if args.task == "mr":  # mr's ground truth is read on its validation split (bench.mr_truth)
        from bench.mr_truth import ground_truth as mr_ground_truth

        truth = mr_ground_truth()
    else:
        truth = ground_truth(args.task, args.ground_truth_steps)
    scorers = Scorers(ws, args) if ws is not None else None
    out = {"task": args.task, "windows": []}
    for window_speedup in args.windows:
        window = truth.get(window_speedup)
        if window is None:
            raise AtbError(f"no ground truth for the {window_speedup:g}x window in data/",
                           hint="run python -m bench.ranking --sections train,eval for it first")
        archs = sorted(window["archs"], key=lambda a: -window["archs"][a]["accuracy"])
        entry = {"window": window_speedup, "archs": archs,
                 "accuracy": [window["archs"][a]["accuracy"] for a in archs], "candidates": {}}
        for candidate in args.candidates:
            if candidate == "random":
                entry["candidates"][candidate] = random_baseline(archs, window)
                continue
            if scorers is None:
                scorers = Scorers(None, args)  # cached scores only
            if candidate == "two-stage":
                scores, decided = two_stage(scorers, archs)
                entry["candidates"][candidate] = {**judge(scores, archs, window), **decided,
                                                  "scores": scores.tolist()}
                continue
            scores = candidate_scores(scorers, candidate, archs, window)
            judged = judge(scores, archs, window)
            seconds = [float(scorers.score(c, a)["seconds"]) for c in
                       DERIVED.get(candidate, (candidate,)) for a in archs]
            entry["candidates"][candidate] = {**judged, "scores": scores.tolist(),
                                              "seconds_per_arch": float(np.mean(seconds))}
        out["windows"].append(entry)
    return out


def print_report(r: dict) -> None:
    for w in r["windows"]:
        print(f"\n{w['window']:g}x window, {len(w['archs'])} archs (ground truth: "
              + ", ".join(f"{a} {acc:.1%}" for a, acc in zip(w["archs"], w["accuracy"])) + ")")
        print(f"{'candidate':>16} {'tau':>6} {'pairwise':>9} {'regret':>7} {'s/arch':>7}  picked")
        for name, c in w["candidates"].items():
            pairwise = f"{c['pairwise_accuracy']:.0%} of {c['separated_pairs']}" \
                if c["pairwise_accuracy"] is not None else "-"
            print(f"{name:>16} {c['kendall_tau']:+6.2f} {pairwise:>9} {c['regret']:7.2%} "
                  f"{c.get('seconds_per_arch', 0):7.1f}  {c['picked']}")
            if "chosen_by" in c:
                print(f"{'':>17}re-ranked {len(c['reranked'])}, favourite {c['favourite']}: "
                      f"{c['chosen_by']}")


def main(argv=None) -> int:
    parser = bench_parser("bench.fitness", __doc__)
    parser.add_argument("--workspace", metavar="DIR", help="the ground truth's workspace")
    parser.add_argument("--windows", type=float, nargs="+", default=[15.0, 25.0])
    parser.add_argument("--task", default="kjv-next")
    parser.add_argument("--candidates", default="random,loss,fidelity,params,params+fidelity",
                        help=f"comma-separated, of: {', '.join(CANDIDATES)}")
    parser.add_argument("--weight", type=float, default=1.0,
                        help="weight of fidelity's z-score in params+fidelity")
    parser.add_argument("--rerank", type=int, default=6,
                        help="archs two-stage re-ranks on the task (atb-search's --rerank)")
    parser.add_argument("--screen-steps", type=int, default=150)
    parser.add_argument("--screen-lr", type=float, default=3e-4)
    parser.add_argument("--distill-steps", type=int, default=100,
                        help="stand-alone distillation before distill-screen")
    parser.add_argument("--ground-truth-steps", type=int, default=300,
                        help="the ground truth's stand-alone distillation budget")
    parser.add_argument("--report-only", action="store_true", help="cached scores only")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    args.candidates = [c.strip() for c in args.candidates.split(",") if c.strip()]
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if not args.report_only and not args.workspace:
        print("error: scoring needs --workspace (or --report-only for cached scores)",
              file=sys.stderr)
        return 2
    unknown = [c for c in args.candidates if c not in CANDIDATES]
    if unknown:
        print(f"error: unknown candidate(s) {', '.join(unknown)}; use {', '.join(CANDIDATES)}",
              file=sys.stderr)
        return 2
    try:
        from atb.workspace import Workspace

        ws = None if args.report_only or not args.workspace else Workspace.of(args.workspace)
        result = run(ws, args)
    except AtbError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
