"""Latency labels as the predictor sees them: one device key, arrays of archs and targets.

A :class:`LabelSet` is what leaves the profiler: drift-corrected latencies and speedups over
BERT-base for one device key, read from the SQLite store or from a CSV export (the committed
reference dataset under ``data/`` is such an export). Columns of the CSV are
:data:`CSV_COLUMNS`; unknown columns are ignored on read.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from atb.arch import FIELDS, Arch, archs_to_array
from atb.errors import MissingInputError, StoreError, UsageError

CSV_COLUMNS = (
    "arch", "lt", "dm", "df", "h", "dqkv", "device_key", "protocol_version", "source",
    "latency_ms", "raw_ms", "speedup", "bert_base_ms", "p10_ms", "p90_ms", "runs",
    "run_id", "measured_at",
)


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
    def from_csv(cls, path: str | Path, device_key: str | None = None) -> "LabelSet":
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
        for r in rows:
            r.setdefault("raw_ms", r["latency_ms"])
            r.setdefault("protocol_version", 0)
        return cls.from_rows(rows, device_key)


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
