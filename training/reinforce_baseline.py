"""Variant 2: REINFORCE with a learned baseline on CartPole-v1.

python -m training.reinforce_baseline                 # the course (its flaws fixed: see --help)
python -m training.reinforce_baseline --preset fast   # vectorised, solves in seconds

The algorithm lives in the shared core: training.algorithm (the critic's Huber steps and the
actor's weighted log-likelihood), training.rollouts, training.returns and training.loop;
training.presets holds the numbers.
"""

from dataclasses import dataclass
from typing import Any, ClassVar

from training.presets import PRESETS
from training.settings import TrainingSettings


@dataclass(frozen=True)
class ReinforceBaselineSettings(TrainingSettings):
    """REINFORCE with baseline on CartPole: adds a critic 4 -> 128 ReLU -> 1 trained with the
    Huber loss towards G_t (Adam 3e-4, one step per episode, before the actor step); the
    actor's weight is G_t - V(s_t). At an early stop it saves the actor (the course saves
    another model there). The fast preset batches 16 episodes and standardises the weights
    over the batch."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = PRESETS["reinforce_baseline"]
    SCRIPT: ClassVar[str] = "reinforce_baseline"

    baseline: bool = True


def main(argv: list[str] | None = None) -> int:
    from training.loop import run_script

    return run_script(ReinforceBaselineSettings, argv)


if __name__ == "__main__":
    raise SystemExit(main())
