"""REINFORCE on CartPole-v1: the course's variants 1-4 as one algorithm.

python -m training.reinforce                  # variant 1 as the course runs it
python -m training.reinforce --preset fast    # 16 environments at once: solves in seconds

Variants 2-4 are this algorithm with other settings (see VARIANTS below), runnable under their
own names: ``training.reinforce_baseline``, ``training.reinforce_baseline_lr`` and
``training.reinforce_normalised``. One update, read top to bottom in this file:

1. collect ``episodes_per_update`` complete episodes with the current policy;
2. G_t = r_t + gamma G_{t+1} per episode (``training.returns``);
3. with ``--baseline``: ``critic_steps`` Huber steps of the critic V(s) towards G_t;
4. one actor step on ``-sum_t gamma^t A_t log pi(a_t | s_t)`` with A_t = G_t, or
   G_t - V(s_t) (V as it was while acting), optionally standardised.

With one episode per update this is exactly the course's per-episode update; with a batch of
B episodes their losses are summed (or averaged).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from training import settings as core
from training.distributions import Categorical
from training.loop import run_script
from training.returns import EpisodeBatchCalls, per_step, standardise
from training.rollouts import NumpyForward, make_policy


# --- settings -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReinforceSettings(core.RunSettings):
    """REINFORCE's settings, variant 1 by default: policy 4 -> 128 ReLU -> 2 softmax, Adam 3e-4
    with clipnorm 1, one step per episode; stops at a running reward above 300 (a zero-filled
    30-episode window) or after 1000 episodes; a checkpoint every 200 episodes."""

    DIVERGENCE_SUSPECTS = ("actor_learning_rate", "critic_learning_rate", "gamma", "clipnorm")

    agent: Literal["cartpole"] = "cartpole"
    """the task: REINFORCE here is the course's CartPole practice"""
    actor_hidden: core.Layers = (128,)
    """hidden layer sizes of the policy"""
    actor_learning_rate: core.Positive = 3e-4
    """Adam learning rate of the policy"""
    clipnorm: core.Positive = 1.0
    """Adam clipnorm (per-variable gradient norm cap)"""
    episodes_per_update: core.Count = 1
    """complete episodes in each update"""
    discount_weighting: bool = True
    """multiply step t's term by gamma^t (the course's loss)"""
    batch_reduction: Literal["sum", "mean"] = "sum"
    """combine the episodes' losses by their sum or their mean"""
    standardise: Literal["none", "episode", "batch"] = "none"
    """standardise the actor's weights A_t within each episode, over the batch, or not"""
    entropy_coef: core.NonNegative = 0.0
    """entropy bonus coefficient (0: none, as the course)"""
    baseline: bool = False
    """learn a critic V(s) and weight by G_t - V(s_t) (variants 2-4)"""
    critic_hidden: core.Layers = (128,)
    """with --baseline: hidden layer sizes of the critic"""
    critic_learning_rate: core.Positive = 3e-4
    """with --baseline: Adam learning rate of the critic"""
    critic_steps: core.Count = 1
    """with --baseline: critic steps per update, before the actor step"""
    bootstrap_truncated: bool = False
    """with --baseline: add gamma^(T-t) V(s_T) to the returns of episodes cut by the time limit"""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.bootstrap_truncated and not self.baseline:
            raise core.SettingError("bootstrap_truncated", "needs --baseline")

    def divergence_suspects(self) -> tuple[str, ...]:
        off = () if self.baseline else ("critic_learning_rate",)  # no critic, no suspect
        return tuple(name for name in self.DIVERGENCE_SUSPECTS if name not in off)


