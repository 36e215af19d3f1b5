"""Settings as dataclasses, and a command line generated from their fields.

Each script subclasses :class:`TrainingSettings`; its field defaults are the course (SPEC
section 3) and ``PRESETS["fast"]`` holds the overrides that train fastest. Every field is a flag
whose ``--help`` line is the field's one-line doc. Importing this module stays cheap (no Keras),
so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

GAMMA = 0.99
SEED = 42
COURSE_LEARNING_RATE = 3e-4
CLIPNORM = 1.0
HIDDEN = (128,)
RUNNING_WINDOW = 30
TARGET_RUNNING_REWARD = 300.0
MAX_EPISODES = 1000
CHECKPOINT_EVERY = 200
EVAL_EPISODES = 20
CARTPOLE_SOLVED = 475.0
PENDULUM_SOLVED = 950.0

STANDARDISE_CHOICES = ("none", "episode", "batch")
REDUCTION_CHOICES = ("sum", "mean")
STOP_CHOICES = ("running_reward", "solved")


def setting(
    default: Any, doc: str, choices: tuple[str, ...] | None = None, cli: bool = True
) -> Any:
    """A dataclass field with its one-line doc (shown by --help) and allowed values."""
    return field(default=default, metadata={"doc": doc, "choices": choices, "cli": cli})


@dataclass(frozen=True)
class TrainingSettings:
    """Everything a run depends on; written to the run folder as settings.json."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"course": {}, "fast": {}}
    SCRIPT: ClassVar[str] = "training"

    task: str = setting("cartpole", "agent name: cartpole or pendulum", cli=False)
    seed: int = setting(SEED, "seed for initialisers, environments and action sampling")
    num_envs: int = setting(1, "environments stepped together (gymnasium.make_vec)")
    episodes_per_update: int = setting(1, "complete episodes in each gradient update")
    gamma: float = setting(GAMMA, "discount factor of the returns G_t")
    actor_hidden: tuple[int, ...] = setting(HIDDEN, "hidden layer sizes of the policy")
    critic_hidden: tuple[int, ...] = setting(HIDDEN, "hidden layer sizes of the critic")
    actor_learning_rate: float = setting(COURSE_LEARNING_RATE, "Adam learning rate, policy")
    critic_learning_rate: float = setting(COURSE_LEARNING_RATE, "Adam learning rate, critic")
    clipnorm: float = setting(CLIPNORM, "Adam clipnorm (per-variable gradient norm cap)")
    baseline: bool = setting(False, "learn a critic V(s) and weight by G_t - V(s_t)")
    bootstrap_truncated: bool = setting(
        False,
        "add gamma^(T-t) V(s_T) to the returns of "
        "episodes cut by the time limit (needs --baseline)",
    )
    critic_steps: int = setting(1, "critic gradient steps per update, before the actor step")
    standardise: str = setting(
        "none",
        "standardise the actor's weights within each episode, over the whole batch, or not",
        STANDARDISE_CHOICES,
    )
    discount_weighting: bool = setting(True, "multiply step t's term by gamma^t (course loss)")
    batch_reduction: str = setting(
        "sum", "combine the episodes' losses by sum or mean", REDUCTION_CHOICES
    )
    entropy_coef: float = setting(0.0, "entropy bonus coefficient (0: none, as the course)")
    stop: str = setting(
        "running_reward",
        "stop rule: running reward above the target, or solved by a greedy evaluation",
        STOP_CHOICES,
    )
    target_running_reward: float = setting(
        TARGET_RUNNING_REWARD, "stop when the running reward exceeds this"
    )
    running_window: int = setting(RUNNING_WINDOW, "episodes in the running reward mean")
    solve_threshold: float = setting(
        CARTPOLE_SOLVED, "greedy evaluation mean that counts as solved"
    )
    eval_episodes: int = setting(EVAL_EPISODES, "episodes of each greedy evaluation")
    eval_every: int = setting(1, "updates between greedy evaluations (when gated open)")
    eval_gate: float = setting(
        0.0, "evaluate only when the mean of the last eval_episodes training rewards reaches this"
    )
    max_episodes: int = setting(MAX_EPISODES, "stop after this many training episodes")
    max_seconds: float = setting(0.0, "stop after this much training time (0: no limit)")
    checkpoint_every: int = setting(CHECKPOINT_EVERY, "episodes between checkpoints")
    runs_dir: str = setting("runs", "folder that receives the run folders")
    threads: int = setting(1, "TensorFlow intra/inter-op threads (0: TensorFlow decides)")
    progress_bar: bool = setting(True, "show a tqdm progress bar")
    tensorboard: bool = setting(
        True, "write progress, evaluations and steps per second as TensorBoard scalars too"
    )

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            choices = field_metadata(f.name)["choices"]
            if choices and getattr(self, f.name) not in choices:
                raise ValueError(
                    f"{f.name} must be one of {choices}, not {getattr(self, f.name)!r}"
                )
        for name in (
            "num_envs",
            "episodes_per_update",
            "critic_steps",
            "running_window",
            "eval_episodes",
            "eval_every",
            "max_episodes",
            "checkpoint_every",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> TrainingSettings:
        """The named preset with ``overrides`` on top."""
        return cls(**{**cls.PRESETS[name], **overrides})

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "script": self.SCRIPT}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainingSettings:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**cls.typed({k: v for k, v in data.items() if k in known}))

    @classmethod
    def typed(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Field values as the dataclass wants them: JSON and Ray hand tuples back as lists."""
        hints = typing.get_type_hints(cls)
        return {k: tuple(v) if hints[k] == tuple[int, ...] else v for k, v in values.items()}


def field_metadata(name: str) -> Any:
    """A field's doc and choices, from the base class (subclasses only change defaults)."""
    return {f.name: f.metadata for f in dataclasses.fields(TrainingSettings)}[name]


def _add_field(
    parser: argparse.ArgumentParser,
    f: dataclasses.Field,
    kind: Any,
    presets: dict[str, dict[str, Any]],
) -> None:
    flag = "--" + f.name.replace("_", "-")
    shown = "; ".join(
        f"{name}: {values.get(f.name, f.default)}" for name, values in presets.items()
    )
    metadata = field_metadata(f.name)
    doc = f"{metadata['doc']} [{shown}]"
    if kind is bool:
        parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=doc)
    elif kind == tuple[int, ...]:
        parser.add_argument(flag, type=int, nargs="+", metavar="N", help=doc)
    else:
        parser.add_argument(flag, type=kind, choices=metadata["choices"], help=doc)


