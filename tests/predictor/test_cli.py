"""atb-predictor and atb-plot predictor, in process (fast) and one --help in a subprocess."""

import json
import subprocess
import sys

import pytest

from atb.plot_cli import main as plot_main
from atb.predictor.cli import main
from atb.predictor.metrics import PREDICTION_KEYS, SPEEDUP_KEYS

from .conftest import KEY, OTHER_KEY, another_session, labels_to_csv

FAST = ["--models", "flops_linear,additive", "--folds", "3"]


@pytest.fixture(scope="module")
def csvs(labels, other_labels, tmp_path_factory):
    d = tmp_path_factory.mktemp("csv")
    return (labels_to_csv(labels, d / "a.csv"), labels_to_csv(other_labels, d / "b.csv"),
            labels_to_csv(another_session(labels, 1.08), d / "a-next-session.csv"))


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
    assert set(PREDICTION_KEYS) <= set(m)
    assert m["n"] == 400 and 0 <= m["mape"] <= 1 and 0 <= m["within_10"] <= 1
    assert m["same_session"] is True and m["session_note"] is None and m["bert_base_shift"] == 0


def test_eval_on_another_key_is_refused_unless_allowed(fitted, csvs, capsys):
    _, out = fitted
    args = ["eval", "--predictor", out["path"], "--labels", str(csvs[1]), "--device-key", OTHER_KEY]
    assert main(args) == 2
    assert "fitted for device key" in capsys.readouterr().err
    assert main(args + ["--allow-other-device", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["device_key"] == OTHER_KEY and res["same_session"] is False


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


def test_fit_json_carries_both_metric_families(fitted):
    _, out = fitted
    assert set(PREDICTION_KEYS) <= set(out["metrics"])
    for scores in (out["cv_scores"], out["heldout_metrics"]):
        assert scores and all(set(SPEEDUP_KEYS) <= set(m) for m in scores.values())


def test_fit_tables_label_both_families(csvs, tmp_path, capsys):
    assert main(["fit", "--labels", str(csvs[0]), "--workspace", str(tmp_path / "ws"), *FAST]) == 0
    text = capsys.readouterr().out
    assert text.count("MAPE ms") == 2 and text.count("MAPE speedup") == 2  # CV and held-out tables


def test_eval_text_same_session_shows_both_families_and_no_warning(fitted, csvs, capsys):
    _, out = fitted
    assert main(["eval", "--predictor", out["path"], "--labels", str(csvs[0])]) == 0
    text = capsys.readouterr().out
    assert "another profiling session" not in text and "MAPE ms" in text and "MAPE speedup" in text


def test_eval_on_another_session_says_so_and_shows_both(fitted, csvs, capsys):
    _, out = fitted
    assert main(["eval", "--predictor", out["path"], "--labels", str(csvs[0]), "--json"]) == 0
    here = json.loads(capsys.readouterr().out)
    assert main(["eval", "--predictor", out["path"], "--labels", str(csvs[2]), "--json"]) == 0
    there = json.loads(capsys.readouterr().out)
    assert there["same_session"] is False and there["bert_base_shift"] == pytest.approx(0.08)
    assert there["speedup_mape"] == pytest.approx(here["speedup_mape"])
    assert there["mape"] > here["mape"] + 0.04

    assert main(["eval", "--predictor", out["path"], "--labels", str(csvs[2])]) == 0
    lines = capsys.readouterr().out.splitlines()
    notes = [line for line in lines if "another profiling session" in line]
    assert len(notes) == 1 and "BERT-base" in notes[0] and "+8.0%" in notes[0]
    header = next(line for line in lines if "MAPE ms" in line)
    assert "MAPE speedup" in header  # side by side in one table


def test_parity_plot_of_speedups(fitted, csvs, capsys):
    ws, out = fitted
    assert plot_main(["predictor", "--predictor", out["path"], "--speedup", "--workspace", str(ws),
                      "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    png = ws / "plots" / f"predictor-{KEY}-speedup.png"
    assert res["files"] == [str(png)] and png.read_bytes()[:4] == b"\x89PNG"
    assert res["quantity"] == "speedup" and set(SPEEDUP_KEYS) <= set(res["metrics"])

    other = ws / "other-session.png"
    assert plot_main(["predictor", "--predictor", out["path"], "--speedup", "--labels", str(csvs[2]),
                      "-o", str(other), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert other.read_bytes()[:4] == b"\x89PNG" and res["same_session"] is False


def test_plot_arguments_live_in_the_cli_module():
    from pathlib import Path

    import atb.predictor.plots as plots

    assert "argparse" not in Path(plots.__file__).read_text()
    assert not hasattr(plots, "add_plot_subcommand")
