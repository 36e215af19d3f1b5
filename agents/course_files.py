"""The files the course's own code writes, and what loading them says.

A student brings the course's files as they are: lone `{dir}/{episode}.keras` checkpoints (no
config), `CartPoleAgent.save` pairs whose config is `{'seed': seed}` (seed None unless the
student passed one), and the pendulum agent's lone `.keras`. They load, with one plain note
that they carry no hash to check the model against. One course file cannot act: at its early
stop the course's REINFORCE-with-baseline code saves its critic (a value network, V(s))
instead of its actor, and loading says so and what to use instead. A folder given where an
agent's prefix is expected (a training run) is answered with the prefix meant, such as
`RUN/final`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from agents.numpy_forward import ForwardPlan

#: The course's config: `{'seed': seed}` and nothing else.
COURSE_CONFIG_KEYS = frozenset({"seed"})
#: How an unfinished run or a folder of checkpoints is named in messages: newest first.
_NUMBERS = re.compile(r"(\d+)")


class UncheckedFilesWarning(UserWarning):
    """Course-format files carry no hash, so the model cannot be checked against a config."""


def is_course_config(config: dict[str, Any]) -> bool:
    """The course's config: `{'seed': N}` or `{'seed': None}` (its default), nothing else."""
    seed = config.get("seed")
    return config.keys() == COURSE_CONFIG_KEYS and (
        seed is None or (isinstance(seed, int) and not isinstance(seed, bool))
    )


def unchecked_note(
    model_path: Path, config_path: Path, config: dict[str, Any] | None, loaded_as: str, seed: int
) -> str:
    """The one line said when course-format files load: why nothing is checked, and the fix."""
    if config is None:
        source = f"no {config_path.name} beside it"
    else:
        source = f"{{'seed': {config['seed']!r}}} in {config_path.name}"
    return (
        f"{model_path}: a course-style file ({source}), so there is no hash to check the model "
        f"against; loaded as {loaded_as} with seed {seed}. Agent.save(PREFIX) writes a checked "
        "pair, and submit.py adds one to its bundle"
    )


def is_value_network(plan: ForwardPlan) -> bool:
    """A critic as the course builds it: ReLU Dense layers, then one linear unit, V(s)."""
    steps = plan.steps
    return (
        plan.output_widths == (1,)
        and len(steps) >= 2
        and all(step.kind == "Dense" for step in steps)
        and all(step.activation == "relu" for step in steps[:-1])
        and steps[-1].activation == "linear"
    )


def value_network_problem(plan: ForwardPlan) -> str:
    """Why a critic cannot act, and what to load instead."""
    widths = " -> ".join(
        [str(plan.input_width)] + [f"{step.width_out} ReLU" for step in plan.steps[:-1]] + ["1"]
    )
    return (
        f"a value network ({widths} linear, the critic's V(s)), not a policy, so "
        "it cannot act. The course's REINFORCE-with-baseline code saves its critic instead of "
        "its actor when it stops early (a known flaw of the course). Use that run's previous "
        "checkpoint (the course saves one every 200 episodes), or retrain with "
        "`python -m training.reinforce_baseline --preset course`, which saves the actor"
    )


def _newest_first(paths: list[Path]) -> list[Path]:
    def key(path: Path) -> tuple[int, str]:
        numbers = _NUMBERS.findall(path.stem)
        return (int(numbers[-1]) if numbers else -1, path.name)

    return sorted(paths, key=key, reverse=True)


def folder_problem(prefix: Path) -> str | None:
    """If `prefix` is a folder (say, a training run), the one line naming the prefix meant."""
    if not prefix.is_dir():
        return None
    if (prefix / "final.keras").is_file():
        return (
            f"{prefix} is a folder (a training run?), not an agent's prefix; its final agent "
            f"is {prefix / 'final'}"
        )
    models = _newest_first(list(prefix.glob("*.keras")))
    if not models and (prefix / "checkpoints").is_dir():
        models = _newest_first(list((prefix / "checkpoints").glob("*.keras")))
        if models:
            return (
                f"{prefix} is a run folder without final.keras (unfinished?); pass one of its "
                f"checkpoints, such as {models[0].with_suffix('')}"
            )
    if models:
        return (
            f"{prefix} is a folder holding {len(models)} model(s), not an agent's prefix; pass "
            f"one prefix, such as {models[0].with_suffix('')} (for {models[0].name})"
        )
    return (
        f"{prefix} is a folder with no .keras file, not an agent's prefix; pass PREFIX for "
        "PREFIX.keras (+ PREFIX.config)"
    )
