"""Protocol 3: each backend is timed as deployed, and labels of two protocols never mix."""

import logging

import numpy as np
import pytest

from atb import compose
from atb.arch import Arch
from atb.devices import DeviceSetting
from atb.devices.backends.openvino import OpenVinoRunner
from atb.devices.backends.ort import OrtRunner
from atb.errors import UsageError
from atb.predictor.synthetic import synthetic_labels
from atb.profiler.drift import corrected_rows
from atb.profiler.labels import LabelSet, write_csv
from atb.profiler.onnx_graph import WeightPool, build_onnx, example_inputs
from atb.profiler.store import LatencyStore
from atb.profiler.timing import PROTOCOL_VERSION
from tests.profiler.stores import KEY, add_run

OLD = PROTOCOL_VERSION - 1


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    pool = WeightPool(tmp_path_factory.mktemp("graphs"))
    return pool.save(build_onnx(Arch.parse("1-128-256-2-128"), weights=pool), "tiny")


@pytest.mark.parametrize("threads", [1, 2])
def test_onnxruntime_spins_inside_a_run_and_stops_after_it(graph, threads):
    runner = OrtRunner(graph, DeviceSetting(threads=threads).resolve(), example_inputs())
    options = runner.session.get_session_options()  # read back from the live session
    assert options.intra_op_num_threads == threads
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "1"
    assert options.get_session_config_entry("session.force_spinning_stop") == "1"
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == "0"
    assert str(options.graph_optimization_level).endswith("ORT_ENABLE_ALL")
    assert str(options.execution_mode).endswith("ORT_SEQUENTIAL")
    runner.run()


def test_onnxruntime_can_still_park_its_workers_for_comparison(graph):
    runner = OrtRunner(graph, DeviceSetting(threads=2).resolve(), example_inputs(), spin_in_run=False)
    options = runner.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


@pytest.mark.parametrize("threads", [1, 2])
def test_openvino_compiles_with_the_latency_hint_and_explicit_threads_and_precision(graph, threads):
    runner = OpenVinoRunner(graph, DeviceSetting(backend="openvino", threads=threads).resolve(), example_inputs())
    read = runner.compiled.get_property  # read back from the compiled model
    assert str(read("PERFORMANCE_HINT")) == "LATENCY"
    assert int(read("NUM_STREAMS")) == 1
    assert int(read("INFERENCE_NUM_THREADS")) == threads
    assert str(read("INFERENCE_PRECISION_HINT")) in ("<Type: 'float32'>", "f32", "float32")
    runner.run()


OLD_ARCHS = {"2-128-256-2-128": 4.0, "3-256-512-4-256": 10.0, "4-256-512-4-256": 12.0}


def test_a_store_of_the_old_protocol_still_opens_and_says_how_to_re_profile(tmp_path, caplog):
    with LatencyStore.open(tmp_path / "s.sqlite") as store:
        add_run(store, 1.0, 0, OLD_ARCHS, protocol=OLD)
        with caplog.at_level(logging.WARNING, logger="atb"):
            labels = store.labels(KEY)
        assert store.sampled_archs(KEY) == set()  # a resumed --samples N times them anew
        assert store.sampled_archs(KEY, OLD) == set(OLD_ARCHS)
    assert labels.protocol_version == OLD and len(labels) == 3
    assert f"protocol {OLD}" in caplog.text and "re-profile" in caplog.text


def test_labels_of_two_protocols_are_never_mixed(tmp_path, caplog):
    with LatencyStore.open(tmp_path / "s.sqlite") as store:
        add_run(store, 1.0, 0, OLD_ARCHS, protocol=OLD)
        add_run(store, 1.5, 1000, {"2-128-256-2-128": 3.0, "5-256-512-4-256": 15.0})
        with caplog.at_level(logging.WARNING, logger="atb"):
            labels = store.labels(KEY)
        rows = corrected_rows(store, KEY)
    assert labels.protocol_version == PROTOCOL_VERSION
    assert sorted(labels.arch_strings()) == ["2-128-256-2-128", "5-256-512-4-256"]
    assert "leaving out 3 of protocol" in caplog.text
    # each protocol on the scale of its own first run: the new run is not divided by the old one's
    new = {r["arch"]: r["latency_ms"] for r in rows if r["protocol_version"] == PROTOCOL_VERSION}
    assert new["5-256-512-4-256"] == pytest.approx(15.0 * 1.5)
    # and a CSV export of both reads back the same way
    path = tmp_path / "labels.csv"
    write_csv(rows, path)
    again = LabelSet.from_csv(path)
    assert again.protocol_version == PROTOCOL_VERSION and len(again) == 2
    assert np.allclose(np.sort(again.latency_ms), np.sort(labels.latency_ms))


def test_a_search_does_not_check_an_old_protocol_predictor_against_new_timings():
    old = type("Predictor", (), {"device_key": KEY, "protocol_version": OLD})()
    with pytest.raises(UsageError, match=f"protocol {OLD}, but re-measurement times with protocol") as error:
        compose.check_label_protocol(old)
    assert "re-profile" in error.value.hint and "--no-verify" in error.value.hint
    for version in (PROTOCOL_VERSION, 0):  # today's, or labels atb did not time (synthetic)
        compose.check_label_protocol(type("Predictor", (), {"device_key": KEY, "protocol_version": version})())
    assert synthetic_labels(5).protocol_version == 0
