"""The policy-gradient loss and the update steps, compiled once as ``tf.function``s.

One update = ``critic_steps`` critic steps (Huber towards G_t), then one actor step on
``-sum_t gamma^t * w_t * log pi(a_t | s_t)`` with ``w_t = G_t`` or ``G_t - V(s_t)`` (V from the
critic as it was while acting, i.e. before this update's critic steps), optionally standardised.
With one episode per update this is exactly the course's per-episode update; with B episodes
the per-episode losses are summed (or averaged).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from training.distributions import Categorical, Gaussian
from training.returns import standardise
from training.settings import TrainingSettings

HUBER_DELTA = 1.0


@dataclass(frozen=True)
class LossSettings:
    """The parts of the settings the loss depends on."""

    gaussian: bool
    baseline: bool
    critic_steps: int
    standardise: str
    batch_reduction: str
    entropy_coef: float

    @classmethod
    def from_settings(cls, settings: TrainingSettings) -> LossSettings:
        return cls(
            settings.task == "pendulum",
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


def policy_distribution(actor: keras.Model, observations, gaussian: bool):
    """The policy at every step of a (B, T, obs) batch, as a (B, T)-shaped distribution."""
    batch, horizon = ops.shape(observations)[0], ops.shape(observations)[1]
    outputs = actor(flatten_steps(observations), training=True)
    if gaussian:
        mean, log_std = outputs
        size = ops.shape(mean)[-1]
        return Gaussian(
            ops.reshape(mean, (batch, horizon, size)), ops.reshape(log_std, (batch, horizon, size))
        )
    return Categorical(ops.reshape(outputs, (batch, horizon, ops.shape(outputs)[-1])))


def critic_values(critic: keras.Model, observations):
    batch, horizon = ops.shape(observations)[0], ops.shape(observations)[1]
    return ops.reshape(critic(flatten_steps(observations), training=True), (batch, horizon))


def actor_weights(returns, values, mask, standardise_mode: str):
    """w_t = G_t (- V(s_t)), standardised per episode / over the batch if asked; no gradient."""
    weights = returns if values is None else returns - values
    if standardise_mode == "episode":
        weights = standardise(weights, mask, axis=-1)
    elif standardise_mode == "batch":
        weights = standardise(weights, mask, axis=None)
    return ops.stop_gradient(weights * mask)


def actor_loss(
    distribution,
    actions,
    weights,
    time_weights,
    mask,
    batch_reduction: str,
    entropy_coef: float = 0.0,
):
    """-sum_t time_weight_t * (w_t * log pi(a_t|s_t) + entropy_coef * H_t), summed over the
    episodes (or averaged). The entropy bonus is reduced like the policy-gradient term, so its
    coefficient means the same at any episode length. Returns (loss, mean entropy per step)."""
    log_probabilities = distribution.log_prob(actions)
    entropies = distribution.entropy()
    loss = -ops.sum(time_weights * (weights * log_probabilities + entropy_coef * entropies) * mask)
    if batch_reduction == "mean":
        loss = loss / ops.cast(ops.shape(mask)[0], "float32")
    entropy = ops.sum(entropies * mask) / ops.maximum(ops.sum(mask), 1.0)
    return loss, entropy


class Learner:
    """The actor, the critic, their Adam optimisers and the compiled update."""

    def __init__(
        self, settings: TrainingSettings, actor: keras.Model, critic: keras.Model | None
    ) -> None:
        self.loss_settings = LossSettings.from_settings(settings)
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
        if self.loss_settings.gaussian:
            action_spec = tf.TensorSpec([None, None, actor.output_shape[0][-1]], tf.float32)
        else:
            action_spec = tf.TensorSpec([None, None], tf.int32)
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
        self, observations, actions, returns, time_weights, mask, final_observations, tail_discounts
    ):
        config = self.loss_settings
        values = None
        critic_loss = tf.constant(0.0)
        if self.critic is not None:
            values = critic_values(self.critic, observations)  # V while acting
            # episodes cut by the time limit: G_t += gamma^(T-t) V(s_T) (zero weights otherwise)
            final_values = self.critic(final_observations, training=True)[:, 0]
            returns = returns + ops.stop_gradient(tail_discounts * final_values[:, None])
            for _ in range(config.critic_steps):
                with tf.GradientTape() as tape:
                    critic_loss = huber(returns, critic_values(self.critic, observations), mask)
                variables = self.critic.trainable_variables
                gradients = tape.gradient(critic_loss, variables)
                self.critic_optimizer.apply_gradients(zip(gradients, variables, strict=True))
        weights = actor_weights(returns, values, mask, config.standardise)
        with tf.GradientTape() as tape:
            distribution = policy_distribution(self.actor, observations, config.gaussian)
            loss, entropy = actor_loss(
                distribution,
                actions,
                weights,
                time_weights,
                mask,
                config.batch_reduction,
                config.entropy_coef,
            )
        variables = self.actor.trainable_variables
        gradients = tape.gradient(loss, variables)
        self.actor_optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return loss, critic_loss, entropy

    def update(
        self,
        observations: np.ndarray,
        actions: np.ndarray,
        returns: np.ndarray,
        time_weights: np.ndarray,
        mask: np.ndarray,
        final_observations: np.ndarray | None = None,
        tail_discounts: np.ndarray | None = None,
    ) -> dict[str, float]:
        """One update on a padded batch of episodes; returns the losses for logging.

        ``tail_discounts`` (B, T) holds gamma^(T-t) for episodes whose return should be
        bootstrapped with V(final observation), zeros elsewhere (the default: no bootstrap).
        """
        if final_observations is None or tail_discounts is None:
            final_observations = np.zeros((len(observations), observations.shape[-1]))
            tail_discounts = np.zeros_like(mask)
        loss, critic_loss, entropy = self._update(
            tf.convert_to_tensor(observations, tf.float32),
            tf.convert_to_tensor(actions),
            tf.convert_to_tensor(returns, tf.float32),
            tf.convert_to_tensor(time_weights, tf.float32),
            tf.convert_to_tensor(mask, tf.float32),
            tf.convert_to_tensor(final_observations, tf.float32),
            tf.convert_to_tensor(tail_discounts, tf.float32),
        )
        return {
            "actor_loss": float(loss),
            "critic_loss": float(critic_loss),
            "entropy": float(entropy),
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


def time_weights(mask: np.ndarray, gamma: float, discount_weighting: bool) -> np.ndarray:
    """gamma^t per step (the course's weighting), or ones; zero on padding."""
    if not discount_weighting:
        return mask.astype(np.float32)
    powers = gamma ** np.arange(mask.shape[1], dtype=np.float64)
    return (powers[None, :] * mask).astype(np.float32)
