"""atb-fleet on a local two-node Ray cluster (smoke timing rule): keys, streaming, a killed
node, resume, status."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections import Counter

import pytest

from atb.devices import DeviceSetting
from atb.fleet import NAMESPACE, actor_name, fleet_status, node_fingerprint, profile_fleet
from atb.fleet.cli import main as fleet_main
from atb.fleet.node import TAG_ENV
from atb.profiler.store import LatencyStore
from atb.fleet.cluster import FleetCluster
from tests.conftest import cli_env
from tests.profiler.configs import profile_config
from tests.fleet.conftest import NODES

SAMPLES = 12  # three groups per key: one committed, then the node is killed
OPTIONS = {"samples": SAMPLES, "threads": 1, "seq_len": 32, "super_config": "small"}


def key_of(tag: str, monkeypatch) -> str:
    """The device key a node tagged ``tag`` gives the setting of OPTIONS (same machine)."""
    monkeypatch.setenv(TAG_ENV, tag)
    machine = node_fingerprint()
    return DeviceSetting("cpu", "onnxruntime", 1, "fp32", OPTIONS["seq_len"], 1).resolve(machine).key(machine)


def sampled_rows(ws) -> list[tuple]:
    with sqlite3.connect(ws / "latency.sqlite") as conn:
        return conn.execute("SELECT device_key, arch, run_id, status FROM measurements "
                            "WHERE role='sampled' ORDER BY id").fetchall()


@pytest.fixture(scope="module")
def first_run(cluster, tmp_path_factory):
    """Both nodes profile; node a's actor is killed right after its first group is committed."""
    import ray

    ws = tmp_path_factory.mktemp("fleet-ws")
    killed: list[list[str]] = []
    seen: list[tuple] = []

    def on_group(event):
        rows = sampled_rows(ws)  # the group is in the store when the driver says so
        seen.append((event.node.name, event.archs, {a for _, a, _, _ in rows}))
        if event.node.name == "a" and not killed:
            killed.append(event.archs)
            ray.kill(ray.get_actor(actor_name(event.node.node_id), namespace=NAMESPACE), no_restart=True)

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ATB_TIMING_RULE", "smoke")
        report = profile_fleet(profile_config(**OPTIONS), ws, FleetCluster(cluster.address),
                               on_group=on_group)
    return ws, report, killed, seen, sampled_rows(ws)


def test_each_node_times_under_its_own_key(first_run, monkeypatch):
    ws, report, _, _, rows = first_run
    keys = {n.name: n.device_key for n in report.nodes}
    assert keys == {tag: key_of(tag, monkeypatch) for tag in NODES}
    assert {k for k, _, _, _ in rows} == set(keys.values())
    with LatencyStore.open(ws / "latency.sqlite", readonly=True) as store:
        for run in store.runs():
            node = run.fingerprint["fleet_node"]
            assert keys[node["name"]] == run.device_key and node["tag"] == node["name"]
        labels = store.labels(keys["b"])  # drift-corrected as any atb-profile store
        assert len(labels) == SAMPLES and (labels.speedup > 0).all()


def test_groups_arrive_committed_as_they_are_timed(first_run):
    _, _, _, seen, _ = first_run
    assert seen, "no group was reported"
    for _, archs, stored in seen:
        assert set(archs) <= stored


def test_a_killed_node_is_named_and_the_others_go_on(first_run):
    _, report, killed, _, rows = first_run
    by_name = {n.name: n for n in report.nodes}
    assert killed and [n.name for n in report.lost] == ["a"] and by_name["a"].state == "lost"
    assert by_name["b"].state == "done" and by_name["b"].timed == SAMPLES
    counts = Counter(k for k, _, _, _ in rows)
    assert counts[by_name["b"].device_key] == SAMPLES
    assert 4 <= counts[by_name["a"].device_key] < SAMPLES  # its first group, maybe the second
    assert report.untimed == {by_name["a"].device_key: SAMPLES - counts[by_name["a"].device_key]}


def test_the_killed_node_resumes_with_nothing_lost_or_twice(first_run, cluster, capsys):
    ws, report, killed, _, before = first_run
    key_a = next(n.device_key for n in report.nodes if n.name == "a")
    capsys.readouterr()
    rc = fleet_main(["profile", "--address", cluster.address, "--samples", str(SAMPLES), "--threads", "1",
                     "--seq-len", "32", "--super", "small", "--workspace", str(ws), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["lost"] == [] and out["untimed"] == {}
    states = {n["name"]: n["state"] for n in out["nodes"]}
    assert states == {"a": "done", "b": "nothing to do"}
    after = sampled_rows(ws)
    assert after[:len(before)] == before  # every committed group kept as it was
    assert max(Counter((k, a) for k, a, _, _ in after).values()) == 1  # no arch twice under a key
    assert Counter(k for k, _, _, _ in after) == {n.device_key: SAMPLES for n in report.nodes}
    resumed = {a for _, a, _, _ in after[len(before):]}
    assert resumed and all(k == key_a for k, _, _, _ in after[len(before):])
    assert set(killed[0]).isdisjoint(resumed)


def test_status_lists_nodes_keys_and_counts(first_run, cluster):
    ws, report, _, _, _ = first_run
    status = fleet_status(ws, address=cluster.address)
    keys = {n.name: n.device_key for n in report.nodes}
    nodes = {(r["name"], r["device_key"]): r for r in status["nodes"]}
    assert set(nodes) == set(keys.items())
    assert all(r["alive"] for r in nodes.values())
    stored = Counter(k for k, _, _, _ in sampled_rows(ws))
    assert {k["device_key"]: k["sampled"] for k in status["keys"]} == stored


def test_status_from_a_fresh_process_joins_by_address(first_run, cluster):
    """The command line's own path: address check, ray.init, the node table, ray.shutdown."""
    ws = first_run[0]
    env = cli_env(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, RAY_USAGE_STATS_ENABLED=0)
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run([sys.executable, "-m", "atb.fleet.cli", "status", "--address", cluster.address,
                           "--workspace", str(ws), "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    nodes = json.loads(proc.stdout)["nodes"]
    assert sorted(r["name"] for r in nodes) == sorted(NODES) and all(r["alive"] for r in nodes)
