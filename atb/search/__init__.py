"""atb.search: Algorithm-2 evolution under a latency window, the fast rule, Pareto tools.

See docs/architecture.md, "Search". ``run_search`` is the search engine (it is handed its
latency predictor, fitness, measurement and extraction; ``atb.compose.run_search`` builds the
workspace's), ``SearchConfig`` its settings and a run's ``config.json``; the pure pieces are
exported for notebooks and tests. This package imports no other atb package but the leaves.
"""

from atb.search.api import Candidate, SearchResult, TargetResult, run_search
from atb.search.baselines import bert_rule_archs, bert_rule_baseline
from atb.search.config import ALGORITHMS, RESUME_OVERRIDES, SearchConfig
from atb.search.evaluate import Evaluator, Record
from atb.search.evolution import EvolutionConfig, Generation, evolve, roulette_select
from atb.search.fast import fast_rule_candidates
from atb.search.pareto import hypervolume, nsga2_search, pareto_front
from atb.search.plots import plot_pareto
from atb.search.run import RunDir
from atb.search.verify import verify_top_k
from atb.search.window import ACCEPT_BAND, Window, check_feasible, sample_in_window

__all__ = [
    "ALGORITHMS", "ACCEPT_BAND", "Candidate", "SearchConfig", "RESUME_OVERRIDES", "SearchResult",
    "TargetResult", "run_search", "bert_rule_archs", "bert_rule_baseline", "Evaluator", "Record",
    "EvolutionConfig", "Generation", "evolve", "roulette_select", "fast_rule_candidates",
    "hypervolume", "nsga2_search", "pareto_front", "plot_pareto", "RunDir", "verify_top_k",
    "Window", "check_feasible", "sample_in_window",
]
