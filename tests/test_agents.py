"""The competition agents: the evaluator's contract, safe loading, atomic saving, course files."""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import keras
import kymnasium
import numpy as np
import pytest
from conftest import (
    cartpole_model,
    course_cartpole_model,
    course_pendulum_model,
    pendulum_model,
)

from agents import (
    AGENT_CLASSES,
    AgentFileError,
    CartPoleAgent,
    InvertedPendulumAgent,
    UncheckedFilesWarning,
)
from agents.agent_files import dumps_config, read_config, sha256_of
from agents.numpy_forward import KERAS_TOLERANCE

AGENT_MODELS = [(CartPoleAgent, cartpole_model), (InvertedPendulumAgent, pendulum_model)]


def make_agent(agent_class: type, build_model, seed: int = 3, hidden: int = 16):
    return agent_class(build_model(hidden=hidden, seed=seed), seed=seed)


@pytest.mark.parametrize(("agent_class", "build_model"), AGENT_MODELS)
def test_agents_are_kymnasium_agents(agent_class, build_model) -> None:
    assert issubclass(agent_class, kymnasium.Agent)
    assert isinstance(make_agent(agent_class, build_model), kymnasium.Agent)
    assert AGENT_CLASSES[agent_class.agent] is agent_class


@pytest.mark.parametrize(
    ("agent_class", "build_model", "hidden"),
    [(CartPoleAgent, cartpole_model, 128), (InvertedPendulumAgent, pendulum_model, 256)],
)
def test_save_load_gives_identical_actions(
    tmp_path: Path, observations: np.ndarray, agent_class, build_model, hidden: int
) -> None:
    agent = make_agent(agent_class, build_model, hidden=hidden)
    agent.save(tmp_path / "agent")
    loaded = agent_class.load(tmp_path / "agent")
    before = [agent.act(observation, None) for observation in observations]
    after = [loaded.act(observation, {}) for observation in observations]
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))


def test_cartpole_action_is_a_python_int_chosen_by_the_model(observations: np.ndarray) -> None:
    agent = make_agent(CartPoleAgent, cartpole_model)
    probabilities = keras.ops.convert_to_numpy(agent.model(observations.astype(np.float32)))
    actions = [agent.act(observation, None) for observation in observations]
    assert all(type(action) is int for action in actions)
    np.testing.assert_array_equal(actions, probabilities.argmax(axis=1))
    assert set(actions) == {0, 1}


def test_pendulum_action_is_the_clipped_float32_mean(observations: np.ndarray) -> None:
    agent = make_agent(InvertedPendulumAgent, pendulum_model)
    mean = keras.ops.convert_to_numpy(agent.model(observations.astype(np.float32))[0])
    for observation, expected in zip(observations, mean, strict=True):
        action = agent.act(observation, None)
        assert action.dtype == np.float32 and action.shape == (1,)
        np.testing.assert_allclose(action, expected, atol=KERAS_TOLERANCE)


def test_pendulum_clips_a_mean_outside_the_bounds() -> None:
    inputs = keras.Input((4,))
    mean = keras.layers.Dense(1, kernel_initializer="ones", bias_initializer="zeros")(inputs)
    log_std = keras.layers.Dense(1)(inputs)
    agent = InvertedPendulumAgent(keras.Model(inputs, [mean, log_std]))
    np.testing.assert_array_equal(agent.act([5.0, 5.0, 0.0, 0.0], None), [3.0])
    np.testing.assert_array_equal(agent.act([-5.0, -5.0, 0.0, 0.0], None), [-3.0])
    np.testing.assert_allclose(agent.act([0.5, 0.25, 0.0, 0.0], None), [0.75])


