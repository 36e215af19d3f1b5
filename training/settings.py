"""Settings as dataclasses, and a command line generated from their fields.

Each script subclasses :class:`TrainingSettings`; its field defaults are the course's and its
``PRESETS`` (from :mod:`training.presets`) hold the overrides that train fastest. Every field is
a flag whose ``--help`` line is the field's one-line doc. Importing this module stays cheap (no
Keras), so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from training import presets
from training.exits import OneLineParser
from training.tasks import AGENT_NAMES, TASKS

STANDARDISE_CHOICES = ("none", "episode", "batch")
REDUCTION_CHOICES = ("sum", "mean")
STOP_CHOICES = ("running_reward", "solved", "none")
#: course: ``{index}.keras`` with the zero-based index of the last episode (199, 399, ...), the
#: names the course's evaluation loads; episode: ``episode_000200.keras``, episodes trained.
CHECKPOINT_NAME_CHOICES = ("course", "episode")
#: What ``--preset`` says in --help; the three fixes are the course's flaws, not repeated.
COURSE_PRESET_HELP = (
    "course: the course's settings, exactly but for three fixes of its flaws (the pendulum's "
    "actions clip to its bounds [-3, 3], not [-2, 2]; its mean is 3 tanh(.), where the course's "
    "comments and code disagree on the scale; the model saved at an early stop is always the "
    "actor); fast: the settings that train fastest"
)
#: Settings that only act with another setting's value (flag given without it: refused).
NEEDS_BASELINE = {"baseline": True}
NEEDS_SOLVED = {"stop": "solved"}
NEEDS_RUNNING_REWARD = {"stop": "running_reward"}


@dataclass(frozen=True)
class Bounds:
    """The numbers a setting allows: ``at_least`` (inclusive), ``above`` (exclusive) and
    ``at_most``. Every float setting must also be finite."""

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
        parts = []
        if self.at_least is not None:
            parts.append(f"at least {self.at_least:g}")
        if self.above is not None:
            parts.append(f"above {self.above:g}")
        if self.at_most is not None:
            parts.append(f"at most {self.at_most:g}")
        return " and ".join(parts)


COUNT = Bounds(at_least=1)
NON_NEGATIVE = Bounds(at_least=0)
POSITIVE = Bounds(above=0)
DISCOUNT = Bounds(above=0, at_most=1)


def setting(
    default: Any,
    doc: str,
    choices: tuple[str, ...] | None = None,
    cli: bool = True,
    *,
    bounds: Bounds | None = None,
    needs: dict[str, Any] | None = None,
    resumable: bool = False,
) -> Any:
    """A dataclass field with its one-line doc (shown by --help) and its allowed values:
    ``choices``, numeric ``bounds`` (for a tuple, of each item), ``needs`` (the other
    settings' values without which it has no effect) and ``resumable`` (``--resume`` may
    change it: budgets and display; every other setting of a run is fixed)."""
    metadata = {
        "doc": doc,
        "choices": choices,
        "cli": cli,
        "bounds": bounds,
        "needs": needs,
        "resumable": resumable,
    }
    return field(default=default, metadata=metadata)


class SettingError(ValueError):
    """A setting's value is not allowed; ``name`` is the field, ``problem`` says why."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name} {problem}")
        self.name = name
        self.problem = problem

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable with its two arguments, so a sweep's Ray worker can hand it back.
        return type(self), (self.name, self.problem)

    def for_command_line(self) -> str:
        return f"{flag_of(self.name)} {self.problem}"


