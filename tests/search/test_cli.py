import json
import subprocess
import sys

import pytest

from atb.search import api
from atb.search.cli import main

from tests.search.synthetic import SyntheticFitness, SyntheticLatency, SyntheticMeasure


@pytest.fixture
def synthetic(monkeypatch, small_space):
    """Replace the real predictor, supernet and profiler by the synthetic ones."""
    monkeypatch.setattr(api, "_real_fitness", lambda ws, space, spec: SyntheticFitness(small_space))
    monkeypatch.setattr(api, "_real_latency", lambda ws, key: SyntheticLatency())
    monkeypatch.setattr(api, "_real_measure", lambda ws, key, **kw: SyntheticMeasure())


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
