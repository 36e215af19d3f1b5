"""Proximal policy optimisation: the clipped surrogate, its compiled update, and the rollouts.

Per update: collect ``rollout_steps`` steps of every environment under the current policy
(episodes run on across updates), estimate advantages with GAE(lambda) in NumPy, then run
``epochs`` passes of shuffled minibatches through one ``tf.function``. The loss is the clipped
surrogate plus ``value_coef`` times the critic's squared error minus ``entropy_coef`` times the
entropy, with advantages normalised per minibatch and the gradient's global norm clipped, as
in Schulman et al. (2017) and Stable-Baselines3. Actor and critic are separate MLPs trained
by one Adam; a Gaussian policy has a state-independent log standard deviation, which is not
part of the saved agent (evaluation acts on the mean).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from training import networks
from training.distributions import Categorical, Gaussian
from training.returns import EPSILON, gae_advantages
from training.rollouts import (
    Rollout,
    RolloutCollector,
    categorical_policy,
    gaussian_policy,
)


def clipped_surrogate(log_probs, old_log_probs, advantages, clip_range, weights):
    """-mean_t min(rho_t A_t, clip(rho_t, 1 - eps, 1 + eps) A_t), rho_t = pi/pi_old, over the
    steps with weight 1 (``weights`` 0 drops a step). Works on tensors and arrays."""
    ratio = ops.exp(log_probs - old_log_probs)
    clipped = ops.clip(ratio, 1.0 - clip_range, 1.0 + clip_range)
    surrogate = ops.minimum(ratio * advantages, clipped * advantages)
    return -ops.sum(surrogate * weights) / ops.maximum(ops.sum(weights), 1.0)


def masked_normalise(values, weights):
    """(x - mean) / (std + epsilon) over the steps with weight 1."""
    count = ops.maximum(ops.sum(weights), 1.0)
    mean = ops.sum(values * weights) / count
    std = ops.sqrt(ops.sum(ops.square(values - mean) * weights) / count)
    return (values - mean) / (std + EPSILON)


def schedule_fraction(settings: Any, env_steps: int) -> float:
    """1 for constant hyperparameters; with ``linear_decay``, the fraction of
    ``decay_env_steps`` not yet taken (the RL Zoo's linear schedule; never below 0)."""
    if not settings.linear_decay:
        return 1.0
    return max(0.0, 1.0 - env_steps / settings.decay_env_steps)


class PPOLearner:
    """Actor, critic, (log-std), one Adam over all of them, and the compiled update."""

    def __init__(
        self,
        settings: Any,
        actor: keras.Model,
        critic: keras.Model,
        log_std: keras.Variable | None,
    ) -> None:
        self.settings = settings
        self.actor = actor
        self.critic = critic
        self.log_std = log_std
        self.gaussian = log_std is not None
        self.variables = [*actor.trainable_variables, *critic.trainable_variables]
        if log_std is not None:
            self.variables.append(log_std)
        self.optimizer = keras.optimizers.Adam(
            settings.learning_rate,
            epsilon=settings.adam_epsilon,
            global_clipnorm=settings.max_grad_norm,
        )
        self.optimizer.build(self.variables)
        observation_size = actor.input_shape[-1]
        if self.gaussian:
            action_spec = tf.TensorSpec([None, actor.output_shape[-1]], tf.float32)
        else:
            action_spec = tf.TensorSpec([None], tf.int32)
        samples = tf.TensorSpec([None], tf.float32)
        self._update = tf.function(
            self._update_step,
            input_signature=[
                tf.TensorSpec([None, observation_size], tf.float32),
                action_spec,
                samples,
                samples,
                samples,
                tf.TensorSpec([None, None], tf.int32),
                tf.TensorSpec([], tf.float32),
            ],
            autograph=False,  # the loop is an explicit while_loop; converting costs ~0.7 s
        )

    def distribution(self, observations):
        outputs = self.actor(observations, training=True)
        if self.gaussian:
            return Gaussian(outputs, ops.broadcast_to(self.log_std, ops.shape(outputs)))
        return Categorical(outputs)

    def _losses(self, observations, actions, old_log_probs, advantages, returns, weights, clip):
        settings = self.settings
        if settings.normalise_advantages:
            advantages = masked_normalise(advantages, weights)
        distribution = self.distribution(observations)
        policy_loss = clipped_surrogate(
            distribution.log_prob(actions), old_log_probs, advantages, clip, weights
        )
        count = ops.maximum(ops.sum(weights), 1.0)
        values = self.critic(observations, training=True)[:, 0]
        value_loss = ops.sum(ops.square(returns - values) * weights) / count
        entropy = ops.sum(distribution.entropy() * weights) / count
        total = policy_loss + settings.value_coef * value_loss - settings.entropy_coef * entropy
        return total, policy_loss, value_loss, entropy

    def _update_step(
        self, observations, actions, advantages, returns, weights, minibatches, clip_range
    ):
        old_log_probs = ops.stop_gradient(self.distribution(observations).log_prob(actions))
        samples = (observations, actions, old_log_probs, advantages, returns, weights)

        def minibatch_step(step, totals):
            indices = minibatches[step]
            with tf.GradientTape() as tape:
                total, *parts = self._losses(
                    *(ops.take(values, indices, axis=0) for values in samples), clip_range
                )
            gradients = tape.gradient(total, self.variables)
            self.optimizer.apply_gradients(zip(gradients, self.variables, strict=True))
            return step + 1, totals + ops.stack(parts)

        count = ops.shape(minibatches)[0]
        _, totals = tf.while_loop(
            lambda step, _: step < count, minibatch_step, (tf.constant(0), tf.zeros(3))
        )
        return totals / ops.cast(count, "float32")

    def update(
        self,
        observations: np.ndarray,
        actions: np.ndarray,
        advantages: np.ndarray,
        returns: np.ndarray,
        weights: np.ndarray,
        minibatches: np.ndarray,
        learning_rate: float,
        clip_range: float,
    ) -> dict[str, float]:
        """Several epochs of minibatch steps on one flattened rollout; the mean losses.

        ``minibatches`` (K, M) holds the sample indices of each of the K steps in order;
        ``weights`` is 1 on samples to learn from, 0 on autoreset steps.
        """
        self.optimizer.learning_rate.assign(learning_rate)
        policy_loss, value_loss, entropy = self._update(
            tf.convert_to_tensor(observations, tf.float32),
            tf.convert_to_tensor(actions.astype(np.float32 if self.gaussian else np.int32)),
            tf.convert_to_tensor(advantages, tf.float32),
            tf.convert_to_tensor(returns, tf.float32),
            tf.convert_to_tensor(weights, tf.float32),
            tf.convert_to_tensor(minibatches, tf.int32),
            tf.constant(clip_range, tf.float32),
        ).numpy()
        return {
            "actor_loss": float(policy_loss),
            "critic_loss": float(value_loss),
            "entropy": float(entropy),
        }

    # --- state for --resume (plain arrays, saved as .npz) ----------------------------------
    def state(self) -> dict[str, np.ndarray]:
        arrays = {f"variable_{i:03d}": np.asarray(v.numpy()) for i, v in enumerate(self.variables)}
        for i, variable in enumerate(self.optimizer.variables):
            arrays[f"optimizer_{i:03d}"] = np.asarray(variable.numpy())
        return arrays

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        for i, variable in enumerate(self.variables):
            variable.assign(arrays[f"variable_{i:03d}"])
        for i, variable in enumerate(self.optimizer.variables):
            variable.assign(arrays[f"optimizer_{i:03d}"])


def minibatch_indices(
    samples: int, minibatch_size: int, epochs: int, rng: np.random.Generator
) -> np.ndarray:
    """(epochs * samples // size, size): each epoch a fresh shuffle cut into minibatches
    (``minibatch_size`` is capped at ``samples``; it must divide it)."""
    size = min(minibatch_size, samples)
    if samples % size:
        raise ValueError(f"minibatch size {size} does not divide the {samples} rollout samples")
    return np.concatenate([rng.permutation(samples).reshape(-1, size) for _ in range(epochs)])


class PPO:
    """The algorithm object the training loop drives: one :meth:`update` per rollout."""

    def __init__(self, settings: Any, envs, reset_seed: int) -> None:
        self.settings = settings
        self.envs = envs
        observation_size = envs.single_observation_space.shape[0]
        space = envs.single_action_space
        self.gaussian = hasattr(space, "low")
        seed = settings.seed
        outputs = space.shape[0] if self.gaussian else int(space.n)
        self.actor = networks.build_orthogonal_mlp(
            observation_size,
            settings.actor_hidden,
            outputs,
            settings.activation,
            networks.POLICY_OUTPUT_GAIN,
            seed,
            "policy_mean" if self.gaussian else "policy_logits",
        )
        critic = networks.build_orthogonal_mlp(
            observation_size,
            settings.critic_hidden,
            1,
            settings.activation,
            networks.VALUE_OUTPUT_GAIN,
            seed + 100,
            "critic",
        )
        log_std = None
        if self.gaussian:
            log_std = keras.Variable(
                np.full(outputs, settings.log_std_init, np.float32), name="log_std"
            )
            self.forward = networks.StateIndependentGaussianForward(self.actor, log_std)
            self.policy = gaussian_policy(self.forward, space.low, space.high)
            self.greedy = gaussian_policy(self.forward, space.low, space.high, greedy=True)
            self.exported = self.actor
        else:
            self.forward = networks.NumpyForward(self.actor)
            self.policy = categorical_policy(self.forward)
            self.greedy = categorical_policy(self.forward, greedy=True)
            self.exported = networks.export_categorical_policy(self.actor)
        self.critic_forward = networks.NumpyForward(critic)
        self.learner = PPOLearner(settings, self.actor, critic, log_std)
        self.collector = RolloutCollector(envs, reset_seed)

    def advantages(self, rollout: Rollout) -> tuple[np.ndarray, np.ndarray]:
        """GAE advantages and the critic's targets (advantage + value), both (T, N)."""
        settings = self.settings
        steps_plus_one, num_envs, size = rollout.observations.shape
        values = self.critic_forward(rollout.observations.reshape(-1, size))
        values = values.reshape(steps_plus_one, num_envs).astype(np.float64)
        advantages = gae_advantages(
            rollout.rewards * settings.reward_scale,
            values[:-1],
            values[1:],
            rollout.terminated,
            rollout.ended,
            settings.gamma,
            settings.gae_lambda,
        )
        return advantages, advantages + values[:-1]

    def update(self, update: int, rng: np.random.Generator) -> tuple[Rollout, dict[str, float]]:
        settings = self.settings
        self.forward.refresh()
        self.critic_forward.refresh()
        rollout = self.collector.collect(self.policy, settings.rollout_steps, rng)
        advantages, returns = self.advantages(rollout)
        samples = rollout.valid.size
        observations = rollout.observations[:-1].reshape(samples, -1)
        actions = rollout.actions.reshape(samples, *rollout.actions.shape[2:])
        fraction = schedule_fraction(settings, (update + 1) * samples)
        losses = self.learner.update(
            observations,
            actions,
            advantages.reshape(-1),
            returns.reshape(-1),
            rollout.valid.reshape(-1).astype(np.float32),
            minibatch_indices(samples, settings.minibatch_size, settings.epochs, rng),
            settings.learning_rate * fraction,
            settings.clip_range * fraction,
        )
        self.forward.refresh()
        return rollout, losses
