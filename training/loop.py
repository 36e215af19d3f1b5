"""The one training loop every script shares, in four parts you can read on their own.

- :class:`RunState`: the counters and scores of a run (what ``--resume`` restores);
- an *algorithm* (see :class:`Algorithm`): collects experience and learns from it;
- :class:`SolveCheck`: the cheap, gated greedy evaluation that decides "solved";
- :class:`Trainer`: the loop itself, checkpoints and finishing.

Every update draws its action noise and environment resets from a seed derived from (seed,
update number), so a run is reproducible and a resumed run continues as an uninterrupted one
would.
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from training.settings import TrainingSettings
from training.tasks import TASKS

#: Called after every update with Trainer.progress(); a sweep reports through it.
UpdateCallback = Callable[[dict[str, Any]], None]
EVAL_SEED_OFFSET = 1_000_003  # evaluation episodes never reuse training resets
EXIT_INTERRUPTED = 130  # the shell's convention for a run ended by Ctrl-C
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

    @property
    def steps_per_second(self) -> float:
        return self.env_steps / self.train_seconds if self.train_seconds > 0 else 0.0

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
        }


@contextlib.contextmanager
def deferred_interrupt():
    """Hold Ctrl-C until the block ends, so an update and its bookkeeping happen together."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[object] = []
    previous = signal.signal(signal.SIGINT, lambda *args: received.append(args))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


def evaluation_seed(seed: int, updates: int) -> int:
    """The reset seed of the greedy evaluation after ``updates`` updates of a run."""
    return seed * EVAL_SEED_OFFSET + updates


def update_seed(seed: int, update: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, update])


# --- run state -------------------------------------------------------------------------------
COUNTERS = ("episodes", "updates", "env_steps", "trained_steps", "last_checkpoint")


class RunState:
    """The counters and recent scores of a run: all of it is saved for ``--resume``."""

    def __init__(self, settings: TrainingSettings) -> None:
        self.settings = settings
        self.episodes = self.updates = self.env_steps = self.trained_steps = 0
        self.last_checkpoint = 0
        self.scores: deque[float] = deque(
            maxlen=max(settings.running_window, settings.eval_episodes)
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
        window = list(self.scores)[-self.settings.running_window :]
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
        }

    def restore(self, counters: dict[str, Any]) -> None:
        for name in COUNTERS:
            setattr(self, name, int(counters[name]))
        self.wall_before = float(counters["wall_time"])
        self.scores.extend(float(s) for s in counters["scores"])


