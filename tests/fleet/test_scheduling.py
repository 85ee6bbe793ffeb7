"""The driver's scheduling against a stand-in for Ray (no cluster, no timing): nodes that share
a device key share its archs, a dead node's queued groups go to the key's other node, and
nothing is committed twice. The real thing runs in test_cluster.py."""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager

import pytest

from atb.fleet import driver
from atb.fleet.cluster import FleetCluster, TargetNode
from atb.profiler.store import LatencyStore
from atb.profiler.timing import PROTOCOL_VERSION, Measurement
from tests.profiler.configs import profile_config

REF, BERT = "2-384-1536-6-384", "12-768-3072-12-768"
KEYS = {"n1": "cpu-onnxruntime-t1-fp32-s128-b1-0000000a", "n2": "cpu-onnxruntime-t1-fp32-s128-b1-0000000a",
        "n3": "cpu-onnxruntime-t1-fp32-s128-b1-0000000b"}  # n1 and n2: two identical machines
NODE_IDS = {name: f"{i + 1:02x}" * 28 for i, name in enumerate(KEYS)}  # Ray's node ids: 28 bytes, hex


class ActorDied(Exception):
    pass


class FakeProfiler:
    """What NodeProfiler returns, with constant timings (one per node)."""

    def __init__(self, key: str):
        self.key, self.clock = key, 1000.0

    def _row(self, arch: str, role: str) -> dict:
        self.clock += 1
        m = Measurement(tuple([0.01] * 5), tuple(self.clock + 0.1 * i for i in range(5)), 1)
        return {"device_key": self.key, "arch": arch, "role": role, "protocol_version": PROTOCOL_VERSION,
                "measurement": m, "space": "pretrain", "error": None, "setup_s": 0.0, "started_at": None}

    def identity(self):
        return {"hostname": "h", "pid": 1, "tag": None, "device_key": self.key, "protocol_version": PROTOCOL_VERSION}

    def open(self):
        header = {"device_key": self.key, "setting": {}, "fingerprint": {}, "protocol_version": PROTOCOL_VERSION,
                  "rule": {}, "reference_arch": REF, "command": "test"}
        return {"header": header, "rows": [self._row(REF, "reference"), self._row(BERT, "bert_base")]}

    def time_group(self, archs, space):
        rows = [self._row(REF, "reference")] + [self._row(a, "sampled") for a in archs]
        return {"rows": rows, "started": self.clock, "finished": self.clock, "wall_s": 0.1, "timed_s": 0.05}

    def close(self):
        return {"rows": [self._row(BERT, "bert_base")]}


class FakeRef:
    def __init__(self, actor, method, args):
        self.actor, self.method, self.args = actor, method, args
        self.done, self.value, self.error = False, None, None


class FakeMethod:
    def __init__(self, actor, name):
        self.actor, self.name = actor, name

    def remote(self, *args):  # actor.method.remote(...), as with Ray's handles
        ref = FakeRef(self.actor, self.name, args)
        self.actor.queue.append(ref)
        return ref


class FakeActor:
    """Calls run in submission order, when the driver waits for one."""

    def __init__(self, profiler):
        self.profiler, self.queue, self.dead = profiler, [], False
        for name in ("identity", "open", "time_group", "close"):
            setattr(self, name, FakeMethod(self, name))

    def run_until(self, ref):
        while not ref.done:
            head = self.queue.pop(0)
            if self.dead:
                head.error = ActorDied("the actor died")
            else:
                head.value = getattr(self.profiler, head.method)(*head.args)
            head.done = True


class FakeRay:
    """The slice of Ray the driver uses."""

    class exceptions:
        RayError = ActorDied

    def __init__(self):
        self.actors = {}
        self.created = {}  # node name -> what the driver handed its actor

    def remote(self, cls):
        fake = self

        class Options:
            @staticmethod
            def options(**kw):
                name = {v: k for k, v in NODE_IDS.items()}[kw["scheduling_strategy"].node_id]

                class Creator:
                    @staticmethod
                    def remote(*args):
                        fake.created[name] = args
                        fake.actors[name] = FakeActor(FakeProfiler(KEYS[name]))
                        return fake.actors[name]
                return Creator
        return Options

    def wait(self, refs, num_returns=1, timeout=None):
        for ref in refs[:num_returns]:
            ref.actor.run_until(ref)
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        ref.actor.run_until(ref)
        if ref.error:
            raise ref.error
        return ref.value

    def kill(self, actor, no_restart=True):
        actor.dead = True


