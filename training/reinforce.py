"""Variant 1: REINFORCE on CartPole-v1 (SPEC section 3.1).

python -m training.reinforce                  # the course, exactly
python -m training.reinforce --preset fast    # vectorised, solves in seconds
"""

from dataclasses import dataclass
from typing import Any, ClassVar

from training.settings import CARTPOLE_SOLVED, TrainingSettings

FAST: dict[str, Any] = {
    "num_envs": 16,
    "episodes_per_update": 16,
    "actor_learning_rate": 3e-3,
    "standardise": "batch",
    "discount_weighting": False,
    "batch_reduction": "mean",
    "stop": "solved",
    "solve_threshold": CARTPOLE_SOLVED,
    "eval_gate": 450.0,
    "max_episodes": 20_000,
    "max_seconds": 120.0,
    "checkpoint_every": 1000,
}


@dataclass(frozen=True)
class ReinforceSettings(TrainingSettings):
    """REINFORCE on CartPole: policy 4 -> 128 ReLU -> 2 softmax, lr 3e-4, one step per
    episode on -sum_t gamma^t G_t log pi(a_t|s_t); stops at running reward > 300 or 1000
    episodes. The fast preset standardises G_t over a batch of 16 episodes (a batch-mean
    baseline) and drops the gamma^t factor."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"course": {}, "fast": FAST}
    SCRIPT: ClassVar[str] = "reinforce"


def main(argv: list[str] | None = None) -> int:
    from training.loop import run_script

    return run_script(ReinforceSettings, argv)


if __name__ == "__main__":
    raise SystemExit(main())
