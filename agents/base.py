"""What both competition agents share: save/load of the file pair, input checks, the fast path.

The evaluator calls `AgentClass.load(path).act(obs, info)` once per step, so `act` must be
cheap and must never return something `env.step` refuses. Task-specific parts (the action
rule and the model's expected shape) live in the subclasses.
"""

from __future__ import annotations

import os
import platform
import warnings
from abc import abstractmethod
from collections.abc import Callable
from importlib import metadata
from typing import Any, ClassVar, Self

import keras
import kymnasium
import numpy as np

from agents.agent_files import (
    AgentFileError,
    agent_paths,
    check_plain_data,
    load_model_safely,
    read_config,
    sha256_of,
    write_pair_atomically,
)
from agents.numpy_forward import UnsupportedModelError, compile_numpy_forward

#: Identifies our config files among other pickles.
CONFIG_FORMAT = "kymnasium-policy-agent"
CONFIG_FORMAT_VERSION = 1
DEFAULT_SEED = 42
#: The fast path must match Keras this closely on the probe inputs (issue: fast path).
FAST_PATH_TOLERANCE = 1e-5
PROBE_COUNT = 16
PROBE_SEED = 20_240_601
#: Libraries whose versions go into every config, so a weight file says what wrote it.
RECORDED_PACKAGES = ("keras", "tensorflow", "numpy", "gymnasium", "mujoco", "kymnasium")

#: Keys the agent writes itself; `extra_config` may not override them.
BASE_CONFIG_KEYS = frozenset(
    {
        "format",
        "format_version",
        "agent",
        "agent_class",
        "env_id",
        "seed",
        "observation_shape",
        "action_space",
        "model_sha256",
        "versions",
    }
)

Forward = Callable[[np.ndarray], np.ndarray]


def library_versions() -> dict[str, str]:
    """Versions of Python and the recorded packages that are installed."""
    versions = {"python": platform.python_version()}
    for package in RECORDED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


