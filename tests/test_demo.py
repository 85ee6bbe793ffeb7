import subprocess
import sys

import pytest


@pytest.mark.parametrize("args,needle", [
    (["--samples", "5"], "too few"),
    (["--train-steps", "-1"], "at least 0"),
    (["--target-speedup", "0.5"], "greater than 1"),
])
def test_demo_refuses_bad_input_before_any_work(args, needle, tmp_path):
    out = subprocess.run([sys.executable, "-m", "atb.demo", "--workspace", str(tmp_path)] + args,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and needle in out.stderr


def test_the_summary_carries_the_profilers_noise_warning(capsys):
    from atb.demo import _print

    warning = "warning: labels repeat to 8.0% only (...): no cause visible; try an idle host"
    result = {
        "workspace": "ws", "plots": [], "wall_s": 60.0,
        "profile": {"new": 200, "total": 200, "device_key": "k", "bert_base_ms": 190.0,
                    "repeatability": {"median": 0.08, "n": 6, "scope": "between processes"},
                    "warning": warning},
        "predictor": {"chosen": "mlp", "heldout": {"mape": 0.03, "within_10": 1.0,
                                                   "kendall_tau": 0.9}},
        "supernet": {"init": "minilm", "step": 200, "loss": 0.3},
        "search": {"target_speedup": 15.0, "evaluated": 100, "run_dir": "runs/x"},
    }
    _print(result)
    lines = capsys.readouterr().out.splitlines()
    noise = next(i for i, line in enumerate(lines) if line.startswith("label noise"))
    assert lines[noise + 1].strip() == warning
