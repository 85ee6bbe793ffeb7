"""atb.search: Algorithm-2 evolution under a latency window, the fast rule, Pareto tools.

See docs/search.md. ``run_search`` is the search engine (it is handed its
speedup model, fitness, measurement and extraction as ``SearchPorts``, typed in
``atb.search.ports``; ``atb.compose.search_ports`` builds the workspace's), ``SearchConfig`` its settings and a run's
``config.json``; each ``--algorithm`` is a ``SearchAlgorithm`` made by name from the registry
(``ALGORITHMS``, ``make_algorithm``); the pure pieces are exported for notebooks and tests. This
package imports no other atb package but the leaves.
"""

from atb.search.algorithm import SearchAlgorithm, SearchProblem
from atb.search.api import Candidate, SearchResult, TargetResult, run_search
from atb.search.baselines import LayerCut, RuleArch, bert_rule_archs, bert_rule_baseline, layer_cut
from atb.search.config import RESUME_OVERRIDES, SearchConfig
from atb.search.fitness_cache import Evaluator, Record
from atb.search.evolution import (Evolution, EvolutionConfig, Generation, RandomSearch, WindowSearch, evolve,
                                  roulette_select)
from atb.search.fast import FastRule, fast_rule_candidates
from atb.search.pareto import NSGA2, hypervolume, nsga2_search, pareto_front
from atb.search.plots import plot_pareto
from atb.search.ports import ExtractModel, FitnessModel, Measure, SearchPorts, SpeedupModel, TaskScore
from atb.search.registry import ALGORITHMS, make_algorithm
from atb.search.run import RunDir
from atb.search.verify import Beside, Verification, verify_top_k
from atb.search.window import ACCEPT_BAND, Window, check_feasible, sample_in_window

__all__ = [
    "ALGORITHMS", "ACCEPT_BAND", "Candidate", "SearchConfig", "RESUME_OVERRIDES", "SearchResult",
    "TargetResult", "run_search", "bert_rule_archs", "bert_rule_baseline", "RuleArch", "LayerCut",
    "layer_cut", "Beside", "Evaluator", "Record",
    "EvolutionConfig", "Generation", "WindowSearch", "evolve", "roulette_select", "fast_rule_candidates",
    "hypervolume", "nsga2_search", "pareto_front", "plot_pareto", "RunDir", "verify_top_k", "Verification",
    "Window", "check_feasible", "sample_in_window",
    "SpeedupModel", "FitnessModel", "Measure", "ExtractModel", "TaskScore", "SearchPorts",
    "SearchAlgorithm", "SearchProblem", "make_algorithm", "Evolution", "RandomSearch", "FastRule", "NSGA2",
]
