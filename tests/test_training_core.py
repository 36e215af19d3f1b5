"""Rollouts, bootstrapped time-limit returns and the NumPy forward pass."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from training import networks
from training.algorithm import Learner, huber, tail_discounts
from training.rollouts import (
    categorical_policy,
    collect,
    gaussian_policy,
    greedy_mean,
    make_envs,
)
from training.settings import TrainingSettings


def test_tail_discounts_by_hand() -> None:
    out = tail_discounts(np.array([3, 2]), np.array([True, False]), 4, 0.5)
    np.testing.assert_allclose(out, [[0.125, 0.25, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0]])


def test_numpy_forward_matches_keras() -> None:
    observations = np.random.default_rng(0).normal(size=(9, 4)).astype(np.float32)
    policy = networks.build_categorical_policy(4, (32, 16), 2, seed=1)
    np.testing.assert_allclose(
        networks.NumpyForward(policy)(observations),
        policy(observations).numpy(),
        rtol=1e-5,
        atol=1e-5,
    )
    gaussian = networks.build_gaussian_policy(4, (32,), 1, seed=1)
    for mine, theirs in zip(
        networks.NumpyForward(gaussian)(observations), gaussian(observations), strict=True
    ):
        np.testing.assert_allclose(mine, theirs.numpy(), rtol=1e-5, atol=1e-5)
    exported = networks.export_categorical_policy(policy)
    np.testing.assert_allclose(exported(observations).numpy().sum(axis=1), 1.0, rtol=1e-6)


def test_collect_returns_complete_episodes() -> None:
    envs = make_envs("CartPole-v1", 3)
    forward = networks.NumpyForward(networks.build_categorical_policy(4, (8,), 2, seed=0))
    batch = collect(envs, categorical_policy(forward), 7, np.random.default_rng(0), 5)
    assert batch.num_episodes == 7
    np.testing.assert_array_equal(batch.mask.sum(axis=1), batch.lengths)
    np.testing.assert_allclose(batch.rewards.sum(axis=1), batch.scores)  # +1 a step
    np.testing.assert_allclose(batch.scores, batch.lengths)
    for row, length in enumerate(batch.lengths):  # real steps first, then zero padding
        assert np.all(batch.mask[row, :length] == 1) and np.all(batch.mask[row, length:] == 0)
        assert np.all(batch.observations[row, length:] == 0)
        assert np.all(np.abs(batch.observations[row, 0]) <= 0.05)  # a fresh reset state
    assert batch.env_steps >= batch.useful_steps
    assert not batch.truncated.any()  # an untrained policy fails long before 500 steps
    again = collect(envs, categorical_policy(forward), 7, np.random.default_rng(0), 5)
    np.testing.assert_array_equal(batch.observations, again.observations)


def test_collect_pendulum_clips_what_it_sends() -> None:
    envs = make_envs("InvertedPendulum-v5", 2)
    forward = networks.NumpyForward(networks.build_gaussian_policy(4, (8,), 1, seed=0))
    space = envs.single_action_space
    batch = collect(
        envs, gaussian_policy(forward, space.low, space.high), 2, np.random.default_rng(0), 1
    )
    assert batch.actions.shape == (*batch.mask.shape, 1) and batch.actions.dtype == np.float32
    mean, _ = networks.NumpyForward(networks.build_gaussian_policy(4, (8,), 1, seed=0))(
        np.zeros((1, 4))
    )
    assert np.all(np.abs(mean) <= 3.0)


def test_greedy_mean_gives_up_early_with_an_upper_bound() -> None:
    envs = make_envs("CartPole-v1", 4)
    forward = networks.NumpyForward(networks.build_categorical_policy(4, (8,), 2, seed=0))
    policy = categorical_policy(forward, greedy=True)
    full, finished = greedy_mean(envs, policy, 0.0, 500, seed=3)
    assert finished and 0 < full < 500
    bound, finished = greedy_mean(envs, policy, 475.0, 500, seed=3)
    assert not finished and full <= bound < 475.0


def test_truncated_episodes_bootstrap_the_critic_target() -> None:
    """With one critic step the reported critic loss is Huber(G + gamma^(T-t) V(s_T), V(s_t))
    under the critic as it was before the step."""
    settings = TrainingSettings(baseline=True, critic_steps=1)
    actor = networks.build_categorical_policy(4, (8,), 2, seed=0)
    critic = networks.build_critic(4, (8,), seed=1)
    rng = np.random.default_rng(2)
    observations = rng.normal(size=(1, 5, 4)).astype(np.float32)
    final = rng.normal(size=(1, 4)).astype(np.float32)
    returns = np.array([[4.9, 3.9, 2.97, 1.99, 1.0]], dtype=np.float32)
    mask = np.ones((1, 5), dtype=np.float32)
    tails = tail_discounts(np.array([5]), np.array([True]), 5, 0.99)
    values = critic(observations[0]).numpy()[:, 0]
    targets = returns[0] + tails[0] * critic(final).numpy()[0, 0]
    expected = float(huber(tf.constant(targets), tf.constant(values), tf.ones(5)))
    assert (
        abs(expected - float(huber(tf.constant(returns[0]), tf.constant(values), tf.ones(5))))
        > 1e-3
    )  # the bootstrap matters here
    losses = Learner(settings, actor, critic).update(
        observations, np.zeros((1, 5), np.int32), returns, mask, mask, final, tails
    )
    np.testing.assert_allclose(losses["critic_loss"], expected, rtol=1e-5)
    assert keras.ops.all(keras.ops.isfinite(critic.weights[0]))