@pytest.mark.parametrize(("agent_class", "build_model"), AGENT_MODELS)
@pytest.mark.parametrize(
    "observation",
    [
        [0.1, 0.2, 0.3],
        np.zeros((1, 4)),
        np.zeros(5, dtype=np.float32),
        [0.0, float("nan"), 0.0, 0.0],
        np.array([0.0, 0.0, np.inf, 0.0]),
        ["a", "b", "c", "d"],
        None,
    ],
)
def test_bad_observations_raise_value_error(agent_class, build_model, observation) -> None:
    agent = make_agent(agent_class, build_model)
    with pytest.raises(ValueError, match="observation"):
        agent.act(observation, None)


@pytest.mark.parametrize(("agent_class", "build_model"), AGENT_MODELS)
def test_act_accepts_lists_float32_float64_and_any_info(agent_class, build_model) -> None:
    agent = make_agent(agent_class, build_model)
    values = [0.01, -0.02, 0.03, 0.04]
    actions = [
        agent.act(values, None),
        agent.act(np.array(values, dtype=np.float32), {}),
        agent.act(np.array(values, dtype=np.float64), {"anything": 1}),
    ]
    assert all(np.array_equal(actions[0], action) for action in actions)


def test_exact_ties_are_broken_by_the_seeded_generator() -> None:
    model = cartpole_model()
    model.layers[1].kernel.assign(np.zeros((16, 2), dtype=np.float32))
    model.layers[1].bias.assign(np.zeros(2, dtype=np.float32))
    agent_a, agent_b = CartPoleAgent(model, seed=11), CartPoleAgent(model, seed=11)
    first = [agent_a.act([0.0] * 4, None) for _ in range(64)]
    second = [agent_b.act([0.0] * 4, None) for _ in range(64)]
    assert first == second
    assert set(first) == {0, 1}
    batch = CartPoleAgent(model, seed=11).act_batch(np.zeros((64, 4)))  # the same draws
    assert batch.tolist() == first


@pytest.mark.parametrize(("agent_class", "build_model"), AGENT_MODELS)
def test_numpy_pass_matches_keras(agent_class, build_model, observations: np.ndarray) -> None:
    agent = make_agent(agent_class, build_model, hidden=64)
    batch = observations.astype(np.float32)
    expected = agent.model(batch)
    expected = expected if isinstance(expected, list) else [expected]
    outputs = agent.outputs(batch)
    assert len(outputs) == len(expected)
    for mine, theirs in zip(outputs, expected, strict=True):
        np.testing.assert_allclose(mine, keras.ops.convert_to_numpy(theirs), atol=KERAS_TOLERANCE)


@pytest.mark.parametrize(("agent_class", "build_model"), AGENT_MODELS)
def test_act_batch_is_act_on_every_row(agent_class, build_model, observations: np.ndarray) -> None:
    agent = make_agent(agent_class, build_model, hidden=64)
    batch = agent.act_batch(observations)
    one_by_one = np.asarray([agent.act(observation) for observation in observations])
    assert batch.shape == one_by_one.shape and batch.dtype == one_by_one.dtype
    np.testing.assert_allclose(batch, one_by_one, atol=1e-5)  # float32 rounding apart


def test_unsupported_model_is_refused_naming_the_layer() -> None:
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="gelu", name="hidden"),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    with pytest.raises(ValueError, match="layer 'hidden': activation 'gelu' is not supported"):
        CartPoleAgent(model)


def test_models_that_do_not_fit_the_task_are_refused() -> None:
    with pytest.raises(ValueError, match="action output"):
        CartPoleAgent(pendulum_model())
    with pytest.raises(ValueError, match="input"):
        CartPoleAgent(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]))


# ---------------------------------------------------------------------- files


@pytest.fixture
def saved_cartpole(tmp_path: Path) -> Path:
    prefix = tmp_path / "cartpole"
    make_agent(CartPoleAgent, cartpole_model).save(prefix)
    return prefix


