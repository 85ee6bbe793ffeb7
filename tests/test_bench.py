"""bench/ is a package run as ``python -m bench.<name>``: no script edits sys.path or loads a
sibling by path, none is named like a standard-library module, each says what it measures, and
nothing in atb/ or bench/ appends to a file but through atb.jsonl. Read from the source (AST):
importing the scripts would pull in torch, Ray and the rest."""

from __future__ import annotations

import ast
import csv
import sys
from pathlib import Path

import pytest

from bench.common import append_csv, read_csv, write_csv

ROOT = Path(__file__).resolve().parent.parent
BENCH = sorted((ROOT / "bench").rglob("*.py"))
SCRIPTS = [p for p in BENCH if "def main(" in p.read_text()]


def _name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


@pytest.mark.parametrize("path", BENCH, ids=_name)
def test_no_script_edits_sys_path_or_loads_a_sibling_by_path(path):
    text = path.read_text()
    assert "sys.path" not in text and "spec_from_file_location" not in text
    assert path.stem not in sys.stdlib_module_names  # bench/profile.py once shadowed `profile`


@pytest.mark.parametrize("path", SCRIPTS, ids=_name)
def test_every_script_describes_what_it_measures(path):
    tree = ast.parse(path.read_text())
    first_paragraph = (ast.get_docstring(tree) or "").split("\n\n")[0]
    assert len(first_paragraph.split()) >= 8, "the docstring's first paragraph is the --help"
    module = _name(path).removesuffix(".__main__")
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)  # bench.common.parser's
             and getattr(n.func, "id", getattr(n.func, "attr", None)) in ("parser", "bench_parser")]
    assert calls and ast.literal_eval(calls[0].args[0]) == module  # prog: python -m <module>


@pytest.mark.parametrize("path", sorted((ROOT / "atb").rglob("*.py")) + BENCH, ids=_name)
def test_appends_go_through_the_log(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) \
                == "open":
            modes = [a for a in node.args[1:2] + [k.value for k in node.keywords if k.arg == "mode"]
                     if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            assert not any("a" in m.value for m in modes), \
                f"{_name(path)}:{node.lineno}: append with atb.jsonl.append / append_text"


def test_results_csv_rows_append_and_rewrite_like_csv_dictwriter(tmp_path):
    path, fields = tmp_path / "scores.csv", ["arch", "seed", "accuracy"]
    append_csv(path, fields, {"arch": "2-64-128-2-64", "seed": 0, "accuracy": "0.5", "x": 1})
    append_csv(path, fields, {"arch": "2-64-128-2-64", "seed": 1, "accuracy": "0.6"})
    assert path.read_bytes() == (b"arch,seed,accuracy\r\n2-64-128-2-64,0,0.5\r\n"
                                 b"2-64-128-2-64,1,0.6\r\n")  # the committed files' bytes
    rows = read_csv(path)
    assert [r["seed"] for r in rows] == ["0", "1"]
    write_csv(path, fields, rows[1:])
    with path.open(newline="") as f:
        assert list(csv.DictReader(f)) == rows[1:]
    assert read_csv(tmp_path / "missing.csv") == []


def test_a_ground_truth_window_takes_each_search_pick_once_with_all_its_roles(tmp_path, monkeypatch):
    """bench.mr_truth: a window holds its timed archs measured inside it (the cut whatever its
    speed); an arch the search picks that the window already holds keeps one row, its roles
    joined; a new one joins with its predicted speedup."""
    from bench import mr_truth

    monkeypatch.setattr(mr_truth, "SEARCHES_CSV", tmp_path / "searches.csv")
    monkeypatch.setattr(mr_truth, "TIMED_CSV", tmp_path / "timed.csv")
    for arch, role, speedup, inside in (("4-320-1280-10-320", "rule", 14.34, 1),
                                        ("6-384-324-8-256", "candidate", 17.0, 0),
                                        ("2-384-1536-12-384", "cut", 14.3, 1)):
        append_csv(mr_truth.TIMED_CSV, mr_truth.TIMED_FIELDS, {
            "window": 21, "arch": arch, "role": role, "measured_speedup": speedup,
            "inside": inside})
    assert mr_truth.search_target(21) == 14.3
    for seed, winner in ((0, "4-376-1140-12-384"), (1, "4-320-1280-10-320")):
        append_csv(mr_truth.SEARCHES_CSV, mr_truth.SEARCH_FIELDS, {
            "window": 21, "seed": seed, "favourite": "6-384-1052-3-96", "winner": winner,
            "rule": "6-288-1152-9-288", "favourite_speedup": "14.753", "winner_speedup": "14.700",
            "rule_speedup": "13.957"})
    archs = {a: (role, x) for a, role, x in mr_truth.window_archs(21)}
    assert "6-384-324-8-256" not in archs  # measured outside the window
    assert archs["2-384-1536-12-384"] == ("cut", 14.3)
    assert archs["4-320-1280-10-320"] == ("rule, search-winner s1", 14.34)
    assert archs["4-376-1140-12-384"] == ("search-winner s0", 14.7)
    assert archs["6-384-1052-3-96"] == ("search-favourite s0, search-favourite s1", 14.753)
    assert archs["6-288-1152-9-288"] == ("search-rule s0, search-rule s1", 13.957)
    assert list(archs)[0] == "4-320-1280-10-320"  # the timed archs first, then the picks
