"""``--samples auto``: keep profiling, batch by batch, until more labels no longer help.

The rule, checked at every checkpoint once the store holds :data:`AUTO_FLOOR` sampled archs:
cross-validate the latency predictor twice on the same folds, once trained on every training
row and once on a random half of them, and stop when that doubling of the labels improved the
out-of-fold speedup MAPE by less than :func:`gain_threshold` (a twentieth of the measured label
noise, and at least 0.1 points). On a learning curve that halves its gain per doubling, what
all further labels could still bring is then about twice that threshold. On the committed
1-thread reference labels (three disjoint streams) it stops at 195-244 samples, 0.1-0.2
points above what 1,000 samples reach. Checkpoints are
:data:`AUTO_STEP` archs apart, or a quarter of the labels once there are more, so the
cross-validations cost little next to the timing. ``--max-samples`` caps it.

The profiler knows nothing of the predictor: the caller hands in ``gain(labels) -> (mape with
all, mape with half)`` (``atb.compose.profile`` hands in :func:`atb.predictor.fit.learning_gain`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

from atb.arch import Arch, SearchSpace
from atb.profiler.sampling import arch_stream

AUTO = "auto"
AUTO_FLOOR = 100  # below this a cross-validated MAPE says little
AUTO_STEP = 50
DEFAULT_MAX_SAMPLES = 10_000
MIN_GAIN = 0.001  # 0.1 points of MAPE: below what a user can act on
NOISE_FRACTION = 0.05

LearningGain = Callable[[object], tuple[float, float]]  # LabelSet -> (MAPE all, MAPE half)


def gain_threshold(noise: float | None) -> float:
    """The smallest gain of a doubling worth more labels, given the label noise (a fraction)."""
    return max(MIN_GAIN, NOISE_FRACTION * noise) if noise else MIN_GAIN


@dataclass(frozen=True)
class Checkpoint:
    samples: int
    mape: float  # out-of-fold speedup MAPE, trained on all training rows
    mape_half: float  # the same folds, trained on half of them
    threshold: float
    noise: float | None

    @property
    def gain(self) -> float:
        return self.mape_half - self.mape

    def to_dict(self) -> dict:
        return {"samples": self.samples, "mape": self.mape, "mape_half": self.mape_half, "gain": self.gain,
                "threshold": self.threshold, "noise": self.noise}


@dataclass
class AutoStop:
    """What ``--samples auto`` saw and why it stopped (filled in while the run goes)."""

    floor: int
    cap: int
    checkpoints: list[Checkpoint] = field(default_factory=list)
    reason: str = "interrupted"

    def to_dict(self) -> dict:
        return {"floor": self.floor, "max_samples": self.cap, "reason": self.reason,
                "checkpoints": [c.to_dict() for c in self.checkpoints]}


def plan_auto(space: SearchSpace, seed: int, exclude: set[str], state: AutoStop,
              observe: Callable[[], tuple[object, float | None]], gain: LearningGain) -> Iterator[list[Arch]]:
    """Batches of the seeded uniform stream (as :func:`~atb.profiler.sampling.plan_uniform`)
    until the rule of the module docstring says stop; ``state`` records each checkpoint and
    the reason. ``observe()`` reads, in one pass over the store, the training labels so far and
    the key's measured label noise (a fraction, or None before any sentinel)."""
    stream = (a for a in arch_stream(space, seed) if str(a) not in exclude)
    have = len(exclude)
    while True:
        if have >= state.cap:
            state.reason = f"reached --max-samples {state.cap}"
            return
        if have >= state.floor:
            labels, level = observe()
            mape, mape_half = gain(labels)
            point = Checkpoint(have, mape, mape_half, gain_threshold(level), level)
            state.checkpoints.append(point)
            if point.gain < point.threshold:
                state.reason = (f"doubling the labels improved the predictor's cross-validated speedup MAPE by "
                                f"{100 * point.gain:.3f} points (< {100 * point.threshold:.3f}) at {have} samples")
                return
        step = state.floor - have if have < state.floor else max(AUTO_STEP, have // 4)
        batch = [a for _, a in zip(range(min(step, state.cap - have)), stream)]
        if not batch:
            state.reason = "the search space holds no more archs"
            return
        have += len(batch)
        yield batch
