"""Settings: the fields the training loop uses, their checks, presets and the command line.

A script subclasses :class:`RunSettings` with its algorithm's fields, each with a one-line
docstring (its ``--help`` line); tyro reads the command line from the dataclass (abbreviated
flags are refused) after a preset has set the defaults. No Keras here: ``--help`` is instant.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from training.exits import EXIT_FAILED, OneLineParser
from training.run_safety import DamagedRunFileError, read_settings_json
from training.runs import resume_problem
from training.tasks import TASKS


@dataclass(frozen=True)
class Bounds:
    """The numbers a setting allows (for a tuple, each item); every float must be finite."""

    at_least: float | None = None
    above: float | None = None
    at_most: float | None = None

    def allows(self, value: float) -> bool:
        return not (
            (self.at_least is not None and value < self.at_least)
            or (self.above is not None and value <= self.above)
            or (self.at_most is not None and value > self.at_most)
        )

    def describe(self) -> str:
        limits = (("at least", self.at_least), ("above", self.above), ("at most", self.at_most))
        return " and ".join(f"{word} {limit:g}" for word, limit in limits if limit is not None)


Count = Annotated[int, Bounds(at_least=1)]
NonNegativeInt = Annotated[int, Bounds(at_least=0)]
NonNegative = Annotated[float, Bounds(at_least=0)]
Positive = Annotated[float, Bounds(above=0)]
Discount = Annotated[float, Bounds(above=0, at_most=1)]
Fraction = Annotated[float, Bounds(at_least=0, at_most=1)]
Layers = Annotated[tuple[int, ...], Bounds(at_least=1)]


class SettingError(Exception):
    """A setting's value is not allowed: ``name`` is the field, ``problem`` says why (not a
    ValueError, which tyro would catch and print in a box of its own)."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{flag_of(name)} {problem}")
        self.name, self.problem = name, problem

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable with its two arguments, so a sweep's Ray worker can hand it back.
        return type(self), (self.name, self.problem)


def flag_of(name: str) -> str:
    return "--" + name.replace("_", "-")


def as_flag(name: str, value: Any) -> str:
    """A setting as the user would type it on the command line."""
    if isinstance(value, bool):
        return flag_of(name) if value else "--no-" + flag_of(name)[2:]
    if isinstance(value, tuple):
        return " ".join([flag_of(name), *map(str, value)])
    return f"{flag_of(name)} {value}"


