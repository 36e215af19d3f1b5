"""Variant 1: REINFORCE on CartPole-v1.

python -m training.reinforce                  # the course (its flaws fixed: see --help)
python -m training.reinforce --preset fast    # vectorised, solves in seconds

The algorithm lives in the shared core: training.rollouts collects episodes,
training.returns computes G_t, training.algorithm holds the loss and the update,
training.loop runs it; training.presets holds the numbers.
"""

from dataclasses import dataclass
from typing import Any, ClassVar

from training.presets import PRESETS
from training.settings import TrainingSettings


@dataclass(frozen=True)
class ReinforceSettings(TrainingSettings):
    """REINFORCE on CartPole: policy 4 -> 128 ReLU -> 2 softmax, lr 3e-4, one step per
    episode on -sum_t gamma^t G_t log pi(a_t|s_t); stops at running reward > 300 (the mean
    of a zero-filled 30-episode window) or 1000 episodes; checkpoints 199, 399, ... and at
    the stop. The fast preset standardises G_t over a batch of 16 episodes (a batch-mean
    baseline) and drops the gamma^t factor."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = PRESETS["reinforce"]
    SCRIPT: ClassVar[str] = "reinforce"


def main(argv: list[str] | None = None) -> int:
    from training.loop import run_script

    return run_script(ReinforceSettings, argv)


if __name__ == "__main__":
    raise SystemExit(main())
