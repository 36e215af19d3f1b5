"""What a sweep trains: the script, every trial's settings, and the grid or search space.

Everything here is checked before Ray starts, so a typo in a flag or a value the settings
reject costs one usage line, not a cluster start-up. No Ray import: the driver converts the
parsed space into Tune's search space.
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import math
import shlex
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from training.settings import TrainingSettings, field_metadata, flag_of

PRESET = "fast"  # every trial starts from its script's fast preset
FIRST_SEED = 1  # seeds 1..N, as the training-speed benchmark uses
#: Fields the sweep sets itself, so a grid or space may not: the seed comes from --seeds, the
#: rest keeps trials quiet, single-threaded and inside the sweep's folder.
RESERVED_FIELDS = frozenset({"agent", "seed", "runs_dir", "progress_bar", "threads"})
TRIAL_THREADS = 1  # TensorFlow threads per trial: one trial per CPU scales best
TUPLE_SEPARATOR = "x"  # actor_hidden=64x64,128 is two values: (64, 64) and (128,)
TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})

#: The script a sweep trains for each agent unless --script says otherwise: the fastest one.
DEFAULT_SCRIPTS = {"cartpole": "ppo", "pendulum": "ppo"}
#: Each script's default search space, written as --space items. Ranges span the fast
#: preset's values by about ten either way; batch sizes stay at or above the preset's
#: environment count so no environment idles.
DEFAULT_SPACES: dict[str, tuple[str, ...]] = {
    "ppo": (
        "learning_rate=loguniform:3e-4:1e-2",
        "clip_range=uniform:0.1:0.4",
        "gae_lambda=uniform:0.8:0.99",
        "epochs=int:4:20",
    ),
    "reinforce": (
        "actor_learning_rate=loguniform:3e-4:3e-2",
        "episodes_per_update=choice:16,32,64",
    ),
    "reinforce_baseline": (
        "actor_learning_rate=loguniform:3e-4:3e-2",
        "critic_learning_rate=loguniform:1e-3:1e-1",
        "episodes_per_update=choice:16,32,64",
    ),
    "reinforce_baseline_lr": (
        "actor_learning_rate=loguniform:3e-4:3e-2",
        "critic_learning_rate=loguniform:1e-3:1e-1",
        "episodes_per_update=choice:16,32,64",
    ),
    "reinforce_normalised": (
        "actor_learning_rate=loguniform:3e-4:3e-2",
        "critic_learning_rate=loguniform:1e-3:1e-1",
        "critic_steps=int:1:10",
        "episodes_per_update=choice:16,32,64",
    ),
    "gaussian_actor_critic": (
        "actor_learning_rate=loguniform:1e-4:3e-3",
        "critic_learning_rate=loguniform:1e-3:3e-2",
        "entropy_coef=uniform:0:0.03",
        "episodes_per_update=choice:32,64",
    ),
}
#: A script without an entry above searches the learning rates its fast preset uses, from a
#: tenth to ten times the preset's value.
LEARNING_RATE_SPAN = 10.0
DISTRIBUTIONS = ("loguniform", "uniform", "int", "choice")


class SweepError(ValueError):
    """A sweep flag or value that cannot work; its message is the one line the user sees."""


# --- scripts -----------------------------------------------------------------------------------
def settings_class_for(script: str) -> type[TrainingSettings]:
    """The settings class of ``python -m training.<script>``: the TrainingSettings subclass
    defined in that module whose SCRIPT is ``script``."""
    if not script.isidentifier():
        raise SweepError(f"--script {script!r} is not a training script name")
    try:
        module = importlib.import_module(f"training.{script}")
    except ModuleNotFoundError as error:
        if error.name != f"training.{script}":
            raise
        known = ", ".join(sorted({*DEFAULT_SCRIPTS.values(), *DEFAULT_SPACES}))
        raise SweepError(f"--script {script}: no module training.{script} (e.g. {known})") from None
    classes = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, TrainingSettings)
        and value.__module__ == module.__name__
        and script == value.SCRIPT
    ]
    if len(classes) != 1:
        raise SweepError(
            f"--script {script}: training.{script} defines {len(classes)} settings classes "
            f"with SCRIPT = {script!r}, expected one"
        )
    return classes[0]


def trains_any_agent(settings_class: type[TrainingSettings]) -> bool:
    """Whether the script takes --agent (PPO) rather than training one task (the course's)."""
    return bool(field_metadata("agent", settings_class)["cli"])


def check_script_trains(settings_class: type[TrainingSettings], agent: str) -> None:
    """Refuse a script whose fast preset trains the other agent."""
    if trains_any_agent(settings_class):
        return
    trains = settings_class.preset(PRESET).agent
    if trains != agent:
        raise SweepError(
            f"--script {settings_class.SCRIPT} trains {trains}, not {agent}; "
            f"for {agent} the default is --script {DEFAULT_SCRIPTS[agent]}"
        )


# --- values ------------------------------------------------------------------------------------
def sweepable_fields(settings_class: type[TrainingSettings]) -> list[str]:
    """The settings fields a grid or space may vary: every field of the script's command line
    except the sweep's own (a field a script keeps off its command line does nothing there)."""
    return [
        f.name
        for f in dataclasses.fields(settings_class)
        if f.name not in RESERVED_FIELDS and field_metadata(f.name, settings_class)["cli"]
    ]


def parse_value(
    text: str,
    kind: Any,
    name: str,
    flag: str = "--grid",
    settings_class: type[TrainingSettings] = TrainingSettings,
) -> Any:
    """One value converted to the field's declared type, or a SweepError saying why not."""
    text = text.strip()
    try:
        if kind is bool:
            word = text.lower()
            if word in TRUE_WORDS | FALSE_WORDS:
                return word in TRUE_WORDS
            raise ValueError(f"expected one of {sorted(TRUE_WORDS | FALSE_WORDS)}")
        if kind == tuple[int, ...]:
            return tuple(int(part) for part in text.split(TUPLE_SEPARATOR))
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is str:
            choices = field_metadata(name, settings_class)["choices"]
            if choices and text not in choices:
                raise ValueError(f"expected one of {list(choices)}")
            return text
    except ValueError as error:
        raise SweepError(
            f"{flag} {name}: {text!r} is not a valid {_type_name(kind)}: {error}"
        ) from None
    raise SweepError(f"{flag} {name}: fields of type {_type_name(kind)} cannot be swept")


def _type_name(kind: Any) -> str:
    if kind == tuple[int, ...]:
        return f"tuple of ints (e.g. 64{TUPLE_SEPARATOR}64)"
    return getattr(kind, "__name__", str(kind))


def _field_name(key: str, flag: str, settings_class: type[TrainingSettings]) -> str:
    name = key.strip().replace("-", "_")
    valid = sweepable_fields(settings_class)
    if name not in valid:
        why = "is set by the sweep itself" if name in RESERVED_FIELDS else "is not a setting"
        raise SweepError(f"{flag} {name} {why}; valid keys: {', '.join(valid)}")
    return name


# --- grid --------------------------------------------------------------------------------------
def parse_grid(
    items: Sequence[str], settings_class: type[TrainingSettings]
) -> dict[str, list[Any]]:
    """``["KEY=V1,V2", ...]`` to ``{field: [values]}``, typed by the dataclass's fields.

    Keys may use dashes or underscores (``actor-learning-rate`` = ``actor_learning_rate``).
    Unknown or reserved keys raise a SweepError that lists the valid ones.
    """
    hints = typing.get_type_hints(settings_class)
    keyed = _keyed_items(items, "--grid", "KEY=V1,V2,...", settings_class)
    return {
        name: [
            parse_value(value, hints[name], name, "--grid", settings_class)
            for value in values.split(",")
        ]
        for name, values in keyed.items()
    }


def _keyed_items(
    items: Sequence[str], flag: str, expected: str, settings_class: type[TrainingSettings]
) -> dict[str, str]:
    """``KEY=TEXT`` items as ``{field name: text}``: every key a sweepable setting, once."""
    keyed: dict[str, str] = {}
    for item in items:
        key, separator, text = item.partition("=")
        if not separator or not text.strip():
            raise SweepError(f"{flag} {item!r}: expected {expected}")
        name = _field_name(key, flag, settings_class)
        if name in keyed:
            raise SweepError(f"{flag} {name} given twice")
        keyed[name] = text
    return keyed


def grid_combinations(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values (one empty combination for an empty grid)."""
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]


# --- search space ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Distribution:
    """One setting's search distribution: ``kind`` is loguniform, uniform, int (both bounds
    included) or choice; ``values`` the two bounds or the choices."""

    kind: str
    values: tuple[Any, ...]

    @property
    def candidates(self) -> tuple[Any, ...]:
        """Values that span the distribution (its bounds, or every choice), for checking the
        settings accept them before any trial runs."""
        return self.values

    def text(self) -> str:
        return f"{self.kind}:" + (
            ",".join(map(value_text, self.values))
            if self.kind == "choice"
            else ":".join(map(value_text, self.values))
        )


def value_text(value: Any) -> str:
    """A value as typed on the command line (tuples as 64x64)."""
    if isinstance(value, tuple):
        return TUPLE_SEPARATOR.join(map(str, value))
    return str(value)


def parse_distribution(
    text: str, kind: Any, name: str, settings_class: type[TrainingSettings] = TrainingSettings
) -> Distribution:
    """``loguniform:1e-4:1e-2``, ``uniform:a:b``, ``int:a:b`` or ``choice:a,b,c`` for the
    field ``name`` of type ``kind``."""
    distribution, _, rest = text.strip().partition(":")
    flag = f"--space {name}"
    if distribution not in DISTRIBUTIONS:
        raise SweepError(
            f"{flag}={text}: unknown distribution {distribution!r}; "
            f"use one of {', '.join(DISTRIBUTIONS)} (e.g. loguniform:1e-4:1e-2)"
        )
    if distribution == "choice":
        if not rest.strip():
            raise SweepError(f"{flag}={text}: expected choice:a,b,c")
        values = tuple(
            parse_value(part, kind, name, "--space", settings_class) for part in rest.split(",")
        )
        return Distribution("choice", values)
    bounds = rest.split(":")
    if len(bounds) != 2:
        raise SweepError(f"{flag}={text}: expected {distribution}:LOW:HIGH")
    if distribution == "int":
        if kind is not int:
            raise SweepError(f"{flag}: int:a:b needs an integer setting, {name} is not")
        low, high = (parse_value(bound, int, name, "--space") for bound in bounds)
        if low > high:
            raise SweepError(f"{flag}={text}: the low bound is above the high bound")
        return Distribution("int", (low, high))
    if kind is not float:
        raise SweepError(
            f"{flag}: {distribution} needs a float setting, {name} is not "
            "(use int:a:b or choice:a,b)"
        )
    low, high = (parse_value(bound, float, name, "--space") for bound in bounds)
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise SweepError(f"{flag}={text}: expected finite bounds with LOW < HIGH")
    if distribution == "loguniform" and low <= 0:
        raise SweepError(f"{flag}={text}: loguniform bounds must be above 0")
    return Distribution(distribution, (low, high))


def parse_space(
    items: Sequence[str], settings_class: type[TrainingSettings]
) -> dict[str, Distribution]:
    """``["KEY=DIST", ...]`` to ``{field: Distribution}``."""
    hints = typing.get_type_hints(settings_class)
    expected = "KEY=DIST, e.g. actor_learning_rate=loguniform:1e-4:1e-2"
    return {
        name: parse_distribution(text, hints[name], name, settings_class)
        for name, text in _keyed_items(items, "--space", expected, settings_class).items()
    }


def default_space_items(settings_class: type[TrainingSettings]) -> tuple[str, ...]:
    """The script's default --space items (see DEFAULT_SPACES)."""
    if settings_class.SCRIPT in DEFAULT_SPACES:
        return DEFAULT_SPACES[settings_class.SCRIPT]
    fast = settings_class.preset(PRESET)
    return tuple(
        f"{name}=loguniform:{value / LEARNING_RATE_SPAN:g}:{value * LEARNING_RATE_SPAN:g}"
        for name in sweepable_fields(settings_class)
        if name.endswith("learning_rate")
        and (value := getattr(fast, name)) > 0
        and not fast.unmet(field_metadata(name, settings_class).get("needs"))
    )


# --- trial settings ----------------------------------------------------------------------------
def build_settings(
    settings_class: type[TrainingSettings], overrides: dict[str, Any], seed: int, runs_dir: str
) -> TrainingSettings:
    """A trial's settings: the script's fast preset, the overrides, the seed, sweep plumbing."""
    return settings_class.preset(
        PRESET,
        **settings_class.typed(overrides),
        seed=seed,
        runs_dir=str(runs_dir),
        progress_bar=False,
        threads=TRIAL_THREADS,
    )


def check_trials(
    settings_class: type[TrainingSettings],
    fixed: dict[str, Any],
    seeds: Sequence[int],
    grid: dict[str, list[Any]],
    space: dict[str, Distribution],
) -> TrainingSettings:
    """Build the settings of every grid trial, and of the search space's bounds and choices
    (alone and all together), so bad values fail here with a SweepError naming them.

    Returns the settings of the first trial (its time budget and solve threshold are every
    trial's unless the grid or space varies them).
    """
    candidates = [{**fixed, **combination} for combination in grid_combinations(grid)]
    for name, distribution in space.items():
        candidates += [{**fixed, name: value} for value in distribution.candidates]
    for end in (0, -1):
        candidates.append({**fixed, **{k: d.candidates[end] for k, d in space.items()}})
    first = None
    unmet: dict[str, str] = {}  # settings that had no effect in every trial checked so far
    effective: set[str] = set()
    for overrides in candidates:
        for seed in seeds:
            try:
                settings = build_settings(settings_class, overrides, seed, ".")
            except (ValueError, TypeError) as error:
                where = _blame(settings_class, overrides, seed, grid, space)
                raise SweepError(f"{where}: {error}") from None
            first = first or settings
        for key in overrides:
            if missing := settings.unmet(field_metadata(key, settings_class).get("needs")):
                unmet.setdefault(key, missing)
            else:
                effective.add(key)
    if never := [key for key in unmet if key not in effective]:
        key = never[0]
        raise SweepError(
            f"{key} has no effect without {unmet[key]}, which {settings_class.SCRIPT}'s fast "
            f"preset lacks: add it with --grid, or drop {key}"
        )
    assert first is not None  # there is at least one seed and one candidate
    return first


def _blame(
    settings_class: type[TrainingSettings],
    overrides: dict[str, Any],
    seed: int,
    grid: dict[str, list[Any]],
    space: dict[str, Distribution],
) -> str:
    """The flag and value that make a trial's settings fail: the first override that fails
    on its own, else the seed, else the whole combination."""
    for key, value in overrides.items():
        try:
            build_settings(settings_class, {key: value}, seed, ".")
        except (ValueError, TypeError):
            if key in space:
                return f"--space {key}={space[key].text()} (at {value_text(value)})"
            if key == "max_seconds" and key not in grid:
                return f"--max-seconds {value_text(value)}"
            return f"--grid {key}={value_text(value)}"
    try:
        build_settings(settings_class, {}, seed, ".")
    except (ValueError, TypeError):
        return f"--first-seed/--seeds (seed {seed})"
    return f"the settings {describe(overrides)} together"


def describe(overrides: dict[str, Any]) -> str:
    """``key=value`` pairs, as a sweep prints and a user types them."""
    return " ".join(f"{key}={value_text(value)}" for key, value in overrides.items()) or "-"


@dataclass(frozen=True)
class SweepPlan:
    """Everything a sweep runs, checked: the driver takes it to Ray, the report describes it."""

    agent: str
    script: str
    seeds: tuple[int, ...]
    fixed: dict[str, Any]  # overrides every trial shares (single-valued --grid, --max-seconds)
    grid: dict[str, list[Any]]  # varied values, crossed with the seeds
    space: dict[str, Distribution]  # with --search optuna
    search: str  # "grid" or "optuna"
    samples: int  # with --search optuna: how many settings to sample
    scheduler: str  # "none", "asha" or "median"
    budget: float  # training seconds per trial (the objective ranks unsolved trials by it)
    solve_threshold: float

    @property
    def keys(self) -> list[str]:
        """The settings that differ between trials."""
        return [*self.grid, *self.space]

    @property
    def trial_count(self) -> int:
        if self.search == "optuna":
            return self.samples
        return len(self.seeds) * len(grid_combinations(self.grid))

    def trial_command(self, overrides: dict[str, Any], seed: int) -> str:
        """The ready-to-run command that trains one trial again, outside the sweep."""
        words = ["python", "-m", f"training.{self.script}", "--preset", PRESET, "--seed", str(seed)]
        for name, value in {**self.fixed, **overrides}.items():
            words += flag_words(name, value)
        return shlex.join(words)


def flag_words(name: str, value: Any) -> list[str]:
    """A setting as the scripts' command line spells it, one word per item (for shlex)."""
    flag = flag_of(name)
    if isinstance(value, bool):
        return [flag if value else "--no-" + flag[2:]]
    if isinstance(value, tuple | list):
        return [flag, *(str(int(part)) for part in value)]
    if isinstance(value, float):
        return [flag, repr(value)]
    return [flag, str(value)]
