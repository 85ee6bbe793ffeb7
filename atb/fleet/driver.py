"""Profile every target node of a Ray cluster into one workspace store.

How a run goes (:func:`profile_fleet`):

1. one :class:`~atb.fleet.node.NodeProfiler` actor per alive node offering the target
   resource, pinned to it (node affinity, the resource and all the node's CPUs reserved, so
   Ray schedules nothing else there while it times) and asked for its device key;
2. per device key the driver plans as ``atb-profile --samples N`` does: the first N archs of
   the seeded stream, less those the store already holds for that key; nodes that share a key
   (identical machines) share its queue of groups, so no arch is timed twice;
3. each node opens a run (host lock, BERT-base) and times groups; up to :data:`PIPELINE` group
   calls wait in its actor, so it never waits for the driver; each reply is committed by the
   driver in one transaction as it arrives (:class:`~atb.fleet.writer.StoreWriter`), in the
   order the node produced them;
4. a node whose actor dies or fails is named in the report; its timing of the group in flight
   is lost, and that group and the ones queued behind it go back to its key's queue for the
   key's other nodes (or the next run). The other nodes go on. When its key's queue is empty a
   node times BERT-base again and ends its run.

Re-running the same call resumes every key where it stopped. A node whose fingerprint changed
(another CPU, another library version) times under a new key: its labels never mix with the
old ones.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Callable

from atb.arch import Arch, get_space
from atb.devices import DeviceSetting
from atb.errors import FleetError, UsageError
from atb.fleet.cluster import (DEFAULT_RESOURCE, NAMESPACE, START_TIMEOUT_S, FleetCluster, TargetNode,
                               connected, target_nodes)
from atb.fleet.node import NodeProfiler
from atb.fleet.writer import StoreWriter
from atb.profiler.api import ProfileConfig
from atb.profiler.sampling import plan_uniform
from atb.profiler.session import GROUP_SIZE
from atb.profiler.store import LatencyStore
from atb.profiler.timing import PROTOCOL_VERSION, TimingRule, rules_from_env
from atb.progress import progress
from atb.workspace import Workspace

log = logging.getLogger("atb.fleet")

PIPELINE = 2  # group calls waiting in a node's actor: the node never waits on the driver's commit


def actor_name(node_id: str) -> str:
    """The name of a node's profiling actor (in namespace :data:`NAMESPACE`)."""
    return f"atb-fleet-{node_id}"


class NodeState(str, Enum):
    """Where a node stands in a fleet run. A ``str``, and printed as its value, so reports,
    tables and JSON carry the same words as before."""

    STARTING = "starting"
    TIMING = "timing"
    DONE = "done"
    NOTHING_TO_DO = "nothing to do"
    LOST = "lost"  # its actor died, or the driver stopped before it was done
    FAILED = "failed"  # it never started, or answered with an error

    def __str__(self) -> str:
        return self.value


@dataclass
class NodeReport:
    """One node's part in a fleet run."""

    node_id: str
    name: str
    hostname: str
    ip: str
    device_key: str | None = None
    run_id: int | None = None
    state: NodeState = NodeState.STARTING
    error: str | None = None
    timed: int = 0  # archs timed and committed by this call
    failed: int = 0  # archs committed as failed (backend errors)
    groups: int = 0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class GroupEvent:
    """Handed to ``on_group`` after a group is committed."""

    node: NodeReport
    archs: list[str]
    run_id: int


@dataclass(frozen=True)
class FleetReport:
    samples: int
    nodes: list[NodeReport]
    totals: dict[str, int]  # device key -> sampled archs the store holds now
    stats: dict

    @property
    def lost(self) -> list[NodeReport]:
        """Nodes that stopped before their work was done (died or failed)."""
        return [n for n in self.nodes if n.state in (NodeState.LOST, NodeState.FAILED)]

    @property
    def untimed(self) -> dict[str, int]:
        """Device key -> archs still missing to reach ``samples`` (a re-run times them)."""
        return {k: self.samples - n for k, n in self.totals.items() if n < self.samples}

    def to_dict(self) -> dict:
        stats = {k: v for k, v in self.stats.items() if k != "per_group"}
        return {"samples": self.samples, "nodes": [n.to_dict() for n in self.nodes],
                "totals": self.totals, "untimed": self.untimed,
                "lost": [n.name for n in self.lost], "stats": stats}


