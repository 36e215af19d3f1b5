"""The policies' distributions behind one interface, chosen from the action space as SB3's
``make_proba_distribution`` does: NumPy sampling for the rollouts (fast, from a seeded
generator), ``keras.ops`` log-probabilities and entropies for the loss (gradients).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from gymnasium import spaces

LOG_2PI = math.log(2.0 * math.pi)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities along the last axis, shifted by the max so exp cannot overflow."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


class Categorical:
    """Over discrete actions; the network's outputs are the logits (..., n)."""

    def __init__(self, logits) -> None:
        self.logits = logits

    @staticmethod
    def sample_numpy(outputs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Inverse-CDF sampling: one uniform draw per row."""
        cumulative = np.cumsum(softmax(np.asarray(outputs, dtype=np.float64)), axis=-1)
        draws = rng.random(cumulative.shape[:-1])[..., None]
        return (cumulative[..., :-1] < draws).sum(axis=-1).astype(np.int64)

    def log_prob(self, actions):
        from keras import ops

        log_probabilities = ops.log_softmax(self.logits, axis=-1)
        actions = ops.expand_dims(ops.cast(actions, "int32"), -1)
        return ops.squeeze(ops.take_along_axis(log_probabilities, actions, axis=-1), axis=-1)

    def entropy(self):
        from keras import ops

        log_probabilities = ops.log_softmax(self.logits, axis=-1)
        return -ops.sum(ops.exp(log_probabilities) * log_probabilities, axis=-1)


class Gaussian:
    """A diagonal Normal; the outputs are (mean, log_std), each (..., d). ``log_prob`` and
    ``entropy`` sum over the d action dimensions."""

    def __init__(self, mean, log_std) -> None:
        self.mean = mean
        self.log_std = log_std

    @staticmethod
    def sample_numpy(outputs: Any, rng: np.random.Generator) -> np.ndarray:
        """mean + sigma * z, unclipped (the caller clips what it sends)."""
        mean, log_std = outputs
        return (mean + np.exp(log_std) * rng.standard_normal(np.shape(mean))).astype(np.float32)

    def log_prob(self, actions):
        from keras import ops

        z = (ops.cast(actions, "float32") - self.mean) * ops.exp(-self.log_std)
        return ops.sum(-0.5 * ops.square(z) - self.log_std - 0.5 * LOG_2PI, axis=-1)

    def entropy(self):
        from keras import ops

        return ops.sum(0.5 + 0.5 * LOG_2PI + self.log_std, axis=-1)


def distribution_for(action_space: spaces.Space) -> type[Categorical] | type[Gaussian]:
    """Discrete -> Categorical, Box -> Gaussian."""
    if isinstance(action_space, spaces.Discrete):
        return Categorical
    if isinstance(action_space, spaces.Box):
        return Gaussian
    raise ValueError(f"no policy distribution for action space {action_space}")
