"""The solve check: a gated, cheap greedy evaluation that decides "solved".

Two evaluations share one give-up rule (:func:`agents.evaluation.best_reachable_mean`): a
vectorised NumPy one over many environments at once, then the agent's own ``act`` through
the shared :func:`agents.evaluation.evaluate`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from agents.evaluation import best_reachable_mean, evaluate
from training.rollouts import Policy, make_envs
from training.run_state import RunState

EVAL_SEED_OFFSET = 1_000_003  # evaluation episodes never reuse training resets


def evaluation_seed(seed: int, updates: int) -> int:
    """The reset seed of the greedy evaluation after ``updates`` updates of a run."""
    return seed * EVAL_SEED_OFFSET + updates


def greedy_mean(
    envs: Any,
    policy: Policy,
    threshold: float,
    max_reward_per_episode: float,
    seed: int,
) -> tuple[float, bool]:
    """Mean score of one greedy episode per environment, or an upper bound on it once the
    threshold is out of reach (so a failing check stops early).

    The give-up rule is the agent evaluation's: every unfinished episode counts at the most an
    episode can score (both tasks pay 1 a step while an episode runs, so an episode still
    running can still reach it).
    Returns (mean or bound, finished).
    """
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
    """Greedy evaluation, gated so it stays cheap: only every ``eval_every`` updates once the
    recent training scores reach ``eval_gate``; then (``vectorised_precheck``) a vectorised
    NumPy check that aborts as soon as the threshold is out of reach; the agent's own ``act``
    decides, through the shared :func:`agents.evaluation.evaluate`, which also gives up as soon
    as the bar is out of reach. Where the gate already demands the bar (the pendulum's PPO), the
    precheck would only play the same 20 episodes twice."""

    def __init__(self, settings: Any, env_id: str) -> None:
        # settings: a RunSettings, read by attribute (this module sits below training.settings)
        import gymnasium as gym

        self.settings = settings
        self.env_id = env_id
        self.max_episode_steps = gym.spec(env_id).max_episode_steps
        self.envs = None

    def __call__(self, state: RunState, algorithm: Any, make_agent: Callable) -> bool:
        settings = self.settings
        earlier = [record for record in state.evaluations if record["update"] == state.updates]
        if earlier:  # evaluated before an interruption: the same answer, not a second record
            return any(
                record.get("agent_greedy_mean", -math.inf) >= settings.solve_threshold
                for record in earlier
            )
        recent = list(state.scores)[-settings.gate_episodes :]
        if (
            state.updates == 0
            or state.updates % settings.eval_every
            or len(recent) < settings.gate_episodes
            or np.mean(recent) < settings.eval_gate
        ):
            return False
        seed = evaluation_seed(settings.seed, state.updates)
        if settings.vectorised_precheck:
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
