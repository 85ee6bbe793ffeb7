"""atb-predictor and atb-plot predictor, in process (fast) and one --help in a subprocess."""

import json
import subprocess
import sys

import pytest

from atb.plot_cli import main as plot_main
from atb.predictor.cli import main

from .conftest import KEY, OTHER_KEY, labels_to_csv

FAST = ["--models", "flops_linear,additive", "--folds", "3"]


@pytest.fixture(scope="module")
def csvs(labels, other_labels, tmp_path_factory):
    d = tmp_path_factory.mktemp("csv")
    return labels_to_csv(labels, d / "a.csv"), labels_to_csv(other_labels, d / "b.csv")


@pytest.fixture
def fitted(csvs, tmp_path, capsys):
    ws = tmp_path / "ws"
    assert main(["fit", "--labels", str(csvs[0]), "--workspace", str(ws), "--json", *FAST]) == 0
    out = json.loads(capsys.readouterr().out)
    return ws, out


def test_fit_writes_the_workspace_artefact(fitted):
    ws, out = fitted
    assert out["path"] == str(ws / "predictors" / f"{KEY}.json")
    assert out["device_key"] == KEY and out["chosen"] in ("flops_linear", "additive")
    assert (ws / "predictors" / f"{KEY}.npz").is_file()


def test_eval_json_keys(fitted, csvs, capsys):
    ws, out = fitted
    assert main(["eval", "--predictor", out["path"], "--labels", str(csvs[0]), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    for key in ("n", "rmse_ms", "mape", "within_5", "within_10", "kendall_tau", "spearman_rho"):
        assert key in m
    assert m["n"] == 400 and 0 <= m["mape"] <= 1 and 0 <= m["within_10"] <= 1


def test_eval_on_another_key_is_refused_unless_allowed(fitted, csvs, capsys):
    _, out = fitted
    args = ["eval", "--predictor", out["path"], "--labels", str(csvs[1]), "--device-key", OTHER_KEY]
    assert main(args) == 2
    assert "fitted for device key" in capsys.readouterr().err
    assert main(args + ["--allow-other-device", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["device_key"] == OTHER_KEY


def test_predict_json(fitted, capsys):
    _, out = fitted
    assert main(["predict", "4-512-1024-8-512", "1-128-128-1-64", "--predictor", out["path"], "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    rows = res["predictions"]
    assert [r["arch"] for r in rows] == ["4-512-1024-8-512", "1-128-128-1-64"]
    assert rows[0]["latency_ms"] > rows[1]["latency_ms"] > 0
    assert rows[0]["speedup"] == pytest.approx(res["bert_base_ms"] / rows[0]["latency_ms"])


@pytest.mark.parametrize("argv,text", [
    (["predict", "4-512-1024-8-51", "--predictor", "x.json"], "not divisible"),
    (["predict", "4-512-1024", "--predictor", "x.json"], "malformed arch"),
    (["predict", "1-128-128-1-64", "--predictor", "missing.json"], "no predictor artefact"),
    (["fit", "--labels", "missing.csv"], "no such label file"),
    (["fit", "--device-key", "k", "--backend", "onnxruntime"], "not both"),
    (["fit", "--threads", "2"], "--threads needs --backend"),
    (["fit", "--models", "forest"], "choose from"),
])
def test_bad_input_is_one_line_and_exit_2(argv, text, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert text in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_transfer_command(fitted, csvs, capsys):
    ws, out = fitted
    assert main(["transfer", "--base", out["path"], "--labels", str(csvs[1]), "-n", "40",
                 "--workspace", str(ws), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["device_key"] == OTHER_KEY and res["transfer"]["n_samples"] == 40


def test_parity_plot(fitted, tmp_path, capsys):
    _, out = fitted
    png = tmp_path / "parity.png"
    assert plot_main(["predictor", "--predictor", out["path"], "-o", str(png), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["files"] == [str(png)] and png.read_bytes()[:4] == b"\x89PNG"
    assert res["metrics"]["n"] > 0


def test_help_is_instant_without_heavy_imports():
    code = ("import sys; from atb.predictor.cli import main\n"
            "try: main(['--help'])\nexcept SystemExit: pass\n"
            "heavy = [m for m in ('sklearn', 'matplotlib', 'torch', 'scipy') if m in sys.modules]\n"
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
