"""Variant 5: the Gaussian actor-critic on InvertedPendulum-v5.

python -m training.gaussian_actor_critic                 # the course's variant 5
python -m training.gaussian_actor_critic --preset fast   # 32 environments: solves in ~a minute

The course's variant 4 (see training/reinforce.py) with continuous actions. One update, read
top to bottom in this file:

1. collect ``episodes_per_update`` episodes, actions from N(mean(s), sigma(s)) clipped to [-3, 3];
2. G_t = r_t + gamma G_{t+1} per episode (``training.returns``);
3. ``critic_steps`` Huber steps of the critic V(s) towards G_t;
4. one actor step on ``-sum_t gamma^t A_t log pi(a_t | s_t)`` with A_t = G_t - V(s_t)
   (V as it was while acting) standardised within each episode (or over the batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from training import settings as core
from training.distributions import Gaussian
from training.loop import run_script
from training.returns import EpisodeBatchCalls, per_step, standardise
from training.rollouts import NumpyForward, make_policy

MEAN_SCALE = 3.0  # the mean is 3 tanh(.): the pendulum's action bounds
LOG_STD_SCALE = 3.0  # log sigma = 3 tanh(.) - 2, so sigma lies in about [0.0067, 2.7]
LOG_STD_OFFSET = -2.0


# --- settings -------------------------------------------------------------------------------
@dataclass(frozen=True)
class GaussianActorCriticSettings(core.RunSettings):
    """Variant 5's settings, as the course by default: actor 4 -> 256 ReLU -> 256 ReLU, heads
    mean = 3 tanh(.) and log sigma = 3 tanh(.) - 2, the sampled action clipped to [-3, 3] (the
    course: [-2, 2]) and scored clipped, as the course; critic 4 -> 128 ReLU -> 1 taking 10 Huber
    steps per episode; Adam 3e-5 (actor), 1e-4 (critic); 1000 episodes, no early stop."""

    DIVERGENCE_SUSPECTS = (
        *("actor_learning_rate", "critic_learning_rate", "gamma", "clipnorm", "entropy_coef"),
    )

    agent: Literal["pendulum"] = "pendulum"
    """the task: the course's continuous-action practice, InvertedPendulum-v5"""
    stop: Literal["running_reward", "solved", "none"] = "none"
    """stop rule: running reward above the target, solved by a greedy evaluation, or none"""
    solve_threshold: float = 950.0
    """with --stop solved: the greedy evaluation mean that counts as solved"""
    actor_hidden: core.Layers = (256, 256)
    """hidden layer sizes of the policy's trunk"""
    critic_hidden: core.Layers = (128,)
    """hidden layer sizes of the critic"""
    actor_learning_rate: core.Positive = 3e-5
    """Adam learning rate of the policy"""
    critic_learning_rate: core.Positive = 1e-4
    """Adam learning rate of the critic"""
    clipnorm: core.Positive = 1.0
    """Adam clipnorm (per-variable gradient norm cap)"""
    critic_steps: core.Count = 10
    """critic steps per update, before the actor step"""
    episodes_per_update: core.Count = 1
    """complete episodes in each update"""
    learn_clipped_actions: bool = True
    """score the action clipped to the bounds, as the course (off: the unclipped one, unbiased)"""
    discount_weighting: bool = True
    """multiply step t's term by gamma^t (the course's loss)"""
    batch_reduction: Literal["sum", "mean"] = "sum"
    """combine the episodes' losses by their sum or their mean"""
    standardise: Literal["none", "episode", "batch"] = "episode"
    """standardise the actor's weights A_t within each episode, over the batch, or not"""
    entropy_coef: core.NonNegative = 0.0
    """entropy bonus coefficient (0: none, as the course)"""
    bootstrap_truncated: bool = False
    """add gamma^(T-t) V(s_T) to the returns of episodes cut by the time limit"""


