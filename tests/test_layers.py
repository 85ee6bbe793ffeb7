"""The layer order of docs/architecture.md holds for every import under atb/.

The order is read from the doc's "Layer order" table, so the doc and the code cannot drift
apart. Every ``import``/``from ... import`` is checked, function-level ones included, and so is
``importlib.import_module("atb....")`` with a constant name: a module may import its own layer
and the layers below it, never one above, and no two units (sub-packages, leaf modules, entry
points) may import each other in a circle, nor two modules inside one unit. Argument parsing
lives in the entry points only.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "atb"
DOC = ROOT / "docs" / "architecture.md"
ARGPARSE_CALLS = {"ArgumentParser", "add_argument", "add_subparsers", "add_parser", "make_parser",
                  "add_argument_group", "add_mutually_exclusive_group", "parse_args"}


def read_layers() -> list[tuple[str, list[str]]]:
    """[(layer name, [module names or patterns])], lowest first, from the doc's table."""
    text = DOC.read_text()
    section = text.split("### Layer order", 1)
    assert len(section) == 2, f"{DOC} has no '### Layer order' section"
    layers = []
    for line in section[1].splitlines()[1:]:
        if line.startswith("#"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].isdigit():
            continue
        assert int(cells[0]) == len(layers), f"layer numbers in {DOC.name} must run 0, 1, 2, ..."
        layers.append((cells[1], re.findall(r"`([^`]+)`", cells[2])))
    assert len(layers) >= 5, f"{DOC.name}: the Layer order table has too few rows"
    return layers


LAYERS = read_layers()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def unit_of(module: str) -> tuple[int, str] | None:
    """(layer index, unit) of a module: patterns (entry points) first, then the longest name
    that is the module or a package above it."""
    best = None
    for index, (_, names) in enumerate(LAYERS):
        for name in names:
            if "*" in name:
                if fnmatch.fnmatchcase(module, name):
                    return index, module  # every entry point is a unit of its own
            elif module == name or (module.startswith(name + ".") and name != "atb"):  # the root: itself only
                if best is None or len(name) > len(best[1]):
                    best = (index, name)
    return best


def resolve(module: str, is_package: bool, node: ast.AST) -> list[str]:
    """The atb modules an import node names (``from atb import cli`` names ``atb.cli``)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "atb"]
    if node.level:  # relative import
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - node.level + 1]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if target.split(".")[0] != "atb":
        return []
    # each name is a sub-module of target, or an attribute of target itself
    named = [f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target for a in node.names]
    return list(dict.fromkeys(named))


def imports_of(module: str, path: Path) -> list[tuple[int, str]]:
    """(line, imported atb module) for every import in the file, at any depth."""
    return imports_in(module, path.name == "__init__.py", path.read_text(), str(path))


def imports_in(module: str, is_package: bool, source: str, filename: str = "<source>") -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found += [(node.lineno, t) for t in resolve(module, is_package, node)]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            arg = node.args[0].value
            if name in ("import_module", "__import__") and isinstance(arg, str) and arg.startswith("atb"):
                found.append((node.lineno, arg))
    return found


def _where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


def find_cycle(edges: dict[str, dict[str, str]]) -> list[str] | None:
    """A cycle ``[a, b, ..., a]`` of a graph ``{node: {next node: why}}``, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in edges.get(node, {}):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def _cycle_report(edges: dict[str, dict[str, str]], cycle: list[str]) -> str:
    steps = [edges[a][b] for a, b in zip(cycle, cycle[1:])]
    return "import cycle " + " -> ".join(cycle) + ":\n" + "\n".join(steps)


def test_every_module_has_a_layer():
    missing = [m for m in MODULES if unit_of(m) is None]
    assert not missing, (f"modules in no layer of {DOC.relative_to(ROOT)} ('Layer order'): "
                         f"{', '.join(missing)}; add them to the table")


def test_no_import_runs_up_the_layer_order():
    upward = []
    for module, path in MODULES.items():
        layer, unit = unit_of(module) or (None, None)
        for line, target in imports_of(module, path):
            dest = unit_of(target)
            if layer is None or dest is None:
                continue
            if dest[0] > layer:
                upward.append(f"{_where(path, line)}: {module} ({LAYERS[layer][0]}) imports {target} "
                              f"({LAYERS[dest[0]][0]}), a higher layer")
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_import_cycle_between_units():
    # The root package re-exports (``from atb import __version__``); only its sub-units count.
    edges: dict[str, dict[str, str]] = {}
    for module, path in MODULES.items():
        src = unit_of(module)
        for line, target in imports_of(module, path):
            dst = unit_of(target)
            if src and dst and src[1] != dst[1] and "atb" not in (src[1], dst[1]):
                edges.setdefault(src[1], {}).setdefault(dst[1], f"{_where(path, line)} imports {target}")
    if cycle := find_cycle(edges):
        pytest.fail(_cycle_report(edges, cycle))


def test_no_import_cycle_inside_a_unit():
    """Modules of one sub-package import each other one way only: a piece two of them share
    lives in a module both import (a function-level import is no way out)."""
    graphs: dict[str, dict[str, dict[str, str]]] = {}  # unit -> its module graph
    for module, path in MODULES.items():
        unit = unit_of(module)
        for line, target in imports_of(module, path):
            if unit and target != module and target in MODULES and unit_of(target) == unit:
                graphs.setdefault(unit[1], {}).setdefault(module, {}).setdefault(
                    target, f"{_where(path, line)} imports {target}")
    cycles = [_cycle_report(edges, cycle) for _, edges in sorted(graphs.items())
              if (cycle := find_cycle(edges))]
    assert not cycles, "\n\n".join(cycles)


def test_argument_parsing_lives_in_the_entry_points():
    entry = len(LAYERS) - 1
    found = []
    for module, path in MODULES.items():
        if (unit_of(module) or (None,))[0] == entry or module == "atb.cli":  # atb.cli: the shared helpers
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if "argparse" in names:
                    found.append(f"{_where(path, node.lineno)}: imports argparse")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ARGPARSE_CALLS:
                found.append(f"{_where(path, node.lineno)}: calls {node.func.attr}")
    assert not found, "argument parsing outside the entry points (*/cli.py):\n" + "\n".join(found)


def test_the_checker_sees_what_it_must():
    """The walker itself: function-level, relative and string imports are found and placed."""
    src = ("def f():\n    from atb.search import run_search\n"
           "import importlib\nimportlib.import_module('atb.predictor.auto')\nfrom . import store\n"
           "from atb import cli, __version__\n")
    found = imports_in("atb.profiler.probe", False, src)
    assert sorted(found) == [(2, "atb.search"), (4, "atb.predictor.auto"), (5, "atb.profiler.store"),
                             (6, "atb"), (6, "atb.cli")]
    assert unit_of("atb") == (0, "atb") and unit_of("atb.nothing_here") is None
    assert unit_of("atb.profiler.cli")[0] == len(LAYERS) - 1  # a CLI is an entry point
    assert unit_of("atb.profiler.api")[1] == "atb.profiler"
    assert unit_of("atb.search.api")[0] > unit_of("atb.predictor.fit")[0] > unit_of("atb.profiler.store")[0]
    assert find_cycle({"a": {"b": ""}, "b": {"c": ""}, "c": {"a": ""}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": ""}, "b": {"c": ""}}) is None
