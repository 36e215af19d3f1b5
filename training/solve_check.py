"""The solve check: a gated greedy evaluation of the agent as it would be saved, that decides
"solved"; cheap because its episodes run side by side and it gives up as soon as the bar is out of
reach."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from training.rollouts import make_envs
from training.run_state import RunState

EVAL_SEED_OFFSET = 1_000_003  # evaluation episodes never reuse training resets


def greedy_mean(
    envs: Any, act_batch: Callable, threshold: float, max_reward_per_episode: float, seed: int
) -> tuple[float, bool]:
    """(mean score of one greedy episode per environment, True), or (an upper bound on it,
    False) once the bound falls below ``threshold``: unfinished episodes count at the most an
    episode can score (both tasks pay 1 a step while an episode runs). Copies of an environment
    reset copy i with ``seed + i``, as :func:`agents.evaluation.evaluate` resets its episode i."""
    num_envs, (observations, _) = envs.num_envs, envs.reset(seed=seed)
    totals, running = np.zeros(num_envs), np.ones(num_envs, dtype=bool)
    while running.any():
        observations, rewards, terminated, truncated, _ = envs.step(act_batch(observations))
        totals += rewards * running
        running &= ~(terminated | truncated)
        best = (totals[~running].sum() + running.sum() * max_reward_per_episode) / num_envs
        if best < threshold:
            return float(best), False
    return float(totals.mean()), True


class SolveCheck:
    """Every ``eval_every`` updates once the recent training scores reach ``eval_gate``, the
    agent the run would save plays ``eval_episodes`` greedy episodes side by side, through its
    own forward pass batched (``act_batch``: what ``act`` computes, a step of every episode a
    call). Where the environments are copies (the pendulum's), these are the episodes
    :func:`agents.evaluation.evaluate` plays with the same seed; CartPole's native vector
    environment, twice as fast, draws its own. ``submit.py`` plays through ``act``, as the
    evaluator does."""

    def __init__(self, settings: Any, env_id: str) -> None:
        self.settings = settings  # a RunSettings, read by attribute (training.settings is above)
        self.env_id = env_id
        self.max_episode_steps = gym.spec(env_id).max_episode_steps
        self.envs = None

    def __call__(self, state: RunState, make_agent: Callable) -> bool:
        s, bar = self.settings, self.settings.solve_threshold
        earlier = [record for record in state.evaluations if record["update"] == state.updates]
        if earlier:  # evaluated before an interruption: the same answer, not a second record
            return any(r.get("agent_greedy_mean", -math.inf) >= bar for r in earlier)
        recent, due = list(state.scores)[-s.gate_episodes :], state.updates % s.eval_every == 0
        gate_shut = len(recent) < s.gate_episodes or np.mean(recent) < s.eval_gate
        if state.updates == 0 or not due or gate_shut:
            return False
        if self.envs is None:
            self.envs = make_envs(self.env_id, s.eval_episodes)
        seed = s.seed * EVAL_SEED_OFFSET + state.updates
        act_batch = make_agent().act_batch
        mean, finished = greedy_mean(self.envs, act_batch, bar, self.max_episode_steps, seed)
        figure = f"agent_greedy_{'mean' if finished else 'upper_bound'}"
        when = {"update": state.updates, "episode": state.episodes}
        state.evaluations.append(when | {"wall_time": round(state.wall_time(), 3), figure: mean})
        return finished and mean >= bar

    def close(self) -> None:
        if self.envs is not None:
            self.envs.close()
