"""A collector restored from its state continues bit for bit, observation statistics included."""

from __future__ import annotations

import numpy as np
import pytest

from training.rollouts import RolloutCollector, make_envs, make_policy


@pytest.mark.parametrize("env_id", ["CartPole-v1", "InvertedPendulum-v5"])
def test_a_restored_collector_continues_exactly(env_id: str) -> None:
    """CartPole's float32 statistics must stay float32 after a resume: a restored count as a
    0-d float64 array would promote their updates to float64 and shift the observations."""
    weights = np.random.default_rng(0).normal(size=(4, 2)).astype(np.float32)

    def forward(observations):
        outputs = np.asarray(observations, np.float32) @ weights
        return outputs if env_id == "CartPole-v1" else (outputs[:, :1], outputs[:, 1:] - 1.0)

    collector = RolloutCollector(make_envs(env_id, 3), normalise_observations=True)
    collector.reset(5)
    policy = make_policy(forward, collector.envs.single_action_space)
    collector.collect(policy, 40, np.random.default_rng(1))
    restored = RolloutCollector(make_envs(env_id, 3), normalise_observations=True)
    restored.load_state(collector.state())
    straight = collector.collect(policy, 60, np.random.default_rng(2))
    resumed = restored.collect(policy, 60, np.random.default_rng(2))
    for name in ("observations", "actions", "rewards", "valid", "scores"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(straight, name))
