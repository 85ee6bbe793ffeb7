"""A backend failing mid-run: the arch is stored as failed, the rest of the run goes on.

A fake backend stands in for onnxruntime, torch and OpenVINO (no graph is built or loaded);
it raises the exception types those libraries raise, at the moment a test chooses.
"""

import dataclasses
import logging
import time

import numpy as np
import pytest

from atb.arch import BERT_BASE, Arch
from atb.devices.backends.base import Backend, Runner
from atb.errors import BackendFailedError
from atb.profiler.api import profile
from atb.profiler.session import GROUP_SIZE, REFERENCE_ARCH
from atb.profiler.store import LatencyStore
from atb.profiler.timing import Measurement, TimingFailure, TimingRule, measure_group
from atb.workspace import Workspace
from tests.profiler.configs import profile_config

ANCHORS = {REFERENCE_ARCH, BERT_BASE}  # loaded by every run, not archs of its own


class FlakyRunner(Runner):
    """Spins ~20 us per run; raises the backend's error once ``backend.fails(self)`` says so."""

    def __init__(self, backend: "FlakyBackend", arch: Arch, index: int | None):
        self.backend, self.arch, self.index, self.calls = backend, arch, index, 0

    def run(self) -> None:
        self.calls += 1
        if self.backend.fails(self):
            self.backend.failed.append(str(self.arch))
            raise self.backend.make_error()
        end = time.perf_counter() + 20e-6
        while time.perf_counter() < end:
            pass


class FlakyBackend(Backend):
    """``fails(runner)`` is asked before every run, ``fails_to_load(arch, index)`` at every
    load; ``index`` counts the archs loaded (the reference and BERT-base have None)."""

    uses_onnx = False

    def __init__(self, name: str, make_error=lambda: RuntimeError("boom"),
                 fails=lambda runner: False, fails_to_load=lambda arch, index: False):
        self.name, self.make_error, self.fails, self.fails_to_load = name, make_error, fails, fails_to_load
        self.loaded: list[str] = []  # archs in load order
        self.failed: list[str] = []

    def load(self, arch, graph, setting, inputs) -> Runner:
        index = None
        if arch not in ANCHORS:
            index = len(self.loaded)
            self.loaded.append(str(arch))
        if self.fails_to_load(arch, index):
            self.failed.append(str(arch))
            raise self.make_error()
        return FlakyRunner(self, arch, index)


def third_run_of_second_arch(runner: FlakyRunner) -> bool:
    return runner.index == 1 and runner.calls == 3


def _install(monkeypatch, backend: FlakyBackend) -> FlakyBackend:
    monkeypatch.setattr("atb.profiler.session.get_backend", lambda name: backend)
    return backend


def _rows(ws) -> dict[str, object]:
    """The sampled rows of the store, by arch."""
    with LatencyStore.open(Workspace.resolve(ws).store_path) as store:
        return {r.arch: r for r in store.measurements() if r.role == "sampled"}


# -- the exceptions each library raises -------------------------------------------------------
def _ort(name: str):
    def make():
        state = pytest.importorskip("onnxruntime.capi.onnxruntime_pybind11_state")
        return getattr(state, name)("[ONNXRuntimeError] : 1 : FAIL : Non-zero status code returned\n"
                                    "while running MatMul node. Name:'/encoder/layer.1/MatMul'")
    return make


def _torch_oom():
    torch = pytest.importorskip("torch")
    return torch.OutOfMemoryError("CPU out of memory. Tried to allocate 96.00 MiB")


def _torch_runtime():
    return RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory")


def _openvino_runtime():
    return RuntimeError("Exception from src/inference/src/cpp/infer_request.cpp:223:\n"
                        "Exception from src/plugins/intel_cpu/src/node.cpp:771: out of memory")


def _openvino_ov_error():
    exceptions = pytest.importorskip("openvino.exceptions")
    return exceptions.OVError("Inference request failed")


