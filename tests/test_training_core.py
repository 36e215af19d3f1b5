"""Rollouts, bootstrapped time-limit returns and the NumPy forward pass."""

from __future__ import annotations

import gymnasium as gym
import keras
import numpy as np
import pytest
import tensorflow as tf

from training import gaussian_actor_critic, reinforce
from training.returns import tail_discounts
from training.rollouts import NumpyForward, collect, make_envs, make_policy
from training.solve_check import greedy_mean


def test_tail_discounts_by_hand() -> None:
    out = tail_discounts(np.array([3, 2]), np.array([True, False]), 4, 0.5)
    np.testing.assert_allclose(out, [[0.125, 0.25, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0]])


def test_numpy_forward_matches_keras() -> None:
    observations = np.random.default_rng(0).normal(size=(9, 4)).astype(np.float32)
    policy = reinforce.mlp(4, (32, 16), 2, 1, 1, "policy_logits")
    np.testing.assert_allclose(
        NumpyForward(policy)(observations),
        policy(observations).numpy(),
        rtol=1e-5,
        atol=1e-5,
    )
    gaussian = gaussian_actor_critic.gaussian_policy(4, (32,), 1, 1, 1)
    for mine, theirs in zip(
        NumpyForward(gaussian)(observations), gaussian(observations), strict=True
    ):
        np.testing.assert_allclose(mine, theirs.numpy(), rtol=1e-5, atol=1e-5)
    exported = reinforce.with_softmax(policy)
    np.testing.assert_allclose(exported(observations).numpy().sum(axis=1), 1.0, rtol=1e-6)


def test_collect_returns_complete_episodes() -> None:
    envs = make_envs("CartPole-v1", 3)
    forward = NumpyForward(reinforce.mlp(4, (8,), 2, 0, 1, "policy_logits"))
    policy = make_policy(forward, envs.single_action_space)
    batch = collect(envs, policy, 7, np.random.default_rng(0), 5)
    assert len(batch.lengths) == len(batch.scores) == 7
    np.testing.assert_array_equal(batch.mask.sum(axis=1), batch.lengths)
    np.testing.assert_allclose(batch.rewards.sum(axis=1), batch.scores)  # +1 a step
    np.testing.assert_allclose(batch.scores, batch.lengths)
    for row, length in enumerate(batch.lengths):  # real steps first, then zero padding
        assert np.all(batch.mask[row, :length] == 1) and np.all(batch.mask[row, length:] == 0)
        assert np.all(batch.observations[row, length:] == 0)
        assert np.all(np.abs(batch.observations[row, 0]) <= 0.05)  # a fresh reset state
    assert batch.env_steps >= batch.trained_steps == batch.lengths.sum()
    assert not batch.truncated.any()  # an untrained policy fails long before 500 steps
    again = collect(envs, policy, 7, np.random.default_rng(0), 5)
    np.testing.assert_array_equal(batch.observations, again.observations)


class ActionLog(gym.vector.VectorWrapper):
    """Records every action batch that reaches the environments."""

    def __init__(self, envs: gym.vector.VectorEnv) -> None:
        super().__init__(envs)
        self.sent: list[np.ndarray] = []

    def step(self, actions):
        self.sent.append(np.array(actions))
        return super().step(actions)


def test_collect_pendulum_clips_what_it_sends() -> None:
    """A policy far outside the bounds (mean 10, sigma 1): the environments receive actions
    inside [-3, 3], while the batch keeps the unclipped samples the loss scores."""
    envs = ActionLog(make_envs("InvertedPendulum-v5", 2))

    def far_out(observations):
        count = len(observations)
        return np.full((count, 1), 10.0), np.zeros((count, 1))

    policy = make_policy(far_out, envs.single_action_space)
    batch = collect(envs, policy, 2, np.random.default_rng(0), 1)
    sent = np.concatenate(envs.sent)
    assert sent.dtype == np.float32 and sent.shape[1] == 1
    assert np.all(sent == 3.0)  # every sample of N(10, 1) lies above the bound
    learned = batch.actions[batch.mask == 1]
    assert batch.actions.dtype == np.float32 and np.all(learned > 5.0)


