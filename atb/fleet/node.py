"""What runs on a target node: a profiler that times and never writes a store.

:class:`NodeProfiler` is the body of the Ray actor (``atb.fleet.driver`` makes it remote); it
is a plain class, so it also runs in one process (tests, notebooks). It drives the profiler's
own :class:`~atb.profiler.session.ProfilingRun` -- the node's host lock, BERT-base at both ends,
archs timed in interleaved groups, a backend failure stored with its reason -- into a
:class:`RowRecorder` instead of a store. Each call hands back the rows its step produced; the
driver, the one process that writes the workspace store, commits them. Data flows one way: the
node times, the driver writes.

The device key is the node's own: its fingerprint, taken on the node. ``ATB_FLEET_NODE_TAG``
(tests and one-machine demos only) is folded into the fingerprint, so that logical nodes of
one machine get distinct keys; a real fleet leaves it unset.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from contextlib import contextmanager
from dataclasses import replace

from atb.arch import Arch
from atb.devices import DeviceSetting, Fingerprint, fingerprint
from atb.errors import AtbError
from atb.profiler.rows import MeasurementRecord, RunHeader
from atb.profiler.session import ProfilingRun, RunProtocol
from atb.profiler.timing import PROTOCOL_VERSION, TimingRule

log = logging.getLogger("atb.fleet")

TAG_ENV = "ATB_FLEET_NODE_TAG"
ROLE = "sampled"


def node_fingerprint() -> Fingerprint:
    """This machine's fingerprint, with ``$ATB_FLEET_NODE_TAG`` folded in when it is set."""
    fp = fingerprint()
    tag = os.environ.get(TAG_ENV)
    return replace(fp, cpu_model=f"{fp.cpu_model} [{tag}]") if tag else fp


class RowRecorder:
    """Stands in for the store on a node: records what a ProfilingRun commits (a
    :class:`~atb.profiler.rows.StoreSink`).

    ``begin_run`` keeps the run's header (the driver opens the real run with it) and
    ``add`` keeps each measurement or failure as a row (a record's ``to_row``: plain data for
    Ray); ``take`` hands them over.
    """

    def __init__(self) -> None:
        self.header: dict | None = None
        self.rows: list[dict] = []

    def begin_run(self, header: RunHeader) -> int:
        self.header = header.shipped()
        return 0  # a placeholder: the driver's store numbers the run

    def add(self, record: MeasurementRecord) -> int:
        """Keep one record, as the store's ``add`` takes it; a failure's start is fixed here,
        on the node, not when the driver writes it."""
        if record.measurement is None:
            record = replace(record, started_at=record.started_at or time.time())
        self.rows.append(record.to_row())
        return len(self.rows)

    @contextmanager
    def transaction(self):
        """Rows added inside go together, or (on an exception) are dropped, as the store's."""
        mark = len(self.rows)
        try:
            yield self
        except BaseException:
            del self.rows[mark:]
            raise

    def take(self) -> list[dict]:
        rows, self.rows = self.rows, []
        return rows


class NodeProfiler:
    """Times groups of archs on this node under its own device key (a Ray actor's body).

    Every method returns a dict: ``{"error": one line}`` for an :class:`~atb.errors.AtbError`
    (the run, if open, is closed without its final BERT-base and the host lock released),
    otherwise the step's result with the rows it recorded.
    """

    def __init__(self, setting: dict, rule: TimingRule, careful_rule: TimingRule, command: str,
                 seed: int = 0):
        self.setting = DeviceSetting.from_dict(setting)  # the driver's DeviceSetting.to_dict()
        self.rule, self.careful_rule = rule, careful_rule
        self.command, self.seed = command, seed
        self.recorder = RowRecorder()
        self.run: ProfilingRun | None = None

    def identity(self) -> dict:
        """Who this node is and the device key it times under (nothing is timed)."""
        def body():
            machine = node_fingerprint()
            setting = self.setting.resolve(machine)
            return {"hostname": socket.gethostname(), "pid": os.getpid(), "tag": os.environ.get(TAG_ENV),
                    "device_key": setting.key(machine), "protocol_version": PROTOCOL_VERSION}
        return self._reply(body)

    def open(self) -> dict:
        """Take the host lock, load the reference and time BERT-base: the run's header and rows."""
        def body():
            run = ProfilingRun(self.recorder, self.setting, RunProtocol(self.rule, self.careful_rule),
                               self.seed, self.command, node_fingerprint())
            run.__enter__()
            self.run = run
            return {"header": self.recorder.header, "rows": self.recorder.take()}
        return self._reply(body)

    def time_group(self, archs: list[str], space: str | None = None) -> dict:
        """Time one group together (sampled archs); its rows, ready to commit as one."""
        def body():
            assert self.run is not None, "open() first"
            started, timed = time.perf_counter(), self.run.stats.timed_s
            self.run.time_group([Arch.parse(a) for a in archs], ROLE, space)
            finished = time.perf_counter()
            return {"rows": self.recorder.take(), "started": started, "finished": finished,
                    "wall_s": finished - started, "timed_s": self.run.stats.timed_s - timed}
        return self._reply(body)

    def close(self) -> dict:
        """Time BERT-base again, release the lock; the closing rows."""
        def body():
            run, self.run = self.run, None
            if run is not None:
                run.__exit__(None, None, None)
            return {"rows": self.recorder.take()}
        return self._reply(body)

    def _reply(self, body) -> dict:
        try:
            return body()
        except AtbError as exc:
            log.warning("%s", exc.one_line())
            run, self.run = self.run, None
            if run is not None:  # keep nothing in flight; the lock goes with the run
                run.__exit__(type(exc), exc, exc.__traceback__)
            self.recorder.take()
            return {"error": exc.one_line()}
