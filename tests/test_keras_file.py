"""Reading `.keras` files without Keras: the allowlist, hostile archives, and NumPy == Keras."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from conftest import cartpole_model, course_cartpole_model, course_pendulum_model

from agents import AgentFileError, CartPoleAgent, InvertedPendulumAgent, keras_file
from agents.agent_files import dumps_config, read_config, sha256_of
from agents.keras_file import read_model_file
from agents.numpy_forward import KERAS_TOLERANCE
from training import gaussian_actor_critic, reinforce
from training.rollouts import NumpyForward

# ---------------------------------------------------------------------- NumPy == Keras


def normalised_pendulum() -> keras.Model:
    """Observation normalisation saved inside the model (a per-feature Rescaling), two heads."""
    inputs = keras.Input((4,))
    x = keras.layers.Rescaling([1.0, 2.0, 0.5, 4.0], offset=[0.1, -0.2, 0.0, 0.3])(inputs)
    x = keras.layers.Rescaling(np.full(4, 0.5, dtype=np.float32))(x)  # saved as __numpy__
    x = keras.layers.Dense(32, activation="tanh")(x)
    x = keras.layers.Dense(32, activation="sigmoid", use_bias=False)(x)
    mean = keras.layers.Dense(1)(x)
    value = keras.layers.Activation("relu")(keras.layers.Dense(1)(x))
    return keras.Model(inputs, [mean, value])


def every_scalar_op() -> keras.Model:
    """Each elementwise op layer, with the constant on either side."""
    inputs = keras.Input((4,))
    x = keras.layers.Dense(8, activation="relu")(inputs)
    x = 2.0 - (x / 4.0 + 1) * 0.5
    x = 1.0 / (keras.ops.divide(x, 3.0) + 2.0)
    x = keras.layers.Dense(2)(x - 0.25)
    return keras.Model(inputs, keras.layers.Activation("softmax")(x))


MODELS: dict[str, Callable[[], keras.Model]] = {
    "course cartpole": course_cartpole_model,
    "course cartpole, Sequential": lambda: course_cartpole_model(sequential=True),
    "course pendulum": course_pendulum_model,
    "project cartpole": lambda: reinforce.with_softmax(
        reinforce.mlp(4, (64, 32), 2, seed=3, step=1, name="policy_logits")
    ),
    "project pendulum": lambda: gaussian_actor_critic.gaussian_policy(4, (64, 64), 1, 3, 1),
    "project critic": lambda: reinforce.mlp(4, (32,), 1, seed=3, step=1, name="critic"),
    "normalised pendulum": normalised_pendulum,
    "every scalar op": every_scalar_op,
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_numpy_pass_from_the_file_equals_keras(name: str, tmp_path: Path, observations) -> None:
    path = tmp_path / "model.keras"
    keras.models.save_model(MODELS[name](), path)
    model_file = read_model_file(path)
    outputs = tuple(range(len(model_file.plan.output_names)))
    batch = observations.astype(np.float32)
    mine = model_file.plan.bind(model_file.arrays, outputs)(batch)
    theirs = keras.models.load_model(path, compile=False, safe_mode=True)(batch)
    theirs = theirs if isinstance(theirs, list) else [theirs]
    assert len(mine) == len(theirs)
    for ours, reference in zip(mine, theirs, strict=True):
        reference = keras.ops.convert_to_numpy(reference)
        np.testing.assert_allclose(ours, reference, atol=KERAS_TOLERANCE)


@pytest.mark.parametrize("name", ["course pendulum", "normalised pendulum", "project pendulum"])
def test_training_forward_equals_keras(name: str, observations) -> None:
    model = MODELS[name]()
    forward = NumpyForward(model)
    batch = observations.astype(np.float32)
    for ours, theirs in zip(forward(batch), model(batch), strict=True):
        np.testing.assert_allclose(ours, keras.ops.convert_to_numpy(theirs), atol=KERAS_TOLERANCE)
    dense = next(layer for layer in model.layers if isinstance(layer, keras.layers.Dense))
    dense.kernel.assign(np.zeros_like(dense.kernel))  # what an update does: new weights
    forward.refresh()
    for ours, theirs in zip(forward(batch), model(batch), strict=True):
        np.testing.assert_allclose(ours, keras.ops.convert_to_numpy(theirs), atol=KERAS_TOLERANCE)


# ---------------------------------------------------------------------- hostile files


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    prefix = tmp_path / "cartpole"
    CartPoleAgent(cartpole_model(), seed=3).save(prefix)
    return prefix


def members_of(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def forge(
    prefix: Path,
    members: dict[str, bytes] | list[tuple[str, bytes]],
    compression: int = zipfile.ZIP_STORED,
) -> None:
    """Write a `.keras` file and make its config vouch for it (a forged pair)."""
    items = members.items() if isinstance(members, dict) else members
    with zipfile.ZipFile(prefix.with_suffix(".keras"), "w", compression=compression) as archive:
        for name, data in items:
            archive.writestr(name, data)
    config_path = prefix.with_suffix(".config")
    config = read_config(config_path) | {"model_sha256": sha256_of(prefix.with_suffix(".keras"))}
    config_path.write_bytes(dumps_config(config))


def edit_config(prefix: Path, change: Callable[[dict], None]) -> None:
    members = members_of(prefix.with_suffix(".keras"))
    config = json.loads(members["config.json"])
    change(config)
    forge(prefix, members | {"config.json": json.dumps(config).encode()})


def edit_weights(prefix: Path, change: Callable[[h5py.File], None]) -> None:
    members = members_of(prefix.with_suffix(".keras"))
    buffer = io.BytesIO(members["model.weights.h5"])
    with h5py.File(buffer, "r+") as weights:
        change(weights)
    forge(prefix, members | {"model.weights.h5": buffer.getvalue()})


def layer(config: dict, index: int) -> dict:
    return config["config"]["layers"][index]  # 0 is the InputLayer, 1 and 2 the Dense layers


def refuse(prefix: Path, message: str) -> None:
    with pytest.raises(AgentFileError, match=message) as caught:
        CartPoleAgent.load(prefix)
    assert str(prefix.with_suffix(".keras")) in str(caught.value)


HOSTILE_CONFIGS: dict[str, tuple[Callable[[dict], None], str]] = {
    "unknown class": (
        lambda c: layer(c, 1).update(class_name="Conv1D"),
        r"layer '.*': keras\.layers\.Conv1D .* is not supported",
    ),
    "custom registered name": (
        lambda c: layer(c, 1).update(registered_name="my_package>Dense"),
        r"registered as my_package>Dense\) is not supported",
    ),
    "unknown activation": (
        lambda c: layer(c, 1)["config"].update(activation="gelu"),
        r"activation 'gelu' is not supported",
    ),
    "serialised activation object": (
        lambda c: layer(c, 1)["config"].update(activation={"module": "os", "class_name": "system"}),
        r"activation 'a serialised object' is not supported",
    ),
    "nested model": (
        lambda c: layer(c, 1).update(class_name="Sequential", module="keras"),
        r"a nested model is not supported",
    ),
    "custom model class": (
        lambda c: c.update(class_name="MyModel", module="evil"),
        r"the model is a evil\.MyModel",
    ),
    "op layer in a Sequential model": (
        lambda c: layer(c, 2).update(module="keras.src.ops.numpy", class_name="Multiply"),
        r"Multiply cannot be used in a Sequential model",
    ),
    "units disagree with the weights": (
        lambda c: layer(c, 1)["config"].update(units=17),
        r"has shape \(4, 16\), the config implies \(4, 17\)",
    ),
    "bias the config does not have": (
        lambda c: layer(c, 1)["config"].update(use_bias=False),
        r"has 2 weight arrays, the config implies 1",
    ),
    "oversized layer": (
        lambda c: layer(c, 1)["config"].update(units=1 << 30),
        r"units must be an integer",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_CONFIGS))
def test_hostile_configs_are_refused(saved: Path, case: str) -> None:
    change, message = HOSTILE_CONFIGS[case]
    edit_config(saved, change)
    refuse(saved, message)


def save_functional(prefix: Path, build: Callable[[keras.KerasTensor], keras.KerasTensor]) -> None:
    """Replace the pair's model by `Dense(2)(build(input))` saved by Keras; forge the hash."""
    inputs = keras.Input((4,))
    path = prefix.with_suffix(".keras")
    keras.models.save_model(keras.Model(inputs, keras.layers.Dense(2)(build(inputs))), path)
    forge(prefix, members_of(path))


