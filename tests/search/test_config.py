"""SearchConfig: the run's settings and its config.json; what a resumed run may change."""

import dataclasses
import json

import pytest

from atb.errors import UsageError
from atb.search import RESUME_OVERRIDES, SearchConfig, SearchPorts, run_search
from atb.search.config import TASK_FITNESS, resolve_config

from tests.search.synthetic import SyntheticFitness, SyntheticLatency, SyntheticMeasure


def test_defaults_are_algorithm_2():
    c = SearchConfig(targets=15)
    assert c.targets == (15.0,) and c.generations == 4 and c.population == 25
    assert c.mutation_prob == c.explore_prob == 0.5 and c.verify and c.validate() is c


def test_json_round_trip(tmp_path):
    c = SearchConfig(targets=[8, 12], algorithm="pareto", seed=3, fitness_spec="probe:kjv-genre",
                     device_key="cpu-onnxruntime-t1-fp32-s128-b1-00000000")
    c.save(tmp_path / "config.json")
    d = json.loads((tmp_path / "config.json").read_text())
    assert d["targets"] == [8, 12] and len(d["windows"]) == 2 and d["version"] == 1
    assert SearchConfig.load(tmp_path / "config.json") == c


def test_a_config_json_written_before_the_dataclass_loads(tmp_path):
    old = {"targets": [15.0], "algorithm": "evolution", "space": "pretrain", "super_arch": "4-384-1536-6-384",
           "generations": 4, "population": 25, "seed": 0, "top_k": 3, "low_margin": 0.02,
           "high_margin": 0.06, "mutation_prob": 0.5, "explore_prob": 0.5, "device_key": "k",
           "fitness": "loss", "windows": [{"target": 15.0, "lo": 15.3, "hi": 15.9}]}
    (tmp_path / "config.json").write_text(json.dumps(old))
    c = SearchConfig.load(tmp_path / "config.json")
    assert c.space == "pretrain" and c.verify and c.max_verify_rounds == 3 and c.fitness_spec == "loss"


@pytest.mark.parametrize("text,needle", [("{", "cannot read"), ('{"targets": [15], "colour": 1}', "colour"),
                                         ("[1, 2]", "not a search configuration")])
def test_a_damaged_config_json_is_a_usage_error(tmp_path, text, needle):
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(UsageError, match=needle):
        SearchConfig.load(tmp_path / "config.json")


@pytest.mark.parametrize("options", [
    {"algorithm": "bogus"}, {"generations": 0}, {"population": 0}, {"top_k": 0}, {"targets": [1.0]},
    {"targets": [10, 15]}, {"fitness_spec": "accuracy"}, {"max_verify_rounds": 0}, {"mutation_prob": 2},
    {"low_margin": 0.1, "high_margin": 0.05}, {"targets": []}, {"colour": "red"},
])
def test_bad_settings_are_usage_errors(options):
    with pytest.raises(UsageError):
        resolve_config({"targets": 15, **options})


def test_a_task_screens_with_the_retention_fitness_unless_told_otherwise():
    assert TASK_FITNESS == "retention"
    assert resolve_config({"targets": 15, "task": "kjv-next"}).fitness_spec == "retention"
    assert SearchConfig(targets=15, task="kjv-next").fitness_spec == "retention"
    assert resolve_config({"targets": 15, "task": "kjv-next", "fitness_spec": "params"}).fitness_spec == "params"
    assert resolve_config({"targets": 15}).fitness_spec == "loss"  # without a task: the supernet's loss
    saved = SearchConfig(targets=15, task="kjv-next", fitness_spec="params")
    assert resolve_config({"task": "kjv-next"}, saved).fitness_spec == "params"  # kept


def test_resume_allows_only_the_documented_overrides():
    saved = SearchConfig(targets=15, generations=2, space="pretrain", device_key="k")
    assert set(RESUME_OVERRIDES) == {"verify", "top_k", "max_verify_rounds", "extract"}
    c = resolve_config({"verify": False, "top_k": 1, "extract": True, "max_verify_rounds": 1}, saved)
    assert (c.verify, c.top_k, c.extract, c.max_verify_rounds) == (False, 1, True, 1)
    assert c.generations == 2 and c.targets == (15.0,)
    assert resolve_config({"targets": 15, "generations": 2, "space": None}, saved) == saved  # same value, or not given
    for field, value in (("generations", 3), ("seed", 1), ("device_key", "other"), ("space", "kd"),
                         ("low_margin", 0.0), ("targets", 12)):
        with pytest.raises(UsageError, match=f"keeps its {field}"):
            resolve_config({field: value}, saved)


def test_the_engine_refuses_a_changed_setting_on_resume(tmp_path, small_space):
    ports = SearchPorts(SyntheticLatency(), SyntheticFitness(small_space), SyntheticMeasure())
    r = run_search(SearchConfig(targets=15, generations=1, population=6), tmp_path, ports, run_name="r")
    saved = SearchConfig.load(r.run_dir / "config.json")
    assert saved.super_arch == str(small_space.super_arch)
    with pytest.raises(UsageError, match="population"):
        run_search(dataclasses.replace(saved, population=7), None, ports, resume=r.run_dir)
    again = run_search(dataclasses.replace(saved, top_k=1), None, ports, resume=r.run_dir)
    assert again.run_dir == r.run_dir and len(again.top_k) == 1


def test_the_engine_needs_its_collaborators(tmp_path, small_space):
    config = SearchConfig(targets=15)
    with pytest.raises(UsageError, match="latency predictor and a fitness"):
        run_search(config, tmp_path, SearchPorts(fitness=SyntheticFitness(small_space)))
    with pytest.raises(UsageError, match="measure"):
        run_search(config, tmp_path, SearchPorts(SyntheticLatency(), SyntheticFitness(small_space)))
    quick = SearchConfig(targets=15, verify=False, generations=1, population=6)
    r = run_search(quick, tmp_path, SearchPorts(SyntheticLatency(), SyntheticFitness(small_space)))
    assert r.best is not None and not r.verified
