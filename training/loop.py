"""The outer loop every script shares: budgets, stop rules, checkpoints, signals, divergence.

It drives the algorithm a script hands it (:class:`Algorithm`): collect, then learn. Each update
draws its noise and resets from a seed of (seed, update), so a resumed run continues as an
uninterrupted one would. Ctrl-C and SIGTERM save every update done so far; a loss, gradient or
weight no longer finite stops the run, keeping the last finite checkpoint (statuses: exits.py).
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from agents import AGENT_CLASSES
from training.exits import (
    EXIT_FAILED,
    EXIT_USAGE,
    Terminated,
    deferred_interrupt,
    describe_error,
    stop_status,
    terminate_as_interrupt,
)
from training.learning_curve import CurveDrawer
from training.rollouts import make_envs
from training.run_safety import DamagedRunFileError, RunFolderHeldError
from training.run_state import (
    UNFINISHED,
    DivergenceError,
    RunState,
    TrainingResult,
    UpdateOutcome,
    checkpoint_due,
    non_finite_arrays,
    non_finite_figures,
    policy_outputs_finite,
)
from training.runs import RunFolder
from training.settings import RunSettings, Script, as_flag, parse_command, runs_dir_problem
from training.solve_check import SolveCheck
from training.startup import import_tensorflow_quietly, seed_everything
from training.tasks import TASKS

#: Called after every update with Trainer.progress(); a sweep reports through it.
UpdateCallback = Callable[[dict[str, Any]], None]
#: The untrained policy is kept as the run's earliest checkpoint (the early-vs-later video).
UNTRAINED = 0


class Algorithm(Protocol):
    """What the loop drives, built as ``script.algorithm_class(settings, envs)``: ``collect``
    may be interrupted by Ctrl-C, ``learn`` runs with it held until the bookkeeping is done;
    ``state`` holds every array ``--resume`` needs to continue exactly."""

    exported: Any  # the Keras model the agent saves (CartPoleAgent / InvertedPendulumAgent)

    def collect(self, rng: np.random.Generator, reset_seed: int) -> Any: ...
    def learn(self, experience: Any) -> UpdateOutcome: ...
    def state(self) -> dict[str, np.ndarray]: ...
    def load_state(self, arrays: dict[str, np.ndarray]) -> None: ...


class TrainingError(Exception):
    """A user's mistake found once training has started (one line, no traceback)."""


