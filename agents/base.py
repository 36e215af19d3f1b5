"""What both competition agents share: the file pair, input checks and the NumPy forward pass.

The evaluator calls `AgentClass.load(path).act(obs, info)` once per step, so `act` must be
cheap and must never return something `env.step` refuses. It may also render in the same
process, and a process that has loaded TensorFlow crashes when it renders with Mesa's OpenGL.
So `load` and `act` use only NumPy and h5py: Keras writes the files (`save`), the runtime
only reads them. Task-specific parts (the action rule and the output shape) live in the
subclasses.
"""

from __future__ import annotations

import functools
import os
import platform
import tempfile
import warnings
from abc import abstractmethod
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import kymnasium
import numpy as np

from agents.agent_files import (
    AgentFileError,
    agent_paths,
    agent_prefix,
    check_plain_data,
    read_config,
    sha256_bytes,
    write_pair_atomically,
)
from agents.course_files import (
    UncheckedFilesWarning,
    folder_problem,
    is_course_config,
    is_value_network,
    unchecked_note,
    value_network_problem,
)
from agents.keras_file import read_model_bytes, read_model_file
from agents.model_config import keras_arrays, plan_of_keras_model
from agents.numpy_forward import ForwardPlan

if TYPE_CHECKING:
    import keras

#: Identifies our config files among other pickles.
CONFIG_FORMAT = "kymnasium-policy-agent"
CONFIG_FORMAT_VERSION = 1
DEFAULT_SEED = 42
#: Libraries whose versions go into every config, so a weight file says what wrote it.
RECORDED_PACKAGES = ("keras", "tensorflow", "numpy", "gymnasium", "mujoco", "kymnasium")
#: What loading and acting need: a bundle lists these, and never TensorFlow or Keras.
RUNTIME_PACKAGES = ("numpy", "h5py", "kymnasium", "gymnasium")

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


#: Every task's agent class by its agent name, filled as the classes are defined.
TASK_CLASSES: dict[str, type[PolicyAgent]] = {}


def runtime_requirements() -> dict[str, str]:
    """What loading and acting need, at the versions installed here (a bundle lists these)."""
    versions = {"python": platform.python_version()}
    for package in RUNTIME_PACKAGES:
        versions[package] = metadata.version(package)
    return versions


@functools.cache
def library_versions() -> dict[str, str]:
    """Versions of Python and the recorded packages that are installed, read once a process
    (the metadata lookups take about 9 ms, and a run saves an agent at every checkpoint)."""
    versions = {"python": platform.python_version()}
    for package in RECORDED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


