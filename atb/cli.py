"""What every ``atb-*`` command shares: parser habits, error handling, output.

A command is a thin layer: parse flags, check their combination, call one library function,
hand the result to one printer. ``--json`` prints exactly one JSON object on stdout; logs and
progress go to stderr. An :class:`~atb.errors.AtbError` becomes one line plus a hint and exit
code 2 (a traceback only with ``ATB_DEBUG=1``); Ctrl-C exits 130 after the library has kept
what it measured.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from typing import Any, Callable

from atb import progress
from atb.errors import AtbError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are one line and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        sys.exit(EXIT_USER_ERROR)


def _int_at_least(text: str, low: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"{what} must be at least {low}, not {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type of a count (threads, samples): an integer of at least 1."""
    return _int_at_least(text, 1, "the count")


def count_or_auto(text: str) -> int | str:
    """argparse type of --samples: a count of at least 0, or the word ``auto``."""
    if text == "auto":
        return text
    if not text.lstrip("-").isdigit():
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}")
    return _int_at_least(text, 0, "the count")


def seed_int(text: str) -> int:
    """argparse type of a random seed: numpy's generators refuse negative ones."""
    return _int_at_least(text, 0, "a seed")


def make_parser(prog: str, description: str) -> ArgumentParser:
    return ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def add_common(parser: argparse.ArgumentParser, workspace: bool = True) -> None:
    if workspace:
        parser.add_argument(
            "--workspace",
            metavar="DIR",
            default=None,
            help="workspace directory (default: $ATB_WORKSPACE or ./atb-workspace)",
        )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more to stderr")


def configure(args: argparse.Namespace) -> None:
    """Logging to stderr; progress bars off under --json."""
    level = logging.DEBUG if getattr(args, "verbose", False) else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    logging.getLogger("atb").setLevel(level)
    if getattr(args, "json", False):
        progress.set_enabled(False)
        logging.getLogger("atb").setLevel(logging.WARNING if not args.verbose else logging.DEBUG)


def run(prog: str, body: Callable[[], int | None]) -> int:
    """Run a command body, turning user errors into one line and exit code 2."""
    try:
        return int(body() or 0)
    except AtbError as exc:
        if os.environ.get("ATB_DEBUG") == "1":
            raise
        sys.stderr.write(f"{prog}: error: {exc.one_line()}\n")
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        sys.stderr.write(f"\n{prog}: interrupted; everything measured so far is kept\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _jsonable(value.item())
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "__fspath__"):
        return os.fspath(value)
    return value


def print_json(obj: dict) -> None:
    """One JSON object on stdout (NaN/inf become null, numpy scalars plain numbers)."""
    sys.stdout.write(json.dumps(_jsonable(obj), indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def print_table(rows: list[dict], columns: list[tuple[str, str]], title: str | None = None) -> None:
    """A plain aligned table on stdout. ``columns``: (key, header); values pre-formatted."""
    if title:
        print(title)
    headers = [h for _, h in columns]
    cells = [[str(r.get(k, "")) for k, _ in columns] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(headers)]
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths)))
    print("  ".join("-" * w for w in widths))
    for c in cells:
        print("  ".join(v.rjust(w) for v, w in zip(c, widths)))