class Trainer:
    """One run: :meth:`start` builds it, :meth:`train` runs the loop; see :func:`train`."""

    def __init__(
        self, settings: RunSettings, script: Script, curve: bool = True, warm: Any = None
    ) -> None:
        """``warm``: a finished run's algorithm for one that can go on from it (PPO's)."""
        self.settings, self.script, self.curve, self.warm = settings, script, curve, warm
        self.run = self.envs = self.solve_check = self.drawer = None

    def start(self, resume: Path | None, command: str | None) -> None:
        settings, script = self.settings, self.script
        if resume is not None:  # the lock before anything slow: a second writer is refused at once
            self.run = RunFolder.open(resume, settings.tensorboard)
            if self.run.notice:
                print(f"{script.name}: {self.run.notice}", file=sys.stderr)
        self.drawer = CurveDrawer() if self.curve else None  # its imports overlap ours
        import_tensorflow_quietly()  # here, not at import: --help and a bad flag answer at once
        seed_everything(settings.seed, settings.threads)
        task = TASKS[settings.agent]
        self.agent_class = AGENT_CLASSES[settings.agent]
        self.envs = make_envs(task.env_id, settings.num_envs)
        warm = {} if self.warm is None else {"warm": self.warm}
        self.algorithm: Algorithm = script.algorithm_class(settings, self.envs, **warm)
        self.solve_check = SolveCheck(settings, task.env_id)
        self.state = RunState(settings)
        if self.run is None:
            name, stored = f"{script.name}-seed{settings.seed}", settings.to_json(script.name)
            self.run = RunFolder.create(Path(settings.runs_dir), name, stored, settings.tensorboard)
            self.agent().save(self._checkpoint_prefix(UNTRAINED))
        else:
            arrays, counters = self.run.load_state()  # DamagedRunFileError: one line, exit 1
            try:
                self.algorithm.load_state(arrays)
                self.state.restore(counters)
            except (ValueError, KeyError) as error:
                why = describe_error(error).split(". ")[0]
                why = f"no array {error}" if isinstance(error, KeyError) else why
                problem = f"damaged, incomplete or from another version of this package ({why})"
                raise TrainingError(f"{self.run.state_path}: {problem}; start a new run") from error
            self.run.check_latest_checkpoint(self.agent_class)
        self.run.open_progress(self.state.episodes)  # DamagedRunFileError before any write
        if resume is not None:
            self.run.write_json("settings.json", settings.to_json(script.name))
        if command is not None:
            self.run.record_command(command)

    def agent(self):
        """The current policy as a competition agent, with how it was trained in its config."""
        state, exported = self.state, self.algorithm.exported
        training = {"settings": self.settings.to_json(self.script.name), "episodes": state.episodes}
        extra = {"training": training | {"updates": state.updates, "run": self.run.path.name}}
        try:
            return self.agent_class(exported, seed=self.settings.seed, extra_config=extra)
        except ValueError as error:
            # Finite but huge weights pass the check after the update and overflow here.
            if policy_outputs_finite(exported):
                raise
            problem = "the policy's outputs overflow on ordinary observations"
            raise DivergenceError(problem, state.updates) from error

    def finite_state(self) -> dict[str, np.ndarray]:
        """The algorithm's arrays for the resume state (DivergenceError if one is not finite)."""
        arrays = self.algorithm.state()
        if problem := non_finite_arrays(arrays):
            raise DivergenceError(problem, self.state.updates)
        return arrays

    def save_checkpoint(self) -> None:
        arrays = self.finite_state()
        self.agent().save(self._checkpoint_prefix(self.state.episodes))
        self.state.last_checkpoint = self.state.episodes
        self.run.save_state(arrays, self.state.counters())

    def _checkpoint_prefix(self, episodes: int) -> Path:
        naming = "episode" if episodes == UNTRAINED else self.settings.checkpoint_names
        return self.run.checkpoint_prefix(episodes, naming)

    def train(self, on_update: UpdateCallback | None = None) -> TrainingResult:
        from tqdm import tqdm  # not at import: --help answers at once

        settings, state = self.settings, self.state
        state.start_clock()
        # The bar counts toward the budget that binds: environment steps where they are
        # capped (PPO's episodes budget is never the one that ends a run), else episodes.
        counter, unit = ("env_steps", "step") if settings.max_env_steps else ("episodes", "ep")
        total = settings.max_env_steps or settings.max_episodes
        display = dict(disable=not settings.progress_bar, dynamic_ncols=True, file=sys.stderr)
        bar = tqdm(total=total, initial=getattr(state, counter), unit=unit, **display)
        divergence = None
        try:
            with terminate_as_interrupt():
                stop_reason = self._stop_reason()
                while stop_reason is None:
                    before = getattr(state, counter)
                    losses = self._one_update()
                    bar.update(getattr(state, counter) - before)
                    shown = {"running": f"{state.running_reward():.1f}"}
                    for name in ("actor", "critic"):  # a loss only where it applies
                        if f"{name}_loss" in losses:
                            shown[name] = f"{losses[f'{name}_loss']:.3g}"
                    bar.set_postfix(shown, refresh=False)
                    stop_reason = self._stop_reason()
                    if on_update is not None:
                        on_update(self.progress(losses))
        except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM as Terminated
            stop_reason = "terminated" if isinstance(stop, Terminated) else "interrupted"
        except DivergenceError as error:
            stop_reason, divergence = "diverged", self._divergence(error)
        finally:
            bar.close()
        with deferred_interrupt(reraise=False):  # a second signal must not cut the save short
            return self._finish(stop_reason, divergence)

    def progress(self, losses: dict[str, float]) -> dict[str, Any]:
        """What an observer (a sweep, a dashboard) sees after each update."""
        state = self.state
        latest = state.evaluations[-1] if state.evaluations else {}
        greedy = latest.get("agent_greedy_mean")
        counts = {name: getattr(state, name) for name in ("episodes", "updates", "env_steps")}
        figures = {"wall_time": state.wall_time(), "running_reward": state.running_reward()}
        return counts | figures | {"greedy_score": greedy, **losses}

    def _one_update(self) -> dict[str, float]:
        settings, state = self.settings, self.state
        sequence = np.random.SeedSequence([settings.seed, state.updates])
        rng = np.random.default_rng(sequence)
        reset_seed = int(sequence.generate_state(1)[0])
        # A diverging policy overflows in the rollouts first; the check after the update
        # reports it once, in one line, instead of NumPy warning at every overflow.
        with np.errstate(over="ignore", invalid="ignore"):
            experience = self.algorithm.collect(rng, reset_seed)
        with deferred_interrupt():
            outcome = self.algorithm.learn(experience)
            if problem := non_finite_figures(outcome.losses):
                raise DivergenceError(problem, state.updates + 1)
            self.run.append_progress(state.record(outcome))
            if checkpoint_due(state.episodes, state.last_checkpoint, settings.checkpoint_every):
                self.save_checkpoint()
        return outcome.losses

    def _stop_reason(self) -> str | None:
        settings, state = self.settings, self.state
        running = settings.stop == "running_reward" and state.scores
        if running and state.running_reward() > settings.target_running_reward:
            return "running_reward"
        if settings.stop == "solved":
            solved = self.solve_check(state, self.agent)
            self.run.log_evaluations(state.evaluations)
            if solved:
                return "solved"
        if state.episodes >= settings.max_episodes:
            return "max_episodes"
        if settings.max_env_steps and state.env_steps >= settings.max_env_steps:
            return "max_env_steps"
        if settings.max_seconds and state.wall_time() >= settings.max_seconds:
            return "max_seconds"
        return None

    def _divergence(self, error: DivergenceError) -> str:
        """One line: which update diverged, what, what was kept and which settings to suspect."""
        settings, state = self.settings, self.state
        kept = "no checkpoint was saved before it"
        if state.last_checkpoint:
            kept = (
                f"kept the last finite checkpoint {self._checkpoint_prefix(state.last_checkpoint)}"
            )
        names = settings.divergence_suspects()
        suspects = ", ".join(as_flag(name, getattr(settings, name)) for name in names)
        return (
            f"diverged at update {error.update} (after episode {state.episodes}): "
            f"{error}; {kept}; suspect {suspects} (try a smaller learning rate or clipnorm)"
        )

    def _save_last(self, stop_reason: str) -> None:
        """The checkpoint and resume state at the last update, and the final agent."""
        state = self.state
        checkpoint = self._checkpoint_prefix(state.episodes).with_suffix(".keras")
        if state.last_checkpoint != state.episodes or not checkpoint.exists():
            self.save_checkpoint()
        else:
            self.run.save_state(self.finite_state(), state.counters())
        if stop_reason not in UNFINISHED:
            self.agent().save(self.run.final_prefix)

    def _finish(self, stop_reason: str, divergence: str | None = None) -> TrainingResult:
        settings, state = self.settings, self.state
        train_seconds = state.wall_time()
        if stop_reason != "diverged":  # diverged weights are never saved
            try:
                self._save_last(stop_reason)
            except DivergenceError as error:
                stop_reason, divergence = "diverged", self._divergence(error)
        self.run.close_progress()  # the lock stays until summary.json is written
        if self.drawer is not None:  # a sweep draws its trials' curves once, at its end
            title = f"{self.script.name} ({settings.agent}, seed {settings.seed})"
            self.run.plot_learning_curve(self.drawer, title, settings.stop_score)
        counts = (state.episodes, state.updates, state.env_steps, state.trained_steps)
        ending = (train_seconds, state.running_reward(), stop_reason == "solved", state.evaluations)
        result = TrainingResult(self.run.path, stop_reason, *counts, *ending, divergence)
        self.run.write_json("summary.json", result.to_json())
        self.close()
        return result

    def close(self) -> None:
        """Release the run folder and the environments (safe to call twice)."""
        for part in (self.run, self.envs, self.solve_check, self.drawer):
            if part is not None:
                part.close()
        self.run = self.envs = self.solve_check = self.drawer = None

    def __enter__(self) -> Trainer:
        return self

    def __exit__(self, *exc_info: object) -> None:  # a failure still releases the lock
        self.close()


