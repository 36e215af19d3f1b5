"""The course's policy-gradient family: the loss, the compiled update and the algorithm.

One update = ``critic_steps`` critic steps (Huber towards G_t), then one actor step on
``-sum_t gamma^t * A_t * log pi(a_t | s_t)`` with the advantage ``A_t = G_t`` or
``G_t - V(s_t)`` (V from the critic as it was while acting, i.e. before this update's critic
steps), optionally standardised. With one episode per update this is exactly the course's
per-episode update; with B episodes the per-episode losses are summed (or averaged).
:class:`EpisodicPolicyGradient` is what the training loop drives for the five course scripts:
collect complete episodes, compute the returns, update.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from training.distributions import Distribution, Gaussian, distribution_for
from training.returns import discounted_returns, standardise
from training.settings import TrainingSettings

HUBER_DELTA = 1.0


@dataclass(frozen=True)
class LossSettings:
    """The parts of the settings the loss depends on."""

    distribution: Distribution
    baseline: bool
    critic_steps: int
    standardise: str
    batch_reduction: str
    entropy_coef: float

    @classmethod
    def from_settings(cls, settings: TrainingSettings, distribution: Distribution) -> LossSettings:
        return cls(
            distribution,
            settings.baseline,
            settings.critic_steps,
            settings.standardise,
            settings.batch_reduction,
            settings.entropy_coef,
        )


def huber(targets, predictions, mask):
    """Keras' Huber loss (delta 1), averaged over the real steps only."""
    error = ops.abs(targets - predictions)
    quadratic = ops.minimum(error, HUBER_DELTA)
    per_step = 0.5 * ops.square(quadratic) + HUBER_DELTA * (error - quadratic)
    return ops.sum(per_step * mask) / ops.maximum(ops.sum(mask), 1.0)


def flatten_steps(observations):
    """(B, T, obs) -> (B*T, obs): the networks see single observations."""
    return ops.reshape(observations, (-1, ops.shape(observations)[-1]))


def policy_distribution(actor: keras.Model, observations, distribution: Distribution):
    """The policy at every step of a (B, T, obs) batch, as a (B, T)-shaped distribution."""
    batch, horizon = ops.shape(observations)[0], ops.shape(observations)[1]
    outputs = actor(flatten_steps(observations), training=True)

    def per_step(output):
        return ops.reshape(output, (batch, horizon, ops.shape(output)[-1]))

    if isinstance(outputs, (list, tuple)):
        return distribution.from_outputs([per_step(output) for output in outputs])
    return distribution.from_outputs(per_step(outputs))


def critic_values(critic: keras.Model, observations):
    batch, horizon = ops.shape(observations)[0], ops.shape(observations)[1]
    return ops.reshape(critic(flatten_steps(observations), training=True), (batch, horizon))


def advantages_of(returns, values, mask, standardise_mode: str):
    """A_t = G_t (- V(s_t)), standardised per episode / over the batch if asked; no gradient."""
    advantages = returns if values is None else returns - values
    if standardise_mode == "episode":
        advantages = standardise(advantages, mask, axis=-1)
    elif standardise_mode == "batch":
        advantages = standardise(advantages, mask, axis=None)
    return ops.stop_gradient(advantages * mask)


def actor_loss(
    distribution,
    actions,
    advantages,
    discounts,
    mask,
    batch_reduction: str,
    entropy_coef: float = 0.0,
):
    """-sum_t discount_t * (A_t * log pi(a_t|s_t) + entropy_coef * H_t), summed over the
    episodes (or averaged). The entropy bonus is reduced like the policy-gradient term, so its
    coefficient means the same at any episode length. Returns (loss, mean entropy per step)."""
    log_probabilities = distribution.log_prob(actions)
    entropies = distribution.entropy()
    loss = -ops.sum(discounts * (advantages * log_probabilities + entropy_coef * entropies) * mask)
    if batch_reduction == "mean":
        loss = loss / ops.cast(ops.shape(mask)[0], "float32")
    entropy = ops.sum(entropies * mask) / ops.maximum(ops.sum(mask), 1.0)
    return loss, entropy


