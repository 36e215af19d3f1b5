"""The one training loop every script shares, in four parts you can read on their own.

- :class:`RunState`: the counters and scores of a run (what ``--resume`` restores);
- an *algorithm* (see :class:`Algorithm`): collects experience and learns from it;
- :class:`SolveCheck`: the cheap, gated greedy evaluation that decides "solved";
- :class:`Trainer`: the loop itself, checkpoints and finishing.

Every update draws its action noise and environment resets from a seed derived from (seed,
update number), so a run is reproducible and a resumed run continues as an uninterrupted one
would.

Ctrl-C and SIGTERM end a run the same way: the updates done so far are saved (a checkpoint
and the resume state cover every episode in progress.csv). A loss, gradient or weight that is
no longer finite stops the run at once and keeps the last finite checkpoint. Exit statuses of
the scripts: 0 the run ended by its stop rule or a budget; 1 an error outside the command line
(e.g. a file that cannot be written); 2 a mistake on the command line; 3 diverged; 130 Ctrl-C;
143 SIGTERM.
"""

from __future__ import annotations

import json
import math
import shlex
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from training.exits import (
    EXIT_DIVERGED,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    Terminated,
    deferred_interrupt,
    describe_error,
    terminate_as_interrupt,
)
from training.settings import TrainingSettings, as_flag, field_metadata
from training.tasks import TASKS

#: Called after every update with Trainer.progress(); a sweep reports through it.
UpdateCallback = Callable[[dict[str, Any]], None]
EVAL_SEED_OFFSET = 1_000_003  # evaluation episodes never reuse training resets
PROBES = 64  # observations the policy's outputs are checked on when an agent refuses it
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


class Algorithm(Protocol):
    """What the loop drives: built by ``settings.make_algorithm(envs)``."""

    #: The Keras model the agent saves (CartPoleAgent / InvertedPendulumAgent).
    exported: Any

    def collect(self, rng: np.random.Generator, reset_seed: int) -> Any:
        """Experience for one update (may be interrupted by Ctrl-C)."""

    def learn(self, experience: Any) -> UpdateOutcome:
        """The update itself (runs with Ctrl-C held until the bookkeeping is done)."""

    def greedy_policy(self) -> Callable:
        """The deterministic NumPy policy with the current weights."""

    def state(self) -> dict[str, np.ndarray]: ...

    def load_state(self, arrays: dict[str, np.ndarray]) -> None: ...


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
    #: Why the run diverged (stop reason "diverged"): the update, what and what to suspect.
    divergence: str | None = None

    @property
    def steps_per_second(self) -> float:
        return self.env_steps / self.train_seconds if self.train_seconds > 0 else 0.0

    @property
    def saved_final(self) -> bool:
        """Whether the run saved final.{keras,config}: not when stopped by a signal, nor when
        it diverged."""
        return self.stop_reason not in UNFINISHED

    @property
    def greedy_figure(self) -> tuple[str, float] | None:
        """The latest greedy evaluation's figure (its name and value); when the run solved,
        the agent's greedy mean that decided it."""
        return evaluation_figure(self.evaluations[-1]) if self.evaluations else None

    def to_json(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "stop_reason": self.stop_reason,
            "episodes": self.episodes,
            "updates": self.updates,
            "env_steps": self.env_steps,
            "trained_steps": self.trained_steps,
            "train_seconds": self.train_seconds,
            "steps_per_second": self.steps_per_second,
            "running_reward": self.running_reward,
            "solved": self.solved,
            "evaluations": self.evaluations,
            "divergence": self.divergence,
        }


#: The figure an evaluation record holds, one per record, named for what it measured: the
#: vectorised NumPy check's mean (or the upper bound it stopped at once the threshold was out
#: of reach), then, if that passed, the mean of the agent's own ``act``.
EVALUATION_FIGURES = (
    "agent_greedy_mean",
    "vectorised_greedy_mean",
    "vectorised_greedy_upper_bound",
)


