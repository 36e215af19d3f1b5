"""Shared fixtures: small policy models built in the tests, so no test needs shipped files."""

from __future__ import annotations

from pathlib import Path

from training.startup import import_tensorflow_quietly

import_tensorflow_quietly()  # headless rendering and no TensorFlow start-up lines in the tests

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from agents import CartPoleAgent, InvertedPendulumAgent  # noqa: E402


def cartpole_model(hidden: int = 16, seed: int = 0) -> keras.Model:
    """4 -> hidden ReLU -> 2 softmax, the course's policy shape at a test size."""
    initializer = keras.initializers.HeNormal(seed=seed)
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(hidden, activation="relu", kernel_initializer=initializer),
            keras.layers.Dense(2, kernel_initializer=keras.initializers.GlorotNormal(seed)),
            keras.layers.Activation("softmax"),
        ]
    )


def pendulum_model(hidden: int = 16, seed: int = 0) -> keras.Model:
    """4 -> hidden -> hidden -> [3 tanh mean, 3 tanh - 2 log-std], the course's actor."""
    inputs = keras.Input((4,))
    features = inputs
    for index in range(2):
        features = keras.layers.Dense(
            hidden, activation="relu", kernel_initializer=keras.initializers.HeNormal(seed + index)
        )(features)
    mean = keras.layers.Rescaling(3.0)(keras.layers.Dense(1, activation="tanh")(features))
    log_std = keras.layers.Rescaling(3.0, offset=-2.0)(
        keras.layers.Dense(1, activation="tanh")(features)
    )
    return keras.Model(inputs, [mean, log_std])


def _he() -> keras.initializers.Initializer:
    return keras.initializers.HeNormal(seed=42)


def _glorot() -> keras.initializers.Initializer:
    return keras.initializers.GlorotNormal(seed=42)


def course_cartpole_model(sequential: bool = False) -> keras.Model:
    """The course's CartPole policy: 4 -> 128 ReLU -> 2 softmax, every initialiser seeded 42."""
    hidden = keras.layers.Dense(128, activation="relu", kernel_initializer=_he())
    probabilities = keras.layers.Dense(2, activation="softmax", kernel_initializer=_glorot())
    if sequential:
        return keras.Sequential([keras.layers.Input(shape=(4,)), hidden, probabilities])
    inputs = keras.layers.Input(shape=(4,))
    return keras.Model(inputs, probabilities(hidden(inputs)))


def course_pendulum_model() -> keras.Model:
    """The course's pendulum actor, its heads written as `3 * tanh(.)` and `tanh(.) * 3 - 2`."""
    inputs = keras.layers.Input(shape=(4,))
    x = keras.layers.Dense(256, activation="relu", kernel_initializer=_he())(inputs)
    x = keras.layers.Dense(256, activation="relu", kernel_initializer=_he())(x)
    mean = 3.0 * keras.layers.Dense(1, activation="tanh", kernel_initializer=_glorot())(x)
    log_std = keras.layers.Dense(1, activation="tanh", kernel_initializer=_glorot())(x) * 3.0 - 2.0
    return keras.Model(inputs, [mean, log_std])


@pytest.fixture
def observations() -> np.ndarray:
    """1,000 random observations spread wider than the tasks' usual range."""
    return np.random.default_rng(7).normal(scale=1.5, size=(1000, 4))


@pytest.fixture
def pendulum_weights(tmp_path: Path) -> Path:
    """A small pendulum agent saved as weights/pendulum under the test's folder."""
    prefix = tmp_path / "weights" / "pendulum"
    InvertedPendulumAgent(pendulum_model(), seed=1).save(prefix)
    return prefix


@pytest.fixture
def cartpole_weights(tmp_path: Path) -> Path:
    """A small CartPole agent saved as weights/cartpole under the test's folder."""
    prefix = tmp_path / "weights" / "cartpole"
    CartPoleAgent(cartpole_model(), seed=1).save(prefix)
    return prefix