class Learner:
    """The actor, the critic, their Adam optimisers and the compiled update."""

    def __init__(
        self,
        settings: TrainingSettings,
        actor: keras.Model,
        critic: keras.Model | None,
        distribution: Distribution,
    ) -> None:
        self.loss_settings = LossSettings.from_settings(settings, distribution)
        self.actor = actor
        self.critic = critic
        self.actor_optimizer = keras.optimizers.Adam(
            settings.actor_learning_rate, clipnorm=settings.clipnorm
        )
        self.actor_optimizer.build(actor.trainable_variables)
        self.critic_optimizer = None
        if critic is not None:
            self.critic_optimizer = keras.optimizers.Adam(
                settings.critic_learning_rate, clipnorm=settings.clipnorm
            )
            self.critic_optimizer.build(critic.trainable_variables)
        observation_size = actor.input_shape[-1]
        if distribution is Gaussian:
            action_spec = tf.TensorSpec([None, None, actor.output_shape[0][-1]], tf.float32)
        else:
            action_spec = tf.TensorSpec([None, None], distribution.action_dtype)
        steps = tf.TensorSpec([None, None], tf.float32)
        self._update = tf.function(
            self._update_step,
            input_signature=[
                tf.TensorSpec([None, None, observation_size], tf.float32),
                action_spec,
                steps,
                steps,
                steps,
                tf.TensorSpec([None, observation_size], tf.float32),
                steps,
            ],
            reduce_retracing=True,
        )

    def _update_step(
        self, observations, actions, returns, discounts, mask, final_observations, tail_discounts
    ):
        config = self.loss_settings
        values = None
        critic_loss = tf.constant(0.0)
        critic_gradient_norm = tf.constant(0.0)
        if self.critic is not None:
            values = critic_values(self.critic, observations)  # V while acting
            # episodes cut by the time limit: G_t += gamma^(T-t) V(s_T) (zero discounts otherwise)
            final_values = self.critic(final_observations, training=True)[:, 0]
            returns = returns + ops.stop_gradient(tail_discounts * final_values[:, None])
            for _ in range(config.critic_steps):
                with tf.GradientTape() as tape:
                    critic_loss = huber(returns, critic_values(self.critic, observations), mask)
                variables = self.critic.trainable_variables
                gradients = tape.gradient(critic_loss, variables)
                # summed over the steps: one non-finite gradient makes it non-finite
                critic_gradient_norm += tf.linalg.global_norm(gradients)
                self.critic_optimizer.apply_gradients(zip(gradients, variables, strict=True))
        advantages = advantages_of(returns, values, mask, config.standardise)
        with tf.GradientTape() as tape:
            distribution = policy_distribution(self.actor, observations, config.distribution)
            loss, entropy = actor_loss(
                distribution,
                actions,
                advantages,
                discounts,
                mask,
                config.batch_reduction,
                config.entropy_coef,
            )
        variables = self.actor.trainable_variables
        gradients = tape.gradient(loss, variables)
        actor_gradient_norm = tf.linalg.global_norm(gradients)
        self.actor_optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return loss, critic_loss, entropy, actor_gradient_norm, critic_gradient_norm

    def update(
        self,
        observations: np.ndarray,
        actions: np.ndarray,
        returns: np.ndarray,
        discounts: np.ndarray,
        mask: np.ndarray,
        final_observations: np.ndarray | None = None,
        tail_discounts: np.ndarray | None = None,
    ) -> dict[str, float]:
        """One update on a padded batch of episodes; returns the losses for logging and the
        gradients' global norms (the training loop stops the run if any is not finite).

        ``tail_discounts`` (B, T) holds gamma^(T-t) for episodes whose return should be
        bootstrapped with V(final observation), zeros elsewhere (the default: no bootstrap).
        """
        if final_observations is None or tail_discounts is None:
            final_observations = np.zeros((len(observations), observations.shape[-1]))
            tail_discounts = np.zeros_like(mask)
        loss, critic_loss, entropy, actor_norm, critic_norm = self._update(
            tf.convert_to_tensor(observations, tf.float32),
            tf.convert_to_tensor(actions),
            tf.convert_to_tensor(returns, tf.float32),
            tf.convert_to_tensor(discounts, tf.float32),
            tf.convert_to_tensor(mask, tf.float32),
            tf.convert_to_tensor(final_observations, tf.float32),
            tf.convert_to_tensor(tail_discounts, tf.float32),
        )
        return {
            "actor_loss": float(loss),
            "critic_loss": float(critic_loss),
            "entropy": float(entropy),
            "actor_gradient_norm": float(actor_norm),
            "critic_gradient_norm": float(critic_norm / max(self.loss_settings.critic_steps, 1)),
        }

    # --- state for --resume (plain arrays, saved as .npz) ----------------------------------
    def state(self) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {}
        for prefix, model, optimizer in self._parts():
            for i, variable in enumerate(model.weights):
                arrays[f"{prefix}/weight_{i:03d}"] = np.asarray(variable.numpy())
            for i, variable in enumerate(optimizer.variables):
                arrays[f"{prefix}/optimizer_{i:03d}"] = np.asarray(variable.numpy())
        return arrays

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        for prefix, model, optimizer in self._parts():
            for i, variable in enumerate(model.weights):
                variable.assign(arrays[f"{prefix}/weight_{i:03d}"])
            for i, variable in enumerate(optimizer.variables):
                variable.assign(arrays[f"{prefix}/optimizer_{i:03d}"])

    def _parts(self):
        parts = [("actor", self.actor, self.actor_optimizer)]
        if self.critic is not None:
            parts.append(("critic", self.critic, self.critic_optimizer))
        return parts


