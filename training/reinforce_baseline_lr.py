"""Variant 3: REINFORCE with baseline and separate learning rates on CartPole-v1.

python -m training.reinforce_baseline_lr                 # the course (its flaws fixed: see --help)
python -m training.reinforce_baseline_lr --preset fast   # vectorised, solves in seconds

The algorithm lives in the shared core (training.algorithm, training.rollouts,
training.returns, training.loop); training.presets holds the numbers.
"""

from dataclasses import dataclass
from typing import Any, ClassVar

from training.presets import PRESETS, SLOW_ACTOR_LEARNING_RATE, SLOW_CRITIC_LEARNING_RATE
from training.settings import TrainingSettings


@dataclass(frozen=True)
class ReinforceBaselineLrSettings(TrainingSettings):
    """As variant 2 with the actor at lr 3e-5 and the critic at 1e-4. The fast preset is
    variant 2's (the course's small rates are what keep it from learning quickly)."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = PRESETS["reinforce_baseline_lr"]
    SCRIPT: ClassVar[str] = "reinforce_baseline_lr"

    baseline: bool = True
    actor_learning_rate: float = SLOW_ACTOR_LEARNING_RATE
    critic_learning_rate: float = SLOW_CRITIC_LEARNING_RATE


def main(argv: list[str] | None = None) -> int:
    from training.loop import run_script

    return run_script(ReinforceBaselineLrSettings, argv)


if __name__ == "__main__":
    raise SystemExit(main())
