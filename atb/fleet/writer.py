"""The fleet's one writer of the workspace store: each node's run and groups, one transaction each.

A node's rows arrive as a unit (the opening BERT-base with its run header, one measurement
group, the closing BERT-base) and are committed in one SQLite transaction, so a crash of the
driver or of a node leaves either the whole group or none of it: re-running plans from what is
committed and never times an arch twice. The store itself stays as it is (WAL,
``synchronous=FULL``, append-only).
"""

from __future__ import annotations

from atb.errors import StoreError
from atb.profiler.rows import MeasurementRecord, RunHeader
from atb.profiler.store import LatencyStore


class StoreWriter:
    """Commits what nodes recorded (:class:`atb.fleet.node.RowRecorder` rows) to one store."""

    def __init__(self, store: LatencyStore):
        self.store = store

    def open_run(self, header: dict, rows: list[dict], node: dict) -> int:
        """Open a run for a node (``node``: who it is, kept with its fingerprint) with its
        first rows; returns the store's run id."""
        fp = {**header["fingerprint"], "fleet_node": node}
        with self.store.transaction():
            run_id = self.store.begin_run(RunHeader(**{**header, "fingerprint": fp},
                                                    host=node.get("hostname"), pid=node.get("pid")))
            self._add(run_id, header["device_key"], rows)
        return run_id

    def add_group(self, run_id: int, device_key: str, rows: list[dict]) -> None:
        """Commit one group's rows (its reference timing, archs, failures) as one."""
        with self.store.transaction():
            self._add(run_id, device_key, rows)

    def _add(self, run_id: int, device_key: str, rows: list[dict]) -> None:
        for row in rows:
            if row["device_key"] != device_key:  # a node times under one key per run
                raise StoreError(f"a row of {row['device_key']} in a run of {device_key}")
            self.store.add(MeasurementRecord.from_row(run_id, row))
