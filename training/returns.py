"""What the course scripts compute over padded episode batches (B, T): discounted returns,
per-step discounts, standardisation (tested against hand-worked values) and a model's outputs
at every step. PPO's GAE lives with its rollouts, in training.rollouts."""

from __future__ import annotations

from typing import Any

import numpy as np

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


def episode_targets(batch: Any, settings: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What a course script's update needs of an episode batch besides the batch itself: the
    returns G_t, the per-step discounts and the bootstrap discounts of episodes cut by the time
    limit (where ``settings.bootstrap_truncated``), all float32 (B, T)."""
    mask, gamma = batch.mask, settings.gamma
    returns = discounted_returns(batch.rewards, gamma, mask).astype(np.float32)
    discounts = step_discounts(mask, gamma, settings.discount_weighting)
    bootstrap = batch.truncated & settings.bootstrap_truncated
    return returns, discounts, tail_discounts(batch.lengths, bootstrap, mask.shape[1], gamma)
