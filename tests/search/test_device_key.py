"""One device key end to end: the search re-measures under exactly the predictor's key, and
re-measured archs stay verification labels the predictor does not train on unless asked."""

import json
import sqlite3

import numpy as np
import pytest

from atb import compose
from atb.arch import Arch
from atb.devices import DeviceSetting, device_key_for
from atb.errors import DeviceKeyMismatchError, MissingInputError
from atb.profiler.api import profile_archs
from atb.profiler.labels import LabelSet, write_csv
from atb.profiler.drift import corrected_rows
from atb.profiler.rows import RunHeader
from atb.profiler.store import LatencyStore
from atb.profiler.timing import PROTOCOL_VERSION, Measurement
from atb.search import SearchConfig, SearchPorts, run_search
from atb.workspace import Workspace

from tests.profiler.stores import add_record
from tests.search.synthetic import SyntheticFitness, SyntheticLatency

KEY = "cpu-test-t1-fp32-s128-b1-00000000"
SAMPLED = [f"{lt}-{dm}-{4 * dm}-4-{dm}" for lt in (1, 2, 3, 4, 5) for dm in (128, 192, 256, 320, 384, 448)]
VERIFIED = ["2-160-640-4-160", "3-224-896-4-224", "4-288-1152-4-288"]


def _m(ms: float, t: float) -> Measurement:
    return Measurement(tuple((ms + d) / 1e3 for d in (-0.1, 0, 0.1, 0, 0)), tuple(t + 0.2 * i for i in range(5)), 1)


def _store_with_verification(path) -> None:
    """30 sampled archs and 3 re-measured by a search, one run with reference and BERT-base."""
    with LatencyStore.open(path) as store:
        rid = store.begin_run(RunHeader(KEY, {}, {}, PROTOCOL_VERSION, {}, "2-384-1536-6-384", "test"))
        add_record(store, rid, KEY, "12-768-3072-12-768", "bert_base", PROTOCOL_VERSION, _m(200, 0))
        add_record(store, rid, KEY, "2-384-1536-6-384", "reference", PROTOCOL_VERSION, _m(30, 2))
        for i, arch in enumerate(SAMPLED + VERIFIED):
            a = Arch.parse(arch)
            role = "verify" if arch in VERIFIED else "sampled"
            add_record(store, rid, KEY, arch, role, PROTOCOL_VERSION, _m(0.5 + a.lt * a.dm / 100, 4 + i),
                       space="pretrain")
        add_record(store, rid, KEY, "2-384-1536-6-384", "reference", PROTOCOL_VERSION, _m(30, 60))
        add_record(store, rid, KEY, "12-768-3072-12-768", "bert_base", PROTOCOL_VERSION, _m(200, 62))


def test_verification_labels_are_left_out_unless_asked(tmp_path):
    _store_with_verification(tmp_path / "latency.sqlite")
    with LatencyStore.open(tmp_path / "latency.sqlite", readonly=True) as store:
        default = LabelSet.from_store(store, KEY)
        both = LabelSet.from_store(store, KEY, include_verification=True)
        assert len(store.labels(KEY)) == len(default)  # the store's default is the same choice
        rows = corrected_rows(store, KEY)
    assert sorted(default.arch_strings()) == sorted(SAMPLED)
    assert sorted(both.arch_strings()) == sorted(SAMPLED + VERIFIED)
    assert set(both.sources) == {"sampled", "verify"}  # they stay labelled as verification
    write_csv(rows, tmp_path / "labels.csv")
    assert len(LabelSet.from_csv(tmp_path / "labels.csv")) == len(SAMPLED)
    assert len(LabelSet.from_csv(tmp_path / "labels.csv", include_verification=True)) == len(SAMPLED + VERIFIED)
    only = [r for r in rows if r["source"] == "verify"]
    write_csv(only, tmp_path / "verify.csv")
    with pytest.raises(MissingInputError, match="only verification labels"):
        LabelSet.from_csv(tmp_path / "verify.csv")


def test_atb_predictor_fit_include_verification(tmp_path, capsys):
    from atb.predictor.cli import main

    _store_with_verification(tmp_path / "latency.sqlite")
    base = ["fit", "--workspace", str(tmp_path), "--models", "flops_linear", "--folds", "2", "--json"]
    assert main(base + ["-o", str(tmp_path / "a.json")]) == 0
    assert json.loads(capsys.readouterr().out)["training"]["n"] == len(SAMPLED)
    assert main(base + ["-o", str(tmp_path / "b.json"), "--include-verification"]) == 0
    assert json.loads(capsys.readouterr().out)["training"]["n"] == len(SAMPLED + VERIFIED)


def test_re_measurement_refuses_a_key_this_machine_cannot_time_under(tmp_path):
    here = device_key_for(backend="onnxruntime", threads=1)
    elsewhere = here.rsplit("-", 1)[0] + "-deadbeef"
    with pytest.raises(DeviceKeyMismatchError, match=elsewhere):
        compose.search_measure(tmp_path, elsewhere)
    with pytest.raises(DeviceKeyMismatchError, match="threads 2 contradicts"):
        profile_archs(["2-128-256-2-128"], tmp_path, DeviceSetting(threads=2), device_key=here)
    assert not (tmp_path / "latency.sqlite").exists()  # refused before anything was timed


def test_search_re_measures_under_exactly_the_predictors_key(tmp_path, small_space):
    """The real profiler (smoke timing rule) behind a synthetic predictor of this machine's key."""
    key = device_key_for(backend="onnxruntime", threads=1)
    latency = SyntheticLatency()
    latency.device_key = key
    config = SearchConfig(targets=15, generations=1, population=6, top_k=1, max_verify_rounds=1)
    ports = compose.search_ports(config, Workspace.of(tmp_path),
                                 SearchPorts(latency, SyntheticFitness(small_space)))
    r = run_search(config, tmp_path, ports)
    d = r.to_dict()
    measured = [c for c in d["top_k"] + d["dropped"] + d["baselines"] + [d["layer_cut"]]
                if c["measured_speedup"] is not None]
    assert measured and all(np.isfinite(c["measured_speedup"]) for c in measured)
    assert len({c["arch"] for c in measured}) == len(measured)  # the cut is not the rule arch here
    conn = sqlite3.connect(tmp_path / "latency.sqlite")
    keys = {k for (k,) in conn.execute("SELECT DISTINCT device_key FROM measurements")}
    roles = {r for (r,) in conn.execute("SELECT DISTINCT role FROM measurements")}
    assert keys == {key}  # one device key: nothing landed under another
    assert roles == {"verify", "reference", "bert_base"}
    with LatencyStore.open(tmp_path / "latency.sqlite", readonly=True) as store:
        with pytest.raises(MissingInputError):  # not training data by default
            LabelSet.from_store(store, key)
        assert len(LabelSet.from_store(store, key, include_verification=True)) == len(measured)
