"""One greedy evaluation, shared by `submit.py`, the evaluation command and the tests.

It lives beside the agents (not in `training/`) so that a submission bundle, which ships only
this package, validates itself with it. It drives the agent the way the evaluator does: one
`act(observation, info)` call per step on the raw observation. Training's solve check plays the
same episodes (same seeds) side by side through `act_batch` instead, which is cheaper;
tests/test_shipped_weights.py checks that both score alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import gymnasium as gym
import numpy as np


class ActingAgent(Protocol):
    """Anything with the evaluator's `act(observation, info)`."""

    def act(self, observation: Any, info: Any) -> Any: ...


class InvalidActionError(ValueError):
    """The agent returned an action the environment's action space does not contain."""


@dataclass(frozen=True)
class EvaluationResult:
    """Per-episode scores of a seeded greedy evaluation, plus how long `act` took."""

    env_id: str
    seed: int
    max_steps: int | None
    returns: tuple[float, ...]
    lengths: tuple[int, ...]
    act_p50_us: float
    act_p99_us: float

    @property
    def episodes(self) -> int:
        return len(self.returns)

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))

    @property
    def min(self) -> float:
        return float(np.min(self.returns))

    @property
    def max(self) -> float:
        return float(np.max(self.returns))

    def summary(self) -> dict[str, Any]:
        """Plain-data form for JSON output and weight records."""
        return {
            **asdict(self),
            "returns": list(self.returns),
            "lengths": list(self.lengths),
            "episodes": self.episodes,
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
        }


def make_env(
    env_id: str, max_steps: int | None = None, render_mode: str | None = None
) -> gym.Env:
    """The evaluation environment, with an optional step cap, recording episode statistics."""
    kwargs: dict[str, Any] = {}
    if max_steps is not None:
        kwargs["max_episode_steps"] = max_steps
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    return gym.wrappers.RecordEpisodeStatistics(gym.make(env_id, **kwargs))


def collect_observations(agent: ActingAgent, env_id: str, count: int, seed: int) -> list[Any]:
    """Real observations, as the evaluator hands them over, from the agent's own episodes."""
    env = make_env(env_id)
    observations: list[Any] = []
    episode = 0
    try:
        while len(observations) < count:
            observation, info = env.reset(seed=seed + episode)
            done = False
            while not done and len(observations) < count:
                observations.append(observation)
                observation, _, terminated, truncated, info = env.step(agent.act(observation, info))
                done = terminated or truncated
            episode += 1
    finally:
        env.close()
    return observations


def evaluate(
    agent: ActingAgent,
    env_id: str,
    episodes: int,
    seed: int,
    max_steps: int | None = None,
    render_mode: str | None = None,
    wrap_env: Callable[[gym.Env], gym.Env] | None = None,
) -> EvaluationResult:
    """Run `episodes` greedy episodes, episode i reset with seed `seed + i`.

    Raises `InvalidActionError` at the first action outside the action space, since the
    evaluator would fail there too. `render_mode` and `wrap_env` (say, gymnasium's
    `RecordVideo`) film the scored episodes in this process, which never holds TensorFlow.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {max_steps}")
    env = make_env(env_id, max_steps, render_mode)
    if wrap_env is not None:
        env = wrap_env(env)
    returns: list[float] = []
    lengths: list[int] = []
    act_ns: list[int] = []
    clock = time.perf_counter_ns
    try:
        for episode in range(episodes):
            observation, info = env.reset(seed=seed + episode)
            done = False
            while not done:
                start = clock()
                action = agent.act(observation, info)
                act_ns.append(clock() - start)
                if not env.action_space.contains(action):
                    raise InvalidActionError(
                        f"{env_id}: episode {episode} (seed {seed + episode}), step "
                        f"{len(act_ns)}: action {action!r} is not in {env.action_space}"
                    )
                observation, _, terminated, truncated, info = env.step(action)
                done = terminated or truncated
            returns.append(float(info["episode"]["r"]))
            lengths.append(int(info["episode"]["l"]))
    finally:
        env.close()
    p50, p99 = np.percentile(np.asarray(act_ns, dtype=np.float64) / 1e3, [50, 99])
    return EvaluationResult(
        env_id=env_id,
        seed=seed,
        max_steps=max_steps,
        returns=tuple(returns),
        lengths=tuple(lengths),
        act_p50_us=float(p50),
        act_p99_us=float(p99),
    )
