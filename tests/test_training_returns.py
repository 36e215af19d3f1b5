"""Discounted returns and standardisation, against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.returns import discounted_returns, standardise


def test_single_episode_returns_by_hand() -> None:
    # G_2 = 1, G_1 = 1 + 0.5 * 1 = 1.5, G_0 = 1 + 0.5 * 1.5 = 1.75
    np.testing.assert_allclose(discounted_returns([1.0, 1.0, 1.0], 0.5), [1.75, 1.5, 1.0])


def test_returns_with_varied_rewards_by_hand() -> None:
    # G_2 = 3, G_1 = 2 + 0.9 * 3 = 4.7, G_0 = 0 + 0.9 * 4.7 = 4.23
    np.testing.assert_allclose(discounted_returns([0.0, 2.0, 3.0], 0.9), [4.23, 4.7, 3.0])


def test_padded_batch_keeps_episodes_apart() -> None:
    rewards = np.array([[1.0, 2.0, 99.0], [1.0, 1.0, 1.0]])  # 99 is padding
    mask = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    returns = discounted_returns(rewards, 0.9, mask)
    # row 0: G_1 = 2, G_0 = 1 + 0.9 * 2 = 2.8; row 1: 1, 1.9, 2.71
    np.testing.assert_allclose(returns, [[2.8, 2.0, 0.0], [2.71, 1.9, 1.0]])


def test_gamma_one_is_reward_to_go() -> None:
    np.testing.assert_allclose(discounted_returns([1.0, 2.0, 3.0, 4.0], 1.0), [10, 9, 7, 4])


def test_standardise_by_hand() -> None:
    # mean 2, population std sqrt(2/3)
    expected = np.array([-1.0, 0.0, 1.0]) / math.sqrt(2.0 / 3.0)
    np.testing.assert_allclose(
        np.asarray(standardise(np.array([1.0, 2.0, 3.0]))), expected, rtol=1e-6
    )


def test_standardise_masked_per_episode_ignores_padding() -> None:
    values = np.array([[1.0, 3.0, 1000.0], [5.0, 5.0, 8.0]])
    mask = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    out = np.asarray(standardise(values, mask, axis=-1))
    # row 0: mean 2, std 1 -> [-1, 1]; row 1: mean 6, std sqrt(2) -> [-1, -1, 2] / sqrt(2)
    np.testing.assert_allclose(out[0], [-1.0, 1.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(out[1], np.array([-1.0, -1.0, 2.0]) / math.sqrt(2.0), rtol=1e-6)


def test_standardise_constant_uses_epsilon_not_nan() -> None:
    out = np.asarray(standardise(np.array([4.0, 4.0, 4.0])))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, 0.0)


@pytest.mark.parametrize("axis", [None, -1])
def test_standardise_gives_mean_zero_std_one(axis) -> None:
    values = np.random.default_rng(0).normal(3.0, 2.0, size=(3, 50))
    out = np.asarray(standardise(values, axis=axis))
    np.testing.assert_allclose(out.mean(axis=axis), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=axis), 1.0, atol=1e-5)
