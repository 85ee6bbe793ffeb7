"""``atb-supernet``: JSON on stdout, and one line + exit code 2 for every bad input."""

from __future__ import annotations

import json
import shutil

import pytest

from atb.supernet.cli import main


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_evaluate_json(trained_ws, capsys):
    code, out, _ = _run(capsys, "evaluate", "--workspace", str(trained_ws), "--arch", "1-128-128-1-64", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["arch"] == "1-128-128-1-64" and result["fitness"] == -result["loss"]


def test_extract_json(trained_ws, tmp_path, capsys):
    out_dir = tmp_path / "m"
    code, out, _ = _run(capsys, "extract", "--workspace", str(trained_ws), "--arch", "2-128-160-2-128",
                        "-o", str(out_dir), "--json")
    assert code == 0 and json.loads(out)["model_type"] == "bert"
    assert (out_dir / "config.json").is_file()


def test_data_json(corpus, tmp_path, capsys):
    code, out, _ = _run(capsys, "data", "--workspace", str(tmp_path), "--text", str(corpus), "--json")
    assert code == 0 and json.loads(out)["train_tokens"] > 0


@pytest.mark.parametrize("argv, needle", [
    (["evaluate", "--arch", "3-128-128-1-64"], "outside"),  # more layers than the supernet
    (["extract", "--arch", "1-128-128-1-64", "-o", "x"], None),  # filled in below: no checkpoint
    (["evaluate", "--arch", "banana"], "malformed arch"),
])
def test_bad_input_is_one_line_exit_2(trained_ws, tmp_path, capsys, argv, needle):
    ws = trained_ws if needle else tmp_path / "empty"
    code, out, err = _run(capsys, *argv, "--workspace", str(ws))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert (needle or "run atb-supernet train") in err


def test_corrupt_shard_exit_2(data_ws, tmp_path, capsys):
    ws = tmp_path / "ws"
    shutil.copytree(data_ws / "data", ws / "data")
    shard = next((ws / "data").glob("heldout-*.safetensors"))
    shard.write_bytes(b"garbage")
    shutil.copytree(data_ws / "supernet", ws / "supernet")
    code, _, err = _run(capsys, "evaluate", "--workspace", str(ws), "--arch", "1-128-128-1-64")
    assert code == 2 and "corrupt" in err and "atb-supernet data" in err
    assert len(err.strip().splitlines()) == 1


def test_train_rejects_resume_without_checkpoint(data_ws, tmp_path, capsys):
    ws = tmp_path / "ws"
    shutil.copytree(data_ws / "data", ws / "data")
    code, _, err = _run(capsys, "train", "--workspace", str(ws), "--resume", "--steps", "1")
    assert code == 2 and "nothing to resume" in err


def test_help_is_cheap():
    import subprocess
    import sys

    code = ("import sys, atb.supernet.cli; "
            "assert 'torch' not in sys.modules, 'torch imported by --help path'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_python_m_atb_supernet_is_the_training_entry_point(data_ws, tmp_path):
    """What ``torchrun -m atb.supernet`` runs: the training flags, one JSON summary."""
    import subprocess
    import sys

    ws = tmp_path / "ws"
    shutil.copytree(data_ws / "data", ws / "data")
    argv = [sys.executable, "-m", "atb.supernet", "--workspace", str(ws), "--super", "2-160-192-2-128",
            "--steps", "1", "--batch-size", "4", "--seq-len", "32", "--samples", "2", "--json"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["step"] == 1 and summary["processes"] == 1 and summary["rank"] == 0
    bad = subprocess.run(argv[:3] + ["--steps", "x"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    old = subprocess.run([sys.executable, "-m", "atb.supernet.train"], capture_output=True, text=True,
                         timeout=120)
    assert old.returncode != 0 and "python -m atb.supernet" in old.stderr


def test_train_rejects_unknown_depth(data_ws, capsys):
    with pytest.raises(SystemExit) as stop:  # argparse's choices: one line, exit 2
        main(["train", "--workspace", str(data_ws), "--depth", "bogus"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "--depth" in err and "spread" in err


def test_train_help_names_the_depth_rules(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--depth {first,spread}" in out and "the paper's rule" in out
