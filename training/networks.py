"""The course's networks as Keras models, and a NumPy forward pass for rollouts.

Keras models carry the weights, the gradients and the saved agents; rollouts call
:class:`NumpyForward` instead, which copies the weights once per update and costs microseconds
per batch of observations instead of a Keras call per step.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from training.rollouts import NumpyForward

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
    layers = [_hidden(units, seed + i * seed_step, f"hidden_{i}") for i, units in enumerate(hidden)]
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
    layers = [_hidden(units, seed + i * seed_step, f"hidden_{i}") for i, units in enumerate(hidden)]
    layers.append(_output(1, seed + len(hidden) * seed_step, "value"))
    return keras.Sequential([keras.Input((observation_size,)), *layers], name="critic")


#: PPO's initialisation (as in the PPO paper and Stable-Baselines3): orthogonal kernels with
#: gain sqrt(2) in hidden layers, 0.01 on the policy's output (near-uniform first policy),
#: 1 on the value output; zero biases.
HIDDEN_GAIN = 2.0**0.5
POLICY_OUTPUT_GAIN = 0.01
VALUE_OUTPUT_GAIN = 1.0


def build_orthogonal_mlp(
    observation_size: int,
    hidden: Sequence[int],
    outputs: int,
    activation: str,
    output_gain: float,
    seed: int,
    name: str,
    seed_step: int = 1,
) -> keras.Sequential:
    """observation -> ``activation`` layers -> ``outputs`` linear units, orthogonally
    initialised (PPO's actor: logits or the Gaussian mean; its critic: V(s)); layer i's
    initialiser is seeded with ``seed + i * seed_step``."""
    layers = [
        keras.layers.Dense(
            units,
            activation=activation,
            name=f"hidden_{i}",
            kernel_initializer=keras.initializers.Orthogonal(
                HIDDEN_GAIN, seed=seed + i * seed_step
            ),
        )
        for i, units in enumerate(hidden)
    ]
    last_seed = seed + len(hidden) * seed_step
    layers.append(
        keras.layers.Dense(
            outputs,
            name="output",
            kernel_initializer=keras.initializers.Orthogonal(output_gain, seed=last_seed),
        )
    )
    return keras.Sequential([keras.Input((observation_size,)), *layers], name=name)


class StateIndependentGaussianForward:
    """NumPy (mean, log_std) for a policy whose mean is a model and whose log standard
    deviation is one trainable vector, not a function of the state; ``refresh()`` after each
    update, like :class:`NumpyForward`."""

    def __init__(self, mean_model: keras.Model, log_std: keras.Variable) -> None:
        self.mean = NumpyForward(mean_model)
        self.log_std = log_std
        self.refresh()

    def refresh(self) -> None:
        self.mean.refresh()
        self._log_std = np.asarray(self.log_std.numpy(), dtype=np.float32)

    def __call__(self, observations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = self.mean(observations)
        return mean, np.broadcast_to(self._log_std, mean.shape)
