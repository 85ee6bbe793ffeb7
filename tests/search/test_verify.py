import dataclasses
import json
import sys
import types

import numpy as np
import pytest

from atb import compose
from atb.errors import UsageError
from atb.search import SearchConfig, SearchPorts, run_search
from atb.search.fitness_cache import Record
from atb.search.baselines import LayerCut
from atb.search.verify import Beside, Verification, verify_top_k
from atb.search.window import Window

from atb.workspace import Workspace

from tests.search.synthetic import SyntheticFitness, SyntheticLatency, SyntheticMeasure, search_with


def rec(arch, fitness, pred):
    return Record(arch, fitness, pred, 0, "evolution")


def test_failed_and_out_of_band_measurements_are_dropped():
    w = Window.for_target(10)
    pool = [rec("4-384-1000-6-384", 3.0, 10.3), rec("4-380-1000-6-384", 2.0, 10.4),
            rec("4-376-1000-6-384", 1.0, 10.5)]
    base = rec("3-320-1280-5-320", 0.5, 10.6)
    measured = {"4-384-1000-6-384": float("nan"), "4-380-1000-6-384": 12.0,
                "4-376-1000-6-384": 10.2, "3-320-1280-5-320": 10.7}
    calls = []

    def measure(archs):
        calls.append([str(a) for a in archs])
        return [measured[str(a)] for a in archs]

    acc, drop = verify_top_k(pool, w, 3, Verification(measure), Beside(base))
    assert [r.arch for r in acc] == ["4-376-1000-6-384"]
    assert {r.arch for r in drop} == {"4-384-1000-6-384", "4-380-1000-6-384"}
    assert pool[0].measured_speedup is None and base.measured_speedup == 10.7
    assert len(calls) == 1 and len(calls[0]) == 4  # baseline measured with the first round only


def _measured(table, calls):
    def measure(archs):
        calls.append([str(a) for a in archs])
        return [table[str(a)] for a in archs]

    return measure


def test_a_rule_arch_measured_outside_the_band_is_re_picked_in_the_next_call():
    w = Window.for_target(10)
    pool = [rec("4-384-1000-6-384", 1.0, 10.3)]
    first, second = rec("3-320-1280-5-320", 0.5, 10.4), rec("3-352-1408-11-352", 0.6, 9.9)
    cut = LayerCut("3-384-1536-12-384", 13.0, 10.0)
    table = {"4-384-1000-6-384": 10.2, first.arch: 11.8, second.arch: 10.1, cut.arch: 12.5}
    calls, asked = [], []

    def repick(measured, scale):
        asked.append((set(measured), scale))
        return second

    beside = Beside(first, repick, [cut])
    acc, _ = verify_top_k(pool, w, 1, Verification(_measured(table, calls)), beside)
    assert [r.arch for r in acc] == ["4-384-1000-6-384"]
    # the cut in the first call only, the next rule arch alone in a further call
    assert calls == [["4-384-1000-6-384", first.arch, cut.arch], [second.arch]]
    assert beside.rule is second and beside.rules_measured == [first, second]
    assert cut.measured_speedup == 12.5 and cut.in_band is False  # printed as it is
    # the cut does not recalibrate the predictor: median of 10.2/10.3 and 11.8/10.4 only
    assert asked == [({first.arch}, pytest.approx(np.median([10.2 / 10.3, 11.8 / 10.4])))]


def test_without_a_rule_arch_in_the_band_the_nearest_measured_one_stays():
    w = Window.for_target(10)
    rules = [rec("3-320-1280-5-320", 0.5, 10.4), rec("2-384-1536-6-384", 0.4, 10.2),
             rec("4-256-1024-4-256", 0.3, 10.1)]
    table = {"4-384-1000-6-384": 10.2, rules[0].arch: 12.5, rules[1].arch: 8.9,
             rules[2].arch: 13.0}
    following = iter(rules[1:])
    calls = []
    beside = Beside(rules[0], lambda measured, scale: next(following, None))
    verify_top_k([rec("4-384-1000-6-384", 1.0, 10.3)], w, 1,
                 Verification(_measured(table, calls), max_rounds=3), beside)
    assert len(calls) == 3 and beside.rules_measured == rules  # bounded by the rounds
    assert beside.rule is rules[1]  # 8.9x: the nearest the target of the three