def tail_discounts(
    lengths: np.ndarray, bootstrap: np.ndarray, horizon: int, gamma: float
) -> np.ndarray:
    """gamma^(L-t) on the steps of episodes to bootstrap (length L), zeros elsewhere."""
    steps_left = lengths[:, None] - np.arange(horizon)[None, :]
    discounts = np.where(steps_left > 0, gamma ** np.maximum(steps_left, 0), 0.0)
    return (discounts * bootstrap[:, None]).astype(np.float32)


def step_discounts(mask: np.ndarray, gamma: float, discount_weighting: bool) -> np.ndarray:
    """gamma^t per step (the course's weighting), or ones; zero on padding."""
    if not discount_weighting:
        return mask.astype(np.float32)
    powers = gamma ** np.arange(mask.shape[1], dtype=np.float64)
    return (powers[None, :] * mask).astype(np.float32)


class EpisodicPolicyGradient:
    """The course scripts' algorithm: batches of complete episodes and Monte-Carlo returns.

    The training loop calls :meth:`collect` (interruptible) and then :meth:`learn` (run with
    Ctrl-C held, so an update and its bookkeeping happen together).
    """

    def __init__(self, settings: TrainingSettings, envs) -> None:
        from training import networks
        from training.rollouts import make_policy

        space = envs.single_action_space
        observation_size = envs.single_observation_space.shape[0]
        self.settings = settings
        self.envs = envs
        self.distribution = distribution_for(space)
        self.actor, self.exported = networks.build_policy(
            observation_size, settings.actor_hidden, space, settings.seed, settings.layer_seed_step
        )
        critic = (
            networks.build_critic(
                observation_size,
                settings.critic_hidden,
                settings.seed + settings.critic_seed_offset,
                settings.layer_seed_step,
            )
            if settings.baseline
            else None
        )
        self.learner = Learner(settings, self.actor, critic, self.distribution)
        self.forward = networks.NumpyForward(self.actor)
        self.policy = make_policy(
            self.forward, space, learn_clipped=settings.learn_clipped_actions
        )
        self._greedy = make_policy(self.forward, space, greedy=True)

    def greedy_policy(self):
        """The deterministic policy with the current weights, for the solve check."""
        self.forward.refresh()
        return self._greedy

    def collect(self, rng: np.random.Generator, reset_seed: int):
        from training.rollouts import collect

        self.forward.refresh()
        return collect(self.envs, self.policy, self.settings.episodes_per_update, rng, reset_seed)

    def learn(self, batch):
        from training.loop import UpdateOutcome

        settings = self.settings
        returns = discounted_returns(batch.rewards, settings.gamma, batch.mask)
        discounts = step_discounts(batch.mask, settings.gamma, settings.discount_weighting)
        bootstrap = batch.truncated & settings.bootstrap_truncated
        tails = tail_discounts(batch.lengths, bootstrap, batch.mask.shape[1], settings.gamma)
        losses = self.learner.update(
            batch.observations,
            batch.actions,
            returns,
            discounts,
            batch.mask,
            batch.final_observations,
            tails,
        )
        return UpdateOutcome(
            scores=batch.scores,
            lengths=batch.lengths,
            losses=losses,
            env_steps=batch.env_steps,
            trained_steps=batch.trained_steps,
        )

    def state(self) -> dict[str, np.ndarray]:
        return self.learner.state()

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.learner.load_state(arrays)
