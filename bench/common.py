"""What the benchmark scripts share: where the committed results live, the commit a result came
from, CSV results appended as they complete, the command-line parser, and ``atb-profile`` run
in a child process.

Every script runs from the repository root as ``python -m bench.<name>``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from atb.jsonl import append_text, write_atomic

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"


def parser(module: str, doc: str) -> argparse.ArgumentParser:
    """The parser of ``python -m <module>``: its description is the first paragraph of the
    script's docstring ``doc``, which says what the script measures."""
    return argparse.ArgumentParser(prog=f"python -m {module}", description=doc.split("\n\n")[0])


def commit() -> str:
    """The short hash of the checked-out commit (``unknown`` outside git)."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def read_csv(path: Path) -> list[dict]:
    """Every row of a results CSV, none when it does not exist yet."""
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def append_csv(path: Path, fields: list[str], row: dict) -> None:
    """One result row (the header first into a new file), appended in one write and synced:
    a crash loses nothing finished, and a row that cost minutes survives a power cut too."""

    def render(write) -> str:
        out = io.StringIO()
        write(csv.DictWriter(out, fieldnames=fields, extrasaction="ignore"))
        return out.getvalue()

    append_text(path, render(lambda w: w.writerow(row)), fsync=True,
                header=render(lambda w: w.writeheader()))


def write_csv(path: Path, fields: list[str], rows: list[dict]) -> None:
    """A whole results CSV (a header, then ``rows``), replacing ``path`` in one step."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, out.getvalue(), fsync=True)


def section(title: str, file=None) -> None:
    """A section's heading in a benchmark's printed report."""
    print(f"\n== {title} ==", file=file or sys.stdout, flush=True)


def atb_profile(args: list[str], smoke: bool = False) -> dict:
    """``atb-profile ARGS --json`` in a child process (the smoke timing rule with ``smoke``);
    its JSON result. A failure ends the benchmark with atb-profile's message."""
    env = {**os.environ, "ATB_TIMING_RULE": "smoke"} if smoke else None
    out = subprocess.run([sys.executable, "-m", "atb.profiler.cli", *args, "--json"],
                         capture_output=True, text=True, env=env)
    if out.returncode:
        sys.exit(f"atb-profile failed: {out.stderr.strip()}")
    return json.loads(out.stdout)


def separated_pairs(archs: dict) -> dict:
    """``{(a, b): a - b}`` for the pairs of ``archs`` (name -> ``{"correct": (seeds, examples)
    bools}``) whose paired 95% interval excludes 0, names in sorted order."""
    from itertools import combinations

    from atb.stats import paired_difference

    out = {}
    for a, b in combinations(sorted(archs), 2):
        d = paired_difference(archs[a]["correct"], archs[b]["correct"])
        if d.low > 0 or d.high < 0:
            out[(a, b)] = d.difference  # > 0: a better
    return out