@dataclass
class _Node:
    target: TargetNode
    report: NodeReport
    actor: object = None
    calls: deque = field(default_factory=deque)  # (kind, ref, group) in submission order
    accepting: bool = False  # open submitted and close not yet: takes groups
    identity: dict = field(default_factory=dict)  # kept with the run's fingerprint
    last_finished: float | None = None  # the actor's clock at the end of its last group

    @property
    def groups_in_flight(self) -> int:
        return sum(kind == "group" for kind, _, _ in self.calls)


def profile_fleet(config: ProfileConfig, workspace: Workspace | str | Path | None = None,
                  cluster: FleetCluster | None = None, *,
                  on_group: Callable[[GroupEvent], None] | None = None,
                  command: str | None = None) -> FleetReport:
    """Time ``config.samples`` sampled archs per device key on every node of a Ray cluster
    that offers ``cluster.resource``, into the workspace store on this machine.

    What is timed is ``config`` (a :class:`~atb.profiler.api.ProfileConfig`: ``samples``,
    ``space``, ``super_config``, ``seed``, the setting; sampled archs only, uniformly).
    Each node times with its own host lock under its own device key (fingerprinted on the
    node): ``threads`` (0: each node's physical cores), ``backend``, ``precision`` and
    ``seq_len`` are the setting every node resolves for itself. Every committed group reaches
    the store as it arrives, in one transaction, so stopping (Ctrl-C, a crash, a dead node)
    loses at most the groups in flight; calling again resumes each key. ``cluster``
    (:class:`~atb.fleet.cluster.FleetCluster`) names the head's ``HOST:PORT`` (or ``auto``;
    a process already attached to Ray uses its connection), the target resource and how long
    a node may take to start. ``rule``/``careful_rule`` default to this process's rules
    (``ATB_TIMING_RULE``) and are the same on every node. ``on_group`` sees each committed
    group; ``command`` is what the runs record (default: this process's). Returns which nodes
    did what, the store's totals per key, and the driver's costs.
    """
    cluster = cluster or FleetCluster()
    setting = _check_fleet_config(config, cluster)  # each node resolves it (threads, bf16) for itself
    search_space = get_space(config.space, config.super_config)
    default_rule, default_careful = rules_from_env()
    ws = Workspace.of(workspace)
    with LatencyStore.open(ws.store_path) as store, connected(cluster.address) as ray:
        nodes = target_nodes(ray, cluster.resource)
        if not nodes:
            raise FleetError(
                f"no alive node of the cluster offers the resource {cluster.resource!r}",
                hint=f"start target nodes with ray start --address HEAD:PORT --resources "
                     f"'{{\"{cluster.resource}\": 1}}'",
            )
        fleet = _Fleet(ray, StoreWriter(store), nodes, cluster, config, search_space, on_group)
        try:
            fleet.run(setting, config.rule or default_rule, config.careful_rule or default_careful,
                      command or " ".join(sys.argv))
        finally:
            fleet.stop()
        totals = {key: len(store.sampled_archs(key)) for key in fleet.keys}
    reports = [n.report for n in fleet.nodes]
    if all(r.state == NodeState.FAILED and r.run_id is None for r in reports):  # e.g. --threads above every node's
        raise FleetError(f"no target node could profile; {reports[0].name}: {reports[0].error}")
    return FleetReport(config.samples, reports, totals, fleet.stats())


def _check_fleet_config(config: ProfileConfig, cluster: FleetCluster) -> DeviceSetting:
    """What a fleet cannot time, refused before the cluster is reached; the setting, checked."""
    if config.samples is None or config.archs is not None:
        raise UsageError("a fleet times sampled archs: give a number of samples (and no archs)")
    if config.strategy != "uniform":
        raise UsageError(f"a fleet samples uniformly (strategy {config.strategy!r} asked)")
    config.check()
    setting = config.setting.check()
    if not cluster.resource:
        raise UsageError("the target resource name is empty", hint=f"the default is {DEFAULT_RESOURCE}")
    return setting


