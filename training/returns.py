"""What the course scripts share over padded batches of whole episodes (B, T): discounted
returns, per-step discounts, standardisation (tested against hand-worked values), a model's
outputs at every step, and what the loop calls of them. PPO's GAE lives with its rollouts."""

from __future__ import annotations

from typing import Any

import numpy as np

from training import rollouts
from training.run_state import UpdateOutcome, assign_arrays, variable_arrays

EPSILON = 1e-8


def discounted_returns(
    rewards: np.ndarray, gamma: float, mask: np.ndarray | None = None
) -> np.ndarray:
    """G_t = r_t + gamma * G_{t+1} per episode: (T,) or rows (B, T) padded at the end, where
    ``mask`` is 0; zero on padding. float64, as the course's loop, so long episodes stay exact."""
    rewards = np.asarray(rewards, dtype=np.float64)
    single = rewards.ndim == 1
    mask = np.ones_like(rewards) if mask is None else np.asarray(mask, dtype=np.float64)
    rewards, mask = np.atleast_2d(rewards, mask)
    rewards = rewards * mask
    returns = np.zeros_like(rewards)
    running = np.zeros(rewards.shape[0], dtype=np.float64)
    for t in range(rewards.shape[1] - 1, -1, -1):
        running = rewards[:, t] + gamma * running * mask[:, t]
        returns[:, t] = running
    returns *= mask
    return returns[0] if single else returns


def standardise(values, mask=None, axis=None, epsilon: float = EPSILON):
    """(x - mean) / (std + epsilon) over the masked entries (``axis=-1``: per episode), 0 on
    padding; population std as ``np.std`` and the course. ``keras.ops``, for a tf.function."""
    from keras import ops

    values = ops.convert_to_tensor(values, dtype="float32")
    mask = ops.ones_like(values) if mask is None else ops.cast(mask, "float32")
    count = ops.maximum(ops.sum(mask, axis=axis, keepdims=True), 1.0)
    mean = ops.sum(values * mask, axis=axis, keepdims=True) / count
    variance = ops.sum(ops.square(values - mean) * mask, axis=axis, keepdims=True) / count
    return (values - mean) / (ops.sqrt(variance) + epsilon) * mask


def per_step(model: Any, observations):
    """``model`` on every step of a (B, T, obs) batch: each output reshaped to (B, T, n)."""
    import keras
    from keras import ops

    batch, horizon = ops.shape(observations)[0], ops.shape(observations)[1]
    outputs = model(ops.reshape(observations, (-1, ops.shape(observations)[-1])), training=True)

    def to_steps(output):
        return ops.reshape(output, (batch, horizon, ops.shape(output)[-1]))

    return keras.tree.map_structure(to_steps, outputs)  # a Gaussian policy has two outputs


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


class EpisodeBatchCalls:
    """What the loop calls of a course script (reinforce.py, gaussian_actor_critic.py): collect
    ``episodes_per_update`` whole episodes with ``policy``, learn from them by the script's own
    compiled ``update`` on their targets, and the resume state of ``parts``. The script sets
    those, ``forward`` (its actor's NumPy pass) and ``critic``."""

    def collect(self, rng: np.random.Generator, reset_seed: int) -> Any:
        self.forward.refresh()
        episodes = self.settings.episodes_per_update
        return rollouts.collect(self.envs, self.policy, episodes, rng, reset_seed)

    def learn(self, batch: Any) -> UpdateOutcome:
        """The script's update on the batch with its targets, float32 (B, T): the returns G_t,
        the per-step discounts and the bootstrap discounts of episodes cut by the time limit."""
        s, mask = self.settings, batch.mask
        returns = discounted_returns(batch.rewards, s.gamma, mask).astype(np.float32)
        discounts = step_discounts(mask, s.gamma, s.discount_weighting)
        bootstrap = batch.truncated & s.bootstrap_truncated
        tails = tail_discounts(batch.lengths, bootstrap, mask.shape[1], s.gamma)
        inputs = (batch.observations, batch.actions, returns, discounts, mask)
        outputs = self.update(*inputs, batch.final_observations, tails)
        loss, critic_loss, entropy, actor_norm, critic_norm = map(float, outputs)
        losses = dict(actor_loss=loss, entropy=entropy, actor_gradient_norm=actor_norm)
        if self.critic is not None:
            mean_norm = critic_norm / s.critic_steps  # over the critic's steps
            losses |= dict(critic_loss=critic_loss, critic_gradient_norm=mean_norm)
        steps = (batch.env_steps, batch.trained_steps)
        return UpdateOutcome(batch.scores, batch.lengths, losses, *steps)

    def state(self) -> dict[str, np.ndarray]:
        return variable_arrays(self.parts)

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        assign_arrays(self.parts, arrays)
