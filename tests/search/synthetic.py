"""Synthetic stand-ins for the predictor, the supernet and the device (no other atb part needed)."""

from __future__ import annotations

import zlib

import numpy as np

from atb.arch import BERT_BASE, Arch, archs_to_array, cost_terms


def synthetic_ms(archs: np.ndarray) -> np.ndarray:
    """A latency model: time proportional to MACs plus a per-layer and a fixed overhead."""
    a = np.asarray(archs).reshape(-1, 5)
    return cost_terms(a)["total_macs"] / 2e8 + 0.15 * a[:, 0] + 0.3


BERT_MS = float(synthetic_ms(archs_to_array([BERT_BASE]))[0])


class SyntheticLatency:
    device_key = "cpu-onnxruntime-t1-fp32-s128-b1-5eed5eed"  # a well-formed key of no machine

    def __init__(self, bias: float = 1.0):
        self.bias = bias  # >1: the predictor is optimistic (predicts faster than measured)
        self.calls = 0

    def predict_speedup(self, archs: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.bias * BERT_MS / synthetic_ms(archs)


class SyntheticFitness:
    """Smooth in the dims (bigger is better, shape matters: the fast rule is rewarded) plus
    a seeded per-arch noise, so rankings are stable and reproducible."""

    def __init__(self, space, fail_after: int | None = None):
        self.space = space
        self.calls = 0
        self.evaluated: list[str] = []
        self.fail_after = fail_after  # raise after this many calls (crash simulation)

    def value(self, a: Arch) -> float:
        cap = np.log(a.lt * a.dm * (a.df + 2 * a.dqkv))
        shape = -abs(a.df / a.dm - 1.75) - abs(a.dqkv / a.dm - 0.85)
        # crc32, not hash(): str hashes change between processes
        noise = np.random.default_rng(zlib.crc32(str(a).encode())).normal(0, 0.01)
        return float(cap + 0.5 * shape + noise)

    def fitness(self, archs: list[Arch]) -> np.ndarray:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise RuntimeError("simulated crash")
        self.calls += 1
        self.evaluated += [str(a) for a in archs]
        return np.array([self.value(a) for a in archs])


class SyntheticMeasure:
    """The device: the true speedup (unbiased latency model) times a seeded 1 % noise."""

    def __init__(self, seed: int = 0, scale: float = 1.0):
        self.rng = np.random.default_rng(seed)
        self.scale = scale
        self.calls: list[list[str]] = []

    def __call__(self, archs: list[Arch]) -> list[float]:
        self.calls.append([str(a) for a in archs])
        s = BERT_MS / synthetic_ms(archs_to_array(archs))
        return list(self.scale * s * (1 + self.rng.normal(0, 0.01, len(s))))


PORTS = ("latency", "fitness", "measure", "extract_model", "task_score")


def search_with(workspace, target=15, *, run_name=None, resume=None, **kw):
    """``atb.search.run_search`` from keywords, as the tests write them: the port names
    (``latency``, ``fitness``, ...) go to the ``SearchPorts``, the rest to the settings (a
    resumed run's saved ones, with what may change)."""
    from atb.search import SearchConfig, SearchPorts, run_search
    from atb.search.config import resolve_config
    from atb.search.run import RunDir

    ports = SearchPorts(**{name: kw.pop(name) for name in PORTS if name in kw})
    if resume is not None:
        config = resolve_config(kw, RunDir.open(resume).load_config())
    else:
        config = SearchConfig(targets=target, **kw)
    return run_search(config, workspace, ports, run_name=run_name, resume=resume)