def test_the_cut_shares_the_measurement_of_the_same_arch():
    w = Window.for_target(10)
    rule = rec("3-384-1536-6-384", 0.5, 10.4)
    cut = LayerCut("3-384-1536-6-384", 10.4, 10.0)
    calls = []
    verify_top_k([], w, 1, Verification(_measured({rule.arch: 10.3}, calls)), Beside(rule, None, [cut]))
    assert calls == [[rule.arch]] and cut.measured_speedup == 10.3 and cut.in_band is True


def test_rounds_are_bounded_without_candidates():
    w = Window.for_target(10)
    pool = [rec(f"4-{384 - 4 * i}-1000-6-384", 1.0, 10.3) for i in range(10)]
    n = {"calls": 0}

    def measure(archs):
        n["calls"] += 1
        return [5.0] * len(archs)  # always far off

    acc, drop = verify_top_k(pool, w, 3, Verification(measure, max_rounds=3))
    assert not acc and n["calls"] <= 3 and len(drop) <= 9


def test_extract_writes_the_best_sub_model(tmp_path, small_space, monkeypatch):
    seen = {}

    def fake_extract(ws, arch, out_dir, onnx=False):
        seen["arch"], seen["out"] = str(arch), out_dir
        return {"arch": str(arch), "out_dir": str(out_dir)}

    # A stand-in module: touching the real atb.supernet.extract would import torch.
    monkeypatch.setitem(sys.modules, "atb.supernet.extract", types.SimpleNamespace(extract=fake_extract))
    config = SearchConfig(targets=15, generations=1, population=8, extract=True)
    given = SearchPorts(SyntheticLatency(), SyntheticFitness(small_space), SyntheticMeasure())
    r = run_search(config, tmp_path, compose.search_ports(config, Workspace.of(tmp_path), given))
    assert seen["arch"] == str(r.best.arch) and r.extracted == str(r.run_dir / "best-model")


def test_the_engine_is_handed_its_extractor(tmp_path, small_space):
    config = SearchConfig(targets=15, generations=1, population=8, extract=True)
    ports = SearchPorts(SyntheticLatency(), SyntheticFitness(small_space), SyntheticMeasure())
    with pytest.raises(UsageError, match="extract_model"):
        run_search(config, tmp_path, ports)
    written = []
    extract = lambda arch, out: written.append(arch) or str(out)  # noqa: E731
    r = run_search(config, tmp_path, dataclasses.replace(ports, extract_model=extract))
    assert written == [r.best.arch] and r.extracted == str(r.run_dir / "best-model")


def test_pareto_resume_replays_without_re_evaluating(tmp_path, small_space):
    with pytest.raises(RuntimeError):
        search_with(tmp_path, [12, 20], algorithm="pareto", generations=2, population=10,
                    latency=SyntheticLatency(), fitness=SyntheticFitness(small_space, fail_after=8),
                    measure=SyntheticMeasure(), run_name="p")
    again = SyntheticFitness(small_space)
    r = search_with(tmp_path, resume=tmp_path / "runs" / "p", latency=SyntheticLatency(),
                    fitness=again, measure=SyntheticMeasure())
    lines = [json.loads(x) for x in (r.run_dir / "evaluated.jsonl").read_text().splitlines()]
    pareto = {x["arch"] for x in lines if x["source"] == "pareto"}
    assert len(pareto) == 20 and len(set(again.evaluated)) == len(again.evaluated)
    assert np.isfinite(r.to_dict()["hypervolume"])
