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
