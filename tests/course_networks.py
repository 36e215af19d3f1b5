"""The course's networks, written the way the course writes them (not with the scripts' code).

Every layer's initialiser gets ``seed=42``: hidden layers ``HeNormal(seed=42)``, outputs
``GlorotNormal(seed=42)``; the pendulum's heads are plain Python arithmetic on tanh layers.
The fidelity tests compare the course presets' networks with these, weight for weight.
"""

from __future__ import annotations

import keras

COURSE_SEED = 42


def course_cartpole_policy() -> keras.Model:
    """Variants 1-4: 4 -> 128 ReLU -> 2 softmax."""
    return keras.Sequential(
        [
            keras.layers.Input(shape=(4,)),
            keras.layers.Dense(
                128,
                activation="relu",
                kernel_initializer=keras.initializers.HeNormal(seed=COURSE_SEED),
            ),
            keras.layers.Dense(
                2,
                activation="softmax",
                kernel_initializer=keras.initializers.GlorotNormal(seed=COURSE_SEED),
            ),
        ]
    )


def course_critic() -> keras.Model:
    """Variants 2-5: 4 -> 128 ReLU -> 1 linear."""
    return keras.Sequential(
        [
            keras.layers.Input(shape=(4,)),
            keras.layers.Dense(
                128,
                activation="relu",
                kernel_initializer=keras.initializers.HeNormal(seed=COURSE_SEED),
            ),
            keras.layers.Dense(
                1, kernel_initializer=keras.initializers.GlorotNormal(seed=COURSE_SEED)
            ),
        ]
    )


def course_pendulum_actor() -> keras.Model:
    """Variant 5: 4 -> 256 ReLU -> 256 ReLU -> [mu = 3 tanh, log sigma = 3 tanh - 2].

    The layer names are the only addition to the course's code: Keras orders a functional
    model's weights by graph depth (the log-sigma head, one operation deeper, comes before mu),
    so :func:`in_role_order` finds the heads by name.
    """
    inputs = keras.layers.Input(shape=(4,))
    x = keras.layers.Dense(
        256,
        activation="relu",
        kernel_initializer=keras.initializers.HeNormal(seed=COURSE_SEED),
        name="hidden_0",
    )(inputs)
    x = keras.layers.Dense(
        256,
        activation="relu",
        kernel_initializer=keras.initializers.HeNormal(seed=COURSE_SEED),
        name="hidden_1",
    )(x)
    mu = 3.0 * keras.layers.Dense(
        1,
        activation="tanh",
        kernel_initializer=keras.initializers.GlorotNormal(seed=COURSE_SEED),
        name="mu",
    )(x)
    log_sigma = (
        3.0
        * keras.layers.Dense(
            1,
            activation="tanh",
            kernel_initializer=keras.initializers.GlorotNormal(seed=COURSE_SEED),
            name="log_sigma",
        )(x)
        - 2.0
    )
    return keras.Model(inputs, [mu, log_sigma])


#: The pendulum actor's layers in the order training.gaussian_actor_critic builds them.
PENDULUM_ROLES = ("hidden_0", "hidden_1", "mu", "log_sigma")


def in_role_order(model: keras.Model, values: list) -> list:
    """``values`` (one per trainable variable of the course's pendulum actor, e.g. its
    weights or gradients) reordered as hidden layers, mu head, log-sigma head; kernel first."""
    rank = {name: i for i, name in enumerate(PENDULUM_ROLES)}

    def key(index: int) -> tuple[int, bool]:
        layer, variable = model.trainable_variables[index].path.split("/")[-2:]
        return rank[layer], variable != "kernel"

    return [values[i] for i in sorted(range(len(values)), key=key)]
