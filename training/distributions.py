"""The two policies' distributions: sampling in NumPy for rollouts, log-probabilities and
entropies in ``keras.ops`` for the loss, and the greedy action.

Rollouts sample thousands of actions a second, so sampling stays in NumPy with a seeded
``np.random.Generator``; the loss needs gradients, so ``log_prob`` and ``entropy`` take tensors.
"""

from __future__ import annotations

import math

import numpy as np

from agents.numpy_forward import softmax

LOG_2PI = math.log(2.0 * math.pi)


class Categorical:
    """A categorical distribution over actions, parameterised by logits (..., n)."""

    def __init__(self, logits) -> None:
        self.logits = logits

    # --- NumPy, for rollouts -------------------------------------------------------------
    @staticmethod
    def sample_numpy(logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One action per row by inverse-CDF sampling (one uniform draw per row)."""
        probabilities = softmax(np.asarray(logits, dtype=np.float64))
        cumulative = np.cumsum(probabilities, axis=-1)
        draws = rng.random(cumulative.shape[:-1])[..., None]
        actions = (cumulative[..., :-1] < draws).sum(axis=-1)
        return actions.astype(np.int64)

    @staticmethod
    def mode_numpy(logits: np.ndarray) -> np.ndarray:
        """The most probable action per row (first index on ties)."""
        return np.asarray(logits).argmax(axis=-1)

    # --- tensors, for the loss -------------------------------------------------------------
    def log_prob(self, actions):
        """log pi(a) for integer actions shaped like the logits without the last axis."""
        from keras import ops

        log_probabilities = ops.log_softmax(self.logits, axis=-1)
        actions = ops.cast(actions, "int32")
        picked = ops.take_along_axis(log_probabilities, ops.expand_dims(actions, -1), axis=-1)
        return ops.squeeze(picked, axis=-1)

    def entropy(self):
        from keras import ops

        log_probabilities = ops.log_softmax(self.logits, axis=-1)
        return -ops.sum(ops.exp(log_probabilities) * log_probabilities, axis=-1)

    def mode(self):
        from keras import ops

        return ops.argmax(self.logits, axis=-1)


class Gaussian:
    """A diagonal Normal over actions with mean and log standard deviation (..., d).

    ``log_prob`` and ``entropy`` sum over the action dimensions, so they return (...,).
    """

    def __init__(self, mean, log_std) -> None:
        self.mean = mean
        self.log_std = log_std

    @staticmethod
    def sample_numpy(mean: np.ndarray, log_std: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """mean + sigma * z with z ~ N(0, 1); unclipped (the caller clips what it sends)."""
        noise = rng.standard_normal(np.shape(mean))
        return (mean + np.exp(log_std) * noise).astype(np.float32)

    @staticmethod
    def mode_numpy(mean: np.ndarray) -> np.ndarray:
        return np.asarray(mean, dtype=np.float32)

    def log_prob(self, actions):
        from keras import ops

        actions = ops.cast(actions, "float32")
        z = (actions - self.mean) * ops.exp(-self.log_std)
        return ops.sum(-0.5 * ops.square(z) - self.log_std - 0.5 * LOG_2PI, axis=-1)

    def entropy(self):
        from keras import ops

        return ops.sum(0.5 + 0.5 * LOG_2PI + self.log_std, axis=-1)

    def mode(self):
        return self.mean
