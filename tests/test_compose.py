"""The composition root hands the predictor's ranking to the profiler as a plain callable."""

import pytest

from atb import compose
from atb.errors import UsageError


def test_the_profiler_needs_a_ranking_for_uncertainty_sampling(tmp_path):
    from atb.profiler.api import profile

    with pytest.raises(UsageError, match="ranking function"):
        profile(tmp_path, samples=5, strategy="uncertainty", threads=1)


def test_compose_hands_in_the_predictors_committee(tmp_path, monkeypatch):
    import atb.profiler.api
    from atb.predictor.active import propose_uncertain

    seen = {}
    monkeypatch.setattr(atb.profiler.api, "profile", lambda ws, **options: seen.update(options) or "report")
    assert compose.profile(tmp_path, samples=5, strategy="uncertainty") == "report"
    assert seen["propose"] is propose_uncertain
    seen.clear()
    compose.profile(tmp_path, samples=5)  # uniform: nothing to hand in
    assert "propose" not in seen
    mine = object()
    compose.profile(tmp_path, samples=5, strategy="uncertainty", propose=mine)
    assert seen["propose"] is mine
