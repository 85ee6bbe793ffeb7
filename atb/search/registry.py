"""The registry of search algorithms: every ``--algorithm`` name, made by name.

The interface is :class:`~atb.search.algorithm.SearchAlgorithm`; the algorithms live in
:mod:`.evolution` (``evolution``, ``random``), :mod:`.fast` and :mod:`.pareto`.
"""

from __future__ import annotations

from atb.errors import UsageError
from atb.search.algorithm import AlgorithmSettings, SearchAlgorithm
from atb.search.evolution import Evolution, RandomSearch
from atb.search.fast import FastRule
from atb.search.pareto import NSGA2


def algorithm_classes() -> dict[str, type[SearchAlgorithm]]:
    """Every search algorithm by ``name``, the default first."""
    return {c.name: c for c in (Evolution, FastRule, RandomSearch, NSGA2)}


ALGORITHMS = tuple(algorithm_classes())  # the --algorithm values


def make_algorithm(name: str, settings: AlgorithmSettings) -> SearchAlgorithm:
    """The algorithm ``name`` as ``settings`` (a SearchConfig) configure it."""
    classes = algorithm_classes()
    if name not in classes:
        raise UsageError(f"unknown algorithm {name!r}", hint="use one of: " + ", ".join(classes))
    return classes[name].from_settings(settings)
