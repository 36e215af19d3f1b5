"""The policies' distributions behind one interface, chosen from the action space.

``distribution_for(action_space)`` gives :class:`Categorical` for ``Discrete`` and
:class:`Gaussian` for ``Box``, as Stable-Baselines3's ``make_proba_distribution`` does. Each
offers the same four operations on the policy network's outputs:

- ``sample_numpy(outputs, rng)`` and ``mode_numpy(outputs)``: NumPy, for rollouts, which draw
  thousands of actions a second from a seeded ``np.random.Generator``;
- ``from_outputs(outputs).log_prob(actions)`` and ``.entropy()``: ``keras.ops`` tensors, for
  the loss, which needs gradients.

The outputs are the logits (..., n) for a categorical policy and the pair (mean, log_std),
each (..., d), for a Gaussian one.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from gymnasium import spaces

LOG_2PI = math.log(2.0 * math.pi)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities from logits along the last axis, shifted by the max for stability."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


class Categorical:
    """A categorical distribution over actions, parameterised by logits (..., n)."""

    #: The action dtype the loss receives (a tensor spec needs it before any data is seen).
    action_dtype = "int32"

    def __init__(self, logits) -> None:
        self.logits = logits

    @classmethod
    def from_outputs(cls, outputs) -> Categorical:
        return cls(outputs)

    # --- NumPy, for rollouts -------------------------------------------------------------
    @staticmethod
    def sample_numpy(outputs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One action per row by inverse-CDF sampling (one uniform draw per row)."""
        probabilities = softmax(np.asarray(outputs, dtype=np.float64))
        cumulative = np.cumsum(probabilities, axis=-1)
        draws = rng.random(cumulative.shape[:-1])[..., None]
        actions = (cumulative[..., :-1] < draws).sum(axis=-1)
        return actions.astype(np.int64)

    @staticmethod
    def mode_numpy(outputs: np.ndarray) -> np.ndarray:
        """The most probable action per row (first index on ties)."""
        return np.asarray(outputs).argmax(axis=-1)

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


class Gaussian:
    """A diagonal Normal over actions with mean and log standard deviation (..., d).

    ``log_prob`` and ``entropy`` sum over the action dimensions, so they return (...,).
    """

    action_dtype = "float32"

    def __init__(self, mean, log_std) -> None:
        self.mean = mean
        self.log_std = log_std

    @classmethod
    def from_outputs(cls, outputs) -> Gaussian:
        mean, log_std = outputs
        return cls(mean, log_std)

    @staticmethod
    def sample_numpy(outputs: Any, rng: np.random.Generator) -> np.ndarray:
        """mean + sigma * z with z ~ N(0, 1); unclipped (the caller clips what it sends)."""
        mean, log_std = outputs
        noise = rng.standard_normal(np.shape(mean))
        return (mean + np.exp(log_std) * noise).astype(np.float32)

    @staticmethod
    def mode_numpy(outputs: Any) -> np.ndarray:
        mean, _ = outputs
        return np.asarray(mean, dtype=np.float32)

    def log_prob(self, actions):
        from keras import ops

        actions = ops.cast(actions, "float32")
        z = (actions - self.mean) * ops.exp(-self.log_std)
        return ops.sum(-0.5 * ops.square(z) - self.log_std - 0.5 * LOG_2PI, axis=-1)

    def entropy(self):
        from keras import ops

        return ops.sum(0.5 + 0.5 * LOG_2PI + self.log_std, axis=-1)


Distribution = type[Categorical] | type[Gaussian]


def distribution_for(action_space: spaces.Space) -> Distribution:
    """The policy distribution for an action space: Discrete -> Categorical, Box -> Gaussian."""
    if isinstance(action_space, spaces.Discrete):
        return Categorical
    if isinstance(action_space, spaces.Box):
        return Gaussian
    raise ValueError(f"no policy distribution for action space {action_space}")