class _RunsACommand:
    """Unpickling this object runs a shell command (the classic pickle exploit)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_hostile_pickle_is_refused_and_does_not_run(saved_cartpole: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    config_path = saved_cartpole.with_suffix(".config")
    config_path.write_bytes(pickle.dumps({"format": _RunsACommand(marker)}))
    with pytest.raises(AgentFileError, match=r"cartpole\.config.*refused to unpickle"):
        CartPoleAgent.load(saved_cartpole)
    assert not marker.exists()


def test_truncated_config_gives_clear_error(saved_cartpole: Path) -> None:
    config_path = saved_cartpole.with_suffix(".config")
    config_path.write_bytes(config_path.read_bytes()[:40])
    with pytest.raises(AgentFileError, match=r"cartpole\.config.*truncated or corrupt"):
        CartPoleAgent.load(saved_cartpole)


def test_missing_model_file_gives_clear_error(saved_cartpole: Path) -> None:
    saved_cartpole.with_suffix(".keras").unlink()
    with pytest.raises(
        AgentFileError, match=r"cartpole\.keras: model file not found \(cartpole\.config is there"
    ):
        CartPoleAgent.load(saved_cartpole)
    saved_cartpole.with_suffix(".config").unlink()
    with pytest.raises(AgentFileError, match=r"cartpole\.keras: model file not found; pass PREFIX"):
        CartPoleAgent.load(saved_cartpole)


def test_a_model_without_its_config_loads_unchecked(saved_cartpole: Path) -> None:
    """A lone `.keras` is what the course's checkpoints are: it loads, with one warning."""
    expected = CartPoleAgent.load(saved_cartpole).act([0.1, 0.2, 0.3, 0.4], None)
    saved_cartpole.with_suffix(".config").unlink()
    agent = load_warning_once(CartPoleAgent, saved_cartpole)
    assert agent.act([0.1, 0.2, 0.3, 0.4], None) == expected


def test_truncated_model_gives_clear_error(saved_cartpole: Path) -> None:
    model_path = saved_cartpole.with_suffix(".keras")
    model_path.write_bytes(model_path.read_bytes()[:500])
    with pytest.raises(AgentFileError, match=r"cartpole\.keras: does not match"):
        CartPoleAgent.load(saved_cartpole)


def _rehash(prefix: Path) -> None:
    """Make the config vouch for whatever `.keras` file is there now (a forged pair)."""
    config_path = prefix.with_suffix(".config")
    config = read_config(config_path) | {"model_sha256": sha256_of(prefix.with_suffix(".keras"))}
    config_path.write_bytes(dumps_config(config))


def test_corrupt_model_with_matching_hash_gives_clear_error(saved_cartpole: Path) -> None:
    saved_cartpole.with_suffix(".keras").write_bytes(b"not a zip archive")
    _rehash(saved_cartpole)
    with pytest.raises(AgentFileError, match=r"cartpole\.keras: not a Keras 3 model archive"):
        CartPoleAgent.load(saved_cartpole)


def test_model_with_code_is_refused_and_never_run(
    saved_cartpole: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "ran"
    monkeypatch.setenv("HOSTILE_MARKER", str(marker))
    hostile = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Lambda(
                lambda x: x + 0 * __import__("os").system("touch $HOSTILE_MARKER"), name="code"
            ),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    marker.unlink()  # building the model ran the lambda once; loading must not
    keras.models.save_model(hostile, saved_cartpole.with_suffix(".keras"))
    _rehash(saved_cartpole)
    with pytest.raises(AgentFileError, match=r"cartpole\.keras: layer 'code': .*Lambda"):
        CartPoleAgent.load(saved_cartpole)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (["a", "list"], "expected a dict"),
        ({"some": "settings"}, "not an agent config"),
        ({1: "non-string key"}, "not a string"),
    ],
)
def test_foreign_config_gives_clear_error(saved_cartpole: Path, content, message: str) -> None:
    saved_cartpole.with_suffix(".config").write_bytes(pickle.dumps(content))
    with pytest.raises(AgentFileError, match=message):
        CartPoleAgent.load(saved_cartpole)


