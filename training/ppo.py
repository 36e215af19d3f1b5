"""PPO for either task: fixed-length rollouts, GAE(lambda) and the clipped surrogate.

python -m training.ppo --agent pendulum               # the fast preset: solves in seconds
python -m training.ppo --agent cartpole --preset zoo  # the RL Zoo's tuned hyperparameters

The algorithm lives in training.ppo_algorithm (the loss, the compiled update, the algorithm
object) on the shared core: training.returns (GAE), training.rollouts (RolloutCollector),
training.networks, training.distributions and training.loop; training.presets holds the
numbers.
"""

from dataclasses import dataclass
from typing import Any, ClassVar

from training import presets
from training.settings import (
    COUNT,
    NON_NEGATIVE,
    POSITIVE,
    Bounds,
    SettingError,
    TrainingSettings,
    setting,
)
from training.tasks import AGENT_NAMES

ACTIVATION_CHOICES = ("tanh", "relu")


@dataclass(frozen=True)
class PPOSettings(TrainingSettings):
    """Proximal policy optimisation (Schulman et al., 2017) with separate actor and critic
    MLPs, orthogonal initialisation and one Adam, as in Stable-Baselines3; a Gaussian policy
    has a state-independent log standard deviation. The saved agent is the policy network
    alone (probabilities for CartPole, the mean for the pendulum)."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = presets.PRESETS["ppo"]
    SCRIPT: ClassVar[str] = "ppo"
    DEFAULT_PRESET: ClassVar[str] = "fast"
    PRESET_HELP: ClassVar[str] = (
        "fast: the settings that solve fastest here; zoo: the RL Zoo's tuned PPO for the task"
    )
    DIVERGENCE_SUSPECTS: ClassVar[tuple[str, ...]] = (
        "learning_rate",
        "gamma",
        "gae_lambda",
        "clip_range",
        "max_grad_norm",
        "value_coef",
        "entropy_coef",
    )

    agent: str = setting("cartpole", "which task's agent: cartpole or pendulum", AGENT_NAMES)
    actor_hidden: tuple[int, ...] = presets.PPO_HIDDEN
    critic_hidden: tuple[int, ...] = presets.PPO_HIDDEN
    layer_seed_step: int = presets.FAST_LAYER_SEED_STEP
    critic_seed_offset: int = presets.FAST_CRITIC_SEED_OFFSET
    rollout_steps: int = setting(
        presets.PPO_ROLLOUT_STEPS, "steps each environment takes per update", bounds=COUNT
    )
    epochs: int = setting(
        presets.PPO_EPOCHS, "passes over each rollout in shuffled minibatches", bounds=COUNT
    )
    minibatch_size: int = setting(
        presets.PPO_MINIBATCH_SIZE,
        "samples per gradient step (capped at num_envs * rollout_steps, which it must divide)",
        bounds=COUNT,
    )
    gae_lambda: float = setting(
        presets.PPO_GAE_LAMBDA,
        "GAE lambda: 0 gives one-step TD errors, 1 Monte-Carlo returns",
        bounds=Bounds(at_least=0, at_most=1),
    )
    clip_range: float = setting(
        presets.PPO_CLIP_RANGE,
        "probability ratios beyond 1 +/- this earn the surrogate nothing",
        bounds=POSITIVE,
    )
    learning_rate: float = setting(
        presets.PPO_LEARNING_RATE,
        "Adam learning rate (one Adam for actor, critic and log-std)",
        bounds=POSITIVE,
    )
    linear_decay: bool = setting(
        False, "decay learning rate and clip range linearly to 0 at decay_env_steps"
    )
    decay_env_steps: int = setting(
        1_000_000,
        "environment steps at which linear_decay reaches 0 (the Zoo's n_timesteps)",
        bounds=COUNT,
        needs={"linear_decay": True},
    )
    value_coef: float = setting(
        presets.PPO_VALUE_COEF, "weight of the critic's squared error", bounds=NON_NEGATIVE
    )
    max_grad_norm: float = setting(
        presets.PPO_MAX_GRAD_NORM,
        "cap on the global norm of all gradients together",
        bounds=POSITIVE,
    )
    normalise_advantages: bool = setting(True, "standardise advantages within each minibatch")
    normalise_observations: bool = setting(
        False, "standardise observations by their running mean and std (folded into the agent)"
    )
    normalise_rewards: bool = setting(
        False, "divide rewards by the running std of the discounted return (as VecNormalize)"
    )
    reward_scale: float = setting(
        1.0,
        "rewards are multiplied by this for the advantages and the critic's targets",
        bounds=POSITIVE,
    )
    activation: str = setting("tanh", "hidden layers' activation", ACTIVATION_CHOICES)
    log_std_init: float = setting(
        presets.PPO_LOG_STD_INIT, "initial log standard deviation of a Gaussian policy"
    )
    # The episodic scripts' settings that PPO has no use for stay off its command line.
    episodes_per_update: int = setting(1, "unused by PPO", cli=False)
    actor_learning_rate: float = setting(presets.LEARNING_RATE, "unused by PPO", cli=False)
    critic_learning_rate: float = setting(presets.LEARNING_RATE, "unused by PPO", cli=False)
    clipnorm: float = setting(presets.CLIPNORM, "unused by PPO", cli=False)
    baseline: bool = setting(True, "PPO always learns a critic", cli=False)
    bootstrap_truncated: bool = setting(True, "PPO's GAE always bootstraps", cli=False)
    critic_steps: int = setting(1, "unused by PPO", cli=False)
    learn_clipped_actions: bool = setting(
        False, "PPO scores the unclipped sample (the unbiased estimator)", cli=False
    )
    standardise: str = setting("none", "unused by PPO", cli=False)
    discount_weighting: bool = setting(False, "unused by PPO", cli=False)
    batch_reduction: str = setting("mean", "unused by PPO", cli=False)
    # The course's conventions are for the course scripts; PPO names checkpoints by episodes
    # trained and averages the episodes it has seen.
    checkpoint_names: str = "episode"
    running_reward_from_zeros: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        samples = self.num_envs * self.rollout_steps
        if samples % min(self.minibatch_size, samples):
            raise SettingError(
                "minibatch_size",
                f"must divide --num-envs x --rollout-steps = {samples}, got {self.minibatch_size}",
            )

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "PPOSettings":
        """The named preset for ``overrides['agent']`` (default cartpole), then overrides."""
        agent = overrides.get("agent", cls.agent)
        values = {
            key: value[agent] if isinstance(value, dict) else value
            for key, value in cls.PRESETS[name].items()
        }
        return cls(**{**values, **overrides})

    def make_algorithm(self, envs: Any) -> Any:
        from training.ppo_algorithm import PPO

        return PPO(self, envs)


def main(argv: list[str] | None = None) -> int:
    from training.loop import run_script

    return run_script(PPOSettings, argv)


if __name__ == "__main__":
    from training.startup import exit_now

    exit_now(main())
