"""Every script's presets in one place: the course's constants and the settings that train fast.

A script's settings class takes its field defaults from the ``course`` values here and offers
``--preset fast`` (and any other preset) as overrides on top. Keeping them together shows at a
glance how the variants differ, and no script needs another script to find its numbers.
"""

from __future__ import annotations

from typing import Any

from training.tasks import TASKS

# --- the course ------------------------------------------------------------------------------
GAMMA = 0.99
SEED = 42
LEARNING_RATE = 3e-4  # variants 1 and 2, actor and critic
CLIPNORM = 1.0
HIDDEN = (128,)  # CartPole's policy and every critic
PENDULUM_ACTOR_HIDDEN = (256, 256)
RUNNING_WINDOW = 30
TARGET_RUNNING_REWARD = 300.0
MAX_EPISODES = 1000
CHECKPOINT_EVERY = 200
EVAL_EPISODES = 20
#: Variants 3-5: a slower actor than critic.
SLOW_ACTOR_LEARNING_RATE = 3e-5
SLOW_CRITIC_LEARNING_RATE = 1e-4
#: Variants 4-5: critic steps per episode, before the actor step.
CRITIC_STEPS = 10
#: Every layer's initialiser gets the seed itself (HeNormal(seed=42), GlorotNormal(seed=42)),
#: the critic's too: actor and critic hidden layers start identical, so do the two heads.
LAYER_SEED_STEP = 0
CRITIC_SEED_OFFSET = 0

# --- fast presets ----------------------------------------------------------------------------
#: Layer i seeded seed + i, the critic's layer i seed + 100 + i: the seeds the shipped weights
#: were trained with.
FAST_LAYER_SEED_STEP = 1
FAST_CRITIC_SEED_OFFSET = 100
#: Shared by every fast preset where the course does otherwise: those seeds, a running
#: reward over the episodes seen so far (a batched run's curve does not start near zero) and
#: checkpoints named by the episodes trained (a batch rarely ends on a multiple of 200).
FAST_KEEPS: dict[str, Any] = {
    "layer_seed_step": FAST_LAYER_SEED_STEP,
    "critic_seed_offset": FAST_CRITIC_SEED_OFFSET,
    "running_reward_from_zeros": False,
    "checkpoint_names": "episode",
}

