"""The course's networks as Keras models, and a NumPy forward pass for rollouts.

Keras models carry the weights, the gradients and the saved agents; rollouts call
:class:`NumpyForward` instead, which copies the weights once per update and costs microseconds
per batch of observations instead of a Keras call per step.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from agents.numpy_forward import keras_arrays, plan_of_keras_model

#: Layer i's initialiser seed is ``seed + i * seed_step``; 0 is the course (every layer seed 42).
#: The default keeps the per-layer seeds for callers that do not choose.
DEFAULT_SEED_STEP = 1
MEAN_SCALE = 3.0  # the mean is 3 * tanh(.): the pendulum's action bounds
LOG_STD_SCALE = 3.0  # log sigma = 3 * tanh(.) - 2, so sigma lies in about [0.0067, 2.7]
LOG_STD_OFFSET = -2.0


def _hidden(units: int, seed: int, name: str) -> keras.layers.Dense:
    return keras.layers.Dense(
        units,
        activation="relu",
        name=name,
        kernel_initializer=keras.initializers.HeNormal(seed=seed),
    )


def _output(units: int, seed: int, name: str, activation: str | None = None) -> keras.layers.Dense:
    return keras.layers.Dense(
        units,
        activation=activation,
        name=name,
        kernel_initializer=keras.initializers.GlorotNormal(seed=seed),
    )


def build_categorical_policy(
    observation_size: int,
    hidden: Sequence[int],
    num_actions: int,
    seed: int,
    seed_step: int = DEFAULT_SEED_STEP,
) -> keras.Sequential:
    """observation -> ReLU layers -> logits; train on this, export with a softmax."""
    layers = [
        _hidden(units, seed + i * seed_step, f"hidden_{i}") for i, units in enumerate(hidden)
    ]
    layers.append(_output(num_actions, seed + len(hidden) * seed_step, "logits"))
    return keras.Sequential([keras.Input((observation_size,)), *layers], name="policy_logits")


def export_categorical_policy(logits_model: keras.Sequential) -> keras.Sequential:
    """The agent's model: the same (shared) layers followed by a softmax, so rows sum to 1."""
    observation_size = logits_model.input_shape[-1]
    return keras.Sequential(
        [
            keras.Input((observation_size,)),
            *logits_model.layers,
            keras.layers.Activation("softmax", name="probabilities"),
        ],
        name="policy",
    )


def build_gaussian_policy(
    observation_size: int,
    hidden: Sequence[int],
    action_size: int,
    seed: int,
    seed_step: int = DEFAULT_SEED_STEP,
) -> keras.Model:
    """observation -> ReLU trunk -> [mean = 3 tanh(.), log_std = 3 tanh(.) - 2]."""
    inputs = keras.Input((observation_size,), name="observation")
    x = inputs
    for i, units in enumerate(hidden):
        x = _hidden(units, seed + i * seed_step, f"hidden_{i}")(x)
    mean = _output(action_size, seed + len(hidden) * seed_step, "mean_tanh", "tanh")(x)
    mean = keras.layers.Rescaling(MEAN_SCALE, name="mean")(mean)
    log_std_seed = seed + (len(hidden) + 1) * seed_step
    log_std = _output(action_size, log_std_seed, "log_std_tanh", "tanh")(x)
    log_std = keras.layers.Rescaling(LOG_STD_SCALE, offset=LOG_STD_OFFSET, name="log_std")(log_std)
    return keras.Model(inputs, [mean, log_std], name="policy")


def build_policy(
    observation_size: int,
    hidden: Sequence[int],
    action_space,
    seed: int,
    seed_step: int = DEFAULT_SEED_STEP,
) -> tuple[keras.Model, keras.Model]:
    """The policy the action space calls for, as (model to train, model the agent saves).

    Discrete actions: a logits network, saved with a softmax on top (same layers). Box
    actions: the Gaussian network, saved as it is.
    """
    from gymnasium import spaces

    if isinstance(action_space, spaces.Discrete):
        logits = build_categorical_policy(
            observation_size, hidden, int(action_space.n), seed, seed_step
        )
        return logits, export_categorical_policy(logits)
    if isinstance(action_space, spaces.Box):
        gaussian = build_gaussian_policy(
            observation_size, hidden, action_space.shape[0], seed, seed_step
        )
        return gaussian, gaussian
    raise ValueError(f"no policy network for action space {action_space}")


def build_critic(
    observation_size: int, hidden: Sequence[int], seed: int, seed_step: int = DEFAULT_SEED_STEP
) -> keras.Sequential:
    """observation -> ReLU layers -> V(s), one linear output."""
    layers = [
        _hidden(units, seed + i * seed_step, f"hidden_{i}") for i, units in enumerate(hidden)
    ]
    layers.append(_output(1, seed + len(hidden) * seed_step, "value"))
    return keras.Sequential([keras.Input((observation_size,)), *layers], name="critic")


class NumpyForward:
    """A NumPy copy of a policy for sampling: ``refresh()`` after each update, then call it.

    It is the agents' own forward pass (one implementation for acting and for rollouts): the
    model's config is read once here, and each refresh only copies the current arrays out.
    Categorical models return logits (n, actions); Gaussian ones (mean, log_std).
    """

    def __init__(self, model: keras.Model) -> None:
        self.model = model
        self._plan = plan_of_keras_model(model)
        self._read_arrays = keras_arrays(model, self._plan)
        outputs = len(self._plan.output_names)
        self.outputs = 0 if outputs == 1 else tuple(range(outputs))
        self.refresh()

    def refresh(self) -> None:
        """Re-read the weights (they change with every update)."""
        self._forward = self._plan.bind(self._read_arrays(), self.outputs)

    def __call__(self, observations: np.ndarray):
        return self._forward(np.asarray(observations, dtype=np.float32))
