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


def _comparison():
    ci = [0.55, 0.65]
    diff = {"difference": 0.05, "ci_low": 0.01, "ci_high": 0.09, "n_examples": 400,
            "verdict": "A better"}
    return {"task": "kjv-next", "difference": diff,
            "searched": {"arch": "5-364-632-8-256", "measured_speedup": 15.2, "fitness": 14.4,
                         "validation_accuracy": 0.62, "validation_ci": ci},
            "bert_rule": {"arch": "3-352-1408-11-352", "measured_speedup": 15.4, "fitness": 13.4,
                          "validation_accuracy": 0.57, "validation_ci": ci},
            "layer_cut": {"arch": "3-384-1536-12-384", "layers": 3, "measured_speedup": 14.3,
                          "in_band": True, "teacher": "minilm", "model_dir": "runs/x/layer-cut",
                          "validation_accuracy": 0.60, "validation_ci": ci,
                          "difference": {**diff, "difference": 0.02, "ci_low": -0.02,
                                         "verdict": "no difference at this size"}}}


def test_the_summary_shows_the_layer_cut_where_it_shows_the_rule_arch(capsys):
    from atb.demo import _print_comparison

    _print_comparison(_comparison())
    lines = capsys.readouterr().out.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("BERT rule"))
    cut = lines[rule + 1]
    assert cut.startswith("layer cut") and "3-384-1536-12-384: measured 14.30x" in cut
    assert "minilm's first 3 layers, untrained" in cut and "validation accuracy 60.0%" in cut
    assert lines[-2].startswith("searched - rule") and "searched better" in lines[-2]
    assert lines[-1].startswith("searched - cut") and "+2.0% [-2.0%, +9.0%]" in lines[-1]


def test_the_layer_cut_is_written_from_the_teacher_and_scored_like_the_candidates(tmp_path,
                                                                                 monkeypatch):
    """The stage's plumbing (save_layer_cut and the probe are tested where they live)."""
    from types import SimpleNamespace

    import numpy as np

    import atb.compose
    import atb.supernet.layer_cut
    from atb.demo import DEMO_SUPER, DEMO_TASK, _layer_cut
    from atb.search.baselines import LayerCut

    rng = np.random.default_rng(0)
    winner, cut_correct = rng.random(300) < 0.7, rng.random(300) < 0.6
    saved, probed = [], []
    monkeypatch.setattr(atb.supernet.layer_cut, "save_layer_cut", lambda k, out, teacher: saved.append(
        (k, out, teacher)) or {"out_dir": str(out)})

    class Probe:
        def __init__(self, ws, task):
            probed.append(task)

        def score_model(self, model_dir):
            return {"validation_accuracy": cut_correct.mean(), "correct": cut_correct}

    monkeypatch.setattr(atb.compose, "SubmodelProbe", Probe)
    primary = SimpleNamespace(layer_cut=LayerCut("3-384-1536-12-384", 14.2, 15.0, 14.4),
                              reranking=SimpleNamespace(winner=SimpleNamespace(correct=winner)))
    out = _layer_cut(tmp_path, SimpleNamespace(primary=primary, run_dir=tmp_path / "run"))
    assert saved == [(3, tmp_path / "run" / "layer-cut", DEMO_SUPER)] and probed == [DEMO_TASK]
    assert out["arch"] == "3-384-1536-12-384" and out["in_band"] is True
    assert out["model_dir"] == str(tmp_path / "run" / "layer-cut")
    d = out["difference"]
    assert d["n_examples"] == 300 and d["split"] == "validation"
    assert abs(d["difference"] - (winner.mean() - cut_correct.mean())) < 1e-6  # float32 means


def test_the_summary_ends_with_the_further_training_command(capsys):
    from atb.demo import _print

    result = {
        "workspace": "ws", "plots": [], "wall_s": 60.0,
        "profile": {"new": 200, "total": 200, "device_key": "k", "bert_base_ms": 190.0},
        "predictor": {"chosen": "mlp", "heldout": {"mape": 0.03, "within_10": 1.0,
                                                   "kendall_tau": 0.9}},
        "supernet": {"init": "minilm", "step": 200, "loss": 0.3},
        "search": {"target_speedup": 15.0, "evaluated": 100, "run_dir": "runs/x"},
        "further_training": {"command": "atb-search --workspace ws --resume runs/x --train-further",
                             "steps": 1000, "archs": ["4-320-1280-10-320"], "estimated_minutes": 12.3},
    }
    _print(result)
    out = capsys.readouterr().out
    assert "about 12 min here): atb-search --workspace ws --resume runs/x --train-further" in out
