"""The SPEC section 3 networks as Keras models, and a NumPy forward pass for rollouts.

Keras models carry the weights, the gradients and the saved agents; rollouts call
:class:`NumpyForward` instead, which copies the weights once per update and costs microseconds
per batch of observations instead of a Keras call per step.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

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
    observation_size: int, hidden: Sequence[int], num_actions: int, seed: int
) -> keras.Sequential:
    """observation -> ReLU layers -> logits; train on this, export with a softmax."""
    layers = [_hidden(units, seed + i, f"hidden_{i}") for i, units in enumerate(hidden)]
    layers.append(_output(num_actions, seed + len(hidden), "logits"))
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
    observation_size: int, hidden: Sequence[int], action_size: int, seed: int
) -> keras.Model:
    """observation -> ReLU trunk -> [mean = 3 tanh(.), log_std = 3 tanh(.) - 2]."""
    inputs = keras.Input((observation_size,), name="observation")
    x = inputs
    for i, units in enumerate(hidden):
        x = _hidden(units, seed + i, f"hidden_{i}")(x)
    mean = _output(action_size, seed + len(hidden), "mean_tanh", "tanh")(x)
    mean = keras.layers.Rescaling(MEAN_SCALE, name="mean")(mean)
    log_std = _output(action_size, seed + len(hidden) + 1, "log_std_tanh", "tanh")(x)
    log_std = keras.layers.Rescaling(LOG_STD_SCALE, offset=LOG_STD_OFFSET, name="log_std")(log_std)
    return keras.Model(inputs, [mean, log_std], name="policy")


def build_critic(observation_size: int, hidden: Sequence[int], seed: int) -> keras.Sequential:
    """observation -> ReLU layers -> V(s), one linear output."""
    layers = [_hidden(units, seed + i, f"hidden_{i}") for i, units in enumerate(hidden)]
    layers.append(_output(1, seed + len(hidden), "value"))
    return keras.Sequential([keras.Input((observation_size,)), *layers], name="critic")


_ACTIVATIONS = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
}


class NumpyForward:
    """A NumPy copy of a policy for sampling: ``refresh()`` after each update, then call it.

    Categorical models return logits (n, actions); Gaussian ones return (mean, log_std).
    """

    def __init__(self, model: keras.Model) -> None:
        self.model = model
        self.gaussian = any(layer.name == "log_std" for layer in model.layers)
        self.refresh()

    def refresh(self) -> None:
        dense = {
            layer.name: layer
            for layer in self.model.layers
            if isinstance(layer, keras.layers.Dense)
        }
        hidden_names = sorted(
            (n for n in dense if n.startswith("hidden_")), key=lambda n: int(n.split("_")[1])
        )
        self.trunk = [self._params(dense[n]) for n in hidden_names]
        if self.gaussian:
            self.mean_head = self._params(dense["mean_tanh"])
            self.log_std_head = self._params(dense["log_std_tanh"])
            mean_layer = self.model.get_layer("mean")
            log_std_layer = self.model.get_layer("log_std")
            self.mean_affine = (float(mean_layer.scale), float(mean_layer.offset))
            self.log_std_affine = (float(log_std_layer.scale), float(log_std_layer.offset))
        else:
            self.head = self._params(dense["logits"])

    @staticmethod
    def _params(layer: keras.layers.Dense) -> tuple[np.ndarray, np.ndarray, str]:
        kernel, bias = (np.asarray(w, dtype=np.float32) for w in layer.get_weights())
        return kernel, bias, layer.activation.__name__

    @staticmethod
    def _apply(x: np.ndarray, params: tuple[np.ndarray, np.ndarray, str]) -> np.ndarray:
        kernel, bias, activation = params
        return _ACTIVATIONS[activation](x @ kernel + bias)

    def __call__(self, observations: np.ndarray):
        x = np.asarray(observations, dtype=np.float32)
        for params in self.trunk:
            x = self._apply(x, params)
        if not self.gaussian:
            return self._apply(x, self.head)
        scale, offset = self.mean_affine
        mean = self._apply(x, self.mean_head) * scale + offset
        scale, offset = self.log_std_affine
        log_std = self._apply(x, self.log_std_head) * scale + offset
        return mean, log_std