@dataclass(frozen=True)
class RunSettings:
    """Everything the training loop needs; a script adds its algorithm's fields."""

    #: Settings ``--resume`` may change: the budgets and the display.
    RESUMABLE: ClassVar[tuple[str, ...]] = (
        *("max_episodes", "max_seconds", "max_env_steps", "progress_bar", "tensorboard"),
    )
    #: The settings that scale the updates, named when a run diverges.
    DIVERGENCE_SUSPECTS: ClassVar[tuple[str, ...]] = ("gamma",)

    agent: Literal["cartpole", "pendulum"] = "cartpole"
    """which task's agent: cartpole (CartPole-v1) or pendulum (InvertedPendulum-v5)"""
    seed: NonNegativeInt = 42
    """seed for initialisers, environments and action sampling"""
    num_envs: Count = 1
    """environments stepped together (gymnasium.make_vec)"""
    gamma: Discount = 0.99
    """discount factor of the returns"""
    layer_seed_step: NonNegativeInt = 0
    """layer i's initialiser seed: seed + i * this (0: every layer gets the seed, as the course)"""
    critic_seed_offset: NonNegativeInt = 0
    """added to the seed for the critic's initialisers (0: as the course)"""
    stop: Literal["running_reward", "solved", "none"] = "running_reward"
    """stop rule: running reward above the target, solved by a greedy evaluation, or none"""
    target_running_reward: float = 300.0
    """with --stop running_reward: stop when the running reward exceeds this"""
    running_window: Count = 30
    """episodes in the running reward's mean"""
    running_reward_from_zeros: bool = True
    """the running reward's window starts full of zeros, as the course's ring buffer (off: empty)"""
    solve_threshold: float = 475.0
    """with --stop solved: the greedy evaluation mean that counts as solved"""
    eval_episodes: Count = 20
    """episodes of each greedy evaluation"""
    eval_every: Count = 1
    """updates between greedy evaluations (once the gate is open)"""
    eval_gate: float = 0.0
    """evaluate only when the mean of the last gate_episodes training scores reaches this"""
    gate_episodes: Count = 20
    """training episodes whose mean score opens the evaluation gate"""
    max_episodes: Count = 1000
    """stop after this many training episodes"""
    max_seconds: NonNegative = 0.0
    """stop after this much training time (0: no limit)"""
    max_env_steps: NonNegativeInt = 0
    """stop after this many environment steps (0: no limit)"""
    checkpoint_every: Count = 200
    """episodes between checkpoints"""
    checkpoint_names: Literal["course", "episode"] = "course"
    """course: 199.keras (last episode from 0) as the course loads; episode: episode_000200.keras"""
    runs_dir: str = "runs"
    """folder that receives the run folders"""
    threads: NonNegativeInt = 1
    """TensorFlow intra/inter-op threads (0: TensorFlow decides)"""
    progress_bar: bool = True
    """show a tqdm progress bar"""
    tensorboard: bool = True
    """write progress, evaluations and steps per second as TensorBoard scalars too"""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self), include_extras=True)
        for f in dataclasses.fields(self):
            if (problem := value_problem(getattr(self, f.name), hints[f.name])) is not None:
                raise SettingError(f.name, problem)
        task = TASKS[self.agent]
        targets = {"solved": "solve_threshold", "running_reward": "target_running_reward"}
        if (target := targets.get(self.stop)) and getattr(self, target) > task.max_score:
            problem = f"can never be reached: {task.env_id} scores at most {task.max_score:g}"
            raise SettingError(target, f"{problem}, got {getattr(self, target):g}")

    def divergence_suspects(self) -> tuple[str, ...]:
        """The settings named when this run diverges (a script drops those it switches off)."""
        return self.DIVERGENCE_SUSPECTS

    @property
    def stop_score(self) -> float:
        """The score the stop rule aims at (the learning curve's line)."""
        if self.stop == "running_reward":
            return self.target_running_reward
        return self.solve_threshold

    def to_json(self, script: str) -> dict[str, Any]:
        return {"script": script, **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunSettings:
        """Settings from settings.json or a sweep's trial (lists to tuples, unknown keys out)."""
        known = {f.name for f in dataclasses.fields(cls)}
        hints, values = typing.get_type_hints(cls), {k: v for k, v in data.items() if k in known}
        for k, v in values.items():
            if isinstance(v, list) and hints[k] == tuple[int, ...]:
                values[k] = tuple(v)
        return cls(**values)


def value_problem(value: Any, hint: Any) -> str | None:
    """What is wrong with a value for a field of type ``hint`` (the end of a sentence that
    starts with the flag), or None."""
    bounds = next((m for m in getattr(hint, "__metadata__", ()) if isinstance(m, Bounds)), None)
    kind = typing.get_args(hint)[0] if bounds is not None else hint
    if typing.get_origin(kind) is tuple:
        shown = " ".join(map(str, value)) if isinstance(value, tuple) else repr(value)
        if not isinstance(value, tuple) or not value or not all(map(_is_whole, value)):
            return f"must be one or more whole numbers, got {shown or 'nothing'}"
        if bounds is not None and not all(map(bounds.allows, value)):
            return f"must each be {bounds.describe()}, got {shown}"
        return None
    if typing.get_origin(kind) is Literal:
        choices = typing.get_args(kind)
        return None if value in choices else f"must be one of {', '.join(choices)}, got {value!r}"
    if kind is bool:
        return None if isinstance(value, bool) else f"must be true or false, got {value!r}"
    if kind is int and not _is_whole(value):
        return f"must be a whole number, got {value!r}"
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be a number, got {value!r}"
        if not math.isfinite(value):
            return f"must be a finite number, got {value}"
    if bounds is not None and not bounds.allows(value):
        return f"must be {bounds.describe()}, got {value}"
    return None


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --- scripts, presets and the command line -------------------------------------------------
@dataclass(frozen=True)
class Script:
    """What a training script hands the core (which never imports a script): its name,
    settings and algorithm classes, presets and Ray Tune search space."""

    name: str
    settings_class: type[RunSettings]
    algorithm_class: type
    presets: dict[str, dict[str, Any]]
    default_preset: str
    search_space: Callable[[], dict[str, Any]] | None = None
    description: str | None = None  # what --help says first (default: the settings' docstring)

    def preset(self, name: str | None = None, **overrides: Any) -> RunSettings:
        """The named preset (default: the script's) for ``overrides['agent']``, then the
        overrides on top. A preset's value may be a dict by agent (PPO's differ by task)."""
        agent = overrides.get("agent", self.settings_class.agent)
        preset = self.presets[name or self.default_preset]
        values = {k: v[agent] if isinstance(v, dict) else v for k, v in preset.items()}
        return self.settings_class(**{**values, **overrides})


@dataclass(frozen=True)
class Command:
    """What the command line asked for: settings, the run to resume, tracebacks or not."""

    settings: RunSettings
    resume: Path | None
    debug: bool = False


def parse_command(script: Script, argv: list[str] | None = None) -> Command:
    """``--preset``, ``--resume`` and ``--debug``, then one flag per settings field (tyro) over
    the preset, checked before anything starts (a mistake: one line naming the flag, exit 2).
    With ``--resume`` only the ``RESUMABLE`` fields may differ from the run's settings.json."""
    import tyro

    args = list(sys.argv[1:] if argv is None else argv)
    prog = f"python -m training.{script.name}"
    front = OneLineParser(prog=prog, name=script.name, add_help=False)
    front.add_argument("--preset", choices=tuple(script.presets), default=None)
    front.add_argument("--resume", type=Path, default=None)
    front.add_argument("--debug", action="store_true")
    known, rest = front.parse_known_args(args)
    presets = "\n\n".join(
        f"{name}: {', '.join(f'{k}={v}' for k, v in values.items()) or 'the defaults below'}"
        for name, values in script.presets.items()
    )
    description = (
        f"{inspect.cleandoc(script.description or script.settings_class.__doc__ or '')}\n\n"
        f"--preset NAME (default {script.default_preset}):\n\n{presets}\n\n"
        "--resume RUN_DIR: continue a run with its settings (only "
        f"{', '.join(map(flag_of, script.settings_class.RESUMABLE))} may change); "
        "--debug: show a traceback on any error"
    )
    try:
        if known.resume is None:
            agent = _agent_given(rest)
            defaults = script.preset(known.preset, **({"agent": agent} if agent else {}))
        else:
            if known.preset is not None:
                front.error("--preset cannot be combined with --resume: a run keeps its settings")
            defaults = stored_settings(front, script, known.resume)
        settings = tyro.cli(
            script.settings_class, default=defaults, args=rest, prog=prog, description=description
        )
    except SettingError as error:
        front.error(str(error))
    if known.resume is not None:
        _refuse_locked_changes(front, defaults, settings)
    return Command(settings, known.resume, known.debug)


def _agent_given(args: list[str]) -> str | None:
    """The ``--agent`` value on the command line, if any: the preset depends on it."""
    for i, word in enumerate(args):
        if word == "--agent" and i + 1 < len(args):
            return args[i + 1] if args[i + 1] in TASKS else None
        if word.startswith("--agent="):
            return word.split("=", 1)[1] if word.split("=", 1)[1] in TASKS else None
    return None


def _refuse_locked_changes(parser: OneLineParser, stored: RunSettings, given: RunSettings) -> None:
    locked = [f.name for f in dataclasses.fields(stored) if f.name not in stored.RESUMABLE]
    changed = [name for name in locked if getattr(given, name) != getattr(stored, name)]
    if changed:
        differences = ", ".join(
            f"{as_flag(name, getattr(given, name))} (the run has "
            f"{as_flag(name, getattr(stored, name))})"
            for name in changed
        )
        parser.error(
            f"--resume keeps the run's settings, refused: {differences}; drop "
            f"{'it' if len(changed) == 1 else 'them'} or start a new run (a resume may change "
            f"only {', '.join(map(flag_of, stored.RESUMABLE))})"
        )


def stored_settings(parser: OneLineParser, script: Script, resume: Path) -> RunSettings:
    """The settings of the run in ``resume``, or a one-line error saying why it cannot go on
    (exit 2 for a wrong path, 1 for a damaged settings.json)."""
    if problem := resume_problem(resume):
        parser.error(f"--resume {resume}: {problem}")
    try:
        stored = read_settings_json(resume)
    except DamagedRunFileError as error:
        parser.exit(EXIT_FAILED, f"{script.name}: error: {error}\n")
    name = stored.get("script") if isinstance(stored, dict) else None
    if name != script.name:
        advice = f"resume it with python -m training.{name}"
        parser.error(f"--resume {resume}: a run of {name}, not {script.name}: {advice}")
    try:
        return script.settings_class.from_json(stored)
    except (SettingError, TypeError) as error:
        problem = f"{resume / 'settings.json'}: not valid ({error}); start a new run"
        parser.exit(EXIT_FAILED, f"{script.name}: error: {problem}\n")


def runs_dir_problem(settings: RunSettings) -> str | None:
    """Why the folder for new runs cannot be created (checked before TensorFlow loads)."""
    try:
        Path(settings.runs_dir).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        problem = f"cannot create it ({error.strerror}); pick a folder you can write to"
        return f"--runs-dir {settings.runs_dir}: {problem}"
    return None
