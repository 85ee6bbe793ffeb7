import numpy as np

from atb.arch import fast_rule_mask, get_space
from atb.search.fast import fast_rule_candidates, rule_sample
from atb.search.window import Window


def test_rule_sample_follows_the_rule():
    for space in (get_space("pretrain", "base"), get_space("kd", "base"), get_space("pretrain", "small")):
        a = rule_sample(space, np.random.default_rng(0), 2000, lt=3)
        assert len(a) > 1000
        assert fast_rule_mask(a).all() and space.contains_array(a).all() and (a[:, 0] == 3).all()


def test_one_candidate_per_layer_count_in_window(latency):
    space = get_space("pretrain", "base")
    w = Window.for_target(8)
    a, s = fast_rule_candidates(space, latency, w, np.random.default_rng(0))
    assert 1 <= len(a) <= 8
    assert len(set(a[:, 0])) == len(a)  # one per layer count
    assert w.contains(s).all() and w.contains(latency.predict_speedup(a)).all()
    assert fast_rule_mask(a).all()