#: The fast preset: 32 episodes over 32 environments, learning from the unclipped samples,
#: standardised over the batch, an entropy bonus (without it sigma collapses to its floor on
#: some seeds and learning stalls), episodes cut at 1000 steps bootstrapped with the critic's
#: value; stops when a greedy evaluation solves the task. Per-layer seeds as reinforce's fast.
FAST: dict[str, Any] = (
    dict(layer_seed_step=1, critic_seed_offset=100, running_reward_from_zeros=False)
    | dict(checkpoint_names="episode", learn_clipped_actions=False, num_envs=32)
    | dict(episodes_per_update=32, actor_learning_rate=3e-4, critic_learning_rate=1e-2)
    | dict(standardise="batch", discount_weighting=False, batch_reduction="mean")
    | dict(entropy_coef=0.01, bootstrap_truncated=True, stop="solved", eval_gate=300.0)
    | dict(max_episodes=50_000, max_seconds=120.0, checkpoint_every=1000)
)
PRESETS: dict[str, dict[str, Any]] = {"course": {}, "fast": FAST}


# --- networks -------------------------------------------------------------------------------
def dense(units: int, seed: int, name: str, activation: str | None) -> Any:
    """The course's layers: He-normal ReLU hidden layers, Glorot-normal outputs."""
    import keras

    init = keras.initializers.HeNormal if activation == "relu" else keras.initializers.GlorotNormal
    return keras.layers.Dense(units, activation, name=name, kernel_initializer=init(seed=seed))


def gaussian_policy(inputs: int, hidden: tuple[int, ...], actions: int, seed: int, step: int):
    """observation -> ReLU trunk -> [mean = 3 tanh(.), log sigma = 3 tanh(.) - 2]; layer i
    seeded seed + i * step (the two heads are layers len(hidden) and len(hidden) + 1)."""
    import keras

    observation = keras.Input((inputs,), name="observation")
    x = observation
    for i, units in enumerate(hidden):
        x = dense(units, seed + i * step, f"hidden_{i}", "relu")(x)
    mean = dense(actions, seed + len(hidden) * step, "mean_tanh", "tanh")(x)
    mean = keras.layers.Rescaling(MEAN_SCALE, name="mean")(mean)
    log_std = dense(actions, seed + (len(hidden) + 1) * step, "log_std_tanh", "tanh")(x)
    log_std = keras.layers.Rescaling(LOG_STD_SCALE, offset=LOG_STD_OFFSET, name="log_std")(log_std)
    return keras.Model(observation, [mean, log_std], name="policy")


def critic_network(inputs: int, hidden: tuple[int, ...], seed: int, step: int):
    """observation -> ReLU layers -> V(s)."""
    import keras

    layers = [dense(n, seed + i * step, f"hidden_{i}", "relu") for i, n in enumerate(hidden)]
    layers.append(dense(1, seed + len(hidden) * step, "value", None))
    return keras.Sequential([keras.Input((inputs,)), *layers], name="critic")


