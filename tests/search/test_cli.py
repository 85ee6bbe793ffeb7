import json
import subprocess
import sys

import pytest

from atb import compose
from atb.search import SearchConfig, SearchPorts
from atb.search.cli import main

from tests.search.synthetic import SyntheticFitness, SyntheticLatency, SyntheticMeasure


@pytest.fixture
def synthetic(monkeypatch, small_space):
    """Replace the real predictor, supernet and profiler by the synthetic ones."""
    monkeypatch.setattr(compose, "search_fitness", lambda ws, space, spec: SyntheticFitness(small_space))
    monkeypatch.setattr(compose, "search_latency", lambda ws, key: SyntheticLatency())
    monkeypatch.setattr(compose, "search_measure", lambda ws, key: SyntheticMeasure())


def test_json_contract(tmp_path, synthetic, capsys):
    rc = main(["--target-speedup", "15", "--workspace", str(tmp_path), "--json", "--top-k", "2"])
    out, err = capsys.readouterr()
    assert rc == 0
    d = json.loads(out)  # exactly one JSON object on stdout
    assert {"target_speedup", "best", "top_k", "evaluated", "run_dir"} <= set(d)
    assert d["target_speedup"] == 15 and len(d["top_k"]) == 2 and d["evaluated"] >= 100
    for c in [d["best"], *d["top_k"]]:
        assert {"arch", "fitness", "predicted_speedup", "measured_speedup"} <= set(c)
        assert c["measured_speedup"] is not None


def test_human_output_names_the_run(tmp_path, synthetic, capsys):
    assert main(["--target-speedup", "12", "--workspace", str(tmp_path), "--no-verify",
                 "--algorithm", "random", "--generations", "2", "--population", "8"]) == 0
    out = capsys.readouterr().out
    assert "run directory" in out and "atb-plot pareto" in out


