"""Discounted returns, per-step discounts, standardisation, GAE and reward normalisation, over
padded episode batches or fixed-length rollouts (tested against hand-worked values)."""

from __future__ import annotations

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


def gae_advantages(
    rewards: np.ndarray,
    values: np.ndarray,
    next_values: np.ndarray,
    terminated: np.ndarray,
    ended: np.ndarray,
    gamma: float,
    gae_lambda: float,
) -> np.ndarray:
    """GAE over a time-major rollout (T, ...), in float64. ``delta_t = r_t + gamma * (1 -
    terminated_t) * next_values[t] - values[t]``: a failure has no future, a time-limit cut or the
    rollout's end bootstraps from what step t returned. ``A_t = delta_t + gamma * lambda * (1 -
    ended_t) * A_{t+1}`` stops at every episode's end."""
    rewards = np.asarray(rewards, dtype=np.float64)
    future = gamma * (1.0 - np.asarray(terminated, dtype=np.float64))
    continues = gamma * gae_lambda * (1.0 - np.asarray(ended, dtype=np.float64))
    deltas = rewards + future * next_values - np.asarray(values, dtype=np.float64)
    advantages = np.zeros_like(deltas)
    running = np.zeros(deltas.shape[1:])
    for t in range(len(deltas) - 1, -1, -1):
        running = deltas[t] + continues[t] * running
        advantages[t] = running
    return advantages


class RewardNormaliser:
    """Rewards over the running std of each environment's discounted return (valid steps only,
    restarting after every end), clipped to +/- ``clip``, as SB3's ``VecNormalize``. Not gymnasium's
    ``NormalizeReward``: scores stay in the task's units here, and it neither clips, restarts
    after a cut, nor resumes exactly."""

    FIELDS = ("mean", "var", "count")  # the statistics' arrays in the resume state

    def __init__(self, num_envs: int, gamma: float, clip: float = 10.0) -> None:
        from gymnasium.wrappers.utils import RunningMeanStd

        self.statistics = RunningMeanStd()
        self.returns = np.zeros(num_envs)
        self.gamma = gamma
        self.clip = clip

    def __call__(self, rewards: np.ndarray, valid: np.ndarray, ended: np.ndarray) -> np.ndarray:
        """A time-major rollout's rewards (T, N), normalised; ``valid`` and ``ended`` (T, N)."""
        rewards = np.asarray(rewards, dtype=np.float64).copy()
        for t, (steps, end) in enumerate(zip(valid, ended, strict=True)):
            self.returns[steps] = self.returns[steps] * self.gamma + rewards[t, steps]
            if steps.any():
                self.statistics.update(self.returns[steps])
            scaled = rewards[t] / np.sqrt(self.statistics.var + EPSILON)
            rewards[t] = np.clip(scaled, -self.clip, self.clip)
            self.returns[end] = 0.0
        return rewards

    def state(self, prefix: str) -> dict[str, np.ndarray]:
        arrays = {f"{prefix}{k}": np.array(getattr(self.statistics, k)) for k in self.FIELDS}
        return {**arrays, f"{prefix}returns": self.returns.copy()}

    def load_state(self, arrays: dict[str, np.ndarray], prefix: str) -> None:
        for key in self.FIELDS:
            setattr(self.statistics, key, np.array(arrays[f"{prefix}{key}"]))
        self.returns = np.array(arrays[f"{prefix}returns"])
