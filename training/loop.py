"""The one training loop all five scripts share.

Per update: copy the policy's weights to NumPy, collect a batch of complete episodes over the
vectorised environments, compute the returns, run the compiled update, log, checkpoint, and
check the stop rule. Every update draws its action noise and environment resets from a seed
derived from (seed, update number), so a run is reproducible and a resumed run continues
exactly as an uninterrupted one would.
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
from typing import Any

import numpy as np

from training.settings import TrainingSettings

ENV_IDS = {"cartpole": "CartPole-v1", "pendulum": "InvertedPendulum-v5"}
#: Called after every update with Trainer.progress(); a sweep reports through it.
UpdateCallback = Callable[[dict[str, Any]], None]
EVAL_SEED_OFFSET = 1_000_003  # evaluation episodes never reuse training resets


@dataclass
class TrainingResult:
    """How a run ended; also written to summary.json."""

    run_dir: Path
    stop_reason: str
    episodes: int
    updates: int
    useful_steps: int
    env_steps: int
    train_seconds: float
    running_reward: float
    solved: bool
    evaluations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def steps_per_second(self) -> float:
        return self.useful_steps / self.train_seconds if self.train_seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "stop_reason": self.stop_reason,
            "episodes": self.episodes,
            "updates": self.updates,
            "useful_steps": self.useful_steps,
            "env_steps": self.env_steps,
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


class Trainer:
    """Builds everything for one run and runs the loop; see :func:`train`."""

    def __init__(
        self,
        settings: TrainingSettings,
        resume: Path | None = None,
        command: str | None = None,
        on_update: UpdateCallback | None = None,
    ) -> None:
        from training.seeding import seed_everything

        seed_everything(settings.seed, settings.threads)
        import gymnasium as gym

        from agents import AGENT_CLASSES
        from training import networks
        from training.algorithm import Learner
        from training.rollouts import categorical_policy, gaussian_policy, make_envs
        from training.runs import RunFolder

        self.settings = settings
        self.env_id = ENV_IDS[settings.task]
        self.agent_class = AGENT_CLASSES[settings.task]
        self.envs = make_envs(self.env_id, settings.num_envs)
        observation_size = self.envs.single_observation_space.shape[0]
        gaussian = settings.task == "pendulum"
        if gaussian:
            space = self.envs.single_action_space
            self.low, self.high = space.low, space.high
            self.actor = networks.build_gaussian_policy(
                observation_size, settings.actor_hidden, space.shape[0], settings.seed
            )
            self.exported = self.actor
        else:
            self.actor = networks.build_categorical_policy(
                observation_size,
                settings.actor_hidden,
                int(self.envs.single_action_space.n),
                settings.seed,
            )
            self.exported = networks.export_categorical_policy(self.actor)
        critic = (
            networks.build_critic(observation_size, settings.critic_hidden, settings.seed + 100)
            if settings.baseline
            else None
        )
        self.learner = Learner(settings, self.actor, critic)
        self.forward = networks.NumpyForward(self.actor)
        if gaussian:
            self.policy = gaussian_policy(self.forward, self.low, self.high)
            self.greedy = gaussian_policy(self.forward, self.low, self.high, greedy=True)
        else:
            self.policy = categorical_policy(self.forward)
            self.greedy = categorical_policy(self.forward, greedy=True)
        self.eval_envs = None
        self.max_episode_steps = gym.spec(self.env_id).max_episode_steps

        self.episodes = self.updates = self.useful_steps = self.env_steps = 0
        self.wall_before = 0.0
        self.scores: deque[float] = deque(
            maxlen=max(settings.running_window, settings.eval_episodes)
        )
        self.last_checkpoint = 0
        self.evaluations: list[dict[str, Any]] = []
        if resume is None:
            self.run = RunFolder.create(settings)
        else:
            self.run = RunFolder(resume, tensorboard=settings.tensorboard)
            self.run.write_json("settings.json", settings.to_json())
            self._restore()
        self.run.open_progress(self.episodes)
        if command is not None:
            self.run.record_command(command)
        self.on_update = on_update

    # --- state ---------------------------------------------------------------------------------
    def _counters(self) -> dict[str, Any]:
        return {
            "episodes": self.episodes,
            "updates": self.updates,
            "useful_steps": self.useful_steps,
            "env_steps": self.env_steps,
            "wall_time": self.wall_time(),
            "last_checkpoint": self.last_checkpoint,
            "scores": np.asarray(self.scores, dtype=np.float64),
        }

    def _restore(self) -> None:
        arrays, counters = self.run.load_state()
        self.learner.load_state(arrays)
        for name in ("episodes", "updates", "useful_steps", "env_steps", "last_checkpoint"):
            setattr(self, name, int(counters[name]))
        self.wall_before = float(counters["wall_time"])
        self.scores.extend(float(s) for s in counters["scores"])

    def wall_time(self) -> float:
        return self.wall_before + (
            time.perf_counter() - self._start if hasattr(self, "_start") else 0.0
        )

    def running_reward(self) -> float:
        window = list(self.scores)[-self.settings.running_window :]
        return float(np.mean(window)) if window else 0.0

    def agent(self):
        extra = {
            "training": {
                "settings": self.settings.to_json(),
                "episodes": self.episodes,
                "updates": self.updates,
                "run": self.run.path.name,
            }
        }
        return self.agent_class(self.exported, seed=self.settings.seed, extra_config=extra)

    def save_checkpoint(self) -> None:
        self.agent().save(self.run.checkpoint_prefix(self.episodes))
        self.last_checkpoint = self.episodes
        self.run.save_state(self.learner.state(), self._counters())

    # --- the loop --------------------------------------------------------------------------------
    def train(self) -> TrainingResult:
        from tqdm import tqdm

        settings = self.settings
        self._start = time.perf_counter()
        bar = tqdm(
            total=settings.max_episodes,
            initial=self.episodes,
            unit="ep",
            disable=not settings.progress_bar,
            dynamic_ncols=True,
            file=sys.stderr,
        )
        stop_reason = self._stop_reason()
        try:
            while stop_reason is None:
                losses = self._one_update()
                bar.update(len(self._last_scores))
                bar.set_postfix(
                    running=f"{self.running_reward():.1f}",
                    actor=f"{losses['actor_loss']:.3g}",
                    critic=f"{losses['critic_loss']:.3g}",
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
        latest = self.evaluations[-1] if self.evaluations else {}
        return {
            "episodes": self.episodes,
            "updates": self.updates,
            "env_steps": self.useful_steps,
            "wall_time": self.wall_time(),
            "running_reward": self.running_reward(),
            "greedy_score": latest.get("agent_mean", latest.get("numpy_mean")),
            **losses,
        }

    def _one_update(self) -> dict[str, float]:
        from training.algorithm import tail_discounts, time_weights
        from training.returns import discounted_returns
        from training.rollouts import collect

        settings = self.settings
        self.forward.refresh()
        sequence = update_seed(settings.seed, self.updates)
        rng = np.random.default_rng(sequence)
        reset_seed = int(sequence.generate_state(1)[0])
        batch = collect(self.envs, self.policy, settings.episodes_per_update, rng, reset_seed)
        returns = discounted_returns(batch.rewards, settings.gamma, batch.mask)
        weights = time_weights(batch.mask, settings.gamma, settings.discount_weighting)
        with deferred_interrupt():
            bootstrap = batch.truncated & settings.bootstrap_truncated
            tails = tail_discounts(batch.lengths, bootstrap, batch.mask.shape[1], settings.gamma)
            losses = self.learner.update(
                batch.observations,
                batch.actions,
                returns,
                weights,
                batch.mask,
                batch.final_observations,
                tails,
            )
            self.updates += 1
            self.useful_steps += batch.useful_steps
            self.env_steps += batch.env_steps
            rows = []
            for score, length in zip(batch.scores, batch.lengths, strict=True):
                self.episodes += 1
                self.scores.append(float(score))
                rows.append(
                    {
                        "episode": self.episodes,
                        "update": self.updates,
                        "reward": float(score),
                        "length": int(length),
                        "running_reward": round(self.running_reward(), 6),
                        **{k: round(v, 6) for k, v in losses.items()},
                        "env_steps": self.useful_steps,
                        "wall_time": round(self.wall_time(), 4),
                    }
                )
            self.run.append_progress(rows)
            self._last_scores = batch.scores
            every = settings.checkpoint_every
            if self.episodes // every > self.last_checkpoint // every:
                self.save_checkpoint()
        return losses

    def _stop_reason(self) -> str | None:
        settings = self.settings
        if (
            settings.stop == "running_reward"
            and len(self.scores) >= 1
            and (self.running_reward() > settings.target_running_reward)
        ):
            return "running_reward"
        if settings.stop == "solved" and self._solved():
            return "solved"
        if self.episodes >= settings.max_episodes:
            return "max_episodes"
        if settings.max_seconds and self.wall_time() >= settings.max_seconds:
            return "max_seconds"
        return None

    def _solved(self) -> bool:
        """Greedy evaluation, gated: recent training rewards high enough, every few updates,
        a cheap vectorised NumPy check first, then the agent's own ``act`` decides."""
        settings = self.settings
        recent = list(self.scores)[-settings.eval_episodes :]
        if (
            self.updates == 0
            or self.updates % settings.eval_every
            or len(recent) < settings.eval_episodes
            or np.mean(recent) < settings.eval_gate
        ):
            return False
        from training.rollouts import greedy_mean, make_envs

        eval_seed = evaluation_seed(settings.seed, self.updates)
        if self.eval_envs is None:
            self.eval_envs = make_envs(self.env_id, settings.eval_episodes)
        self.forward.refresh()
        quick, finished = greedy_mean(
            self.eval_envs, self.greedy, settings.solve_threshold, self.max_episode_steps, eval_seed
        )
        record: dict[str, Any] = {
            "update": self.updates,
            "episode": self.episodes,
            "wall_time": round(self.wall_time(), 3),
            "numpy_mean" if finished else "numpy_bound": quick,
        }
        solved = False
        if finished and quick >= settings.solve_threshold:
            from agents.evaluation import evaluate

            result = evaluate(self.agent(), self.env_id, settings.eval_episodes, eval_seed)
            record["agent_mean"] = result.mean
            solved = result.mean >= settings.solve_threshold
        self.evaluations.append(record)
        self.run.log_evaluation(record)
        return solved

    def _finish(self, stop_reason: str) -> TrainingResult:
        settings = self.settings
        train_seconds = self.wall_time()
        if (
            self.last_checkpoint != self.episodes
            or not self.run.checkpoint_prefix(self.episodes).with_suffix(".keras").exists()
        ):
            self.save_checkpoint()
        else:
            self.run.save_state(self.learner.state(), self._counters())
        if stop_reason != "interrupted":
            self.agent().save(self.run.final_prefix)
        self.run.close()
        self.run.plot_learning_curve(
            f"{settings.SCRIPT} ({settings.task}, seed {settings.seed})",
            settings.solve_threshold
            if settings.stop == "solved"
            else settings.target_running_reward,
        )
        result = TrainingResult(
            self.run.path,
            stop_reason,
            self.episodes,
            self.updates,
            self.useful_steps,
            self.env_steps,
            train_seconds,
            self.running_reward(),
            stop_reason == "solved",
            self.evaluations,
        )
        self.run.write_json("summary.json", result.to_json())
        self.envs.close()
        if self.eval_envs is not None:
            self.eval_envs.close()
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


EXIT_INTERRUPTED = 130  # the shell's convention for a run ended by Ctrl-C


def run_script(settings_class: type[TrainingSettings], argv: list[str] | None = None) -> int:
    """What each script's ``main`` does: parse the command line, train, print the outcome.

    Returns 0 when the run ended by its stop rule or budget, 130 after Ctrl-C (the last
    checkpoint and resume state are saved either way)."""
    from training.settings import parse_command

    command = parse_command(settings_class, argv)
    words = sys.argv[1:] if argv is None else argv
    line = shlex.join(["python", "-m", f"training.{settings_class.SCRIPT}", *words])
    result = train(command.settings, command.resume, command=line)
    rate = result.steps_per_second
    print(
        f"{settings_class.SCRIPT}: {result.stop_reason} after {result.episodes} episodes, "
        f"{result.updates} updates, {result.train_seconds:.1f} s of training "
        f"({rate:,.0f} env steps/s), running reward {result.running_reward:.1f}; "
        f"run folder {result.run_dir}"
    )
    return EXIT_INTERRUPTED if result.stop_reason == "interrupted" else 0