def train(
    settings: RunSettings,
    script: Script,
    resume: Path | None = None,
    command: str | None = None,
    on_update: UpdateCallback | None = None,
    curve: bool = True,
) -> TrainingResult:
    """Train ``script``'s algorithm in a new run folder, or continue the run in ``resume``;
    ``command`` goes to its command.txt, ``on_update`` gets :meth:`Trainer.progress`, and
    ``curve`` draws learning_curve.png at the end."""
    with Trainer(settings, script, curve) as trainer:  # a full disk, a bug: lock released
        trainer.start(resume, command)
        return trainer.train(on_update)


def run_script(script: Script, argv: list[str] | None = None) -> int:
    """Each script's ``main``: parse the command line, train, print the outcome in one line and
    return the exit status; a user's mistake is one line (a traceback only with ``--debug``)."""
    name, command = script.name, parse_command(script, argv)
    words = sys.argv[1:] if argv is None else argv
    line = shlex.join(["python", "-m", f"training.{name}", *words])
    try:
        with terminate_as_interrupt():
            if command.resume is None and (problem := runs_dir_problem(command.settings)):
                print(f"{name}: error: {problem}", file=sys.stderr)
                return EXIT_USAGE
            result = train(command.settings, script, command.resume, command=line)
    except KeyboardInterrupt as stop:  # before the first update: there is nothing to save
        signal_name, status = stop_status(stop)
        print(f"{name}: stopped by {signal_name} before training started", file=sys.stderr)
        return status
    except (OSError, TrainingError, DamagedRunFileError, RunFolderHeldError) as error:
        if command.debug:
            raise
        print(f"{name}: error: {describe_error(error)}", file=sys.stderr)
        # A folder another process is writing to is a usage mistake, like a bad path.
        return EXIT_USAGE if isinstance(error, RunFolderHeldError) else EXIT_FAILED
    return result.report(name, command.settings.eval_episodes)
