"""The composition root hands the predictor's ranking and learning curve to the profiler as
plain callables."""

import pytest

from atb import compose
from atb.errors import UsageError
from atb.profiler.api import ProfilePorts

from tests.profiler.configs import profile_config


def test_the_profiler_needs_a_ranking_for_uncertainty_sampling(tmp_path):
    from atb.profiler.api import profile

    with pytest.raises(UsageError, match="ranking function"):
        profile(profile_config(samples=5, strategy="uncertainty", threads=1), tmp_path)
    with pytest.raises(UsageError, match="learning curve"):
        profile(profile_config(samples="auto", threads=1), tmp_path, ProfilePorts(propose=print))


def test_compose_hands_in_the_predictors_committee(tmp_path, monkeypatch):
    import atb.profiler.api
    from atb.predictor.active import propose_uncertain
    from atb.predictor.fit import learning_gain

    seen = {}
    monkeypatch.setattr(atb.profiler.api, "profile",
                        lambda config, ws, ports: seen.update(ports=ports, ws=ws) or "report")
    assert compose.profile(profile_config(samples=5, strategy="uncertainty"), tmp_path) == "report"
    assert seen["ports"] == ProfilePorts(propose_uncertain) and seen["ws"] == tmp_path
    compose.profile(profile_config(samples=5), tmp_path)  # uniform: nothing to hand in
    assert seen["ports"] == ProfilePorts()
    compose.profile(profile_config(samples="auto"), tmp_path)
    assert seen["ports"] == ProfilePorts(learning_gain=learning_gain)
