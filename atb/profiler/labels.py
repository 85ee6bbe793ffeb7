"""Latency labels as the predictor sees them: one device key, arrays of archs and targets.

A :class:`LabelSet` is what leaves the profiler: drift-corrected latencies and speedups over
BERT-base for one device key, read from the SQLite store or from a CSV export (the committed
reference dataset under ``data/`` is such an export). Columns of the CSV are
:data:`CSV_COLUMNS`; unknown columns are ignored on read.

Every label keeps its ``source``: ``sampled`` (drawn from the space by ``atb-profile
--samples``), ``requested`` (``atb-profile --arch``) or ``verify`` (a search's top-k re-measured
by ``atb-search``). By default a LabelSet holds the first two only: verification labels are
the independent check of the predictor's ranking near a target, clustered where the search
pushed its best archs; training on them would bias the predictor toward that window and turn
the next search's check into a self-fulfilling one. ``include_verification=True`` (``atb-predictor
fit --include-verification``) takes them too, as an explicit choice.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from atb.arch import FIELDS, Arch, archs_to_array
from atb.errors import AtbError, MissingInputError, StoreError, UsageError
from atb.profiler.timing import PROTOCOL_VERSION

log = logging.getLogger("atb.profiler.labels")

TRAINING_SOURCES = ("sampled", "requested")  # what a predictor learns from by default
VERIFICATION_SOURCE = "verify"  # a search's re-measured results: checks, not training data
SENTINEL_SOURCE = "sentinel"  # an arch re-timed to measure repeatability: never training data

CSV_COLUMNS = (
    "arch", "lt", "dm", "df", "h", "dqkv", "device_key", "protocol_version", "source",
    "latency_ms", "raw_ms", "speedup", "bert_base_ms", "p10_ms", "p90_ms", "runs",
    "run_id", "measured_at",
)


def one_protocol(rows: list[dict], device_key: str) -> list[dict]:
    """The rows of one profiler protocol: today's if any, else the newest present.

    Protocols time differently (protocol 3 runs ONNX Runtime as deployed, protocol 2 parked its
    workers and timed small models up to 12% slow), so one predictor never learns from two.
    Labels of an older protocol stay readable; a warning says how to replace them.
    """
    counts = Counter(int(r["protocol_version"]) for r in rows)
    chosen = PROTOCOL_VERSION if PROTOCOL_VERSION in counts else max(counts)
    redo = f"re-profile with today's protocol: run the same atb-profile command again (--samples N times {device_key} anew)"
    if len(counts) > 1:
        others = ", ".join(f"{counts[v]} of protocol {v}" for v in sorted(counts) if v != chosen)
        log.warning("%s: using the %d labels of profiler protocol %d, leaving out %s (protocols are never "
                    "mixed)%s", device_key, counts[chosen], chosen, others,
                    f"; {redo}" if chosen != PROTOCOL_VERSION else "")
    elif chosen not in (PROTOCOL_VERSION, 0):  # 0: a CSV made elsewhere, protocol unknown
        log.warning("%s: these labels were timed with profiler protocol %d, atb now times with protocol %d; %s",
                    device_key, chosen, PROTOCOL_VERSION, redo)
    return [r for r in rows if int(r["protocol_version"]) == chosen]


@dataclass(frozen=True)
class LabelSet:
    """Drift-corrected labels of one device key (rows align across the arrays)."""

    device_key: str
    protocol_version: int
    archs: np.ndarray  # (n, 5) int64 in atb.arch.FIELDS order
    latency_ms: np.ndarray  # drift-corrected median latency, ms
    speedup: np.ndarray  # Lat(BERT-base) / Lat(arch), both in the same run
    raw_ms: np.ndarray  # uncorrected median latency, ms
    bert_base_ms: float  # drift-corrected BERT-base latency of this device key, ms
    sources: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))

    def __len__(self) -> int:
        return len(self.archs)

    def arch_strings(self) -> list[str]:
        return ["-".join(map(str, row)) for row in self.archs]

    def content_hash(self) -> str:
        """sha256 of the (arch, latency) pairs: names the training set in an artefact."""
        h = hashlib.sha256(self.device_key.encode())
        h.update(np.ascontiguousarray(self.archs, dtype=np.int64).tobytes())
        h.update(np.round(np.ascontiguousarray(self.latency_ms, dtype=np.float64), 6).tobytes())
        return h.hexdigest()

    def subset(self, index: np.ndarray) -> "LabelSet":
        return LabelSet(
            self.device_key,
            self.protocol_version,
            self.archs[index],
            self.latency_ms[index],
            self.speedup[index],
            self.raw_ms[index],
            self.bert_base_ms,
            self.sources[index] if len(self.sources) else self.sources,
        )

    @classmethod
    def from_rows(cls, rows: list[dict], device_key: str | None = None) -> "LabelSet":
        keys = sorted({r["device_key"] for r in rows})
        if device_key is None:
            if len(keys) != 1:
                raise UsageError(
                    f"the labels hold {len(keys)} device keys ({', '.join(keys) or 'none'})",
                    hint="choose one with --device-key",
                )
            device_key = keys[0]
        rows = [r for r in rows if r["device_key"] == device_key]
        if not rows:
            raise MissingInputError(
                f"no latency labels for device key {device_key}",
                hint="run atb-profile with that backend/threads/precision first",
            )
        rows = one_protocol(rows, device_key)
        archs = archs_to_array([Arch.parse(r["arch"]) for r in rows])
        num = lambda k: np.array([float(r[k]) for r in rows], dtype=np.float64)  # noqa: E731
        bert = num("bert_base_ms")
        return cls(
            device_key=device_key,
            protocol_version=int(rows[0]["protocol_version"]),
            archs=archs,
            latency_ms=num("latency_ms"),
            speedup=num("speedup"),
            raw_ms=num("raw_ms"),
            bert_base_ms=float(np.median(bert)),
            sources=np.array([r.get("source", "sampled") for r in rows], dtype=object),
        )

    @classmethod
    def from_store(cls, store, device_key: str | None = None,
                   include_verification: bool = False) -> "LabelSet":
        """The labels of one device key in a :class:`~atb.profiler.store.LatencyStore`
        (verification labels only with ``include_verification``)."""
        return store.labels(device_key, roles=label_sources(include_verification))

    @classmethod
    def from_csv(cls, path: str | Path, device_key: str | None = None,
                 include_verification: bool = False) -> "LabelSet":
        """The labels of a CSV export (verification rows only with ``include_verification``)."""
        path = Path(path)
        if not path.is_file():
            raise MissingInputError(f"no such label file: {path}", hint="make one with atb-profile export")
        try:
            with path.open(newline="") as f:
                rows = list(csv.DictReader(f))
            missing = {"arch", "device_key", "latency_ms", "speedup"} - set(rows[0] if rows else {})
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise StoreError(f"cannot read label file {path}: {exc}") from exc
        if not rows or missing:
            raise StoreError(f"{path} is not an atb label CSV (missing columns: {sorted(missing)})")
        for n, r in enumerate(rows, start=2):  # line 1 is the header
            if None in r.values():  # DictReader's filler for missing fields: a cut-off row
                raise StoreError(f"{path}:{n}: fewer fields than the header (a truncated file?)")
            r.setdefault("raw_ms", r["latency_ms"])
            r.setdefault("protocol_version", 0)
        # only verification and sentinel rows are set aside: a CSV made elsewhere may name its
        # own sources
        kept = [r for r in rows if r.get("source") != SENTINEL_SOURCE
                and (include_verification or r.get("source") != VERIFICATION_SOURCE)]
        if not kept:
            raise MissingInputError(
                f"{path} holds only verification labels (re-measured search results)",
                hint="fit on them anyway with --include-verification",
            )
        try:
            return cls.from_rows(kept, device_key)
        except AtbError:
            raise
        except (KeyError, ValueError) as exc:  # a missing column, a word where a number belongs
            raise StoreError(f"{path} is not an atb label CSV "
                             f"({type(exc).__name__}: {exc})") from exc


def label_sources(include_verification: bool = False) -> tuple[str, ...]:
    """The label sources a LabelSet is made of (see the module docstring for why)."""
    return TRAINING_SOURCES + ((VERIFICATION_SOURCE,) if include_verification else ())


def write_csv(rows: list[dict], path: str | Path) -> int:
    """Write label rows (dicts with :data:`CSV_COLUMNS`) to ``path``; returns the row count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            arch = Arch.parse(r["arch"])
            writer.writerow({**dict(zip(FIELDS, arch.as_tuple())), **r})
    return len(rows)