def test_wrong_task_files_are_refused_at_load(tmp_path: Path) -> None:
    make_agent(InvertedPendulumAgent, pendulum_model).save(tmp_path / "pendulum")
    with pytest.raises(
        AgentFileError, match=r"for the 'pendulum' task.*InvertedPendulumAgent \(--agent pendulum"
    ):
        CartPoleAgent.load(tmp_path / "pendulum")
    make_agent(CartPoleAgent, cartpole_model).save(tmp_path / "cartpole")
    with pytest.raises(AgentFileError, match=r"for the 'cartpole' task.*--agent cartpole"):
        InvertedPendulumAgent.load(tmp_path / "cartpole")


def test_config_records_what_wrote_it(saved_cartpole: Path) -> None:
    config = read_config(saved_cartpole.with_suffix(".config"))
    assert config["agent"] == "cartpole" and config["seed"] == 3
    assert config["observation_shape"] == [4]
    assert config["action_space"] == {"type": "discrete", "n": 2}
    assert config["versions"]["keras"] == keras.__version__


def test_extra_config_round_trips_and_must_be_plain(tmp_path: Path) -> None:
    extra = {"training": {"command": "python -m training.x", "lr": 3e-4, "sizes": [128]}}
    agent = CartPoleAgent(cartpole_model(), extra_config=extra)
    agent.save(tmp_path / "a")
    assert CartPoleAgent.load(tmp_path / "a").extra_config == extra
    with pytest.raises(AgentFileError, match="ndarray is not plain data"):
        CartPoleAgent(cartpole_model(), extra_config={"array": np.zeros(2)})
    with pytest.raises(ValueError, match="own keys"):
        CartPoleAgent(cartpole_model(), extra_config={"agent": "pendulum"})


