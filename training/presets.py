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

#: Presets by script; "course" is each settings class's own defaults.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "reinforce": {"course": {}, "fast": REINFORCE_FAST},
    "reinforce_baseline": {"course": {}, "fast": BASELINE_FAST},
    "reinforce_baseline_lr": {"course": {}, "fast": BASELINE_FAST},
    "reinforce_normalised": {"course": {}, "fast": NORMALISED_FAST},
    "gaussian_actor_critic": {"course": {}, "fast": GAUSSIAN_FAST},
}