@dataclass(frozen=True)
class Command:
    """What the command line asked for: settings, and the run folder to resume if any."""

    settings: TrainingSettings
    resume: Path | None


def parse_command(
    cls: type[TrainingSettings], argv: list[str] | None = None, description: str | None = None
) -> Command:
    """Parse ``--preset``, ``--resume`` and one flag per settings field.

    Flags given on the command line override the preset (or, with ``--resume``, the settings
    stored in the run folder, e.g. to raise ``--max-episodes``).
    """
    parser = argparse.ArgumentParser(
        description=description or cls.__doc__, argument_default=argparse.SUPPRESS
    )
    parser.add_argument(
        "--preset",
        choices=tuple(cls.PRESETS),
        default="course",
        help="course: SPEC section 3 exactly; fast: the settings that train "
        "fastest [default: course]",
    )
    parser.add_argument(
        "--resume",
        metavar="RUN_DIR",
        type=Path,
        default=None,
        help="continue the run in RUN_DIR (its settings.json, weights, "
        "optimiser state and counters)",
    )
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if field_metadata(f.name)["cli"]:
            _add_field(parser, f, hints[f.name], cls.PRESETS)
    namespace = vars(parser.parse_args(argv))
    preset, resume = namespace.pop("preset"), namespace.pop("resume")
    namespace = {k: tuple(v) if isinstance(v, list) else v for k, v in namespace.items()}
    if resume is not None:
        stored = json.loads((resume / "settings.json").read_text())
        if stored.get("script") != cls.SCRIPT:
            parser.error(f"{resume} is a run of {stored.get('script')}, not {cls.SCRIPT}")
        return Command(cls.from_json({**stored, **namespace}), resume)
    return Command(cls.preset(preset, **namespace), None)
