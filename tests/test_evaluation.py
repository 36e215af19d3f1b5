"""The shared greedy evaluation, checked against episodes run by hand."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from agents.evaluation import InvalidActionError, evaluate


class _PushTowardsThePole:
    """A scripted CartPole policy: push the cart the way the pole leans (no learning)."""

    def act(self, observation, info) -> int:
        return int(observation[2] + observation[3] > 0)


class _ConstantForce:
    def __init__(self, force: float) -> None:
        self.force = np.array([force], dtype=np.float32)

    def act(self, observation, info) -> np.ndarray:
        return self.force


def _returns_by_hand(env_id: str, agent, episodes: int, seed: int, max_steps=None):
    env = gym.make(env_id, max_episode_steps=max_steps) if max_steps else gym.make(env_id)
    returns = []
    for episode in range(episodes):
        observation, info = env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            action = agent.act(observation, info)
            observation, reward, terminated, truncated, info = env.step(action)
            total += reward
            done = terminated or truncated
        returns.append(total)
    return returns


@pytest.mark.parametrize(
    ("env_id", "agent", "max_steps"),
    [
        ("CartPole-v1", _PushTowardsThePole(), None),
        ("CartPole-v1", _PushTowardsThePole(), 50),
        ("InvertedPendulum-v5", _ConstantForce(0.3), None),
    ],
)
def test_evaluate_matches_episodes_run_by_hand(env_id: str, agent, max_steps) -> None:
    result = evaluate(agent, env_id, episodes=5, seed=10, max_steps=max_steps)
    expected = _returns_by_hand(env_id, agent, 5, 10, max_steps)
    assert list(result.returns) == expected
    assert result.mean == pytest.approx(np.mean(expected))
    assert result.min == min(expected) and result.max == max(expected)
    if max_steps:
        assert max(result.lengths) <= max_steps
    assert 0 < result.act_p50_us <= result.act_p99_us


def test_evaluate_is_reproducible_for_a_seed_and_varies_across_seeds() -> None:
    agent = _PushTowardsThePole()
    first = evaluate(agent, "CartPole-v1", episodes=4, seed=0)
    again = evaluate(agent, "CartPole-v1", episodes=4, seed=0)
    other = evaluate(agent, "CartPole-v1", episodes=4, seed=100)
    assert first.returns == again.returns
    assert first.lengths != other.lengths


@pytest.mark.parametrize("force", [3.5, float("nan")])
def test_out_of_range_or_nan_actions_raise(force: float) -> None:
    with pytest.raises(InvalidActionError, match="is not in Box"):
        evaluate(_ConstantForce(force), "InvertedPendulum-v5", episodes=1, seed=0)


def test_evaluate_refuses_meaningless_arguments() -> None:
    with pytest.raises(ValueError, match="episodes"):
        evaluate(_PushTowardsThePole(), "CartPole-v1", episodes=0, seed=0)
    with pytest.raises(ValueError, match="max_steps"):
        evaluate(_PushTowardsThePole(), "CartPole-v1", episodes=1, seed=0, max_steps=0)