def evaluation_figure(record: dict[str, Any]) -> tuple[str, float]:
    """The (name, value) of the one greedy figure of an evaluation record."""
    (name,) = (name for name in EVALUATION_FIGURES if name in record)
    return name, float(record[name])


class DivergenceError(Exception):
    """Update ``update`` left a loss, the weights or the policy's outputs not finite."""

    def __init__(self, problem: str, update: int) -> None:
        super().__init__(problem)
        self.update = update


class TrainingError(Exception):
    """A user's mistake found once training has started (one line, no traceback)."""


def non_finite_figures(losses: dict[str, float]) -> str | None:
    """Which of an update's figures (losses, gradient norms) are NaN or infinite, or None.
    Checked after every update: it costs nothing."""
    bad = [name for name, value in losses.items() if not math.isfinite(value)]
    return ", ".join(f"{name} is {losses[name]}" for name in bad) or None


def non_finite_arrays(arrays: dict[str, np.ndarray]) -> str | None:
    """Which weights or optimiser slots are not finite, or None. Checked before anything is
    saved (reading every array costs a few milliseconds, too much for every update)."""
    bad = [
        name
        for name, array in arrays.items()
        if np.issubdtype(array.dtype, np.inexact) and not np.isfinite(array).all()
    ]
    if not bad:
        return None
    return f"{', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''} not finite"


def policy_outputs_finite(model: Any) -> bool:
    """Whether ``model`` gives finite outputs on ordinary observations (standard normal, the
    same spread the agents check at load)."""
    import keras

    size = model.inputs[0].shape[-1]
    probes = np.random.default_rng(0).normal(scale=2.0, size=(PROBES, size)).astype(np.float32)
    outputs = model(probes, training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return all(np.isfinite(keras.ops.convert_to_numpy(output)).all() for output in outputs)


def evaluation_seed(seed: int, updates: int) -> int:
    """The reset seed of the greedy evaluation after ``updates`` updates of a run."""
    return seed * EVAL_SEED_OFFSET + updates


def update_seed(seed: int, update: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, update])


def checkpoint_due(episodes: int, last_checkpoint: int, every: int) -> bool:
    """Whether a run at ``episodes`` has passed a multiple of ``every`` since its last
    checkpoint: with one episode per update, after episodes 200, 400, ... (the course's
    ``(episode + 1) % 200 == 0`` with a zero-based episode)."""
    return episodes // every > last_checkpoint // every


# --- run state -------------------------------------------------------------------------------
COUNTERS = ("episodes", "updates", "env_steps", "trained_steps", "last_checkpoint")


class RunState:
    """The counters and recent scores of a run: all of it is saved for ``--resume``."""

    def __init__(self, settings: TrainingSettings) -> None:
        self.settings = settings
        self.episodes = self.updates = self.env_steps = self.trained_steps = 0
        self.last_checkpoint = 0
        self.scores: deque[float] = deque(
            maxlen=max(settings.running_window, settings.gate_episodes)
        )
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

    def recent_scores(self, count: int) -> list[float]:
        return list(self.scores)[-count:]

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
                {
                    "episode": self.episodes,
                    "update": self.updates,
                    "reward": float(score),
                    "length": int(length),
                    "running_reward": round(self.running_reward(), 6),
                    **losses,
                    "env_steps": self.env_steps,
                    "wall_time": round(self.wall_time(), 4),
                }
            )
        return rows

    def counters(self) -> dict[str, Any]:
        return {
            **{name: getattr(self, name) for name in COUNTERS},
            "wall_time": self.wall_time(),
            "scores": np.asarray(self.scores, dtype=np.float64),
            # a string array: the resume state loads without pickle
            "evaluations": np.asarray(json.dumps(self.evaluations)),
        }

    def restore(self, counters: dict[str, Any]) -> None:
        for name in COUNTERS:
            setattr(self, name, int(counters[name]))
        self.wall_before = float(counters["wall_time"])
        self.scores.extend(float(s) for s in counters["scores"])
        if "evaluations" in counters:
            self.evaluations = json.loads(str(counters["evaluations"]))


