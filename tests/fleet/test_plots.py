"""atb-plot devices: the same archs across device keys, sorted by one."""

from __future__ import annotations

import pytest

from atb.errors import UsageError
from atb.fleet import device_table
from atb.plot_cli import main as plot_main
from atb.profiler.rows import RunHeader
from atb.profiler.store import LatencyStore
from atb.profiler.timing import PROTOCOL_VERSION, Measurement

from tests.profiler.stores import add_record

KEYS = ("cpu-onnxruntime-t1-fp32-s128-b1-0000000a", "cpu-onnxruntime-t1-fp32-s128-b1-0000000b")
ARCHS = {"4-256-512-4-256": (20.0, 50.0), "2-128-256-2-128": (5.0, 12.0), "3-192-384-3-192": (10.0, 40.0),
         "1-64-128-1-64": (2.0, 3.0)}


def measured(ms: float, t: float) -> Measurement:
    return Measurement(tuple([ms / 1e3] * 5), tuple(t + 0.01 * i for i in range(5)), 1)


@pytest.fixture
def workspace(tmp_path):
    """Two device keys; the second has one arch fewer, and orders two archs the other way."""
    with LatencyStore.open(tmp_path / "latency.sqlite") as store:
        for k, key in enumerate(KEYS):
            run = store.begin_run(RunHeader(key, {}, {}, PROTOCOL_VERSION, {}, "2-384-1536-6-384", "test"))
            add_record(store, run, key, "12-768-3072-12-768", "bert_base", PROTOCOL_VERSION, measured(200.0, 1000))
            add_record(store, run, key, "2-384-1536-6-384", "reference", PROTOCOL_VERSION, measured(30.0, 1001))
            for i, (arch, ms) in enumerate(ARCHS.items()):
                if k == 1 and arch == "1-64-128-1-64":
                    continue
                add_record(store, run, key, arch, "sampled", PROTOCOL_VERSION, measured(ms[k], 1002 + i))
            add_record(store, run, key, "2-384-1536-6-384", "reference", PROTOCOL_VERSION, measured(30.0, 2000))
    return tmp_path


def test_archs_sorted_by_one_device(workspace):
    table = device_table(workspace, sort_by=KEYS[0])
    assert table["archs"] == ["1-64-128-1-64", "2-128-256-2-128", "3-192-384-3-192", "4-256-512-4-256"]
    assert table["shared"] == {KEYS[0]: 4, KEYS[1]: 3}
    assert table["kendall_tau"][KEYS[0]] is None
    assert table["kendall_tau"][KEYS[1]] == pytest.approx(1.0)  # the same order on the shared archs
    by_b = device_table(workspace, sort_by=KEYS[1])
    assert by_b["archs"][0] == "2-128-256-2-128" and len(by_b["archs"]) == 3


def test_atb_plot_devices_writes_one_figure(workspace, capsys):
    out = workspace / "devices.png"
    rc = plot_main(["devices", "--workspace", str(workspace), "--sort-by", KEYS[1], "-o", str(out), "--json"])
    assert rc == 0 and out.stat().st_size > 0
    assert '"sort_by": "%s"' % KEYS[1] in capsys.readouterr().out


def test_one_key_is_not_enough(workspace):
    with pytest.raises(UsageError, match="two device keys"):
        device_table(workspace, device_keys=[KEYS[0]])