# --- the solve check -------------------------------------------------------------------------
class SolveCheck:
    """Greedy evaluation, gated so it stays cheap: only every ``eval_every`` updates once the
    recent training scores reach ``eval_gate``; then a vectorised NumPy check that aborts as
    soon as the threshold is out of reach; only if that passes does the agent's own ``act``
    decide, through the shared :func:`agents.evaluation.evaluate`."""

    def __init__(self, settings: TrainingSettings, env_id: str) -> None:
        import gymnasium as gym

        self.settings = settings
        self.env_id = env_id
        self.max_episode_steps = gym.spec(env_id).max_episode_steps
        self.envs = None

    def __call__(self, state: RunState, algorithm: Algorithm, make_agent: Callable) -> bool:
        settings = self.settings
        recent = state.recent_scores(settings.eval_episodes)
        if (
            state.updates == 0
            or state.updates % settings.eval_every
            or len(recent) < settings.eval_episodes
            or np.mean(recent) < settings.eval_gate
        ):
            return False
        from training.rollouts import greedy_mean, make_envs

        seed = evaluation_seed(settings.seed, state.updates)
        if self.envs is None:
            self.envs = make_envs(self.env_id, settings.eval_episodes)
        quick, finished = greedy_mean(
            self.envs,
            algorithm.greedy_policy(),
            settings.solve_threshold,
            self.max_episode_steps,
            seed,
        )
        record: dict[str, Any] = {
            "update": state.updates,
            "episode": state.episodes,
            "wall_time": round(state.wall_time(), 3),
            "numpy_mean" if finished else "numpy_bound": quick,
        }
        solved = False
        if finished and quick >= settings.solve_threshold:
            from agents.evaluation import evaluate

            result = evaluate(make_agent(), self.env_id, settings.eval_episodes, seed)
            record["agent_mean"] = result.mean
            solved = result.mean >= settings.solve_threshold
        state.evaluations.append(record)
        return solved

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
        from training.environment import import_tensorflow_quietly

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
            self.run = RunFolder(resume)
            self.run.write_json("settings.json", settings.to_json())
            arrays, counters = self.run.load_state()
            self.algorithm.load_state(arrays)
            self.state.restore(counters)
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
        return self.agent_class(
            self.algorithm.exported, seed=self.settings.seed, extra_config=extra
        )

    def save_checkpoint(self) -> None:
        self.agent().save(self.run.checkpoint_prefix(self.state.episodes))
        self.state.last_checkpoint = self.state.episodes
        self.run.save_state(self.algorithm.state(), self.state.counters())

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
        stop_reason = self._stop_reason()
        try:
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
        except KeyboardInterrupt:
            stop_reason = "interrupted"
        finally:
            bar.close()
        return self._finish(stop_reason)

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
            "greedy_score": latest.get("agent_mean", latest.get("numpy_mean")),
            **losses,
        }

    def _one_update(self) -> dict[str, float]:
        settings, state = self.settings, self.state
        sequence = update_seed(settings.seed, state.updates)
        rng = np.random.default_rng(sequence)
        reset_seed = int(sequence.generate_state(1)[0])
        experience = self.algorithm.collect(rng, reset_seed)
        with deferred_interrupt():
            outcome = self.algorithm.learn(experience)
            self.run.append_progress(state.record(outcome))
            every = settings.checkpoint_every
            if state.episodes // every > state.last_checkpoint // every:
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
        if settings.stop == "solved" and self.solve_check(state, self.algorithm, self.agent):
            return "solved"
        if state.episodes >= settings.max_episodes:
            return "max_episodes"
        if settings.max_env_steps and state.env_steps >= settings.max_env_steps:
            return "max_env_steps"
        if settings.max_seconds and state.wall_time() >= settings.max_seconds:
            return "max_seconds"
        return None

    def _finish(self, stop_reason: str) -> TrainingResult:
        settings, state = self.settings, self.state
        train_seconds = state.wall_time()
        checkpoint = self.run.checkpoint_prefix(state.episodes).with_suffix(".keras")
        if state.last_checkpoint != state.episodes or not checkpoint.exists():
            self.save_checkpoint()
        else:
            self.run.save_state(self.algorithm.state(), state.counters())
        if stop_reason != "interrupted":
            self.agent().save(self.run.final_prefix)
        self.run.close()
        self.run.plot_learning_curve(
            f"{settings.SCRIPT} ({settings.agent}, seed {settings.seed})",
            settings.solve_threshold
            if settings.stop == "solved"
            else settings.target_running_reward,
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
    """What each script's ``main`` does: parse the command line, train, print the outcome.

    Returns 0 when the run ended by its stop rule or budget, 130 after Ctrl-C (the last
    checkpoint and resume state are saved either way)."""
    from training.settings import parse_command

    command = parse_command(settings_class, argv)
    words = sys.argv[1:] if argv is None else argv
    line = shlex.join(["python", "-m", f"training.{settings_class.SCRIPT}", *words])
    result = train(command.settings, command.resume, command=line)
    print(
        f"{settings_class.SCRIPT}: {result.stop_reason} after {result.episodes} episodes, "
        f"{result.updates} updates, {result.train_seconds:.1f} s of training "
        f"({result.steps_per_second:,.0f} env steps/s), running reward "
        f"{result.running_reward:.1f}; run folder {result.run_dir}"
    )
    return EXIT_INTERRUPTED if result.stop_reason == "interrupted" else 0
