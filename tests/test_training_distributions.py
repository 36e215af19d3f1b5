"""The policies' distributions against tensorflow-probability and values worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow_probability as tfp
from gymnasium import spaces

from training.distributions import Categorical, Gaussian, distribution_for


def test_categorical_log_prob_and_entropy_by_hand() -> None:
    logits = np.array([[0.0, math.log(3.0)]], dtype=np.float32)  # probabilities 1/4, 3/4
    distribution = Categorical(logits)
    np.testing.assert_allclose(
        np.asarray(distribution.log_prob(np.array([1]))), [math.log(0.75)], rtol=1e-6
    )
    np.testing.assert_allclose(
        np.asarray(distribution.log_prob(np.array([0]))), [math.log(0.25)], rtol=1e-6
    )
    entropy = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    np.testing.assert_allclose(np.asarray(distribution.entropy()), [entropy], rtol=1e-6)


def test_categorical_matches_tfp() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(5, 7, 3)).astype(np.float32)
    actions = rng.integers(0, 3, size=(5, 7))
    reference = tfp.distributions.Categorical(logits=logits)
    ours = Categorical(logits)
    np.testing.assert_allclose(
        np.asarray(ours.log_prob(actions)),
        reference.log_prob(actions).numpy(),
        rtol=1e-5,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        np.asarray(ours.entropy()), reference.entropy().numpy(), rtol=1e-5, atol=1e-6
    )


def test_gaussian_log_prob_and_entropy_by_hand() -> None:
    mean = np.array([[0.0]], dtype=np.float32)
    log_std = np.array([[0.0]], dtype=np.float32)
    distribution = Gaussian(mean, log_std)
    # N(0, 1) at 1: -1/2 - log(2 pi) / 2; entropy 1/2 + log(2 pi) / 2
    np.testing.assert_allclose(
        np.asarray(distribution.log_prob(np.array([[1.0]]))),
        [-0.5 - 0.5 * math.log(2 * math.pi)],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        np.asarray(distribution.entropy()), [0.5 + 0.5 * math.log(2 * math.pi)], rtol=1e-6
    )
    # sigma = e: log N(e; 0, e) = -1/2 - 1 - log(2 pi) / 2
    wide = Gaussian(mean, np.array([[1.0]], dtype=np.float32))
    np.testing.assert_allclose(
        np.asarray(wide.log_prob(np.array([[math.e]]))),
        [-1.5 - 0.5 * math.log(2 * math.pi)],
        rtol=1e-6,
    )


def test_gaussian_matches_tfp_normal() -> None:
    rng = np.random.default_rng(2)
    mean = rng.uniform(-3, 3, size=(4, 6, 1)).astype(np.float32)
    log_std = rng.uniform(-5, 1, size=(4, 6, 1)).astype(np.float32)
    actions = rng.uniform(-3, 3, size=(4, 6, 1)).astype(np.float32)
    reference = tfp.distributions.Normal(mean, np.exp(log_std))
    ours = Gaussian(mean, log_std)
    np.testing.assert_allclose(
        np.asarray(ours.log_prob(actions)),
        reference.log_prob(actions).numpy()[..., 0],
        rtol=1e-5,
        atol=1e-4,
    )
    np.testing.assert_allclose(
        np.asarray(ours.entropy()), reference.entropy().numpy()[..., 0], rtol=1e-5, atol=1e-6
    )


def test_categorical_sampling_follows_the_probabilities() -> None:
    logits = np.tile(np.log(np.array([0.2, 0.5, 0.3])), (200_000, 1))
    actions = Categorical.sample_numpy(logits, np.random.default_rng(3))
    frequencies = np.bincount(actions, minlength=3) / len(actions)
    np.testing.assert_allclose(frequencies, [0.2, 0.5, 0.3], atol=0.005)


def test_gaussian_sampling_moments_and_seeding() -> None:
    mean = np.full((100_000, 1), 1.5)
    log_std = np.full((100_000, 1), math.log(0.5))
    samples = Gaussian.sample_numpy((mean, log_std), np.random.default_rng(4))
    assert samples.dtype == np.float32
    assert abs(samples.mean() - 1.5) < 0.01
    assert abs(samples.std() - 0.5) < 0.01
    again = Gaussian.sample_numpy((mean, log_std), np.random.default_rng(4))
    np.testing.assert_array_equal(samples, again)


def test_the_action_space_chooses_the_distribution() -> None:
    assert distribution_for(spaces.Discrete(2)) is Categorical
    assert distribution_for(spaces.Box(-3.0, 3.0, (1,))) is Gaussian
    with pytest.raises(ValueError, match="MultiBinary"):
        distribution_for(spaces.MultiBinary(3))