class PolicyAgent(kymnasium.Agent):
    """A greedy policy over a small MLP, saved as `{path}.keras` + `{path}.config`.

    Build one from a Keras model (training does), or `load` one from files; either way `act`
    runs the NumPy forward pass. A loaded agent keeps its file's bytes, so it saves them back
    unchanged, and builds a Keras model only if `model` is asked for.
    """

    #: The agent name used on every command line (--agent) and in the config; loading checks it.
    agent: ClassVar[str]
    #: The gymnasium environment the agent is for.
    env_id: ClassVar[str]
    observation_shape: ClassVar[tuple[int, ...]] = (4,)
    #: Which model output the action is computed from.
    action_output: ClassVar[int] = 0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "agent" in cls.__dict__:
            TASK_CLASSES[cls.agent] = cls

    def __init__(
        self,
        model: keras.Model,
        seed: int = DEFAULT_SEED,
        extra_config: dict[str, Any] | None = None,
    ) -> None:
        import keras

        if not isinstance(model, keras.Model):
            raise TypeError(f"model must be a keras.Model, not {type(model).__name__}")
        plan = plan_of_keras_model(model)
        self._check_plan(plan)
        self._setup(plan, keras_arrays(model, plan)(), seed, extra_config)
        self._model: keras.Model | None = model
        self._model_bytes: bytes | None = None

    def _setup(
        self,
        plan: ForwardPlan,
        arrays: dict[str, list[np.ndarray]],
        seed: int,
        extra_config: dict[str, Any] | None,
    ) -> None:
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TypeError(f"seed must be an int, not {type(seed).__name__}")
        extra_config = dict(extra_config or {})
        check_plain_data(extra_config, "extra_config")
        if clashes := sorted(BASE_CONFIG_KEYS & extra_config.keys()):
            raise ValueError(f"extra_config may not set the agent's own keys {clashes}")
        self.seed = seed
        self.extra_config = extra_config
        self._rng = np.random.default_rng(seed)
        self._plan = plan
        self._arrays = arrays
        self._forward = plan.bind(arrays, self.action_output)

    # ------------------------------------------------------------------ model checks
    @classmethod
    def _check_plan(cls, plan: ForwardPlan) -> None:
        """Refuse a model whose input or action output does not fit the task."""
        if (plan.input_width,) != cls.observation_shape:
            raise ValueError(
                f"{cls.__name__} needs one input of shape {_batch_shape(cls.observation_shape)}, "
                f"the model's is {_batch_shape((plan.input_width,))}"
            )
        if len(plan.output_widths) <= cls.action_output:
            raise ValueError(f"{cls.__name__} needs model output {cls.action_output}")
        shape = (plan.output_widths[cls.action_output],)
        if shape != cls.expected_output_shape():
            raise ValueError(
                f"{cls.__name__} needs an action output of shape "
                f"{_batch_shape(cls.expected_output_shape())}, the model's is {_batch_shape(shape)}"
            )

    @classmethod
    @abstractmethod
    def expected_output_shape(cls) -> tuple[int, ...]:
        """Shape (without batch) of the model output the action is computed from."""

    @property
    def model(self) -> keras.Model:
        """The Keras model (this imports Keras; acting never needs it).

        An agent built from a model returns that model. A loaded agent builds it from its
        file's bytes, in Keras safe mode, on first use: for training code and for checking the
        NumPy pass against Keras.
        """
        if self._model is None:
            import keras

            with tempfile.TemporaryDirectory(prefix="agent-model-") as folder:
                path = Path(folder) / "model.keras"
                path.write_bytes(self._model_bytes)
                self._model = keras.models.load_model(path, compile=False, safe_mode=True)
        return self._model

    def outputs(self, observations: Any) -> list[np.ndarray]:
        """Every model output for a batch of observations, computed as `act` computes them."""
        batch = np.asarray(observations, dtype=np.float32)
        every = tuple(range(len(self._plan.output_names)))
        return self._plan.bind(self._arrays, every)(batch)

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

    def act_batch(self, observations: Any) -> np.ndarray:
        """The greedy actions for a batch of raw observations, each as `act` computes it (up to
        float rounding): training's solve check plays its episodes side by side with this."""
        return self._actions(self._forward(np.asarray(observations, dtype=np.float32)))

    @abstractmethod
    def _action(self, output: np.ndarray) -> Any:
        """Turn the model's action output for one observation into what `env.step` accepts."""

    def _actions(self, outputs: np.ndarray) -> np.ndarray:
        """`_action` on every row of a batch (subclasses do it in one go)."""
        return np.asarray([self._action(output) for output in outputs])

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
            "agent": self.agent,
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
        write_pair_atomically(path, self._write_model, self.config)

    def _write_model(self, target: Path) -> None:
        if self._model_bytes is not None:  # loaded: the file it came from, byte for byte
            target.write_bytes(self._model_bytes)
            return
        import keras

        keras.models.save_model(self._model, target)
        read_model_file(target)  # never write a model that `load` would refuse

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Self:
        """Load an agent saved by `save` (or by the course's code) without TensorFlow.

        Refuses hostile, corrupt, foreign or wrong-task files with `AgentFileError`, whose
        message says what to do instead. The course's files (a lone `.keras` checkpoint, or
        one with a `{'seed': N}` or `{'seed': None}` config) load with one
        `UncheckedFilesWarning`, since they carry no hash to check.
        """
        prefix = agent_prefix(path)
        model_path, config_path = agent_paths(prefix)
        if not model_path.is_file():
            if not config_path.exists() and (problem := folder_problem(prefix)):
                raise AgentFileError(problem, names_fix=True)
            beside = f" ({config_path.name} is there: copy the two files together)"
            raise AgentFileError(
                f"{model_path}: model file not found"
                + (
                    beside
                    if config_path.exists()
                    else "; pass PREFIX for PREFIX.keras (+ PREFIX.config)"
                ),
                names_fix=True,
            )
        config = read_config(config_path) if config_path.exists() else None
        checked = config is not None and "format" in config
        if checked:
            cls._check_config(config, config_path)
        elif config is not None and not is_course_config(config):
            keys = sorted(key[:30] for key in config)[:6]
            raise AgentFileError(
                f"{config_path}: not an agent config (neither this package's format nor the "
                f"course's {{'seed': N}}; its keys are {keys}): save the "
                "agent again with Agent.save, or move the .config away to load the .keras alone",
                names_fix=True,
            )
        data = read_model_bytes(model_path)
        if checked and sha256_bytes(data) != config["model_sha256"]:
            raise AgentFileError(
                f"{model_path}: does not match {config_path.name} (SHA-256 differs): the model "
                "was changed or the two files come from different saves"
            )
        model = read_model_file(model_path, data)
        if problem := cls.plan_problem(model.plan, checked):
            message, names_fix = problem
            raise AgentFileError(f"{model_path}: {message}", names_fix=names_fix)
        agent = cls.__new__(cls)
        if checked:
            extra = {key: value for key, value in config.items() if key not in BASE_CONFIG_KEYS}
            agent._setup(model.plan, model.arrays, config["seed"], extra)
        else:
            seed = DEFAULT_SEED if config is None or config["seed"] is None else config["seed"]
            agent._setup(model.plan, model.arrays, seed, None)
            warnings.warn(
                unchecked_note(model_path, config_path, config, cls.__name__, seed),
                UncheckedFilesWarning,
                stacklevel=2,
            )
        agent._model = None
        agent._model_bytes = data
        return agent

    @classmethod
    def plan_problem(cls, plan: ForwardPlan, checked: bool = True) -> tuple[str, bool] | None:
        """Why a model cannot act as this agent, and whether that names the fix; or None.

        `checked` says a config of ours vouches for the file; without one, a critic (the
        course's baseline variant saves one at its early stop) is named as such."""
        if not checked and is_value_network(plan):
            return value_network_problem(plan), True
        try:
            cls._check_plan(plan)
        except ValueError as error:
            for other in TASK_CLASSES.values():
                if other is not cls and _fits(other, plan):
                    return (
                        f"{error}: it is a policy for {other.env_id}; load it with "
                        f"{other.__name__} (--agent {other.agent} on the command line)"
                    ), True
            return str(error), False
        return None

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
        if config.get("agent") != cls.agent:
            raise AgentFileError(
                f"{source}: these files are for the {config.get('agent')!r} task "
                f"({config.get('env_id')}), not {cls.agent!r} ({cls.env_id}): load them with "
                f"{config.get('agent_class', 'the other agent class')} (--agent "
                f"{config.get('agent')} on the command line)",
                names_fix=True,
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


def _fits(agent_class: type[PolicyAgent], plan: ForwardPlan) -> bool:
    try:
        agent_class._check_plan(plan)
    except ValueError:
        return False
    return True


def _batch_shape(shape: tuple[int, ...]) -> str:
    return f"(None, {', '.join(map(str, shape))})"