#: What each course variant changes from the one before (variant 1: the defaults above).
BASELINE_LR = dict(baseline=True, actor_learning_rate=3e-5, critic_learning_rate=1e-4)
VARIANTS: dict[str, dict[str, Any]] = {
    "reinforce": {},
    "reinforce_baseline": dict(baseline=True),
    "reinforce_baseline_lr": BASELINE_LR,
    "reinforce_normalised": BASELINE_LR | dict(critic_steps=10, standardise="episode"),
}
#: The fast preset: batches of 16 episodes from 16 environments, weights standardised over the
#: batch (a batch-mean baseline), no gamma^t, a larger learning rate; stops once a greedy
#: evaluation solves CartPole. Layer i is seeded seed + i (the critic's seed + 100 + i), and
#: checkpoints are named by episodes trained (a batch rarely ends on a multiple of 200).
FAST: dict[str, Any] = (
    dict(layer_seed_step=1, critic_seed_offset=100, running_reward_from_zeros=False)
    | dict(checkpoint_names="episode", num_envs=16, episodes_per_update=16)
    | dict(actor_learning_rate=3e-3, standardise="batch", discount_weighting=False)
    | dict(batch_reduction="mean", stop="solved", eval_gate=450.0, max_episodes=20_000)
    | dict(max_seconds=120.0, checkpoint_every=1000)
)
#: Each variant's fast preset keeps its lesson: variant 2's critic learns at the actor's rate,
#: variant 3's 3.3x faster (as the course's 1e-4 against 3e-5), variant 4 adds ten critic steps.
FAST_VARIANTS: dict[str, dict[str, Any]] = {
    "reinforce": FAST,
    "reinforce_baseline": FAST | dict(baseline=True, critic_learning_rate=3e-3),
    "reinforce_baseline_lr": FAST | dict(baseline=True, critic_learning_rate=1e-2),
    "reinforce_normalised": FAST | dict(baseline=True, critic_learning_rate=1e-2, critic_steps=10),
}


# --- networks -------------------------------------------------------------------------------
def dense(units: int, seed: int, name: str, hidden: bool) -> Any:
    """The course's layers: He-normal ReLU hidden layers, Glorot-normal linear outputs."""
    import keras

    init = keras.initializers.HeNormal if hidden else keras.initializers.GlorotNormal
    activation = "relu" if hidden else None
    return keras.layers.Dense(units, activation, name=name, kernel_initializer=init(seed=seed))


def mlp(inputs: int, hidden: tuple[int, ...], outputs: int, seed: int, step: int, name: str):
    """inputs -> ReLU layers -> ``outputs`` linear units; layer i seeded seed + i * step."""
    import keras

    layers = [dense(units, seed + i * step, f"hidden_{i}", True) for i, units in enumerate(hidden)]
    last = "logits" if name == "policy_logits" else "value"
    layers.append(dense(outputs, seed + len(hidden) * step, last, False))
    return keras.Sequential([keras.Input((inputs,)), *layers], name=name)


def with_softmax(logits_model: Any) -> Any:
    """The agent's model: the policy's (shared) layers followed by a softmax."""
    import keras

    inputs = keras.Input((logits_model.input_shape[-1],))
    softmax = keras.layers.Activation("softmax", name="probabilities")
    return keras.Sequential([inputs, *logits_model.layers, softmax], name="policy")


# --- loss -----------------------------------------------------------------------------------
def actor_loss(log_probabilities, entropies, advantages, discounts, mask, settings):
    """-sum_t discount_t (A_t log pi(a_t|s_t) + entropy_coef H_t), summed over the episodes
    (or averaged); the entropy bonus is reduced like the policy-gradient term."""
    from keras import ops

    terms = advantages * log_probabilities + settings.entropy_coef * entropies
    loss = -ops.sum(discounts * terms * mask)
    if settings.batch_reduction == "mean":
        loss = loss / ops.cast(ops.shape(mask)[0], "float32")
    return loss