# --- the solve check -------------------------------------------------------------------------
class SolveCheck:
    """Greedy evaluation, gated so it stays cheap: only every ``eval_every`` updates once the
    recent training scores reach ``eval_gate``; then (``vectorised_precheck``) a vectorised
    NumPy check that aborts as soon as the threshold is out of reach; the agent's own ``act``
    decides, through the shared :func:`agents.evaluation.evaluate`, which also gives up as soon
    as the bar is out of reach. Where the gate already demands the bar (the pendulum's PPO), the
    precheck would only play the same 20 episodes twice."""

    def __init__(self, settings: TrainingSettings, env_id: str) -> None:
        import gymnasium as gym

        self.settings = settings
        self.env_id = env_id
        self.max_episode_steps = gym.spec(env_id).max_episode_steps
        self.envs = None

    def __call__(self, state: RunState, algorithm: Algorithm, make_agent: Callable) -> bool:
        settings = self.settings
        earlier = [record for record in state.evaluations if record["update"] == state.updates]
        if earlier:  # evaluated before an interruption: the same answer, not a second record
            return any(
                record.get("agent_greedy_mean", -math.inf) >= settings.solve_threshold
                for record in earlier
            )
        recent = state.recent_scores(settings.gate_episodes)
        if (
            state.updates == 0
            or state.updates % settings.eval_every
            or len(recent) < settings.gate_episodes
            or np.mean(recent) < settings.eval_gate
        ):
            return False
        seed = evaluation_seed(settings.seed, state.updates)
        if settings.vectorised_precheck:
            from training.rollouts import greedy_mean, make_envs

            if self.envs is None:
                self.envs = make_envs(self.env_id, settings.eval_episodes)
            quick, finished = greedy_mean(
                self.envs,
                algorithm.greedy_policy(),
                settings.solve_threshold,
                self.max_episode_steps,
                seed,
            )
            figure = "vectorised_greedy_mean" if finished else "vectorised_greedy_upper_bound"
            state.evaluations.append(self._record(state, figure, quick))
            if not finished or quick < settings.solve_threshold:
                return False
        from agents.evaluation import best_reachable_mean, evaluate

        result = evaluate(
            make_agent(),
            self.env_id,
            settings.eval_episodes,
            seed,
            give_up_below=settings.solve_threshold,
        )
        if result.episodes < settings.eval_episodes:  # gave up: the bar is out of reach
            bound = best_reachable_mean(
                result.returns, settings.eval_episodes, self.max_episode_steps
            )
            state.evaluations.append(self._record(state, "agent_greedy_upper_bound", bound))
            return False
        state.evaluations.append(self._record(state, "agent_greedy_mean", result.mean))
        return result.mean >= settings.solve_threshold

    @staticmethod
    def _record(state: RunState, figure: str, value: float) -> dict[str, Any]:
        return {
            "update": state.updates,
            "episode": state.episodes,
            "wall_time": round(state.wall_time(), 3),
            figure: float(value),
        }

    def close(self) -> None:
        if self.envs is not None:
            self.envs.close()