LIBRARY_ERRORS = [
    pytest.param("onnxruntime", _ort("Fail"), id="onnxruntime-Fail"),
    pytest.param("onnxruntime", _ort("RuntimeException"), id="onnxruntime-RuntimeException"),
    pytest.param("onnxruntime", lambda: MemoryError("bad allocation"), id="onnxruntime-MemoryError"),
    pytest.param("torch", _torch_runtime, id="torch-RuntimeError"),
    pytest.param("torch", _torch_oom, id="torch-OutOfMemoryError"),
    pytest.param("openvino", _openvino_runtime, id="openvino-RuntimeError"),
    pytest.param("openvino", _openvino_ov_error, id="openvino-OVError"),
]


# -- measure_group ----------------------------------------------------------------------------
def _rule():
    return TimingRule(warmup_runs=1, warmup_s=0.0, min_runs=5, min_s=0.0, max_runs=5, max_s=10.0,
                      target_rel_se=0.0, burst_s=0.0, reference_burst_s=0.0)


def _fails_on_call(n: int, error: BaseException):
    calls = []

    def run():
        calls.append(1)
        if len(calls) == n:
            raise error

    return run, calls


def test_a_model_failing_on_its_third_run_is_dropped_and_the_others_are_timed():
    flaky, calls = _fails_on_call(3, RuntimeError("boom\n  at node 7"))
    results, ref = measure_group([lambda: None, flaky, lambda: None], lambda: None, _rule(),
                                 np.random.default_rng(0), drop_failing=True)
    first, failure, last = results
    assert isinstance(failure, TimingFailure)
    assert failure.reason == "RuntimeError: boom at node 7"  # one line
    assert failure.completed_runs == 2  # the warm-up and one timed run, both discarded
    assert len(calls) == 3  # never run again
    assert isinstance(first, Measurement) and isinstance(last, Measurement)
    assert first.n == last.n == 5 and ref.n == 5


@pytest.mark.parametrize("where", ["model", "reference"])
def test_a_failure_propagates_when_it_cannot_be_dropped(where):
    flaky, _ = _fails_on_call(3, RuntimeError("boom"))
    runs, reference = ([flaky], lambda: None) if where == "model" else ([lambda: None], flaky)
    with pytest.raises(RuntimeError, match="boom"):
        # a model without drop_failing; the reference always (no model can be corrected without it)
        measure_group(runs, reference, _rule(), np.random.default_rng(0), drop_failing=where == "reference")