def test_failed_save_leaves_the_old_pair_loadable(
    saved_cartpole: Path, observations: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = CartPoleAgent.load(saved_cartpole)
    old_actions = [old.act(observation, None) for observation in observations]

    def save_half_then_fail(model, path, **kwargs) -> None:
        Path(path).write_bytes(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(keras.models, "save_model", save_half_then_fail)
    new = CartPoleAgent(cartpole_model(seed=99), seed=5)
    with pytest.raises(OSError, match="disk full"):
        new.save(saved_cartpole)
    reloaded = CartPoleAgent.load(saved_cartpole)
    assert [reloaded.act(observation, None) for observation in observations] == old_actions
    assert sorted(path.name for path in saved_cartpole.parent.iterdir()) == [
        "cartpole.config",
        "cartpole.keras",
    ]


def test_load_accepts_a_prefix_with_either_suffix(saved_cartpole: Path) -> None:
    expected = CartPoleAgent.load(saved_cartpole).act([0.1, 0.2, 0.3, 0.4], None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ("cartpole.keras", "cartpole.config"):
            agent = CartPoleAgent.load(saved_cartpole.parent / name)
            assert agent.act([0.1, 0.2, 0.3, 0.4], None) == expected


def test_a_loaded_agent_saves_its_file_back_unchanged(saved_cartpole: Path, tmp_path: Path):
    loaded = CartPoleAgent.load(saved_cartpole)
    loaded.save(tmp_path / "copy")
    original = saved_cartpole.with_suffix(".keras").read_bytes()
    assert (tmp_path / "copy.keras").read_bytes() == original
    again = CartPoleAgent.load(tmp_path / "copy")
    assert again.seed == loaded.seed and again.extra_config == loaded.extra_config
    # Keras itself still reads the files the runtime wrote back, in safe mode.
    model = keras.models.load_model(tmp_path / "copy.keras", compile=False, safe_mode=True)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(np.ones((1, 4), dtype=np.float32))),
        again.outputs(np.ones((1, 4)))[0],
        atol=KERAS_TOLERANCE,
    )


# ---------------------------------------------------------------------- course-format files


@pytest.fixture
def course_cartpole(tmp_path: Path) -> Path:
    """A course-trained CartPole pair: `model.save` and a pickle of `{'seed': 42}`."""
    prefix = tmp_path / "course" / "cartpole"
    prefix.parent.mkdir(exist_ok=True)
    course_cartpole_model(sequential=True).save(prefix.with_suffix(".keras"))
    with prefix.with_suffix(".config").open("wb") as stream:
        pickle.dump({"seed": 42}, stream)
    return prefix


@pytest.fixture
def course_pendulum(tmp_path: Path) -> Path:
    """The course's pendulum agent saves only the `.keras` file."""
    prefix = tmp_path / "course" / "pendulum"
    prefix.parent.mkdir(exist_ok=True)
    course_pendulum_model().save(prefix.with_suffix(".keras"))
    return prefix


def load_warning_once(agent_class: type, prefix: Path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        agent = agent_class.load(prefix)
    assert [warning.category for warning in caught] == [UncheckedFilesWarning]
    assert "no hash" in str(caught[0].message) and str(prefix) in str(caught[0].message)
    return agent


def test_course_cartpole_pair_loads_with_one_warning(
    course_cartpole: Path, observations: np.ndarray
) -> None:
    agent = load_warning_once(CartPoleAgent, course_cartpole)
    assert agent.seed == 42 and agent.extra_config == {}
    model = keras.models.load_model(course_cartpole.with_suffix(".keras"), safe_mode=True)
    probabilities = keras.ops.convert_to_numpy(model(observations.astype(np.float32)))
    actions = [agent.act(observation, None) for observation in observations]
    np.testing.assert_array_equal(actions, probabilities.argmax(axis=1))


def test_lone_course_pendulum_model_loads_with_one_warning(
    course_pendulum: Path, observations: np.ndarray
) -> None:
    assert not course_pendulum.with_suffix(".config").exists()
    agent = load_warning_once(InvertedPendulumAgent, course_pendulum)
    assert agent.seed == 42
    model = keras.models.load_model(course_pendulum.with_suffix(".keras"), safe_mode=True)
    mean = keras.ops.convert_to_numpy(model(observations.astype(np.float32))[0])
    actions = np.stack([agent.act(observation, None) for observation in observations])
    np.testing.assert_allclose(actions, np.clip(mean, -3.0, 3.0), atol=KERAS_TOLERANCE)


def test_course_files_still_get_every_other_check(
    course_cartpole: Path, course_pendulum: Path
) -> None:
    with pytest.raises(AgentFileError, match=r"cartpole\.keras: .*action output.*--agent cartpole"):
        InvertedPendulumAgent.load(course_cartpole)  # a CartPole policy is not a pendulum actor
    with pytest.raises(
        AgentFileError, match=r"pendulum\.keras: .*policy for InvertedPendulum-v5.*--agent pendulum"
    ):
        CartPoleAgent.load(course_pendulum)
    hostile = keras.Sequential(
        [keras.Input((4,)), keras.layers.Lambda(lambda x: x), keras.layers.Dense(1)]
    )
    keras.models.save_model(hostile, course_pendulum.with_suffix(".keras"))
    with pytest.raises(AgentFileError, match="Lambda"):
        InvertedPendulumAgent.load(course_pendulum)
    course_cartpole.with_suffix(".config").write_bytes(pickle.dumps({"seed": 42, "lr": 3e-4}))
    with pytest.raises(AgentFileError, match="not an agent config"):
        CartPoleAgent.load(course_cartpole)


def test_a_course_agent_saves_a_checked_pair(course_pendulum: Path, tmp_path: Path) -> None:
    agent = load_warning_once(InvertedPendulumAgent, course_pendulum)
    agent.save(tmp_path / "checked")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        checked = InvertedPendulumAgent.load(tmp_path / "checked")
    assert read_config(tmp_path / "checked.config")["model_sha256"] == sha256_of(
        course_pendulum.with_suffix(".keras")
    )
    assert checked.act([0.1, -0.2, 0.05, 0.3], None) == agent.act([0.1, -0.2, 0.05, 0.3], None)