#: REINFORCE over batches of 16 episodes from 16 environments, weights standardised over the
#: batch (a batch-mean baseline), no gamma^t factor, a larger learning rate; stops when the
#: greedy evaluation solves CartPole.
REINFORCE_FAST: dict[str, Any] = {
    **FAST_KEEPS,
    "num_envs": 16,
    "episodes_per_update": 16,
    "actor_learning_rate": 3e-3,
    "standardise": "batch",
    "discount_weighting": False,
    "batch_reduction": "mean",
    "stop": "solved",
    "solve_threshold": TASKS["cartpole"].solve_score,
    "eval_gate": 450.0,
    "max_episodes": 20_000,
    "max_seconds": 120.0,
    "checkpoint_every": 1000,
}
#: REINFORCE's fast preset plus a critic that learns faster than the actor (variants 2 and 3:
#: the course's small rates are what keep variant 3 from learning quickly).
BASELINE_FAST: dict[str, Any] = {**REINFORCE_FAST, "critic_learning_rate": 1e-2}
#: Variant 4 keeps its 10 critic steps.
NORMALISED_FAST: dict[str, Any] = {**BASELINE_FAST, "critic_steps": CRITIC_STEPS}
#: The pendulum: 32 episodes over 32 environments, an entropy bonus (without it sigma collapses
#: to its floor on some seeds and learning stalls) and bootstrapping of episodes cut by the
#: time limit with the critic's value. It learns from the unclipped samples (the unbiased
#: estimator), not from the clipped actions as the course does.
GAUSSIAN_FAST: dict[str, Any] = {
    **FAST_KEEPS,
    "learn_clipped_actions": False,
    "num_envs": 32,
    "episodes_per_update": 32,
    "actor_learning_rate": 3e-4,
    "critic_learning_rate": 1e-2,
    "critic_steps": CRITIC_STEPS,
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

# --- PPO ---------------------------------------------------------------------------------------
# PPO has no course version. Its presets differ by task, so a value may be a dict by agent;
# PPOSettings.preset picks the agent's entry. "fast" (the default) is what solves fastest
# here; "zoo" is the RL Zoo's tuned PPO for each task (rl-baselines3-zoo, hyperparams/ppo.yml;
# the pendulum's entry was tuned on InvertedPendulum-v3, the same task).
PPO_HIDDEN = (64, 64)
#: The defaults of PPO's settings class: Stable-Baselines3's PPO defaults (the presets override
#: them per task).
PPO_ROLLOUT_STEPS = 2048
PPO_EPOCHS = 10
PPO_MINIBATCH_SIZE = 64
PPO_GAE_LAMBDA = 0.95
PPO_CLIP_RANGE = 0.2
PPO_LEARNING_RATE = 3e-4
PPO_VALUE_COEF = 0.5
PPO_MAX_GRAD_NORM = 0.5
PPO_LOG_STD_INIT = 0.0
#: Runs stop when solved; these only cap a run that never gets there.
PPO_MAX_ENV_STEPS = {"cartpole": 300_000, "pendulum": 200_000}
PPO_SHARED: dict[str, Any] = {
    "stop": "solved",
    "solve_threshold": {name: task.solve_score for name, task in TASKS.items()},
    "max_episodes": 1_000_000,
    "max_env_steps": PPO_MAX_ENV_STEPS,
    "max_seconds": 120.0,
    "checkpoint_every": 1000,
}
PPO_FAST: dict[str, Any] = {
    **PPO_SHARED,
    "num_envs": {"cartpole": 8, "pendulum": 2},
    "rollout_steps": {"cartpole": 32, "pendulum": 64},
    "epochs": 10,
    "minibatch_size": {"cartpole": 64, "pendulum": 128},
    "gamma": {"cartpole": 0.98, "pendulum": 0.99},
    "gae_lambda": {"cartpole": 0.8, "pendulum": 0.95},
    "learning_rate": {"cartpole": 1e-3, "pendulum": 3e-3},
    "reward_scale": {"cartpole": 1.0, "pendulum": 0.1},
    # When to try the greedy check. CartPole's is cheap (a native vector env), so it is tried
    # early: the greedy policy often solves while sampled episodes still fail. The pendulum's
    # costs up to a second, so it waits for sampled episodes at the bar.
    "gate_episodes": {"cartpole": 5, "pendulum": 2},
    "eval_gate": {"cartpole": 100.0, "pendulum": TASKS["pendulum"].solve_score},
    # With the pendulum's gate at the bar, the agent's own evaluation (which gives up as soon
    # as the bar is out of reach) decides directly: the vectorised precheck would play the
    # same 20 episodes of 1000 steps a second time (about 0.65 s here).
    "vectorised_precheck": {"cartpole": True, "pendulum": False},
}
PPO_ZOO: dict[str, Any] = {
    **PPO_SHARED,
    "num_envs": {"cartpole": 8, "pendulum": 1},
    "rollout_steps": 32,
    "epochs": {"cartpole": 20, "pendulum": 5},
    # The pendulum's 64 exceeds its 32-sample rollouts: Stable-Baselines3 then takes one
    # minibatch of 32, as the cap here does.
    "minibatch_size": {"cartpole": 256, "pendulum": 64},
    "gamma": {"cartpole": 0.98, "pendulum": 0.999},
    "gae_lambda": {"cartpole": 0.8, "pendulum": 0.9},
    "learning_rate": {"cartpole": 1e-3, "pendulum": 0.000222425},
    "linear_decay": {"cartpole": True, "pendulum": False},
    "decay_env_steps": {"cartpole": 100_000, "pendulum": 1_000_000},
    "clip_range": {"cartpole": 0.2, "pendulum": 0.4},
    "entropy_coef": {"cartpole": 0.0, "pendulum": 1.37976e-07},
    "value_coef": {"cartpole": 0.5, "pendulum": 0.19816},
    "max_grad_norm": {"cartpole": 0.5, "pendulum": 0.3},
    # The pendulum's "normalize: true": VecNormalize's observation and reward statistics.
    "normalise_observations": {"cartpole": False, "pendulum": True},
    "normalise_rewards": {"cartpole": False, "pendulum": True},
    "gate_episodes": 5,
    "eval_gate": {name: task.solve_score for name, task in TASKS.items()},
}

#: Presets by script; "course" is each settings class's own defaults.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "reinforce": {"course": {}, "fast": REINFORCE_FAST},
    "reinforce_baseline": {"course": {}, "fast": BASELINE_FAST},
    "reinforce_baseline_lr": {"course": {}, "fast": BASELINE_FAST},
    "reinforce_normalised": {"course": {}, "fast": NORMALISED_FAST},
    "gaussian_actor_critic": {"course": {}, "fast": GAUSSIAN_FAST},
    "ppo": {"fast": PPO_FAST, "zoo": PPO_ZOO},
}