# --- the loss and the update ----------------------------------------------------------------
class GaussianActorCritic(EpisodeBatchCalls):
    """The Gaussian policy, the critic, their optimisers and the compiled update; what the loop
    calls (collect, learn from the batch's returns by this update, the resume state) is
    training.returns'."""

    def __init__(self, settings: GaussianActorCriticSettings, envs: Any) -> None:
        import keras
        import tensorflow as tf

        self.settings, self.envs = settings, envs
        space, size = envs.single_action_space, envs.single_observation_space.shape[0]
        actions, seed, step = space.shape[0], settings.seed, settings.layer_seed_step
        self.actor = gaussian_policy(size, settings.actor_hidden, actions, seed, step)
        self.exported = self.actor  # the agent saves the Gaussian policy itself
        critic_seed = seed + settings.critic_seed_offset
        self.critic = critic_network(size, settings.critic_hidden, critic_seed, step)
        adam = partial(keras.optimizers.Adam, clipnorm=settings.clipnorm)
        self.actor_optimizer = adam(settings.actor_learning_rate)
        self.actor_optimizer.build(self.actor.trainable_variables)  # its slots exist for resume
        self.critic_optimizer = adam(settings.critic_learning_rate)
        self.critic_optimizer.build(self.critic.trainable_variables)
        self.parts = [("actor", self.actor.weights, self.actor_optimizer)]  # kept for --resume
        self.parts.append(("critic", self.critic.weights, self.critic_optimizer))
        self.forward = NumpyForward(self.actor)
        self.policy = make_policy(self.forward, space, learn_clipped=settings.learn_clipped_actions)
        steps = tf.TensorSpec([None, None], tf.float32)  # (B, T)
        observations = tf.TensorSpec([None, None, size], tf.float32)
        finals = tf.TensorSpec([None, size], tf.float32)
        learned = tf.TensorSpec([None, None, actions], tf.float32)  # the actions learned from
        inputs = [observations, learned, steps, steps, steps, finals, steps]
        self.update = tf.function(self.update_step, input_signature=inputs, reduce_retracing=True)

    def update_step(self, observations, actions, returns, discounts, mask, finals, tails):
        """The critic's steps, then the actor's, as one graph. Per step (B, T): the returns
        G_t, discounts gamma^t (or 1), mask (1 on real steps), and tails gamma^(T-t) where an
        episode is bootstrapped from V(its final observation, in ``finals``), else 0."""
        import tensorflow as tf
        from keras import losses, ops

        settings = self.settings
        values = per_step(self.critic, observations)[..., 0]  # V while acting
        final_values = self.critic(finals, training=True)[:, 0]
        returns = returns + ops.stop_gradient(tails * final_values[:, None])
        critic_norm = tf.constant(0.0)
        huber = losses.Huber(reduction="mean_with_sample_weight")  # over the real steps
        for _ in range(settings.critic_steps):
            with tf.GradientTape() as tape:
                predictions = per_step(self.critic, observations)
                critic_loss = huber(returns[..., None], predictions, sample_weight=mask)
            variables = self.critic.trainable_variables
            gradients = tape.gradient(critic_loss, variables)
            critic_norm += tf.linalg.global_norm(gradients)  # a NaN anywhere shows
            self.critic_optimizer.apply_gradients(zip(gradients, variables, strict=True))
        advantages = returns - values
        if settings.standardise != "none":
            axis = -1 if settings.standardise == "episode" else None
            advantages = standardise(advantages, mask, axis=axis)
        advantages = ops.stop_gradient(advantages * mask)
        with tf.GradientTape() as tape:
            policy = Gaussian(*per_step(self.actor, observations))  # mean, log sigma
            entropies = policy.entropy()
            terms = advantages * policy.log_prob(actions) + settings.entropy_coef * entropies
            loss = -ops.sum(discounts * terms * mask)
            if settings.batch_reduction == "mean":
                loss = loss / ops.cast(ops.shape(mask)[0], "float32")
        variables = self.actor.trainable_variables
        gradients = tape.gradient(loss, variables)
        actor_norm = tf.linalg.global_norm(gradients)
        self.actor_optimizer.apply_gradients(zip(gradients, variables, strict=True))
        entropy = ops.sum(entropies * mask) / ops.maximum(ops.sum(mask), 1.0)
        return loss, critic_loss, entropy, actor_norm, critic_norm


# --- the command line -----------------------------------------------------------------------
def search_space() -> dict[str, Any]:
    """What a sweep searches by default (Ray Tune distributions)."""
    from ray import tune

    return {
        "actor_learning_rate": tune.loguniform(1e-4, 3e-3),
        "critic_learning_rate": tune.loguniform(1e-3, 3e-2),
        "entropy_coef": tune.uniform(0.0, 0.03),
        "episodes_per_update": tune.choice([32, 64]),
    }


classes = (GaussianActorCriticSettings, GaussianActorCritic)
SCRIPT = core.Script("gaussian_actor_critic", *classes, PRESETS, "course", search_space, __doc__)


def main(argv: list[str] | None = None) -> int:
    return run_script(SCRIPT, argv)


if __name__ == "__main__":
    raise SystemExit(main())
