"""JSON Lines, read one way everywhere (training corpora, task files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator


def json_lines(path: Path, text: str, error: type[Exception]) -> Iterator[tuple[int, object]]:
    """``(line number, value)`` of every non-blank line of ``text`` (read from ``path``); a line
    that is not JSON raises ``error`` naming the file and line."""
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"{path}:{n}: not JSON ({exc.msg})") from exc
