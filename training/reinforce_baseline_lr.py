"""Variant 3: REINFORCE with baseline and separate learning rates (SPEC section 3.3).

python -m training.reinforce_baseline_lr                 # the course, exactly
python -m training.reinforce_baseline_lr --preset fast   # vectorised, solves in seconds
"""

from dataclasses import dataclass
from typing import Any, ClassVar

from training.reinforce_baseline import FAST as BASELINE_FAST
from training.settings import TrainingSettings

ACTOR_LEARNING_RATE = 3e-5
CRITIC_LEARNING_RATE = 1e-4


@dataclass(frozen=True)
class ReinforceBaselineLrSettings(TrainingSettings):
    """As variant 2 with the actor at lr 3e-5 and the critic at 1e-4. The fast preset is
    variant 2's (the course's small rates are what keep it from learning quickly)."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"course": {}, "fast": BASELINE_FAST}
    SCRIPT: ClassVar[str] = "reinforce_baseline_lr"

    baseline: bool = True
    actor_learning_rate: float = ACTOR_LEARNING_RATE
    critic_learning_rate: float = CRITIC_LEARNING_RATE


def main(argv: list[str] | None = None) -> int:
    from training.loop import run_script

    return run_script(ReinforceBaselineLrSettings, argv)


if __name__ == "__main__":
    raise SystemExit(main())