# --- the loop --------------------------------------------------------------------------------
class Trainer:
    """Builds everything for one run and runs the loop; see :func:`train`."""

    def __init__(
        self,
        settings: TrainingSettings,
        resume: Path | None = None,
        command: str | None = None,
        on_update: UpdateCallback | None = None,
    ) -> None:
        from training.startup import import_tensorflow_quietly

        import_tensorflow_quietly()
        from training.seeding import seed_everything

        seed_everything(settings.seed, settings.threads)
        from agents import AGENT_CLASSES
        from training.rollouts import make_envs
        from training.runs import RunFolder

        self.settings = settings
        self.on_update = on_update
        task = TASKS[settings.agent]
        self.agent_class = AGENT_CLASSES[settings.agent]
        self.envs = make_envs(task.env_id, settings.num_envs)
        self.algorithm: Algorithm = settings.make_algorithm(self.envs)
        self.solve_check = SolveCheck(settings, task.env_id)
        self.state = RunState(settings)
        if resume is None:
            self.run = RunFolder.create(settings)
        else:
            self.run = RunFolder(resume, tensorboard=settings.tensorboard)
            try:
                arrays, counters = self.run.load_state()
                self.algorithm.load_state(arrays)
                self.state.restore(counters)
            except (OSError, ValueError, KeyError) as error:  # BadZipFile is a ValueError
                reason = describe_error(error).split(". ")[0]
                raise TrainingError(
                    f"{self.run.state_path}: damaged or incomplete ({reason}); restore it from a "
                    "backup or start a new run"
                ) from error
            self.run.write_json("settings.json", settings.to_json())
        self.run.open_progress(self.state.episodes)
        if command is not None:
            self.run.record_command(command)

    def agent(self):
        """The current policy as a competition agent, with how it was trained in its config."""
        extra = {
            "training": {
                "settings": self.settings.to_json(),
                "episodes": self.state.episodes,
                "updates": self.state.updates,
                "run": self.run.path.name,
            }
        }
        try:
            return self.agent_class(
                self.algorithm.exported, seed=self.settings.seed, extra_config=extra
            )
        except ValueError as error:
            # Finite but huge weights pass the check after the update and overflow here.
            if policy_outputs_finite(self.algorithm.exported):
                raise
            raise DivergenceError(
                "the policy's outputs overflow on ordinary observations", self.state.updates
            ) from error

    def finite_state(self) -> dict[str, np.ndarray]:
        """The algorithm's arrays for the resume state; DivergenceError if any is not finite
        (so diverged weights are never saved)."""
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
        return self.run.checkpoint_prefix(episodes, self.settings.checkpoint_names)

    def train(self) -> TrainingResult:
        from tqdm import tqdm

        settings, state = self.settings, self.state
        state.start_clock()
        bar = tqdm(
            total=settings.max_episodes,
            initial=state.episodes,
            unit="ep",
            disable=not settings.progress_bar,
            dynamic_ncols=True,
            file=sys.stderr,
        )
        divergence = None
        try:
            with terminate_as_interrupt():
                stop_reason = self._stop_reason()
                while stop_reason is None:
                    episodes_before = state.episodes
                    losses = self._one_update()
                    bar.update(state.episodes - episodes_before)
                    bar.set_postfix(
                        running=f"{state.running_reward():.1f}",
                        actor=f"{losses.get('actor_loss', 0.0):.3g}",
                        critic=f"{losses.get('critic_loss', 0.0):.3g}",
                        refresh=False,
                    )
                    stop_reason = self._stop_reason()
                    if self.on_update is not None:
                        self.on_update(self.progress(losses))
        except Terminated:
            stop_reason = "terminated"
        except KeyboardInterrupt:
            stop_reason = "interrupted"
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
        return {
            "episodes": state.episodes,
            "updates": state.updates,
            "env_steps": state.env_steps,
            "wall_time": state.wall_time(),
            "running_reward": state.running_reward(),
            "greedy_score": latest.get("agent_greedy_mean", latest.get("vectorised_greedy_mean")),
            **losses,
        }

    def _one_update(self) -> dict[str, float]:
        settings, state = self.settings, self.state
        sequence = update_seed(settings.seed, state.updates)
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
        if (
            settings.stop == "running_reward"
            and state.scores
            and state.running_reward() > settings.target_running_reward
        ):
            return "running_reward"
        if settings.stop == "solved":
            solved = self.solve_check(state, self.algorithm, self.agent)
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
        kept = (
            f"kept the last finite checkpoint {self._checkpoint_prefix(state.last_checkpoint)}"
            if state.last_checkpoint
            else "no checkpoint was saved before it"
        )
        suspects = ", ".join(
            as_flag(name, getattr(settings, name))
            for name in settings.DIVERGENCE_SUSPECTS
            if not settings.unmet(field_metadata(name, type(settings)).get("needs"))
        )
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
        self.run.close()
        self.run.plot_learning_curve(
            f"{settings.SCRIPT} ({settings.agent}, seed {settings.seed})",
            settings.target_running_reward
            if settings.stop == "running_reward"
            else settings.solve_threshold,
        )
        result = TrainingResult(
            self.run.path,
            stop_reason,
            state.episodes,
            state.updates,
            state.env_steps,
            state.trained_steps,
            train_seconds,
            state.running_reward(),
            stop_reason == "solved",
            state.evaluations,
            divergence,
        )
        self.run.write_json("summary.json", result.to_json())
        self.envs.close()
        self.solve_check.close()
        return result


