"""The docs stay readable and their links hold: the README and the overview are short, each
package has its page of bounded length, and every relative Markdown link in README.md and
docs/*.md names an existing file and, with ``#anchor``, an existing heading (GitHub's slugs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PACKAGE_PAGES = ("devices", "profiler", "fleet", "predictor", "supernet", "search", "eval")
MAX_LINES = {"README.md": 150, "docs/architecture.md": 250,
             **{f"docs/{page}.md": 300 for page in PACKAGE_PAGES}}
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
LINK = re.compile(r"!?\[(?:[^\]\n]|\n(?!\n))*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def without_code(text: str) -> str:
    """The Markdown with fenced blocks and code spans blanked: neither holds links or headings."""
    return CODE_SPAN.sub(" ", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, code marks and punctuation dropped (letters,
    digits, ``_`` and ``-`` stay, in any script), each space a ``-``."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in ``path``; a repeated slug gets ``-1``, ``-2``, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(path: Path) -> list[str]:
    """Targets of the Markdown links and images in ``path`` that point inside the repository."""
    targets = LINK.findall(without_code(path.read_text(encoding="utf-8")))
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.I)]


@pytest.mark.parametrize("name,limit", sorted(MAX_LINES.items()))
def test_pages_stay_short(name, limit):
    path = ROOT / name
    assert path.is_file(), f"{name} is missing"
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= limit, f"{name} has {lines} lines; the limit is {limit}"


@pytest.mark.parametrize("path", PAGES, ids=_name)
def test_relative_links_resolve(path):
    broken = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target}: no file {file_part}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.name}")
    assert not broken, f"{_name(path)}: " + "; ".join(broken)


def test_slugs_follow_github():
    assert slug("INT8 (`--precision int8`)") == "int8---precision-int8"
    assert slug("Ground truth inside the 15× window") == "ground-truth-inside-the-15-window"
    assert slug("The paper's claim at small scale") == "the-papers-claim-at-small-scale"
    assert slug("Demo (`atb/demo.py`)") == "demo-atbdemopy"


def test_links_and_anchors_are_read_as_markdown_shows_them(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Top\n## Top\n```\n# not a heading [x](gone.md)\n```\n"
                    "[a](page.md#top-1) `[b](gone.md)` ![c](img.png) [d](https://x.org/y)\n")
    assert anchors(page) == {"top", "top-1"}
    assert relative_links(page) == ["page.md#top-1", "img.png"]