def test_learn_clipped_actions_scores_what_the_environment_received() -> None:
    """The course scores the clipped action: with a mean of 10 every learned action is the
    bound 3, the same as what was sent."""
    envs = ActionLog(make_envs("InvertedPendulum-v5", 2))

    def far_out(observations):
        count = len(observations)
        return np.full((count, 1), 10.0), np.zeros((count, 1))

    policy = make_policy(far_out, envs.single_action_space, learn_clipped=True)
    batch = collect(envs, policy, 2, np.random.default_rng(0), 1)
    assert np.all(np.concatenate(envs.sent) == 3.0)
    assert batch.actions.dtype == np.float32 and np.all(batch.actions[batch.mask == 1] == 3.0)


@pytest.mark.parametrize("preset", ["course", "fast"])
def test_pendulum_presets_choose_which_action_the_loss_scores(preset: str) -> None:
    """The course preset's rollouts learn from the clipped action, the fast preset's from the
    unclipped sample; a policy at mean 3, sigma e puts about half its samples past the bound."""
    script = gaussian_actor_critic.SCRIPT
    settings = script.preset(preset, num_envs=1)
    algorithm = script.algorithm_class(settings, make_envs("InvertedPendulum-v5", 1))
    for head in ("mean_tanh", "log_std_tanh"):  # tanh(10) = 1: mean 3, log sigma 1
        algorithm.actor.get_layer(head).bias.assign(np.array([10.0], dtype=np.float32))
    algorithm.forward.refresh()
    sent, learned = algorithm.policy(np.zeros((2000, 4)), np.random.default_rng(0))
    assert np.all(np.abs(sent) <= 3.0)
    if preset == "course":
        np.testing.assert_array_equal(learned, sent)
    else:
        assert 0.3 < np.mean(learned > 3.0) < 0.7


def test_collect_refuses_same_step_autoreset() -> None:
    envs = gym.make_vec(
        "CartPole-v1",
        2,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
    )
    forward = NumpyForward(reinforce.mlp(4, (8,), 2, 0, 1, "policy_logits"))
    with pytest.raises(ValueError, match="next-step autoreset"):
        collect(
            envs, make_policy(forward, envs.single_action_space), 2, np.random.default_rng(0), 1
        )


def test_greedy_mean_gives_up_early_with_an_upper_bound() -> None:
    envs = make_envs("CartPole-v1", 4)

    def policy(observations: np.ndarray) -> np.ndarray:  # push the way the pole leans
        return (observations[:, 2] > 0).astype(np.int64)

    full, finished = greedy_mean(envs, policy, 0.0, 500, seed=3)
    assert finished and 0 < full < 500
    bound, finished = greedy_mean(envs, policy, 475.0, 500, seed=3)
    assert not finished and full <= bound < 475.0


def test_truncated_episodes_bootstrap_the_critic_target() -> None:
    """With one critic step the reported critic loss is Huber(G + gamma^(T-t) V(s_T), V(s_t))
    under the critic as it was before the step."""
    settings = reinforce.ReinforceSettings(
        baseline=True, critic_steps=1, actor_hidden=(8,), critic_hidden=(8,), critic_seed_offset=1
    )
    algorithm = reinforce.Reinforce(settings, make_envs("CartPole-v1", 1))
    critic = algorithm.critic
    rng = np.random.default_rng(2)
    observations = rng.normal(size=(1, 5, 4)).astype(np.float32)
    final = rng.normal(size=(1, 4)).astype(np.float32)
    returns = np.array([[4.9, 3.9, 2.97, 1.99, 1.0]], dtype=np.float32)
    mask = np.ones((1, 5), dtype=np.float32)
    tails = tail_discounts(np.array([5]), np.array([True]), 5, 0.99)
    values = critic(observations[0]).numpy()[:, 0]
    targets = returns[0] + tails[0] * critic(final).numpy()[0, 0]
    huber = keras.losses.Huber()  # as the course's critic
    expected = float(huber(tf.constant(targets), tf.constant(values)))
    assert (
        abs(expected - float(huber(tf.constant(returns[0]), tf.constant(values)))) > 1e-3
    )  # the bootstrap matters here
    _, critic_loss, *_ = algorithm.update(
        observations, np.zeros((1, 5), np.int32), returns, mask, mask, final, tails
    )
    np.testing.assert_allclose(float(critic_loss), expected, rtol=1e-5)
    assert keras.ops.all(keras.ops.isfinite(critic.weights[0]))
