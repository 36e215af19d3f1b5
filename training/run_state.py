"""The record of a run: its counters and scores (what ``--resume`` restores), what one update
did, how the run ended (summary.json), and the checks that tell a run has diverged."""

from __future__ import annotations

import json
import math
import shlex
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from training.exits import EXIT_DIVERGED, Terminated, stop_status

#: Stop reasons that leave no final agent (a stopped run resumes; diverged weights are dropped).
UNFINISHED = frozenset({"interrupted", "terminated", "diverged"})
#: Loss columns every progress row has (an algorithm may report more; progress() shows all).
LOSS_COLUMNS = ("actor_loss", "critic_loss", "entropy")


@dataclass
class UpdateOutcome:
    """What one update did: the episodes that ended during it, its losses and its steps."""

    scores: np.ndarray  # total reward of each episode that ended during the update
    lengths: np.ndarray  # their lengths
    losses: dict[str, float]
    env_steps: int  # every environment step taken
    trained_steps: int  # the steps whose transitions the update learned from


@dataclass
class TrainingResult:
    """How a run ended; also written to summary.json."""

    run_dir: Path
    stop_reason: str
    episodes: int
    updates: int
    env_steps: int
    trained_steps: int
    train_seconds: float
    running_reward: float
    solved: bool
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    divergence: str | None = None  # why it diverged: the update, what, and what to suspect

    @property
    def steps_per_second(self) -> float:
        return self.env_steps / self.train_seconds if self.train_seconds > 0 else 0.0

    @property
    def saved_final(self) -> bool:
        """Whether the run saved final.{keras,config} (not when stopped or diverged)."""
        return self.stop_reason not in UNFINISHED

    @property
    def greedy_figure(self) -> tuple[str, float] | None:
        """The latest evaluation's (name, value): each record holds one greedy figure, named
        for what it measured; when the run solved, the agent's greedy mean that decided it."""
        if not self.evaluations:
            return None
        (name,) = set(self.evaluations[-1]) - {"update", "episode", "wall_time"}
        return name, float(self.evaluations[-1][name])

    def report(self, name: str, eval_episodes: int) -> int:
        """Print how a run ended, in one line, and return its exit status."""
        if self.stop_reason == "diverged":
            print(f"{name}: error: {self.divergence}; run folder {self.run_dir}", file=sys.stderr)
            return EXIT_DIVERGED
        if self.stop_reason in UNFINISHED:
            stop = Terminated() if self.stop_reason == "terminated" else KeyboardInterrupt()
            signal_name, status = stop_status(stop)
            print(
                f"{name}: stopped by {signal_name} after {self.episodes} episodes; saved a "
                f"checkpoint and the resume state; continue with: python -m training.{name} "
                f"--resume {shlex.quote(str(self.run_dir))}"
            )
            return status
        greedy = ""
        if self.greedy_figure is not None:
            figure, value = self.greedy_figure
            greedy = f", {figure.replace('_', ' ')} {value:.1f} over {eval_episodes} episodes"
        print(
            f"{name}: {self.stop_reason} after {self.episodes} episodes, "
            f"{self.updates} updates, {self.train_seconds:.1f} s of training "
            f"({self.steps_per_second:,.0f} env steps/s){greedy}, running reward "
            f"{self.running_reward:.1f}; run folder {self.run_dir}"
        )
        return 0

    def to_json(self) -> dict[str, Any]:
        values = {**asdict(self), "run_dir": str(self.run_dir)}
        return {**values, "steps_per_second": self.steps_per_second}


def checkpoint_due(episodes: int, last_checkpoint: int, every: int) -> bool:
    """Whether a multiple of ``every`` episodes has passed since the last checkpoint (the
    course's ``(episode + 1) % 200 == 0`` with one episode per update)."""
    return episodes // every > last_checkpoint // every


# --- run state -------------------------------------------------------------------------------
COUNTERS = ("episodes", "updates", "env_steps", "trained_steps", "last_checkpoint")