def train(
    settings: TrainingSettings,
    resume: Path | None = None,
    command: str | None = None,
    on_update: UpdateCallback | None = None,
) -> TrainingResult:
    """Train with ``settings`` in a new run folder, or continue the run in ``resume``.

    ``command`` (the command line that started the run) is appended to the run's
    command.txt; ``on_update`` is called after every update with :meth:`Trainer.progress`.
    """
    return Trainer(settings, resume, command, on_update).train()


def run_script(settings_class: type[TrainingSettings], argv: list[str] | None = None) -> int:
    """What each script's ``main`` does: parse the command line, train, print the outcome in
    one line, and return the exit status (see the module docstring).

    A user's mistake is one line on stderr (a traceback only with ``--debug``); Ctrl-C and
    SIGTERM save the run, which ``--resume`` continues."""
    from training.settings import parse_command

    name = settings_class.SCRIPT
    command = parse_command(settings_class, argv)
    words = sys.argv[1:] if argv is None else argv
    line = shlex.join(["python", "-m", f"training.{name}", *words])
    try:
        with terminate_as_interrupt():
            if command.resume is None and (problem := runs_dir_problem(command.settings)):
                print(f"{name}: error: {problem}", file=sys.stderr)
                return EXIT_USAGE
            result = train(command.settings, command.resume, command=line)
    except KeyboardInterrupt as stop:  # before the first update: there is nothing to save
        signal_name = "SIGTERM" if isinstance(stop, Terminated) else "Ctrl-C"
        print(f"{name}: stopped by {signal_name} before training started", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(stop, Terminated) else EXIT_INTERRUPTED
    except (OSError, TrainingError) as error:
        if command.debug:
            raise
        print(f"{name}: error: {describe_error(error)}", file=sys.stderr)
        return EXIT_FAILED
    if result.stop_reason == "diverged":
        print(f"{name}: error: {result.divergence}; run folder {result.run_dir}", file=sys.stderr)
        return EXIT_DIVERGED
    if result.stop_reason in ("interrupted", "terminated"):
        signal_name = "SIGTERM" if result.stop_reason == "terminated" else "Ctrl-C"
        print(
            f"{name}: stopped by {signal_name} after {result.episodes} episodes; saved a "
            f"checkpoint and the resume state; continue with: python -m training.{name} "
            f"--resume {shlex.quote(str(result.run_dir))}"
        )
        return EXIT_TERMINATED if result.stop_reason == "terminated" else EXIT_INTERRUPTED
    greedy = ""
    if result.greedy_figure is not None:
        figure, value = result.greedy_figure
        episodes = command.settings.eval_episodes
        greedy = f", {figure.replace('_', ' ')} {value:.1f} over {episodes} episodes"
    print(
        f"{name}: {result.stop_reason} after {result.episodes} episodes, "
        f"{result.updates} updates, {result.train_seconds:.1f} s of training "
        f"({result.steps_per_second:,.0f} env steps/s){greedy}, running reward "
        f"{result.running_reward:.1f}; run folder {result.run_dir}"
    )
    return 0


def runs_dir_problem(settings: TrainingSettings) -> str | None:
    """Why the folder for new runs cannot be created (checked before TensorFlow loads)."""
    try:
        Path(settings.runs_dir).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return (
            f"--runs-dir {settings.runs_dir}: cannot create it ({error.strerror}); "
            "pick a folder you can write to"
        )
    return None
