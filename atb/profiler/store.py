"""The latency store: SQLite in the workspace, append-only, one commit per measurement.

Records are never changed after commit. A run row names the device key, setting, machine
fingerprint, protocol and reference model; every measurement row (a sampled arch, a
requested one, a reference or BERT-base timing) keeps its raw times. Drift-corrected latencies
and speedups are derived when read (:mod:`atb.profiler.drift`), so a crash never leaves
half-corrected rows. WAL mode plus ``synchronous=FULL`` means ``kill -9`` costs at most what is
in flight: the group of archs being timed together (at most 4, about 2 s of work).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from atb.errors import MissingInputError, StoreError, UsageError
from atb.profiler.drift import corrected_rows
from atb.profiler.labels import LabelSet
from atb.profiler.rows import MeasurementRecord, MeasurementRow, RunHeader, RunRow
from atb.profiler.timing import PROTOCOL_VERSION

SCHEMA_VERSION = 2
ROLES = ("sampled", "requested", "verify", "sentinel", "reference", "bert_base")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY,
    device_key TEXT NOT NULL,
    setting TEXT NOT NULL,          -- JSON DeviceSetting
    fingerprint TEXT NOT NULL,      -- JSON machine fingerprint
    protocol_version INTEGER NOT NULL,
    rule TEXT NOT NULL,             -- JSON TimingRule
    reference_arch TEXT NOT NULL,
    started_at REAL NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    command TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS measurements (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(run_id),
    device_key TEXT NOT NULL,
    arch TEXT NOT NULL,
    role TEXT NOT NULL,
    space TEXT,
    status TEXT NOT NULL,           -- ok | failed
    error TEXT,
    protocol_version INTEGER NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL NOT NULL,
    times BLOB,                     -- float64 seconds, one per timed run
    starts BLOB,                    -- float64 unix start time of each timed run
    warmup_runs INTEGER,
    median_ms REAL,
    target_met INTEGER,
    setup_s REAL                    -- build + load time before the first run
);
CREATE INDEX IF NOT EXISTS measurements_key_role ON measurements(device_key, role);
CREATE INDEX IF NOT EXISTS measurements_run ON measurements(run_id);
"""