@pytest.mark.parametrize("argv", [
    ["--target-speedup", "0.5"],
    ["--target-speedup", "15", "--algorithm", "bogus"],
    ["--target-speedup", "15", "--generations", "0"],
    ["--target-speedup", "15", "--population", "-1"],
    ["--target-speedup", "abc"],
    [],
    ["--target-speedup", "10", "15"],  # several targets without --algorithm pareto
    ["--target-speedup", "400"],  # infeasible
    ["--resume", "/nonexistent/run"],
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, synthetic, capsys, argv):
    try:
        rc = main(argv + ["--workspace", str(tmp_path)])
    except SystemExit as exc:  # argparse's own errors (atb.cli.ArgumentParser: one line, 2)
        rc = exc.code
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and "error" in err


def test_infeasible_message_names_the_range(tmp_path, synthetic, capsys):
    assert main(["--target-speedup", "400", "--workspace", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "predicted speedups 10.20x to" in err and "choose --target-speedup between" in err


def test_missing_supernet_names_the_command(tmp_path, capsys):
    # No injected fitness: the real evaluator finds no checkpoint (or is not installed).
    assert main(["--target-speedup", "15", "--workspace", str(tmp_path)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_help_is_instant_and_imports_nothing_heavy():
    code = ("import sys\nfrom atb.search.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
            "heavy = [m for m in ('torch', 'optuna', 'matplotlib', 'onnxruntime') if m in sys.modules]\n"
            "print(heavy, file=sys.stderr)\nassert not heavy, heavy\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "--target-speedup" in proc.stdout


def test_resume_from_the_cli_finds_the_runs_workspace(tmp_path, synthetic, capsys):
    assert main(["--target-speedup", "15", "--workspace", str(tmp_path), "--name", "r", "--json",
                 "--generations", "2", "--population", "6"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["--resume", str(tmp_path / "runs" / "r"), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["run_dir"] == first["run_dir"] and again["evaluated"] == first["evaluated"]
    assert again["best"]["arch"] == first["best"]["arch"]


KEY = SyntheticLatency.device_key  # cpu-onnxruntime-t1-fp32-s128-b1-...


class FakeStore:
    """A latency store that holds only device keys (what the flag check reads)."""

    def __init__(self, *keys):
        self.keys = keys

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def device_keys(self):
        return {k: 10 for k in self.keys}


@pytest.fixture
def store_of(monkeypatch):
    import atb.predictor.auto

    def use(*keys):
        monkeypatch.setattr(atb.predictor.auto, "open_store", lambda ws: FakeStore(*keys))

    return use


@pytest.mark.parametrize("flags", [["--backend", "openvino"], ["--threads", "2"],
                                   ["--backend", "torch", "--threads", "1"]])
def test_a_flag_that_contradicts_the_predictors_key_is_one_line(tmp_path, synthetic, store_of, capsys, flags):
    store_of(KEY)  # the store's one key, so the predictor's
    rc = main(["--target-speedup", "15", "--workspace", str(tmp_path), *flags])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert KEY in err and "--device-key" in err  # names the key and how to choose another
    assert not (tmp_path / "runs").exists()  # nothing searched, nothing measured


def test_a_contradicting_flag_with_a_named_key_fails_before_loading_anything(tmp_path, capsys, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("loaded")

    for name in ("search_fitness", "search_latency", "search_measure"):
        monkeypatch.setattr(compose, name, boom)
    rc = main(["--target-speedup", "15", "--workspace", str(tmp_path), "--device-key", KEY,
               "--threads", "2"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert f"--threads 2 contradicts the predictor's device key {KEY}" in err and "--device-key" in err


def test_a_flag_that_contradicts_a_given_predictor(tmp_path, small_space):
    from atb.errors import DeviceKeyMismatchError

    with pytest.raises(DeviceKeyMismatchError, match=f"--backend openvino contradicts .*{KEY}"):
        compose.search_ports(SearchConfig(targets=15), tmp_path, SearchPorts(
            SyntheticLatency(), SyntheticFitness(small_space), SyntheticMeasure()), backend="openvino")


def test_flags_that_agree_with_the_key_pick_it(tmp_path, synthetic, store_of, capsys):
    store_of(KEY, "cpu-openvino-t1-fp32-s128-b1-bbbbbbbb")
    assert main(["--target-speedup", "15", "--workspace", str(tmp_path), "--json", "--backend",
                 "onnxruntime", "--threads", "1", "--generations", "1", "--population", "6"]) == 0
    assert json.loads(capsys.readouterr().out)["device_key"] == KEY


def test_flags_pick_the_stores_key_of_that_setting(tmp_path, store_of):
    from atb.errors import MissingInputError, UsageError

    ort = "cpu-onnxruntime-t1-fp32-s128-b1-aaaaaaaa"
    ov = "cpu-openvino-t1-fp32-s128-b1-bbbbbbbb"
    ov2 = "cpu-openvino-t2-fp32-s128-b1-bbbbbbbb"
    store_of(ort, ov, ov2, "synthetic-cpu")
    assert compose.device_key_for_flags(tmp_path, "onnxruntime", None) == ort
    assert compose.device_key_for_flags(tmp_path, "openvino", 2) == ov2
    with pytest.raises(UsageError, match="2 device keys"):
        compose.device_key_for_flags(tmp_path, "openvino", None)
    with pytest.raises(MissingInputError, match="--backend torch"):
        compose.device_key_for_flags(tmp_path, "torch", None)


def test_resume_keeps_the_saved_config(tmp_path, synthetic, capsys):
    assert main(["--target-speedup", "15", "--workspace", str(tmp_path), "--name", "r", "--json",
                 "--generations", "2", "--population", "6"]) == 0
    capsys.readouterr()
    run = tmp_path / "runs" / "r"
    saved = json.loads((run / "config.json").read_text())
    assert saved["generations"] == 2 and saved["verify"] is True and saved["device_key"] == KEY
    for flags, field in ((["--generations", "9"], "generations"), (["--target-speedup", "12"], "targets"),
                         (["--algorithm", "random"], "algorithm"), (["--fitness", "probe:kjv-genre"], "fitness")):
        assert main(["--resume", str(run), *flags]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and field in err and "config.json" in err
    # what happens after the search proper may change: here, the top-1 without measuring
    assert main(["--resume", str(run), "--json", "--top-k", "1", "--no-verify"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert len(d["top_k"]) == 1 and not d["verified"]
    assert d["config"]["generations"] == 2 and d["config"]["top_k"] == 1 and not d["config"]["verify"]


def test_resume_with_a_name_is_refused(tmp_path, synthetic, capsys):
    assert main(["--resume", str(tmp_path), "--name", "x"]) == 2
    assert "--name" in capsys.readouterr().err


def test_a_task_screens_with_retention_and_prints_how_the_winner_was_chosen(tmp_path, monkeypatch,
                                                                             small_space, capsys):
    from tests.search.test_rerank import FakeTaskScore

    specs = []

    def fitness(ws, space, spec):
        specs.append(spec)
        return SyntheticFitness(small_space)

    monkeypatch.setattr(compose, "search_fitness", fitness)
    monkeypatch.setattr(compose, "search_latency", lambda ws, key: SyntheticLatency())
    monkeypatch.setattr(compose, "search_measure", lambda ws, key: SyntheticMeasure())
    monkeypatch.setattr(compose, "search_task_score", lambda ws, cfg: FakeTaskScore())
    argv = ["--target-speedup", "15", "--workspace", str(tmp_path), "--task", "fake-task",
            "--rerank", "3"]
    assert main(argv + ["--name", "human"]) == 0
    out = capsys.readouterr().out
    assert specs == ["retention"]  # TASK_FITNESS: the first stage's default with --task
    assert main(argv + ["--name", "json", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)["reranking"]
    assert r["favourite"] in [s["arch"] for s in r["ranked"]] and r["chosen_by"]
    assert f"winner {r['winner']['arch']}: {r['chosen_by']}\n" in out  # the same run, printed