def flag_of(name: str) -> str:
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class TrainingSettings:
    """Everything a run depends on; written to the run folder as settings.json."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"course": {}, "fast": {}}
    SCRIPT: ClassVar[str] = "training"
    #: The settings that scale the updates: named when a run diverges.
    DIVERGENCE_SUSPECTS: ClassVar[tuple[str, ...]] = (
        "actor_learning_rate",
        "critic_learning_rate",
        "gamma",
        "clipnorm",
        "entropy_coef",
    )
    #: The preset a command line gets without --preset, and what --help says of the presets.
    DEFAULT_PRESET: ClassVar[str] = "course"
    PRESET_HELP: ClassVar[str] = (
        COURSE_PRESET_HELP
    )

    agent: str = setting("cartpole", "which task's agent: cartpole or pendulum", AGENT_NAMES, False)
    seed: int = setting(
        presets.SEED,
        "seed for initialisers, environments and action sampling",
        bounds=NON_NEGATIVE,
    )
    num_envs: int = setting(1, "environments stepped together (gymnasium.make_vec)", bounds=COUNT)
    episodes_per_update: int = setting(1, "complete episodes in each gradient update", bounds=COUNT)
    gamma: float = setting(presets.GAMMA, "discount factor of the returns G_t", bounds=DISCOUNT)
    actor_hidden: tuple[int, ...] = setting(
        presets.HIDDEN, "hidden layer sizes of the policy", bounds=COUNT
    )
    critic_hidden: tuple[int, ...] = setting(
        presets.HIDDEN, "hidden layer sizes of the critic", bounds=COUNT, needs=NEEDS_BASELINE
    )
    layer_seed_step: int = setting(
        presets.LAYER_SEED_STEP,
        "layer i's initialiser seed is seed + i * this (0: every layer gets the seed, as the "
        "course, so the pendulum's two heads start identical)",
        bounds=NON_NEGATIVE,
    )
    critic_seed_offset: int = setting(
        presets.CRITIC_SEED_OFFSET,
        "added to the seed for the critic's initialisers (0: as the course, whose critic's "
        "hidden layer starts as the actor's)",
        bounds=NON_NEGATIVE,
        needs=NEEDS_BASELINE,
    )
    actor_learning_rate: float = setting(
        presets.LEARNING_RATE, "Adam learning rate, policy", bounds=POSITIVE
    )
    critic_learning_rate: float = setting(
        presets.LEARNING_RATE, "Adam learning rate, critic", bounds=POSITIVE, needs=NEEDS_BASELINE
    )
    clipnorm: float = setting(
        presets.CLIPNORM, "Adam clipnorm (per-variable gradient norm cap)", bounds=POSITIVE
    )
    baseline: bool = setting(False, "learn a critic V(s) and weight by G_t - V(s_t)")
    bootstrap_truncated: bool = setting(
        False,
        "add gamma^(T-t) V(s_T) to the returns of "
        "episodes cut by the time limit (needs --baseline)",
        needs=NEEDS_BASELINE,
    )
    critic_steps: int = setting(
        1,
        "critic gradient steps per update, before the actor step",
        bounds=COUNT,
        needs=NEEDS_BASELINE,
    )
    learn_clipped_actions: bool = setting(
        True,
        "continuous actions: score the log-probability of the action clipped to the bounds, "
        "as the course (off: of the unclipped sample, the unbiased estimator)",
    )
    standardise: str = setting(
        "none",
        "standardise the actor's weights within each episode, over the whole batch, or not",
        STANDARDISE_CHOICES,
    )
    discount_weighting: bool = setting(True, "multiply step t's term by gamma^t (course loss)")
    batch_reduction: str = setting(
        "sum", "combine the episodes' losses by sum or mean", REDUCTION_CHOICES
    )
    entropy_coef: float = setting(
        0.0, "entropy bonus coefficient (0: none, as the course)", bounds=NON_NEGATIVE
    )
    stop: str = setting(
        "running_reward",
        "stop rule: running reward above the target, solved by a greedy evaluation, or none "
        "(only the budgets below)",
        STOP_CHOICES,
    )
    target_running_reward: float = setting(
        presets.TARGET_RUNNING_REWARD,
        "stop when the running reward exceeds this",
        needs=NEEDS_RUNNING_REWARD,
    )
    running_window: int = setting(
        presets.RUNNING_WINDOW, "episodes in the running reward mean", bounds=COUNT
    )
    running_reward_from_zeros: bool = setting(
        True,
        "the running reward is the mean of a zero-filled window (the course's ring buffer: "
        "score / 30 after one episode); off: of the episodes seen so far",
    )
    solve_threshold: float = setting(
        TASKS["cartpole"].solve_score,
        "greedy evaluation mean that counts as solved",
        needs=NEEDS_SOLVED,
    )
    eval_episodes: int = setting(
        presets.EVAL_EPISODES,
        "episodes of each greedy evaluation",
        bounds=COUNT,
        needs=NEEDS_SOLVED,
    )
    eval_every: int = setting(
        1, "updates between greedy evaluations (when gated open)", bounds=COUNT, needs=NEEDS_SOLVED
    )
    eval_gate: float = setting(
        0.0,
        "evaluate only when the mean of the last gate_episodes training rewards reaches this",
        needs=NEEDS_SOLVED,
    )
    vectorised_precheck: bool = setting(
        True,
        "before the agent's own greedy evaluation, a cheaper vectorised one that must pass first",
    )
    gate_episodes: int = setting(
        presets.EVAL_EPISODES,
        "training episodes whose mean score opens the evaluation gate",
        bounds=COUNT,
        needs=NEEDS_SOLVED,
    )
    max_episodes: int = setting(
        presets.MAX_EPISODES,
        "stop after this many training episodes",
        bounds=COUNT,
        resumable=True,
    )
    max_seconds: float = setting(
        0.0,
        "stop after this much training time (0: no limit)",
        bounds=NON_NEGATIVE,
        resumable=True,
    )
    max_env_steps: int = setting(
        0,
        "stop after this many environment steps (0: no limit)",
        bounds=NON_NEGATIVE,
        resumable=True,
    )
    checkpoint_every: int = setting(
        presets.CHECKPOINT_EVERY, "episodes between checkpoints", bounds=COUNT
    )
    checkpoint_names: str = setting(
        "course",
        "checkpoint names: course = index of the last episode from 0 (199.keras, 399.keras, "
        "...: what the course's evaluation loads); episode = episodes trained "
        "(episode_000200.keras)",
        CHECKPOINT_NAME_CHOICES,
    )
    runs_dir: str = setting("runs", "folder that receives the run folders")
    threads: int = setting(
        1, "TensorFlow intra/inter-op threads (0: TensorFlow decides)", bounds=NON_NEGATIVE
    )
    progress_bar: bool = setting(True, "show a tqdm progress bar", resumable=True)
    tensorboard: bool = setting(
        True,
        "write progress, evaluations and steps per second as TensorBoard scalars too",
        resumable=True,
    )

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            problem = value_problem(value, hints[f.name], field_metadata(f.name, type(self)))
            if problem is not None:
                raise SettingError(f.name, problem)
        for f in dataclasses.fields(self):
            needs = field_metadata(f.name, type(self)).get("needs")
            if getattr(self, f.name) is True and (missing := self.unmet(needs)):
                raise SettingError(f.name, f"needs {missing}")
        task = TASKS[self.agent]
        targets = {"solved": "solve_threshold", "running_reward": "target_running_reward"}
        for rule, name in targets.items():
            if self.stop == rule and getattr(self, name) > task.max_score:
                raise SettingError(
                    name,
                    f"can never be reached: {task.env_id} scores at most {task.max_score:g}, "
                    f"got {getattr(self, name):g}",
                )

    def unmet(self, needs: dict[str, Any] | None) -> str | None:
        """The flags ``needs`` asks for that these settings lack, as the user would type them."""
        missing = [
            flag_of(name) if value is True else f"{flag_of(name)} {value}"
            for name, value in (needs or {}).items()
            if getattr(self, name) != value
        ]
        return " and ".join(missing) or None

    def make_algorithm(self, envs: Any) -> Any:
        """The algorithm the training loop drives (see ``training.loop.Algorithm``); a script
        with another algorithm overrides this."""
        from training.algorithm import EpisodicPolicyGradient

        return EpisodicPolicyGradient(self, envs)

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


def value_problem(value: Any, kind: Any, metadata: Any) -> str | None:
    """What is wrong with a setting's value given its type and metadata (the end of a
    sentence that starts with the flag), or None."""
    bounds: Bounds | None = metadata.get("bounds")
    if kind == tuple[int, ...]:
        items = value if isinstance(value, tuple) else (value,)
        shown = " ".join(str(item) for item in items) or "nothing"
        if not isinstance(value, tuple) or not value or not all(map(_is_whole, value)):
            return f"must be one or more whole numbers, got {shown}"
        if bounds is not None and not all(map(bounds.allows, value)):
            return f"must each be {bounds.describe()}, got {shown}"
        return None
    if kind is bool:
        return None if isinstance(value, bool) else f"must be true or false, got {value!r}"
    if kind is int and not _is_whole(value):
        return f"must be a whole number, got {value!r}"
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be a number, got {value!r}"
        if not math.isfinite(value):
            return f"must be a finite number, got {value}"
    if metadata["choices"] and value not in metadata["choices"]:
        return f"must be one of {', '.join(metadata['choices'])}, got {value!r}"
    if bounds is not None and not bounds.allows(value):
        return f"must be {bounds.describe()}, got {value}"
    return None


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def field_metadata(name: str, cls: type[TrainingSettings] | None = None) -> Any:
    """A field's doc and choices. A subclass that only changes a default has a bare field,
    so the metadata comes from the nearest class in the MRO that declared it with ``setting``
    (a script's own new fields, such as PPO's, are found on the script's class)."""
    for klass in (cls or TrainingSettings).__mro__:
        if dataclasses.is_dataclass(klass):
            for f in dataclasses.fields(klass):
                if f.name == name and "doc" in f.metadata:
                    return f.metadata
    raise KeyError(f"{name} is not a setting")


def _add_field(
    parser: argparse.ArgumentParser,
    settings_class: type[TrainingSettings],
    f: dataclasses.Field,
    kind: Any,
    preset_values: dict[str, dict[str, Any]],
) -> None:
    flag = "--" + f.name.replace("_", "-")
    shown = "; ".join(
        f"{name}: {values.get(f.name, f.default)}" for name, values in preset_values.items()
    )
    metadata = field_metadata(f.name, settings_class)
    doc = f"{metadata['doc']} [{shown}]"
    if kind is bool:
        parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=doc)
    elif kind == tuple[int, ...]:
        parser.add_argument(flag, type=int, nargs="+", metavar="N", help=doc)
    else:
        parser.add_argument(flag, type=kind, choices=metadata["choices"], help=doc)