class RunState:
    """The counters and recent scores of a run: all of it is saved for ``--resume``."""

    def __init__(self, settings: Any) -> None:
        # settings: a RunSettings, read by attribute (this module sits below training.settings)
        self.settings = settings
        self.episodes = self.updates = self.env_steps = self.trained_steps = 0
        self.last_checkpoint = 0
        window = max(settings.running_window, settings.gate_episodes)  # both means' episodes
        self.scores: deque[float] = deque(maxlen=window)
        self.evaluations: list[dict[str, Any]] = []
        self.wall_before = 0.0  # training time of earlier sessions of this run
        self._started: float | None = None

    def start_clock(self) -> None:
        self._started = time.perf_counter()

    def wall_time(self) -> float:
        running = 0.0 if self._started is None else time.perf_counter() - self._started
        return self.wall_before + running

    def running_reward(self) -> float:
        """Mean of the last ``running_window`` scores; with ``running_reward_from_zeros`` the
        window starts full of zeros, as the course's ring buffer
        (``buffer[episode % 30] = score; running = mean(buffer)``)."""
        window = list(self.scores)[-self.settings.running_window :]
        if self.settings.running_reward_from_zeros:
            return float(np.sum(window)) / self.settings.running_window
        return float(np.mean(window)) if window else 0.0

    def record(self, outcome: UpdateOutcome) -> list[dict[str, Any]]:
        """Count one update; returns its progress.csv rows, one per episode that ended."""
        self.updates += 1
        self.env_steps += outcome.env_steps
        self.trained_steps += outcome.trained_steps
        losses = {name: round(outcome.losses.get(name, 0.0), 6) for name in LOSS_COLUMNS}
        rows = []
        for score, length in zip(outcome.scores, outcome.lengths, strict=True):
            self.episodes += 1
            self.scores.append(float(score))
            rows.append(
                dict(episode=self.episodes, update=self.updates, reward=float(score))
                | dict(length=int(length), running_reward=round(self.running_reward(), 6))
                | dict(**losses, env_steps=self.env_steps, wall_time=round(self.wall_time(), 4))
            )
        return rows

    def counters(self) -> dict[str, Any]:
        """Everything for the resume state, as arrays (evaluations as JSON text: no pickle)."""
        counters = {name: getattr(self, name) for name in COUNTERS}
        evaluations = np.asarray(json.dumps(self.evaluations))
        arrays = {"scores": np.asarray(self.scores), "evaluations": evaluations}
        return counters | {"wall_time": self.wall_time()} | arrays

    def restore(self, counters: dict[str, Any]) -> None:
        for name in COUNTERS:
            setattr(self, name, int(counters[name]))
        self.wall_before = float(counters["wall_time"])
        self.scores.extend(float(s) for s in counters["scores"])
        if "evaluations" in counters:
            self.evaluations = json.loads(str(counters["evaluations"]))


def variable_arrays(parts: list[tuple[str, list, Any]]) -> dict[str, np.ndarray]:
    """The variables and optimiser slots of ``(prefix, variables, optimizer)`` parts, as arrays."""
    return {
        f"{prefix}/{kind}_{i:03d}": np.asarray(variable.numpy())
        for prefix, weights, optimizer in parts
        for kind, variables in (("weight", weights), ("optimizer", optimizer.variables))
        for i, variable in enumerate(variables)
    }


def assign_arrays(parts: list[tuple[str, list, Any]], arrays: dict[str, np.ndarray]) -> None:
    """Put :func:`variable_arrays`' arrays back into the parts' variables (``--resume``)."""
    for prefix, weights, optimizer in parts:
        for kind, variables in (("weight", weights), ("optimizer", optimizer.variables)):
            for i, variable in enumerate(variables):
                variable.assign(arrays[f"{prefix}/{kind}_{i:03d}"])


# --- divergence: a loss, gradient, weight or output that is no longer finite -------------
class DivergenceError(Exception):
    """Update ``update`` left a loss, the weights or the policy's outputs not finite."""

    def __init__(self, problem: str, update: int) -> None:
        super().__init__(problem)
        self.update = update


def non_finite_figures(losses: dict[str, float]) -> str | None:
    """Which of an update's losses and gradient norms are not finite (checked every update)."""
    bad = [name for name, value in losses.items() if not math.isfinite(value)]
    return ", ".join(f"{name} is {losses[name]}" for name in bad) or None


def non_finite_arrays(arrays: dict[str, np.ndarray]) -> str | None:
    """Which weights or optimiser slots are not finite: checked before anything is saved
    (reading every array costs milliseconds, too much for every update)."""
    inexact = {k: a for k, a in arrays.items() if np.issubdtype(a.dtype, np.inexact)}
    bad = [name for name, array in inexact.items() if not np.isfinite(array).all()]
    return f"{', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''} not finite" if bad else None


def policy_outputs_finite(model: Any) -> bool:
    """Whether ``model`` gives finite outputs on 64 ordinary observations (as the agents check)."""
    import keras

    size = model.inputs[0].shape[-1]
    probes = np.random.default_rng(0).normal(scale=2.0, size=(64, size)).astype(np.float32)
    outputs = model(probes, training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return all(np.isfinite(keras.ops.convert_to_numpy(output)).all() for output in outputs)
