"""Variant 5: the Gaussian actor-critic on InvertedPendulum-v5 (SPEC section 3.5).

python -m training.gaussian_actor_critic                 # the course, exactly
python -m training.gaussian_actor_critic --preset fast   # vectorised, solves in seconds
"""

from dataclasses import dataclass
from typing import Any, ClassVar

from training.reinforce_baseline_lr import ACTOR_LEARNING_RATE, CRITIC_LEARNING_RATE
from training.reinforce_normalised import CRITIC_STEPS
from training.settings import PENDULUM_SOLVED, TrainingSettings

ACTOR_HIDDEN = (256, 256)

FAST: dict[str, Any] = {
    "num_envs": 32,
    "episodes_per_update": 32,
    "actor_learning_rate": 3e-4,
    "critic_learning_rate": 1e-2,
    "critic_steps": 10,
    "standardise": "batch",
    "discount_weighting": False,
    "batch_reduction": "mean",
    "entropy_coef": 0.01,
    "bootstrap_truncated": True,
    "stop": "solved",
    "eval_gate": 300.0,
    "max_episodes": 50_000,
    "max_seconds": 120.0,
    "checkpoint_every": 1000,
}


@dataclass(frozen=True)
class GaussianActorCriticSettings(TrainingSettings):
    """Gaussian policy on InvertedPendulum-v5: actor 4 -> 256 ReLU -> 256 ReLU with heads
    mean = 3 tanh(.) and log sigma = 3 tanh(.) - 2; the sampled action is clipped to the
    bounds [-3, 3] (not the course's [-2, 2]); critic and updates as in variant 4. The fast
    preset batches 32 episodes over 32 environments, standardises over the batch, adds an
    entropy bonus (without it sigma collapses to its floor on some seeds and learning stalls)
    and bootstraps episodes cut at 1000 steps with the critic's value."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"course": {}, "fast": FAST}
    SCRIPT: ClassVar[str] = "gaussian_actor_critic"

    task: str = "pendulum"
    actor_hidden: tuple[int, ...] = ACTOR_HIDDEN
    baseline: bool = True
    actor_learning_rate: float = ACTOR_LEARNING_RATE
    critic_learning_rate: float = CRITIC_LEARNING_RATE
    critic_steps: int = CRITIC_STEPS
    standardise: str = "episode"
    solve_threshold: float = PENDULUM_SOLVED


def main(argv: list[str] | None = None) -> int:
    from training.loop import run_script

    return run_script(GaussianActorCriticSettings, argv)


if __name__ == "__main__":
    raise SystemExit(main())
