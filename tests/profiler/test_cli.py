"""atb-profile end to end (smoke timing rule): JSON contract, resume, crash safety, lock, errors."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from atb.profiler.lock import HostLock
from tests.conftest import cli_env

PROFILE = [sys.executable, "-m", "atb.profiler.cli"]


def run(args, **env):
    return subprocess.run(PROFILE + args, capture_output=True, text=True, env=cli_env(**env), timeout=300)


def _sampled(ws) -> int:
    try:
        conn = sqlite3.connect(ws / "latency.sqlite")
        return conn.execute("SELECT COUNT(DISTINCT arch) FROM measurements WHERE role='sampled'").fetchone()[0]
    except sqlite3.OperationalError:  # the profiler has not created the schema yet
        return 0


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    ws = tmp_path_factory.mktemp("ws")
    env = dict(ATB_LOCK_FILE=ws / "lock", ATB_TIMING_RULE="smoke")
    out = run(["--device", "cpu", "--samples", "4", "--threads", "1", "--workspace", str(ws), "--json"], **env)
    assert out.returncode == 0, out.stderr
    return ws, json.loads(out.stdout), env


def test_json_contract(profiled):
    ws, result, _ = profiled
    assert {"device_key", "total", "new", "bert_base_ms", "results"} <= set(result)
    assert result["total"] == 4 and result["new"] == 4
    assert result["device_key"].startswith("cpu-onnxruntime-t1-fp32-s128-b1-")
    assert result["bert_base_ms"] > 0
    for r in result["results"]:
        assert {"arch", "latency_ms", "speedup"} <= set(r)
        assert r["speedup"] == pytest.approx(result["bert_base_ms"] / r["latency_ms"], rel=0.2)


def test_rerun_with_same_count_times_nothing(profiled):
    ws, first, env = profiled
    out = run(["--samples", "4", "--threads", "1", "--workspace", str(ws), "--json"], **env)
    result = json.loads(out.stdout)
    assert out.returncode == 0 and result["new"] == 0 and result["total"] == 4


def test_given_archs_even_outside_the_space(profiled):
    ws, _, env = profiled
    out = run(["--arch", "12-768-3072-12-768", "--arch", "2-130-520-2-130", "--threads", "1",
               "--workspace", str(ws), "--json"], **env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert [r["arch"] for r in result["results"]] == ["12-768-3072-12-768", "2-130-520-2-130"]
    # No wall-clock ratio is asserted (a loaded machine moves it): only that both were timed
    # and the tiny arch, ~100x less work, comes out faster than BERT-base.
    assert 0 < result["results"][0]["speedup"] < result["results"][1]["speedup"]
    assert result["total"] == 4  # requested archs are not samples


def test_export_csv(profiled, tmp_path):
    ws, _, env = profiled
    out = run(["export", "--workspace", str(ws), "-o", str(tmp_path / "labels.csv")], **env)
    assert out.returncode == 0, out.stderr
    from atb.profiler.labels import LabelSet

    labels = LabelSet.from_csv(tmp_path / "labels.csv")
    assert len(labels) >= 4 and (labels.speedup > 0).all()


def test_kill_minus_9_loses_at_most_the_arch_in_flight_and_resume_completes(tmp_path):
    env = cli_env(ATB_LOCK_FILE=tmp_path / "lock", ATB_TIMING_RULE="smoke")
    args = PROFILE + ["--samples", "12", "--threads", "1", "--workspace", str(tmp_path)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        if (tmp_path / "latency.sqlite").exists() and _sampled(tmp_path) >= 3:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = _sampled(tmp_path)
    assert 3 <= kept < 12
    done = subprocess.run(args + ["--json"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["total"] == 12 and result["new"] == 12 - kept
    assert _sampled(tmp_path) == 12  # no arch timed twice, none lost


def test_a_second_timer_on_the_host_is_refused(tmp_path):
    os.environ["ATB_LOCK_FILE"] = str(tmp_path / "lock")
    with HostLock("test holder"):
        out = run(["--samples", "1", "--workspace", str(tmp_path)])
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "another atb timer" in out.stderr and "test holder" in out.stderr


@pytest.mark.parametrize("args,needle", [
    (["--arch", "5-564-1054"], "malformed arch"),
    (["--arch", "5-564-1054-7-512"], "divisible"),
    (["--samples", "3", "--backend", "tvm"], "invalid choice"),
    (["--samples", "3", "--precision", "int4"], "invalid choice"),
    (["--samples", "3", "--precision", "int8", "--backend", "torch"], "torch eager"),
    (["--samples", "-1"], "at least 0"),
    (["--samples", "3", "--threads", "999"], "threads"),
    (["--samples", "3", "--workspace", "/proc/atb-workspace"], "not writable"),
    ([], "nothing to time"),
])
def test_bad_input_is_one_line_and_exit_2(args, needle, tmp_path):
    if "--workspace" not in args:
        args = args + ["--workspace", str(tmp_path)]
    out = run(args, ATB_LOCK_FILE=tmp_path / "lock")
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and needle in out.stderr
    assert "Traceback" not in out.stderr


def test_corrupt_store_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "latency.sqlite").write_bytes(b"garbage" * 1000)
    for args in (["--samples", "1"], ["export", "-o", str(tmp_path / "x.csv")]):
        out = run(args + ["--workspace", str(tmp_path)], ATB_LOCK_FILE=tmp_path / "lock")
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and "corrupt" in out.stderr


def test_export_without_a_store_names_the_command(tmp_path):
    out = run(["export", "--workspace", str(tmp_path / "nothing"), "-o", str(tmp_path / "x.csv")])
    assert out.returncode == 2 and "atb-profile" in out.stderr


def _report(key: str, iqr_fractions: list[float]):
    from atb.arch import Arch
    from atb.profiler.session import ArchResult, ProfileReport

    results = [ArchResult(Arch(2, 128, 256, 2, 128), 10.0, 10.0, 20.0, iqr_ms=10.0 * f) for f in iqr_fractions]
    return ProfileReport(key, 1, len(results), len(results), 200.0, results, {})


def test_noise_advice_suggests_one_thread_when_most_labels_are_noisy():
    from atb.profiler.repeatability import report_warning

    key = "cpu-onnxruntime-t2-fp32-s128-b1-0de4e8bf"
    noisy = _report(key, [0.2, 0.3, 0.01])
    assert noisy.noisy_share == pytest.approx(2 / 3)
    assert "--threads 1" in report_warning(noisy)
    assert report_warning(_report(key, [0.2, 0.01, 0.01])) is None  # a minority is noisy
    assert report_warning(_report(key.replace("-t2-", "-t1-"), [0.2, 0.3])) is None  # nothing to reduce


def test_sentinels_repeating_worse_than_3_percent_give_the_warning_first():
    import dataclasses

    from atb.profiler.repeatability import BETWEEN, Repeatability, report_warning

    key = "cpu-onnxruntime-t1-fp32-s128-b1-0de4e8bf"
    rep = dataclasses.asdict(Repeatability(0.08, 0.12, 6, BETWEEN))
    report = dataclasses.replace(_report(key, [0.01, 0.01]), key_repeatability=rep)
    assert report_warning(report).startswith("warning: labels repeat to 8.0% only")
