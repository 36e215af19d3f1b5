"""Variant 5: the Gaussian actor-critic on InvertedPendulum-v5.

python -m training.gaussian_actor_critic                 # the course (its flaws fixed: see --help)
python -m training.gaussian_actor_critic --preset fast   # vectorised, solves in seconds

The algorithm lives in the shared core: training.networks (the mean and log-sigma heads),
training.distributions (the Normal), training.algorithm, training.rollouts, training.loop;
training.presets holds the numbers.
"""

from dataclasses import dataclass
from typing import Any, ClassVar

from training.presets import (
    CRITIC_STEPS,
    PENDULUM_ACTOR_HIDDEN,
    PRESETS,
    SLOW_ACTOR_LEARNING_RATE,
    SLOW_CRITIC_LEARNING_RATE,
)
from training.settings import TrainingSettings
from training.tasks import TASKS


@dataclass(frozen=True)
class GaussianActorCriticSettings(TrainingSettings):
    """Gaussian policy on InvertedPendulum-v5: actor 4 -> 256 ReLU -> 256 ReLU with heads
    mean = 3 tanh(.) and log sigma = 3 tanh(.) - 2; the sampled action is clipped to the
    bounds [-3, 3] (not the course's [-2, 2]) and, as in the course, the loss scores the
    clipped action; critic and updates as in variant 4; no early stop: 1000 episodes, a
    checkpoint every 200. The fast preset batches 32 episodes over 32 environments, scores the
    unclipped sample, standardises over the batch, adds an entropy bonus (without it sigma
    collapses to its floor on some seeds and learning stalls), bootstraps episodes cut at 1000
    steps with the critic's value and stops when a greedy evaluation solves the task."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = PRESETS["gaussian_actor_critic"]
    SCRIPT: ClassVar[str] = "gaussian_actor_critic"

    agent: str = "pendulum"
    actor_hidden: tuple[int, ...] = PENDULUM_ACTOR_HIDDEN
    baseline: bool = True
    actor_learning_rate: float = SLOW_ACTOR_LEARNING_RATE
    critic_learning_rate: float = SLOW_CRITIC_LEARNING_RATE
    critic_steps: int = CRITIC_STEPS
    standardise: str = "episode"
    stop: str = "none"
    solve_threshold: float = TASKS["pendulum"].solve_score


def main(argv: list[str] | None = None) -> int:
    from training.loop import run_script

    return run_script(GaussianActorCriticSettings, argv)


if __name__ == "__main__":
    raise SystemExit(main())
