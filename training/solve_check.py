"""The solve check: a gated greedy evaluation that decides "solved", cheap because it gives up
as soon as the bar is out of reach (one rule: :func:`agents.evaluation.best_reachable_mean`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from agents.evaluation import best_reachable_mean, evaluate
from training.rollouts import Policy, make_envs
from training.run_state import RunState

EVAL_SEED_OFFSET = 1_000_003  # evaluation episodes never reuse training resets


def greedy_mean(
    envs: Any, policy: Policy, threshold: float, max_reward_per_episode: float, seed: int
) -> tuple[float, bool]:
    """(mean score of one greedy episode per environment, True), or (an upper bound on it,
    False) once the bound falls below ``threshold``: unfinished episodes count at the most an
    episode can score (both tasks pay 1 a step while an episode runs)."""
    num_envs = envs.num_envs
    observations, _ = envs.reset(seed=seed)
    totals = np.zeros(num_envs)
    running = np.ones(num_envs, dtype=bool)
    rng = np.random.default_rng(seed)
    while running.any():
        actions, _ = policy(observations, rng)
        observations, rewards, terminated, truncated, _ = envs.step(actions)
        totals += rewards * running
        running &= ~(terminated | truncated)
        best = best_reachable_mean(list(totals[~running]), num_envs, max_reward_per_episode)
        if best < threshold:
            return float(best), False
    return float(totals.mean()), True


class SolveCheck:
    """Every ``eval_every`` updates once the recent training scores reach ``eval_gate``: the
    vectorised NumPy :func:`greedy_mean` (``vectorised_precheck``), then the agent's own ``act``
    through :func:`agents.evaluation.evaluate` decides. Where the gate already demands the bar
    (the pendulum's PPO), the precheck would only play the same episodes twice."""

    def __init__(self, settings: Any, env_id: str) -> None:
        import gymnasium as gym

        self.settings = settings  # a RunSettings, read by attribute (training.settings is above)
        self.env_id = env_id
        self.max_episode_steps = gym.spec(env_id).max_episode_steps
        self.envs = None

    def __call__(self, state: RunState, algorithm: Any, make_agent: Callable) -> bool:
        s, bar = self.settings, self.settings.solve_threshold
        earlier = [record for record in state.evaluations if record["update"] == state.updates]
        if earlier:  # evaluated before an interruption: the same answer, not a second record
            return any(r.get("agent_greedy_mean", -math.inf) >= bar for r in earlier)
        recent = list(state.scores)[-s.gate_episodes :]
        if (
            state.updates == 0
            or state.updates % s.eval_every
            or len(recent) < s.gate_episodes
            or np.mean(recent) < s.eval_gate
        ):
            return False

        def record(figure: str, value: float) -> None:
            wall_time = round(state.wall_time(), 3)
            state.evaluations.append(
                {"update": state.updates, "episode": state.episodes, "wall_time": wall_time}
                | {figure: float(value)}
            )

        seed = s.seed * EVAL_SEED_OFFSET + state.updates
        if s.vectorised_precheck:
            if self.envs is None:
                self.envs = make_envs(self.env_id, s.eval_episodes)
            policy = algorithm.greedy_policy()
            quick, finished = greedy_mean(self.envs, policy, bar, self.max_episode_steps, seed)
            record(f"vectorised_greedy_{'mean' if finished else 'upper_bound'}", quick)
            if not finished or quick < bar:
                return False
        result = evaluate(make_agent(), self.env_id, s.eval_episodes, seed, give_up_below=bar)
        if result.episodes < s.eval_episodes:  # gave up: the bar is out of reach
            bound = best_reachable_mean(result.returns, s.eval_episodes, self.max_episode_steps)
            record("agent_greedy_upper_bound", bound)
            return False
        record("agent_greedy_mean", result.mean)
        return result.mean >= bar

    def close(self) -> None:
        if self.envs is not None:
            self.envs.close()