# --- the update -----------------------------------------------------------------------------
class Reinforce(EpisodeBatchCalls):
    """The networks, their optimisers and the compiled update; what the loop calls (collect,
    learn from the batch's returns by this update, the resume state) is training.returns'."""

    def __init__(self, settings: ReinforceSettings, envs: Any) -> None:
        import keras
        import tensorflow as tf

        self.settings, self.envs = settings, envs
        space, size = envs.single_action_space, envs.single_observation_space.shape[0]
        seed, step = settings.seed, settings.layer_seed_step
        self.actor = mlp(size, settings.actor_hidden, int(space.n), seed, step, "policy_logits")
        self.exported = with_softmax(self.actor)
        adam = partial(keras.optimizers.Adam, clipnorm=settings.clipnorm)
        self.actor_optimizer = adam(settings.actor_learning_rate)
        self.actor_optimizer.build(self.actor.trainable_variables)  # its slots exist for resume
        self.parts = [("actor", self.actor.weights, self.actor_optimizer)]  # kept for --resume
        self.critic = self.critic_optimizer = None
        if settings.baseline:
            critic_seed = seed + settings.critic_seed_offset
            self.critic = mlp(size, settings.critic_hidden, 1, critic_seed, step, "critic")
            self.critic_optimizer = adam(settings.critic_learning_rate)
            self.critic_optimizer.build(self.critic.trainable_variables)
            self.parts.append(("critic", self.critic.weights, self.critic_optimizer))
        self.forward = NumpyForward(self.actor)
        self.policy = make_policy(self.forward, space)
        steps = tf.TensorSpec([None, None], tf.float32)  # (B, T)
        observations = tf.TensorSpec([None, None, size], tf.float32)
        finals = tf.TensorSpec([None, size], tf.float32)
        actions = tf.TensorSpec([None, None], tf.int32)
        inputs = [observations, actions, steps, steps, steps, finals, steps]
        self.update = tf.function(self.update_step, input_signature=inputs, reduce_retracing=True)

    def update_step(self, observations, actions, returns, discounts, mask, finals, tails):
        """The critic's steps, then the actor's, as one graph. Per step (B, T): the returns
        G_t, discounts gamma^t (or 1), mask (1 on real steps), and tails gamma^(T-t) where an
        episode is bootstrapped from V(its final observation, in ``finals``), else 0."""
        import tensorflow as tf
        from keras import losses, ops

        values = None
        critic_loss = critic_norm = tf.constant(0.0)
        if self.critic is not None:
            values = per_step(self.critic, observations)[..., 0]  # V while acting
            final_values = self.critic(finals, training=True)[:, 0]
            returns = returns + ops.stop_gradient(tails * final_values[:, None])
            huber = losses.Huber(reduction="mean_with_sample_weight")  # over the real steps
            for _ in range(self.settings.critic_steps):
                with tf.GradientTape() as tape:
                    predictions = per_step(self.critic, observations)
                    critic_loss = huber(returns[..., None], predictions, sample_weight=mask)
                variables = self.critic.trainable_variables
                gradients = tape.gradient(critic_loss, variables)
                critic_norm += tf.linalg.global_norm(gradients)  # a NaN anywhere shows
                self.critic_optimizer.apply_gradients(zip(gradients, variables, strict=True))
        advantages = returns if values is None else returns - values
        if self.settings.standardise != "none":
            axis = -1 if self.settings.standardise == "episode" else None
            advantages = standardise(advantages, mask, axis=axis)
        advantages = ops.stop_gradient(advantages * mask)
        with tf.GradientTape() as tape:
            policy = Categorical(per_step(self.actor, observations))  # over the logits
            entropies = policy.entropy()
            loss = actor_loss(
                policy.log_prob(actions), entropies, advantages, discounts, mask, self.settings
            )
        variables = self.actor.trainable_variables
        gradients = tape.gradient(loss, variables)
        actor_norm = tf.linalg.global_norm(gradients)
        self.actor_optimizer.apply_gradients(zip(gradients, variables, strict=True))
        entropy = ops.sum(entropies * mask) / ops.maximum(ops.sum(mask), 1.0)
        return loss, critic_loss, entropy, actor_norm, critic_norm


# --- the command line -----------------------------------------------------------------------
def search_space(critic: bool = True) -> dict[str, Any]:
    """What a sweep searches by default (Ray Tune distributions): the critic's rate only for a
    variant that has a critic."""
    from ray import tune

    actor_rate, episodes = tune.loguniform(3e-4, 3e-2), tune.choice([16, 32, 64])
    space = {"actor_learning_rate": actor_rate, "episodes_per_update": episodes}
    return {**space, "critic_learning_rate": tune.loguniform(1e-3, 1e-1)} if critic else space


def variant_script(name: str, description: str | None = None) -> tuple[core.Script, Callable]:
    """The course variant ``name`` (a key of VARIANTS) as a script with its course and fast
    presets, and its ``main(argv=None)``, which returns the exit status."""
    presets = {"course": VARIANTS[name], "fast": FAST_VARIANTS[name]}
    space = partial(search_space, critic=bool(VARIANTS[name].get("baseline")))
    script = core.Script(name, ReinforceSettings, Reinforce, presets, "course", space, description)
    return script, partial(run_script, script)


SCRIPT, main = variant_script("reinforce", __doc__)

if __name__ == "__main__":
    raise SystemExit(main())