@pytest.fixture
def fake_cluster(monkeypatch):
    ray = FakeRay()

    @contextmanager
    def connected(address):
        yield ray

    nodes = [TargetNode(NODE_IDS[n], n, "h", "127.0.0.1", 1.0) for n in KEYS]
    monkeypatch.setattr(driver, "connected", connected)
    monkeypatch.setattr(driver, "target_nodes", lambda ray, resource: nodes)
    return ray


def sampled(ws) -> list[tuple[str, str, int]]:
    with LatencyStore.open(ws / "latency.sqlite", readonly=True) as store:
        return [(m.device_key, m.arch, m.run_id) for m in store.measurements() if m.role == "sampled"]


def test_nodes_of_one_key_share_its_archs(fake_cluster, tmp_path):
    report = driver.profile_fleet(profile_config(samples=12, super_config="small"), tmp_path)
    rows = sampled(tmp_path)
    assert Counter(k for k, _, _ in rows) == {KEYS["n1"]: 12, KEYS["n3"]: 12}
    assert max(Counter((k, a) for k, a, _ in rows).values()) == 1
    timed = {n.name: n.timed for n in report.nodes}
    assert timed["n1"] + timed["n2"] == 12 and timed["n1"] and timed["n2"] and timed["n3"] == 12
    same = {a for k, a, _ in rows if k == KEYS["n1"]}
    assert same == {a for k, a, _ in rows if k == KEYS["n3"]}  # every key gets the same archs


def test_a_dead_nodes_queued_groups_go_to_its_keys_other_node(fake_cluster, tmp_path):
    def on_group(event):
        if event.node.name == "n1":
            fake_cluster.kill(fake_cluster.actors["n1"])

    report = driver.profile_fleet(profile_config(samples=20, super_config="small"), tmp_path,
                                  on_group=on_group)
    by_name = {n.name: n for n in report.nodes}
    assert by_name["n1"].state == "lost" and by_name["n1"].timed == 4
    assert by_name["n2"].state == "done" and by_name["n2"].timed == 16  # its own and n1's queued group
    rows = sampled(tmp_path)
    assert Counter(k for k, _, _ in rows)[KEYS["n1"]] == 20 and report.untimed == {}
    assert max(Counter((k, a) for k, a, _ in rows).values()) == 1


def test_a_resumed_run_times_only_what_is_missing(fake_cluster, tmp_path):
    def on_group(event):
        if event.node.name == "n3":
            fake_cluster.kill(fake_cluster.actors["n3"])

    first = driver.profile_fleet(profile_config(samples=12, super_config="small"), tmp_path,
                                 on_group=on_group)
    assert first.untimed == {KEYS["n3"]: 8}
    before = sampled(tmp_path)
    second = driver.profile_fleet(profile_config(samples=12, super_config="small"), tmp_path)
    after = sampled(tmp_path)
    assert after[:len(before)] == before and second.untimed == {}
    assert {n.name: n.state for n in second.nodes} == {"n1": "nothing to do", "n2": "nothing to do", "n3": "done"}
    assert max(Counter((k, a) for k, a, _ in after).values()) == 1


def test_the_driver_ships_the_config_s_setting_and_each_node_rebuilds_it(fake_cluster, tmp_path):
    from atb.devices import DeviceSetting
    from atb.fleet.node import NodeProfiler
    from atb.profiler.api import ProfileConfig

    setting = DeviceSetting(backend="openvino", threads=2, seq_len=64)
    driver.profile_fleet(ProfileConfig(setting, samples=4, super_config="small"), tmp_path)
    shipped = fake_cluster.created["n1"][0]
    assert shipped == setting.to_dict() and NodeProfiler(shipped, None, None, "test").setting == setting
    driver.profile_fleet(profile_config(samples=4, super_config="small", backend="openvino", threads=2,
                                        seq_len=64), tmp_path / "kw")  # the same setting again
    assert fake_cluster.created["n1"][0] == shipped


def test_a_setting_or_config_no_node_could_time_fails_before_the_cluster(fake_cluster, tmp_path):
    from atb.errors import BackendUnavailableError, UsageError

    with pytest.raises(BackendUnavailableError, match="int8"):
        driver.profile_fleet(profile_config(samples=4, backend="torch", precision="int8"), tmp_path)
    with pytest.raises(UsageError, match="sampled archs"):
        driver.profile_fleet(profile_config(archs=["2-128-256-2-128"]), tmp_path)
    with pytest.raises(UsageError, match="uniformly"):
        driver.profile_fleet(profile_config(samples=4, strategy="uncertainty"), tmp_path)
    with pytest.raises(UsageError, match="resource name is empty"):
        driver.profile_fleet(profile_config(samples=4), tmp_path, FleetCluster(resource=""))
    assert fake_cluster.actors == {}