class PolicyAgent(kymnasium.Agent):
    """A greedy policy over a small Keras MLP, saved as `{path}.keras` + `{path}.config`."""

    #: Short task name written into the config; loading checks it.
    kind: ClassVar[str]
    #: The gymnasium environment the agent is for.
    env_id: ClassVar[str]
    observation_shape: ClassVar[tuple[int, ...]] = (4,)
    #: Which model output the action is computed from.
    action_output: ClassVar[int] = 0

    def __init__(
        self,
        model: keras.Model,
        seed: int = DEFAULT_SEED,
        extra_config: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(model, keras.Model):
            raise TypeError(f"model must be a keras.Model, not {type(model).__name__}")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TypeError(f"seed must be an int, not {type(seed).__name__}")
        extra_config = dict(extra_config or {})
        check_plain_data(extra_config, "extra_config")
        if clashes := sorted(BASE_CONFIG_KEYS & extra_config.keys()):
            raise ValueError(f"extra_config may not set the agent's own keys {clashes}")
        self._check_model(model)
        self.model = model
        self.seed = seed
        self.extra_config = extra_config
        self._rng = np.random.default_rng(seed)
        #: The whole config the agent was loaded from (None for an agent built in memory).
        self.loaded_config: dict[str, Any] | None = None
        self._forward, self.fast_path_problem = self._build_forward(model)

    # ------------------------------------------------------------------ model checks
    @classmethod
    def _check_model(cls, model: keras.Model) -> None:
        """Refuse a model whose input or action output does not fit the task."""
        if len(model.inputs) != 1 or tuple(model.inputs[0].shape[1:]) != cls.observation_shape:
            shapes = [tuple(tensor.shape) for tensor in model.inputs]
            raise ValueError(
                f"{cls.__name__} needs one input of shape (None, *{cls.observation_shape}), "
                f"the model has {shapes}"
            )
        if len(model.outputs) <= cls.action_output:
            raise ValueError(f"{cls.__name__} needs model output {cls.action_output}")
        shape = tuple(model.outputs[cls.action_output].shape[1:])
        if shape != cls.expected_output_shape():
            raise ValueError(
                f"{cls.__name__} needs an action output of shape (None, "
                f"*{cls.expected_output_shape()}), the model's is (None, *{shape})"
            )

    @classmethod
    @abstractmethod
    def expected_output_shape(cls) -> tuple[int, ...]:
        """Shape (without batch) of the model output the action is computed from."""

    def _keras_forward(self, batch: np.ndarray) -> np.ndarray:
        outputs = self.model(batch, training=False)
        if isinstance(outputs, (list, tuple)):
            outputs = outputs[self.action_output]
        return keras.ops.convert_to_numpy(outputs)

    def _build_forward(self, model: keras.Model) -> tuple[Forward, str | None]:
        """Compile the NumPy fast path and trust it only if it matches Keras on probe inputs."""
        probes = (
            np.random.default_rng(PROBE_SEED)
            .normal(scale=2.0, size=(PROBE_COUNT, *self.observation_shape))
            .astype(np.float32)
        )
        reference = self._keras_forward(probes)
        if not np.all(np.isfinite(reference)):
            raise ValueError("the model gives non-finite outputs on ordinary inputs")
        try:
            forward = compile_numpy_forward(model, self.action_output)
            difference = float(np.max(np.abs(forward(probes) - reference)))
        except UnsupportedModelError as error:
            problem = str(error)
        else:
            if difference <= FAST_PATH_TOLERANCE:
                return forward, None
            problem = f"NumPy and Keras outputs differ by {difference:.3g}"
        warnings.warn(
            f"{type(self).__name__}: using the slow Keras path ({problem})",
            RuntimeWarning,
            stacklevel=3,
        )
        return self._keras_forward, problem

    @property
    def uses_fast_path(self) -> bool:
        """True when `act` runs the NumPy forward pass instead of calling Keras."""
        return self.fast_path_problem is None

    # ------------------------------------------------------------------ acting
    def _observation_batch(self, observation: Any) -> np.ndarray:
        """The observation as a float32 batch of one; `ValueError` if it is not usable."""
        try:
            array = np.asarray(observation, dtype=np.float32)
        except (TypeError, ValueError) as error:
            raise ValueError(f"observation is not numeric: {error}") from error
        if array.shape != self.observation_shape:
            raise ValueError(
                f"observation must have shape {self.observation_shape}, got {array.shape}"
            )
        if not np.isfinite(array).all():
            raise ValueError(f"observation must be finite, got {array.tolist()}")
        return array[np.newaxis]

    def act(self, observation: Any, info: Any = None) -> Any:
        """The greedy action for one raw observation; `info` is accepted and ignored."""
        return self._action(self._forward(self._observation_batch(observation))[0])

    @abstractmethod
    def _action(self, output: np.ndarray) -> Any:
        """Turn the model's action output for one observation into what `env.step` accepts."""

    # ------------------------------------------------------------------ files
    @classmethod
    @abstractmethod
    def action_space_config(cls) -> dict[str, Any]:
        """The action space as plain data, written to and checked against the config."""

    def config(self, model_sha256: str) -> dict[str, Any]:
        """The plain-data dict saved as `{path}.config`."""
        return {
            "format": CONFIG_FORMAT,
            "format_version": CONFIG_FORMAT_VERSION,
            "agent": self.kind,
            "agent_class": f"agents.{type(self).__name__}",
            "env_id": self.env_id,
            "seed": self.seed,
            "observation_shape": list(self.observation_shape),
            "action_space": self.action_space_config(),
            "model_sha256": model_sha256,
            "versions": library_versions(),
            **self.extra_config,
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write `{path}.keras` and `{path}.config`; an interrupted save keeps the old pair."""
        write_pair_atomically(
            path, lambda target: keras.models.save_model(self.model, target), self.config
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Self:
        """Load an agent saved by `save`; refuses hostile, corrupt, foreign or wrong-task files."""
        model_path, config_path = agent_paths(path)
        config = read_config(config_path)
        cls._check_config(config, config_path)
        digest = sha256_of(model_path) if model_path.is_file() else None
        if digest is not None and digest != config["model_sha256"]:
            raise AgentFileError(
                f"{model_path}: does not match {config_path.name} (SHA-256 differs): the model "
                "was changed or the two files come from different saves"
            )
        model = load_model_safely(model_path)
        try:
            cls._check_model(model)
        except ValueError as error:
            raise AgentFileError(f"{model_path}: {error}") from error
        extra = {key: value for key, value in config.items() if key not in BASE_CONFIG_KEYS}
        agent = cls(model, seed=config["seed"], extra_config=extra)
        agent.loaded_config = config
        return agent

    @classmethod
    def _check_config(cls, config: dict[str, Any], source: os.PathLike[str]) -> None:
        """Refuse a config that is not ours, is for the other task, or lacks a field."""
        if config.get("format") != CONFIG_FORMAT:
            raise AgentFileError(f"{source}: not an agent config (format {config.get('format')!r})")
        if config.get("format_version") != CONFIG_FORMAT_VERSION:
            raise AgentFileError(
                f"{source}: config format version {config.get('format_version')!r} is not "
                f"supported (this package reads {CONFIG_FORMAT_VERSION})"
            )
        if config.get("agent") != cls.kind:
            raise AgentFileError(
                f"{source}: these files are for the {config.get('agent')!r} task "
                f"({config.get('env_id')}), not {cls.kind!r} ({cls.env_id}): load them with "
                f"{config.get('agent_class', 'the other agent class')}"
            )
        expected = {
            "env_id": cls.env_id,
            "observation_shape": list(cls.observation_shape),
            "action_space": cls.action_space_config(),
        }
        for key, value in expected.items():
            if config.get(key) != value:
                raise AgentFileError(f"{source}: {key} is {config.get(key)!r}, expected {value!r}")
        seed, digest = config.get("seed"), config.get("model_sha256")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise AgentFileError(f"{source}: seed must be an int, got {seed!r}")
        if not isinstance(digest, str) or len(digest) != 64:
            raise AgentFileError(f"{source}: model_sha256 is missing or malformed")