class _Fleet:
    """The driver's state during one fleet run."""

    def __init__(self, ray, writer: StoreWriter, targets: list[TargetNode], cluster: FleetCluster,
                 config: ProfileConfig, space, on_group):
        self.ray, self.writer, self.resource = ray, writer, cluster.resource
        self.samples, self.space, self.seed = config.samples, space, config.seed
        self.on_group, self.start_timeout_s = on_group, cluster.start_timeout_s
        self.nodes = [_Node(t, NodeReport(t.node_id, t.name, t.hostname, t.ip)) for t in targets]
        self.queues: dict[str, deque] = {}
        self.keys: list[str] = []
        self.group_costs: list[dict] = []  # per committed group: driver time, the node's times
        self.idle_s = 0.0  # time actors spent between groups (waiting for the next call)
        self.bar = None

    # -- life cycle -------------------------------------------------------------------------
    def run(self, setting: DeviceSetting, rule: TimingRule, careful_rule: TimingRule, command: str) -> None:
        self._start(setting, rule, careful_rule, command)
        planned = self._plan()
        with progress(planned, "fleet", "arch") as self.bar:
            opening = [node for node in self.nodes if node.report.state == NodeState.TIMING]
            for node in opening:
                node.calls.append(("open", node.actor.open.remote(), None))
                node.accepting = True
                self._feed(node, 1)  # a group each first (_plan left none without one), then more
            for node in opening:
                self._feed(node)
            self._loop()

    def stop(self) -> None:
        """End every actor (a finished one has released its host lock already)."""
        for node in self.nodes:
            if node.actor is not None:
                self.ray.kill(node.actor, no_restart=True)
                node.actor = None
            if node.report.state in (NodeState.STARTING, NodeState.TIMING):  # interrupted
                node.report.state = NodeState.LOST
                node.report.error = node.report.error or "the driver stopped"

    def _start(self, setting: DeviceSetting, rule: TimingRule, careful_rule: TimingRule, command: str) -> None:
        """One actor per node, pinned there; the device key of each (waits for placement)."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        remote = self.ray.remote(NodeProfiler)
        pending = {}
        for node in self.nodes:
            t = node.target
            options = remote.options(
                name=actor_name(t.node_id), namespace=NAMESPACE, num_cpus=t.cpus,
                resources={self.resource: 1}, max_restarts=0, max_task_retries=0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(t.node_id, soft=False),
            )
            try:
                node.actor = options.remote(setting.to_dict(), rule, careful_rule, f"{command} [node {t.name}]",
                                            self.seed)
            except ValueError:  # the actor name is taken: another driver's profiler runs there
                self._fail(node, NodeState.FAILED, "another atb-fleet run is profiling it")
                continue
            pending[node.actor.identity.remote()] = node
        if not pending:
            return
        ready, waiting = self.ray.wait(list(pending), num_returns=len(pending), timeout=self.start_timeout_s)
        for ref in waiting:
            self._fail(pending[ref], NodeState.FAILED,
                       f"its profiler did not start within {self.start_timeout_s:.0f} s "
                       f"(its {self.resource!r} resource or CPUs are held by another job?)")
        for ref in ready:
            node = pending[ref]
            reply = self._get(node, ref)
            if reply is None:
                continue
            if reply["protocol_version"] != PROTOCOL_VERSION:
                self._fail(node, NodeState.FAILED,
                           f"it runs profiler protocol {reply['protocol_version']}, this "
                           f"driver {PROTOCOL_VERSION}: install the same atb on every node")
                continue
            node.report.device_key = reply["device_key"]
            node.identity = {"node_id": node.target.node_id, "name": node.target.name, "ip": node.target.ip,
                             "hostname": reply["hostname"], "pid": reply["pid"], "tag": reply["tag"]}
            node.report.hostname = reply["hostname"]
            node.report.state = NodeState.TIMING

    def _plan(self) -> int:
        """Queue each key's missing archs in groups; returns how many archs are planned."""
        planned = 0
        for node in self.nodes:
            key = node.report.device_key
            if node.report.state != NodeState.TIMING or key in self.queues:
                continue
            done = self.writer.store.sampled_archs(key)
            archs = plan_uniform(self.space, self.seed, self.samples - len(done), done)
            self.queues[key] = deque(archs[i:i + GROUP_SIZE] for i in range(0, len(archs), GROUP_SIZE))
            self.keys.append(key)
            planned += len(archs)
            log.info("%s: %d of %d sampled archs stored, %d to time", key, len(done), self.samples, len(archs))
        for key in self.queues:  # nodes beyond a key's groups have nothing to do
            members = [n for n in self.nodes if n.report.device_key == key and n.report.state == NodeState.TIMING]
            for extra in members[len(self.queues[key]):]:
                extra.report.state = NodeState.NOTHING_TO_DO
        for node in self.nodes:
            if node.report.state == NodeState.NOTHING_TO_DO and node.actor is not None:
                self.ray.kill(node.actor, no_restart=True)
                node.actor = None
        return planned

    # -- the loop -----------------------------------------------------------------------------
    def _loop(self) -> None:
        """Commit each node's replies in the order it produced them, until all are done."""
        while True:
            heads = {node.calls[0][1]: node for node in self.nodes if node.calls}
            if not heads:
                return
            ready, _ = self.ray.wait(list(heads), num_returns=1)
            node = heads[ready[0]]
            kind, ref, group = node.calls.popleft()
            t0 = time.perf_counter()
            reply = self._get(node, ref, group)
            if reply is None:
                continue
            if kind == "open":
                node.report.run_id = self.writer.open_run(reply["header"], reply["rows"], node.identity)
                log.info("%s (%s): run %d open", node.target.name, node.report.device_key, node.report.run_id)
            elif kind == "group":
                self._commit_group(node, group, reply, t0)
            else:  # close
                self.writer.add_group(node.report.run_id, node.report.device_key, reply["rows"])
                node.report.state = NodeState.DONE
                self.ray.kill(node.actor, no_restart=True)
                node.actor = None

    def _commit_group(self, node: _Node, group: list[Arch], reply: dict, t0: float) -> None:
        t_write = time.perf_counter()
        self.writer.add_group(node.report.run_id, node.report.device_key, reply["rows"])
        write_s = time.perf_counter() - t_write
        node.report.groups += 1
        for row in reply["rows"]:
            if row["role"] == "sampled":
                if row["measurement"] is not None:
                    node.report.timed += 1
                else:
                    node.report.failed += 1
        if node.last_finished is not None:
            self.idle_s += max(0.0, reply["started"] - node.last_finished)
        node.last_finished = reply["finished"]
        if self.bar is not None:
            self.bar.update(len(group))
        self._feed(node)
        self.group_costs.append({"driver_s": time.perf_counter() - t0, "write_s": write_s,
                                 "wall_s": reply["wall_s"], "timed_s": reply["timed_s"]})
        if self.on_group is not None:
            self.on_group(GroupEvent(node.report, [str(a) for a in group], node.report.run_id))

    def _feed(self, node: _Node, limit: int = PIPELINE) -> None:
        """Keep up to ``limit`` groups waiting in the node's actor; end its run when its key's
        queue is empty and nothing is in flight."""
        if not node.accepting or node.actor is None:
            return
        queue = self.queues[node.report.device_key]
        while queue and node.groups_in_flight < limit:
            group = queue.popleft()
            ref = node.actor.time_group.remote([str(a) for a in group], self.space.name)
            node.calls.append(("group", ref, group))
        if not node.groups_in_flight:
            node.calls.append(("close", node.actor.close.remote(), None))
            node.accepting = False

    # -- failures -----------------------------------------------------------------------------
    def _get(self, node: _Node, ref, group: list[Arch] | None = None) -> dict | None:
        """The reply of a call (for ``group``, when it timed one), or None when the node died or
        failed (it is then dropped)."""
        try:
            reply = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            self._fail(node, NodeState.LOST, f"its profiler died ({_first_line(exc)})", group)
            return None
        if "error" in reply:
            self._fail(node, NodeState.FAILED, reply["error"], group)
            return None
        return reply

    def _fail(self, node: _Node, state: NodeState, why: str, in_flight: list[Arch] | None = None) -> None:
        """Drop a node. Its timing of the group in flight is lost; that group and the ones
        queued behind it go back to its key's queue, for the key's other nodes (or the next run)."""
        log.warning("node %s: %s", node.target.name, why)
        node.report.state, node.report.error = state, why
        node.accepting = False
        key = node.report.device_key
        requeue = ([in_flight] if in_flight else []) + [group for kind, _, group in node.calls if kind == "group"]
        node.calls.clear()
        if node.actor is not None:
            self.ray.kill(node.actor, no_restart=True)
            node.actor = None
        if key in self.queues:
            self.queues[key].extendleft(reversed(requeue))
            for other in self.nodes:
                if other is not node and other.report.device_key == key:
                    self._feed(other)

    def stats(self) -> dict:
        """The driver's cost per committed group against the node's timing time."""
        driver = sum(c["driver_s"] for c in self.group_costs)
        timed = sum(c["timed_s"] for c in self.group_costs)
        return {
            "groups": len(self.group_costs),
            "driver_s": driver,
            "write_s": sum(c["write_s"] for c in self.group_costs),
            "group_wall_s": sum(c["wall_s"] for c in self.group_costs),
            "timed_s": timed,
            "actor_idle_s": self.idle_s,
            "driver_overhead": driver / timed if timed else None,
            "per_group": self.group_costs,
        }


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
