"""Tiny training runs shared by the script and robustness tests: their command lines and
settings, and what they leave in a run folder."""

from __future__ import annotations

import csv
from pathlib import Path

from training import (
    gaussian_actor_critic,
    reinforce,
    reinforce_baseline,
    reinforce_baseline_lr,
    reinforce_normalised,
)

#: The course's scripts (PPO's settings and runs are tested with PPO).
COURSE_SCRIPTS = [
    reinforce,
    reinforce_baseline,
    reinforce_baseline_lr,
    reinforce_normalised,
    gaussian_actor_critic,
]


def tiny(runs_dir: Path, *extra: str) -> list[str]:
    """A command line for a run of 4 episodes, 2 per update, a checkpoint every update."""
    return [
        "--max-episodes", "4", "--num-envs", "2", "--episodes-per-update", "2",
        "--checkpoint-every", "2", "--runs-dir", str(runs_dir), "--no-progress-bar", *extra,
    ]  # fmt: skip


def settings_for(tmp_path: Path, **overrides):
    """reinforce_normalised's fast preset on a budget of 6 episodes, 2 per update."""
    values = {
        "max_episodes": 6,
        "num_envs": 2,
        "episodes_per_update": 2,
        "checkpoint_every": 2,
        "runs_dir": str(tmp_path),
        "progress_bar": False,
    }
    return reinforce_normalised.SCRIPT.preset("fast", **{**values, **overrides})


def only_run(runs_dir: Path) -> Path:
    (run,) = list(runs_dir.iterdir())
    return run


def read_rows(run: Path) -> list[dict[str, str]]:
    with (run / "progress.csv").open(newline="") as stream:
        return list(csv.DictReader(stream))
