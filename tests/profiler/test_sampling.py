import numpy as np

from atb.arch import SearchSpace, Arch, get_space
from atb.profiler.sampling import UncertainBatches, arch_stream, plan_uncertain, plan_uniform


def test_uniform_plan_is_seeded_resumable_and_extends():
    space = get_space("pretrain")
    first = plan_uniform(space, seed=3, need=20, exclude=set())
    assert first == plan_uniform(space, seed=3, need=20, exclude=set())
    done = {str(a) for a in first[:7]}  # a run stopped after 7 archs
    rest = plan_uniform(space, seed=3, need=13, exclude=done)
    assert rest == first[7:]  # resuming times exactly the archs not done yet
    more = plan_uniform(space, seed=3, need=10, exclude={str(a) for a in first})
    assert not {str(a) for a in more} & {str(a) for a in first}


def test_stream_ends_when_a_tiny_space_is_exhausted():
    tiny = SearchSpace("kd", Arch(1, 128, 132, 2, 64))  # 1 x 1 x 2 x (dqkv 30..64 step 2) archs
    archs = list(arch_stream(tiny, seed=0))
    assert len(archs) == len(set(archs)) == tiny.size


def test_uncertainty_plan_warm_starts_uniformly_then_asks_the_proposer():
    space = get_space("pretrain")
    asked = []

    def propose(candidates: np.ndarray, n: int) -> np.ndarray:
        asked.append((len(candidates), n))
        return np.arange(n)[::-1]  # any choice of distinct indices

    batches = list(plan_uncertain(space, 0, need=35, exclude=set(), propose=propose,
                                  shape=UncertainBatches(warm_start=10, batch=10, pool_factor=5)))
    assert [len(b) for b in batches] == [10, 10, 10, 5]
    assert asked == [(50, 10), (50, 10), (25, 5)]
    flat = [str(a) for b in batches for a in b]
    assert len(set(flat)) == 35