class LatencyStore:
    """The SQLite latency store of one workspace (thread-safe by serialising on one connection)."""

    def __init__(self, path: str | Path, readonly: bool = False):
        self.path = Path(path)
        if readonly and not self.path.is_file():
            raise MissingInputError(f"no latency store at {self.path}", hint="run atb-profile first")
        try:
            uri = f"file:{self.path}?mode=ro" if readonly else f"file:{self.path}"
            self.conn = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None,
                                        check_same_thread=False)
            self.conn.execute("PRAGMA busy_timeout = 30000")
            if not readonly:
                self.conn.execute("PRAGMA journal_mode = WAL")
                self.conn.execute("PRAGMA synchronous = FULL")
                self.conn.executescript(_SCHEMA)
                self.conn.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )
            version = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"latency store {self.path} is unreadable or corrupt ({exc})",
                hint="move the file aside (atb-profile starts a new one) or restore a backup",
            ) from exc
        if version is None or int(version[0]) != SCHEMA_VERSION:
            raise StoreError(
                f"latency store {self.path} has schema version {version and version[0]}, "
                f"this atb reads version {SCHEMA_VERSION}",
                hint="profile into a new workspace (or use the atb version that wrote it)",
            )

    @classmethod
    def open(cls, path: str | Path, readonly: bool = False) -> "LatencyStore":
        return cls(path, readonly=readonly)

    def __enter__(self) -> "LatencyStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    def _execute(self, sql: str, params: tuple = ()) -> sqlite3.Cursor:
        try:
            return self.conn.execute(sql, params)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"latency store {self.path}: {exc}") from exc

    # -- writing --------------------------------------------------------------------------
    @contextmanager
    def transaction(self):
        """Everything written inside commits as one, or (on any exception) not at all: the
        fleet's writer commits a node's group whole. Each write outside one commits at once."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"latency store {self.path}: {exc}") from exc
        try:
            yield self
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        try:
            self.conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            self.conn.execute("ROLLBACK")
            raise StoreError(f"latency store {self.path}: {exc}") from exc

    def begin_run(self, header: RunHeader) -> int:
        """Open a profiling run; the header's ``host``/``pid`` name the timing process when it
        is not this one (a fleet node's, whose rows the driver writes)."""
        h = header
        cursor = self._execute(
            "INSERT INTO runs (device_key, setting, fingerprint, protocol_version, rule, "
            "reference_arch, started_at, host, pid, command) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (h.device_key, json.dumps(h.setting), json.dumps(h.fingerprint), h.protocol_version,
             json.dumps(h.rule), h.reference_arch, time.time(), h.host or socket.gethostname(),
             h.pid if h.pid is not None else os.getpid(), h.command),
        )
        return int(cursor.lastrowid)

    def add(self, record: MeasurementRecord) -> int:
        """Commit one measurement (or a failure with its reason) at once."""
        if record.role not in ROLES:
            raise ValueError(f"unknown role {record.role}")
        m = record.measurement
        if m is not None:
            times = np.asarray(m.times, dtype=np.float64).tobytes()
            starts = np.asarray(m.starts, dtype=np.float64).tobytes()
            values = ("ok", None, m.started_at, m.finished_at, times, starts,
                      m.warmup_runs, m.median_ms, int(m.target_met))
        else:
            now = time.time()
            values = ("failed", record.error or "unknown error", record.started_at or now, now,
                      None, None, None, None, None)
        cursor = self._execute(
            "INSERT INTO measurements (run_id, device_key, arch, role, space, status, error, "
            "protocol_version, started_at, finished_at, times, starts, warmup_runs, median_ms, "
            "target_met, setup_s) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (record.run_id, record.device_key, record.arch, record.role, record.space, *values[:2],
             record.protocol_version, *values[2:], record.setup_s),
        )
        return int(cursor.lastrowid)

    # -- reading --------------------------------------------------------------------------
    def device_keys(self) -> dict[str, int]:
        """Device key -> number of ok non-reference measurements."""
        rows = self._execute(
            "SELECT device_key, COUNT(*) FROM measurements WHERE status='ok' "
            "AND role IN ('sampled','requested','verify') GROUP BY device_key ORDER BY device_key"
        )
        return {k: int(n) for k, n in rows}

    def sampled_archs(self, device_key: str, protocol_version: int = PROTOCOL_VERSION) -> set[str]:
        """Archs sampled for this key so far under ``protocol_version`` (ok or failed: a failure
        is not retried); archs of an older protocol are timed again when a run resumes."""
        rows = self._execute(
            "SELECT DISTINCT arch FROM measurements WHERE device_key=? AND role='sampled' "
            "AND protocol_version=?", (device_key, protocol_version)
        )
        return {a for (a,) in rows}

    def labelled_archs(self, device_key: str, protocol_version: int = PROTOCOL_VERSION) -> list[str]:
        """Archs with an ok training label (sampled or requested) under ``protocol_version``,
        in the order first timed: the pool a run's sentinels are drawn from."""
        rows = self._execute(
            "SELECT arch, MIN(id) FROM measurements WHERE device_key=? AND status='ok' AND protocol_version=? "
            "AND role IN ('sampled','requested') GROUP BY arch ORDER BY MIN(id)", (device_key, protocol_version)
        )
        return [a for a, _ in rows]

    def last_modified(self, device_key: str | None = None, roles=None) -> float:
        """Unix time of the newest committed measurement (0 for none), of ``device_key`` and
        ``roles`` when given: a predictor is stale only when its own kind of labels changed."""
        where, params = [], []
        if device_key:
            where.append("device_key=?")
            params.append(device_key)
        if roles is not None:
            where.append(f"role IN ({','.join('?' * len(roles))})")
            params.extend(roles)
        sql = "SELECT MAX(finished_at) FROM measurements" + (" WHERE " + " AND ".join(where) if where else "")
        (value,) = self._execute(sql, tuple(params)).fetchone()
        return float(value or 0.0)

    def runs(self, device_key: str | None = None) -> list[RunRow]:
        sql = "SELECT run_id, device_key, setting, fingerprint, protocol_version, reference_arch, started_at FROM runs"
        rows = self._execute(sql + (" WHERE device_key=?" if device_key else "") + " ORDER BY run_id",
                             (device_key,) if device_key else ())
        return [RunRow(r[0], r[1], json.loads(r[2]), json.loads(r[3]), r[4], r[5], r[6]) for r in rows]

    def measurements(self, device_key: str | None = None, run_id: int | None = None) -> list[MeasurementRow]:
        where, params = [], []
        if device_key:
            where.append("device_key=?")
            params.append(device_key)
        if run_id is not None:
            where.append("run_id=?")
            params.append(run_id)
        sql = ("SELECT id, run_id, device_key, arch, role, space, status, error, protocol_version, "
               "started_at, finished_at, times, starts, median_ms, setup_s FROM measurements")
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._execute(sql + " ORDER BY id", tuple(params))
        blob = lambda b: np.frombuffer(b, dtype=np.float64) if b else np.empty(0)  # noqa: E731
        return [MeasurementRow(*r[:11], blob(r[11]), blob(r[12]), r[13], r[14]) for r in rows]

    def choose_device_key(self, device_key: str | None = None) -> str:
        keys = self.device_keys()
        if device_key is not None:
            if device_key not in keys:
                raise MissingInputError(
                    f"no measurements for device key {device_key} in {self.path}",
                    hint=f"known keys: {', '.join(keys) or 'none'}; run atb-profile first",
                )
            return device_key
        if not keys:
            raise MissingInputError(f"the latency store {self.path} holds no measurements",
                                    hint="run atb-profile first")
        if len(keys) > 1:
            raise UsageError(f"the store holds {len(keys)} device keys: {', '.join(keys)}",
                             hint="choose one with --device-key (or --backend/--threads)")
        return next(iter(keys))

    def labels(self, device_key: str | None = None, roles=("sampled", "requested")):
        """Drift-corrected :class:`~atb.profiler.labels.LabelSet` of one device key; by default
        without ``verify`` rows (see ``LabelSet.from_store(include_verification=...)``)."""
        key = self.choose_device_key(device_key)
        rows = [r for r in corrected_rows(self, key) if r["role"] in roles]
        return LabelSet.from_rows(rows, key)
