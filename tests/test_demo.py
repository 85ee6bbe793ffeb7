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


def test_the_stages_build_the_typed_configs(tmp_path, monkeypatch):
    """What the profile and search stages hand the library (the stages themselves are the
    library's, tested there)."""
    import atb.compose
    import atb.search
    from atb.demo import DEMO_RERANK, DEMO_SUPER, DEMO_TASK, DemoConfig, _profile, _search
    from atb.profiler.session import ProfileReport

    seen = {}
    key = "cpu-onnxruntime-t1-fp32-s128-b1-00000000"
    report = ProfileReport(key, 1, 30, 30, 190.0, [], {})
    monkeypatch.setattr(atb.compose, "profile", lambda config, ws: seen.update(profile=config) or report)
    monkeypatch.setattr(atb.compose, "search_ports", lambda config, ws: "ports")
    monkeypatch.setattr(atb.search, "run_search",
                        lambda config, ws, ports: seen.update(search=config, ports=ports))
    assert _profile(tmp_path, DemoConfig(max_samples=40))["device_key"] == key
    profiling = seen["profile"]
    assert (profiling.samples, profiling.max_samples, profiling.super_config) == ("auto", 40, DEMO_SUPER)
    _search(tmp_path, DemoConfig(target_speedup=12.0, seed=2), "k")
    searching = seen["search"]
    assert searching.targets == (12.0,) and searching.seed == 2 and searching.device_key == "k"
    assert (searching.task, searching.rerank, searching.extract) == (DEMO_TASK, DEMO_RERANK, True)
    assert searching.fitness_spec == "retention" and seen["ports"] == "ports"
    _search(tmp_path, DemoConfig(downstream=False), "k")
    assert seen["search"].task is None and seen["search"].fitness_spec == "loss"