def test_a_lambda_in_a_functional_model_is_refused(saved: Path) -> None:
    save_functional(saved, keras.layers.Lambda(lambda x: x * 2, name="code"))
    refuse(saved, r"layer 'code': keras\.layers\.Lambda .* not supported")


def test_an_op_on_two_tensors_is_refused(saved: Path) -> None:
    save_functional(saved, lambda x: x * x)
    refuse(saved, r"layer 'multiply.*': takes 2 tensors; only one-input layers run here")


def test_a_shared_layer_is_refused(saved: Path) -> None:
    shared = keras.layers.Dense(4, name="shared")
    save_functional(saved, lambda x: shared(shared(x)))
    refuse(saved, r"layer 'shared': each layer must be called exactly once")


HOSTILE_WEIGHTS: dict[str, tuple[Callable[[h5py.File], None], str]] = {
    "missing dataset": (
        lambda w: w["layers/dense/vars"].__delitem__("1"),
        r"layer 'dense.*' has 1 weight arrays, the config implies 2",
    ),
    "missing layer group": (
        lambda w: w["layers"].__delitem__("dense_1"),
        r"no weights for layer",
    ),
    "extra layer group": (
        lambda w: w["layers"].create_group("conv1d"),
        r"holds layers \['conv1d'\] that the config does not have",
    ),
    "integer weights": (
        lambda w: (
            w["layers/dense/vars"].__delitem__("1"),
            w["layers/dense/vars"].create_dataset("1", data=np.zeros(16, dtype=np.int64)),
        ),
        r"holds int64, not floats",
    ),
    "compressed dataset": (
        lambda w: (
            w["layers/dense/vars"].__delitem__("1"),
            w["layers/dense/vars"].create_dataset(
                "1", data=np.zeros(16, dtype=np.float32), compression="gzip"
            ),
        ),
        r"filtered or stored elsewhere",
    ),
    "link to another file": (
        lambda w: (
            w["layers/dense/vars"].__delitem__("0"),
            w["layers/dense/vars"].__setitem__("0", h5py.ExternalLink("/etc/passwd", "/x")),
        ),
        r"is a ExternalLink",
    ),
    "NaN weights": (
        lambda w: w["layers/dense/vars/1"].__setitem__(slice(None), np.nan),
        r"NaN or infinite",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_WEIGHTS))
