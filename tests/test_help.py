"""``--help`` of every command: each console script of pyproject.toml and every sub-command
the README shows (``atb-profile export``, ``atb-eval compare``, ...), run in-process."""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
FENCED = re.compile(r"```[^\n]*\n(.*?)```", re.S)
INLINE = re.compile(r"`([^`\n]+)`")
COMMAND = re.compile(r"(?<![\w-])(atb-[a-z]+)(?:[ \t]+([a-z][a-z-]*))?")


def readme_commands(text: str) -> set[tuple[str, str | None]]:
    """``(script, sub-command or None)`` of every console script written as code in ``text``
    (fenced blocks without their comments, and inline spans; a word after the script that is
    no flag is its sub-command)."""
    blocks = [re.sub(r"#.*", "", block) for block in FENCED.findall(text)]
    code = blocks + INLINE.findall(FENCED.sub("", text))
    found = set()
    for snippet in code:
        for script, sub in COMMAND.findall(snippet):
            if script in SCRIPTS:
                found.add((script, sub or None))
    return found


COMMANDS = sorted(readme_commands((ROOT / "README.md").read_text(encoding="utf-8"))
                  | {(script, None) for script in SCRIPTS}, key=lambda c: (c[0], c[1] or ""))


@pytest.mark.parametrize("script,sub", COMMANDS, ids=[" ".join(filter(None, c)) for c in COMMANDS])
def test_help_exits_0_with_a_usage(script, sub, capsys):
    module, _, name = SCRIPTS[script].partition(":")
    main = getattr(importlib.import_module(module), name)
    with pytest.raises(SystemExit) as exit_:
        main([sub, "--help"] if sub else ["--help"])
    assert exit_.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_the_readme_parser_finds_scripts_and_their_sub_commands():
    text = ("run `atb-profile export -o x.csv`, then `atb-eval --model m`\n"
            "```\natb-plot pareto --workspace ws   # atb-search finds\natb-demo\n```\n"
            "the atb-workspace directory, `atb-bert` models")
    assert readme_commands(text) == {("atb-profile", "export"), ("atb-eval", None),
                                     ("atb-plot", "pareto"), ("atb-demo", None)}
