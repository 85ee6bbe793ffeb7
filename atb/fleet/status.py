"""What a workspace holds per node and device key, and which target nodes are alive now.

Read from the store's runs (a fleet run keeps the node that timed it with its fingerprint,
``fleet_node``) and, given a cluster address, from Ray's node table. Nothing runs on the target
nodes: asking a node that is timing would disturb its timings.
"""

from __future__ import annotations

from pathlib import Path

from atb.fleet.cluster import DEFAULT_RESOURCE, connected
from atb.profiler.store import LatencyStore
from atb.workspace import Workspace

LOCAL = "(atb-profile)"  # runs timed by atb-profile on the machine of the store


def fleet_status(workspace: Workspace | str | Path | None = None, *, address: str | None = None,
                 resource: str = DEFAULT_RESOURCE) -> dict:
    """Nodes, the device keys they timed under, and the store's counts per key.

    Returns ``{"nodes": [...], "keys": [...]}``: a node row per (node, device key) the store
    has runs of (name, hostname, ip, device key, runs, last run time, ``alive`` when
    ``address`` is given, else None), plus a row without a key for each alive target node that
    has timed nothing yet; a key row per device key (``sampled``: sampled archs stored, what
    ``--samples N`` counts; ``labels``: successful label measurements; ``failed``).
    """
    ws = Workspace.of(workspace, create=False)
    with LatencyStore.open(ws.store_path, readonly=True) as store:
        runs = store.runs()
        labels = store.device_keys()
        keys = sorted({r.device_key for r in runs})
        key_rows = []
        for key in keys:
            sampled = store.sampled_archs(key)
            failed = {m.arch for m in store.measurements(key) if m.role == "sampled" and not m.ok}
            key_rows.append({"device_key": key, "sampled": len(sampled), "labels": labels.get(key, 0),
                             "failed": len(failed & sampled)})
    nodes: dict[tuple, dict] = {}
    for run in runs:
        who = run.fingerprint.get("fleet_node") or {"name": LOCAL, "hostname": "", "ip": "", "node_id": None}
        ident = (who.get("name"), who.get("hostname"), who.get("ip"), who.get("tag"), run.device_key)
        row = nodes.setdefault(ident, {"name": who.get("name"), "hostname": who.get("hostname"),
                                       "ip": who.get("ip"), "node_ids": set(), "device_key": run.device_key,
                                       "runs": 0, "last_run": 0.0, "alive": None})
        row["runs"] += 1
        row["last_run"] = max(row["last_run"], run.started_at)
        if who.get("node_id"):
            row["node_ids"].add(who["node_id"])
    rows = list(nodes.values())
    if address is not None:
        rows += _mark_alive(rows, address, resource)
    for row in rows:
        row["node_ids"] = sorted(row["node_ids"])
    return {"nodes": rows, "keys": key_rows}


def _mark_alive(rows: list[dict], address: str, resource: str) -> list[dict]:
    """Set ``alive`` on the store's node rows from the cluster; rows for target nodes that
    have no run yet."""
    from atb.fleet.cluster import target_nodes

    with connected(address) as ray:
        targets = target_nodes(ray, resource)
    for row in rows:
        if row["name"] != LOCAL:
            row["alive"] = False
    fresh = []
    for t in targets:
        same = [r for r in rows if t.node_id in r["node_ids"]] or \
               [r for r in rows if (r["name"], r["ip"]) == (t.name, t.ip)]
        for row in same:
            row["alive"] = True
        if not same:
            fresh.append({"name": t.name, "hostname": t.hostname, "ip": t.ip, "node_ids": {t.node_id},
                          "device_key": None, "runs": 0, "last_run": None, "alive": True})
    return fresh