def test_hostile_weights_are_refused(saved: Path, case: str) -> None:
    change, message = HOSTILE_WEIGHTS[case]
    edit_weights(saved, change)
    refuse(saved, message)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("evil.py", r"unexpected archive members \['evil\.py'\]"),
        ("/etc/cron.d/evil", r"unexpected archive members"),
        ("../escape.json", r"unexpected archive members"),
        ("assets/../../config.json", r"unexpected archive members"),
    ],
)
def test_unexpected_archive_members_are_refused(saved: Path, extra: str, message: str) -> None:
    forge(saved, members_of(saved.with_suffix(".keras")) | {extra: b"print('hello')"})
    refuse(saved, message)


def test_a_member_name_twice_is_refused(saved: Path) -> None:
    members = members_of(saved.with_suffix(".keras"))
    with pytest.warns(UserWarning, match="Duplicate name"):  # zipfile writes it all the same
        forge(saved, [*members.items(), ("config.json", b"{}")])
    refuse(saved, "appears twice")


def test_a_missing_member_is_refused(saved: Path) -> None:
    members = members_of(saved.with_suffix(".keras"))
    del members["model.weights.h5"]
    forge(saved, members)
    refuse(saved, r"the archive has no model\.weights\.h5")


def test_a_zip_bomb_is_refused_before_it_is_unpacked(saved: Path) -> None:
    bomb = b" " * (8 << 20)  # 8 MiB of spaces pack into a few KiB
    members = members_of(saved.with_suffix(".keras")) | {"metadata.json": bomb}
    forge(saved, members, compression=zipfile.ZIP_DEFLATED)
    assert saved.with_suffix(".keras").stat().st_size < 100_000
    refuse(saved, r"metadata\.json unpacks to \d+ bytes, over 65536")


def test_a_file_over_the_size_cap_is_refused_unread(
    saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keras_file, "MAX_FILE_BYTES", 1000)
    refuse(saved, r"model is \d+ bytes, over the 1000 limit")


def test_the_pendulum_agent_refuses_hostile_files_too(tmp_path: Path) -> None:
    """A lone `.keras` loads as a course pendulum agent, so the same checks guard that path."""
    inputs = keras.Input((4,))
    mean = keras.layers.Lambda(lambda x: x[:, :1], name="slice")(inputs)
    keras.models.save_model(keras.Model(inputs, [mean, mean]), tmp_path / "pendulum.keras")
    with pytest.raises(AgentFileError, match=r"pendulum\.keras: layer 'slice'"):
        InvertedPendulumAgent.load(tmp_path / "pendulum")
