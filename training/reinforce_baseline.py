"""Variant 2: REINFORCE with a learned baseline on CartPole-v1 (SPEC section 3.2).

python -m training.reinforce_baseline                 # the course, exactly
python -m training.reinforce_baseline --preset fast   # vectorised, solves in seconds
"""

from dataclasses import dataclass
from typing import Any, ClassVar

from training.reinforce import FAST as REINFORCE_FAST
from training.settings import TrainingSettings

#: REINFORCE's fast preset, plus a critic that learns faster than the actor.
FAST: dict[str, Any] = {**REINFORCE_FAST, "critic_learning_rate": 1e-2}


@dataclass(frozen=True)
class ReinforceBaselineSettings(TrainingSettings):
    """REINFORCE with baseline on CartPole: adds a critic 4 -> 128 ReLU -> 1 trained with the
    Huber loss towards G_t (Adam 3e-4, one step per episode, before the actor step); the
    actor's weight is G_t - V(s_t). The fast preset batches 16 episodes and standardises
    the weights over the batch."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"course": {}, "fast": FAST}
    SCRIPT: ClassVar[str] = "reinforce_baseline"

    baseline: bool = True


def main(argv: list[str] | None = None) -> int:
    from training.loop import run_script

    return run_script(ReinforceBaselineSettings, argv)


if __name__ == "__main__":
    raise SystemExit(main())
