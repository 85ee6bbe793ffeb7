"""JSON Lines, and the two ways atb writes a file that must survive a crash.

* :func:`json_lines` reads a file every line of which must be JSON (training corpora, task
  files).
* An **append-only log** (a search run's evaluated archs, re-ranking scores, the benchmarks'
  per-seed results): :func:`append` writes each record as one line with a single ``write``
  under an exclusive lock, so a process killed at any moment leaves every finished record
  whole and at most one torn last line. :func:`read_log` skips a damaged last line with a
  warning (what ``kill -9`` leaves), and the next append cuts it off first; a damaged line
  anywhere else is no crash's trace but a damaged file, an error naming the file and line.
  ``fsync=True`` also survives a power cut: worth it for a record that cost minutes, not for
  one a rerun rebuilds in milliseconds.
* A **whole file** (a config, a report, a cache): :func:`write_atomic`, or :func:`atomic_path`
  for a library that writes to a path itself, writes a temporary file in the same directory
  and ``os.replace``-s it over the target, so a reader or a crash sees the old file or the new
  one, never half of one; a failure leaves the old file as it was.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
from pathlib import Path
from typing import Callable, Iterator

from atb.errors import UsageError

log = logging.getLogger("atb.jsonl")

_TAIL_CHUNK = 1 << 16  # bytes read back at a time when looking for a torn line's start


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


# -- append-only logs ----------------------------------------------------------------------------

def is_json(text: str) -> bool:
    """Whether ``text`` is one whole JSON value (a log line that only lacks its newline)."""
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def append(path: str | os.PathLike, record, *, fsync: bool = False) -> None:
    """Append ``record`` to the JSON Lines log at ``path`` as one line (see the module)."""
    append_text(path, json.dumps(record) + "\n", fsync=fsync, whole=is_json)


def append_text(path: str | os.PathLike, text: str, *, fsync: bool = False,
                whole: Callable[[str], bool] | None = None, header: str = "") -> None:
    """Append ``text``, whole lines each ending in a newline (a CSV row, a JSON line), to the
    log at ``path`` with one ``write`` under an exclusive lock (writers in other processes
    wait); ``header`` goes first when the log is empty (a CSV file's column names). An
    unterminated last line left by a killed writer is cut off first, with a warning, unless
    ``whole`` says it is a finished record that only lacks its newline."""
    assert text.endswith("\n") and header[-1:] in ("", "\n"), "a log record is whole lines"
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        _lock(fd)
        _mend_tail(fd, path, whole)
        data = ((header if os.fstat(fd).st_size == 0 else "") + text).encode("utf-8")
        while data:  # one write in practice; a regular file takes a short write only when full
            data = data[os.write(fd, data):]
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)  # also releases the lock


def _lock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # not POSIX: one writer per log is the caller's to ensure
        return
    fcntl.flock(fd, fcntl.LOCK_EX)


def _mend_tail(fd: int, path, whole: Callable[[str], bool] | None) -> None:
    """End the log on a newline: a torn last line (no newline) is cut off, or terminated when
    ``whole`` accepts it."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    start = size
    while start > 0:  # back to the byte after the last newline
        chunk_start = max(0, start - _TAIL_CHUNK)
        newline = os.pread(fd, start - chunk_start, chunk_start).rfind(b"\n")
        if newline >= 0:
            start = chunk_start + newline + 1
            break
        start = chunk_start
    tail = os.pread(fd, size - start, start)
    if whole is not None and whole(tail.decode("utf-8", errors="replace")):
        os.write(fd, b"\n")
        return
    log.warning("%s: cutting off a torn last line (%d bytes; a writer was stopped mid-line)",
                path, size - start)
    os.ftruncate(fd, start)


def read_log(path: str | os.PathLike, error: type[Exception] = UsageError) -> list:
    """Every record of the JSON Lines log at ``path`` (none when it does not exist), in order.
    A damaged last line is skipped with a warning; a damaged line before it raises ``error``
    naming the file and line."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror or exc}") from exc
    lines = data.split(b"\n")
    last = max((n for n, line in enumerate(lines, 1) if line.strip()), default=0)
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError as exc:  # not JSON, or not UTF-8
            if n == last:
                log.warning("%s:%d: skipping a damaged last line (a writer stopped mid-line?)",
                            path, n)
                continue
            raise error(f"{path}:{n}: a damaged line in the middle of a log ({exc})") from exc
    return out


# -- whole files ---------------------------------------------------------------------------------

@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = False) -> Iterator[Path]:
    """A temporary path next to ``path`` for the caller to write; when the block ends without
    an exception it replaces ``path`` in one step, else it is removed and ``path`` stays as it
    was. The temporary name is unique, so concurrent writers never share one."""
    path = Path(path)
    tmp = _new_temporary(path)
    try:
        yield tmp
        if fsync:
            _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        _fsync_directory(path.parent)


def _new_temporary(path: Path) -> Path:
    """An empty file of a name no one else uses, beside ``path``, with the permissions a plain
    ``open`` would give it (``mkstemp``'s are owner-only)."""
    while True:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


def write_atomic(path: str | os.PathLike, data: str | bytes, *, fsync: bool = False) -> None:
    """Write ``data`` (text is UTF-8) to ``path`` in one step (see :func:`atomic_path`)."""
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # not every platform opens a directory
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