@dataclass(frozen=True)
class Command:
    """What the command line asked for: settings, the run folder to resume if any, and
    whether errors should show their traceback."""

    settings: TrainingSettings
    resume: Path | None
    debug: bool = False


def as_flag(name: str, value: Any) -> str:
    """A setting as the user would type it on the command line."""
    if isinstance(value, bool):
        return flag_of(name) if value else "--no-" + flag_of(name)[2:]
    if isinstance(value, tuple):
        return " ".join([flag_of(name), *map(str, value)])
    return f"{flag_of(name)} {value}"


def parse_command(
    cls: type[TrainingSettings], argv: list[str] | None = None, description: str | None = None
) -> Command:
    """Parse ``--preset``, ``--resume``, ``--debug`` and one flag per settings field, and
    check the result before anything starts: a mistake exits 2 with one line naming the flag.

    Flags override the preset. With ``--resume`` the run keeps its settings.json: only its
    budgets (and the progress bar) may change, e.g. ``--max-episodes`` to train longer; any
    other flag that differs is refused.
    """
    parser = OneLineParser(
        prog=f"python -m training.{cls.SCRIPT}",
        name=cls.SCRIPT,
        description=description or cls.__doc__,
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument(
        "--preset",
        choices=tuple(cls.PRESETS),
        default=None,
        help=f"{cls.PRESET_HELP} [default: {cls.DEFAULT_PRESET}]",
    )
    parser.add_argument(
        "--resume",
        metavar="RUN_DIR",
        type=Path,
        default=None,
        help="continue the run in RUN_DIR with its settings (only budgets may change: "
        "--max-episodes, --max-seconds, --max-env-steps)",
    )
    parser.add_argument(
        "--debug", action="store_true", default=False, help="show a traceback on any error"
    )
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if field_metadata(f.name, cls)["cli"]:
            _add_field(parser, cls, f, hints[f.name], cls.PRESETS)
    namespace = vars(parser.parse_args(argv))
    preset, resume, debug = (namespace.pop(key) for key in ("preset", "resume", "debug"))
    given = {k: tuple(v) if isinstance(v, list) else v for k, v in namespace.items()}
    if resume is None:
        try:
            settings = cls.preset(preset or cls.DEFAULT_PRESET, **given)
        except SettingError as error:
            parser.error(error.for_command_line())
        for name in given:
            if missing := settings.unmet(field_metadata(name, cls).get("needs")):
                parser.error(
                    f"{flag_of(name)} has no effect without {missing}: add {missing} "
                    f"or drop {flag_of(name)}"
                )
        return Command(settings, None, debug)
    if preset is not None:
        parser.error("--preset cannot be combined with --resume: a run keeps its settings")
    stored = _stored_settings(parser, cls, resume)
    changed = {name: value for name, value in given.items() if value != getattr(stored, name)}
    if locked := [name for name in changed if not field_metadata(name, cls).get("resumable")]:
        differences = ", ".join(
            f"{as_flag(name, changed[name])} (the run has {as_flag(name, getattr(stored, name))})"
            for name in locked
        )
        budgets = ", ".join(
            flag_of(f.name)
            for f in dataclasses.fields(cls)
            if field_metadata(f.name, cls).get("resumable")
        )
        parser.error(
            f"--resume keeps the run's settings, refused: {differences}; drop "
            f"{'it' if len(locked) == 1 else 'them'} or start a new run (a resume may change "
            f"only {budgets})"
        )
    try:
        return Command(dataclasses.replace(stored, **changed), resume, debug)
    except SettingError as error:
        parser.error(error.for_command_line())


def _stored_settings(
    parser: OneLineParser, cls: type[TrainingSettings], resume: Path
) -> TrainingSettings:
    """The settings of the run in ``resume``, or a one-line error saying why it cannot go on."""
    from training.runs import resume_problem

    if problem := resume_problem(resume):
        parser.error(f"--resume {resume}: {problem}")
    try:
        stored = json.loads((resume / "settings.json").read_text())
    except (OSError, ValueError) as error:
        parser.error(f"--resume {resume}: cannot read settings.json ({error})")
    if not isinstance(stored, dict) or stored.get("script") != cls.SCRIPT:
        script = stored.get("script") if isinstance(stored, dict) else None
        parser.error(
            f"--resume {resume}: a run of {script}, not {cls.SCRIPT}: resume it with "
            f"python -m training.{script}"
        )
    try:
        return cls.from_json(stored)
    except (SettingError, TypeError) as error:
        parser.error(f"--resume {resume}: its settings.json is not valid: {error}")