def test_ctrl_c_is_never_taken_for_a_failure():
    flaky, _ = _fails_on_call(3, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        measure_group([lambda: None, flaky], lambda: None, _rule(), np.random.default_rng(0), drop_failing=True)


# -- a profiling run --------------------------------------------------------------------------
@pytest.mark.parametrize("backend_name,make_error", LIBRARY_ERRORS)
def test_an_arch_failing_on_its_third_run_is_stored_as_failed_and_the_group_goes_on(
        tmp_path, monkeypatch, backend_name, make_error):
    backend = _install(monkeypatch, FlakyBackend(backend_name, make_error, fails=third_run_of_second_arch))
    report = profile(profile_config(samples=6, threads=1, backend=backend_name), tmp_path)

    failing = backend.loaded[1]
    assert backend.failed == [failing]
    expected = f"timing failed: {type(make_error()).__name__}: "
    (failed,) = report.failed
    assert str(failed.arch) == failing and failed.error.startswith(expected)
    assert "\n" not in failed.error  # multi-line library messages come out as one line
    assert report.new == 5 and report.total == 6

    rows = _rows(tmp_path)
    assert set(rows) == set(backend.loaded)
    assert rows[failing].status == "failed" and rows[failing].error == failed.error
    assert len(rows[failing].times) == 0  # its runs before the failure are not kept
    for arch in backend.loaded:
        if arch != failing:  # the rest of its group and the next group: measured as usual
            assert rows[arch].ok and len(rows[arch].times) >= 3
    timed = {str(r.arch): r for r in report.results if not r.error}
    assert set(timed) == set(backend.loaded) - {failing}
    assert all(r.speedup and r.speedup > 0 for r in timed.values())


def test_the_same_config_times_the_same_archs(tmp_path, monkeypatch):
    from atb.devices import DeviceSetting
    from atb.profiler.api import ProfileConfig

    backend = _install(monkeypatch, FlakyBackend("onnxruntime"))
    config = ProfileConfig(DeviceSetting(threads=1), samples=4, seed=3)
    assert profile_config(samples=4, seed=3, threads=1) == config
    report = profile(config, tmp_path / "a")
    first, backend.loaded[:] = set(backend.loaded), []
    again = profile(config, tmp_path / "b")
    assert set(backend.loaded) == first and again.device_key == report.device_key
    assert profile(dataclasses.replace(config, samples=5), tmp_path / "a").new == 1  # one more
    assert ProfileConfig(archs=["2-128-256-2-128"]).archs == ("2-128-256-2-128",)  # kept hashable


def test_a_failed_arch_is_not_retried_on_resume(tmp_path, monkeypatch):
    first = _install(monkeypatch, FlakyBackend("onnxruntime", fails=third_run_of_second_arch))
    profile(profile_config(samples=6, threads=1), tmp_path)
    failing = first.loaded[1]

    again = _install(monkeypatch, FlakyBackend("onnxruntime"))
    assert profile(profile_config(samples=6, threads=1), tmp_path).new == 0  # the failed arch counts as sampled
    assert again.loaded == []
    report = profile(profile_config(samples=7, threads=1), tmp_path)
    assert report.new == 1 and report.total == 7
    assert len(again.loaded) == 1 and failing not in again.loaded
    assert _rows(tmp_path)[failing].status == "failed"


@pytest.mark.parametrize("backend_name,make_error", [
    p for p in LIBRARY_ERRORS if p.id in ("onnxruntime-Fail", "torch-RuntimeError", "openvino-RuntimeError")])
def test_an_arch_failing_to_load_is_stored_as_failed(tmp_path, monkeypatch, backend_name, make_error):
    backend = _install(monkeypatch, FlakyBackend(backend_name, make_error,
                                                 fails_to_load=lambda arch, index: index == 0))
    report = profile(profile_config(samples=5, threads=1, backend=backend_name), tmp_path)
    (failed,) = report.failed
    assert str(failed.arch) == backend.loaded[0]
    assert failed.error.startswith(f"load failed: {type(make_error()).__name__}: ")
    assert report.new == 4 and _rows(tmp_path)[backend.loaded[0]].status == "failed"


def test_the_reference_failing_stops_the_run_and_keeps_the_groups_committed(tmp_path, monkeypatch):
    def reference_breaks_in_second_group(runner):
        return runner.arch == REFERENCE_ARCH and len(backend.loaded) > GROUP_SIZE

    backend = _install(monkeypatch, FlakyBackend("onnxruntime", lambda: RuntimeError("device lost"),
                                                 fails=reference_breaks_in_second_group))
    with pytest.raises(BackendFailedError, match=f"reference model {REFERENCE_ARCH}: RuntimeError: device lost"):
        profile(profile_config(samples=8, threads=1), tmp_path)
    rows = _rows(tmp_path)
    first_group = backend.loaded[:GROUP_SIZE]
    assert set(rows) == set(first_group)  # the group in flight is lost, not blamed
    assert all(r.ok for r in rows.values())

    healthy = _install(monkeypatch, FlakyBackend("onnxruntime"))
    report = profile(profile_config(samples=8, threads=1), tmp_path)
    assert report.new == 4 and report.total == 8
    assert not set(healthy.loaded) & set(first_group)


def test_bert_base_failing_stops_the_run(tmp_path, monkeypatch):
    _install(monkeypatch, FlakyBackend("torch", _torch_runtime,
                                       fails=lambda r: r.arch == BERT_BASE and r.calls == 3))
    with pytest.raises(BackendFailedError, match="torch backend failed on BERT-base"):
        profile(profile_config(samples=4, threads=1, backend="torch"), tmp_path)
    assert _rows(tmp_path) == {}


def test_the_cli_reports_a_run_stopping_failure_in_one_line(tmp_path, monkeypatch, capsys):
    from atb.profiler.cli import main

    _install(monkeypatch, FlakyBackend("onnxruntime", lambda: RuntimeError("device lost\nat node 3"),
                                       fails=lambda r: r.arch == REFERENCE_ARCH and r.calls == 3))
    level = logging.getLogger("atb").level
    try:
        code = main(["--samples", "2", "--threads", "1", "--workspace", str(tmp_path), "--json"])
    finally:
        logging.getLogger("atb").setLevel(level)  # configure() sets it for the process
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "reference model" in err and "device lost at node 3" in err


def test_ctrl_c_during_a_group_is_no_failure(tmp_path, monkeypatch):
    backend = _install(monkeypatch, FlakyBackend("onnxruntime", KeyboardInterrupt,
                                                 fails=lambda r: r.index == GROUP_SIZE + 1 and r.calls == 3))
    with pytest.raises(KeyboardInterrupt):
        profile(profile_config(samples=8, threads=1), tmp_path)
    rows = _rows(tmp_path)
    assert set(rows) == set(backend.loaded[:GROUP_SIZE]) and all(r.ok for r in rows.values())


# -- an arch too large for the shared weight pool ---------------------------------------------
HUGE = "9-999-99999-99-9999"  # its FFN weight alone is 381.1 MiB


class OnnxFlakyBackend(FlakyBackend):
    """A backend handed graphs: the session checks that each arch can be built first."""

    uses_onnx = True


def _cli(argv: list[str]) -> int:
    from atb.profiler.cli import main

    level = logging.getLogger("atb").level
    try:
        return main(argv)
    finally:
        logging.getLogger("atb").setLevel(level)  # configure() sets it for the process


def test_the_pool_overflow_names_the_largest_weight_against_the_pool():
    from atb.arch import get_space
    from atb.profiler.onnx_builder import pool_overflow

    reason = pool_overflow(Arch.parse(HUGE))
    assert reason == ("too large to build: its largest weight, the FFN (999 x 99999), is 381.1 MiB; "
                      "a weight must fit the 128.0 MiB shared weight pool")
    assert "(30522 x 1100), is 128.1 MiB" in pool_overflow(Arch(1, 1100, 128, 1, 64))
    assert "hidden size 1050" in pool_overflow(Arch(1, 1050, 128, 1, 64))
    assert pool_overflow(get_space("pretrain", "base").largest) is None


def test_building_a_graph_too_large_for_the_pool_is_an_arch_error():
    from atb.errors import ArchSpecError
    from atb.profiler.onnx_graph import build_onnx

    with pytest.raises(ArchSpecError, match=f"arch {HUGE} is too large to build: .* 381.1 MiB"):
        build_onnx(Arch.parse(HUGE))


def test_a_requested_arch_too_large_is_stored_as_failed_and_the_cli_exits_2(tmp_path, monkeypatch, capsys):
    backend = _install(monkeypatch, OnnxFlakyBackend("onnxruntime"))
    code = _cli(["--arch", HUGE, "--threads", "1", "--workspace", str(tmp_path), "--json"])
    out, err = capsys.readouterr()
    assert code == 2 and backend.loaded == []  # decided before any graph is built
    assert err.splitlines()[-1] == (f"atb-profile: error: nothing measured: arch {HUGE} failed: too large to "
                                    "build: its largest weight, the FFN (999 x 99999), is 381.1 MiB; a weight must "
                                    "fit the 128.0 MiB shared weight pool")
    assert '"failed": 1' in out  # the report is still printed
    with LatencyStore.open(Workspace.resolve(tmp_path).store_path) as store:
        (row,) = [r for r in store.measurements() if r.role == "requested"]
    assert row.status == "failed" and row.error.startswith("too large to build: ")


def test_an_arch_run_with_one_arch_measured_exits_0(tmp_path, monkeypatch, capsys):
    _install(monkeypatch, OnnxFlakyBackend("onnxruntime"))
    code = _cli(["--arch", HUGE, "--arch", "2-128-256-2-128", "--threads", "1", "--workspace", str(tmp_path)])
    assert code == 0 and "too large to build" in capsys.readouterr().out


def test_a_sampled_run_whose_every_arch_failed_exits_0(tmp_path, monkeypatch, capsys):
    _install(monkeypatch, FlakyBackend("onnxruntime", fails_to_load=lambda arch, index: index is not None))
    code = _cli(["--samples", "2", "--threads", "1", "--workspace", str(tmp_path), "--json"])
    assert code == 0 and '"failed": 2' in capsys.readouterr().out
