"""With one environment and one episode per update, our batched update is the course's.

The course's per-episode computation is written out plainly here (its own networks from
``course_networks``, a Python loop for the returns, a GradientTape over the whole episode,
tensorflow-probability for the Normal) and compared with ``training.algorithm`` on a fixed
episode, our networks built with the course presets' seeds.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from course_networks import (
    course_cartpole_policy,
    course_critic,
    course_pendulum_actor,
    in_role_order,
)

from training import networks
from training.algorithm import (
    Learner,
    actor_loss,
    advantages_of,
    policy_distribution,
    step_discounts,
)
from training.distributions import Categorical, Gaussian
from training.presets import CRITIC_SEED_OFFSET, GAMMA, LAYER_SEED_STEP, SEED
from training.returns import discounted_returns
from training.settings import TrainingSettings

EPISODE_LENGTH = 23
TOLERANCE = 1e-6


def fixed_episode(gaussian: bool = False):
    rng = np.random.default_rng(11)
    observations = rng.normal(scale=0.5, size=(EPISODE_LENGTH, 4)).astype(np.float32)
    if gaussian:
        actions = rng.normal(scale=1.0, size=(EPISODE_LENGTH, 1)).astype(np.float32)
    else:
        actions = rng.integers(0, 2, size=EPISODE_LENGTH).astype(np.int32)
    rewards = np.ones(EPISODE_LENGTH, dtype=np.float32)
    return observations, actions, rewards


def course_returns(rewards, gamma=GAMMA):
    returns, running = [], 0.0
    for reward in reversed(rewards):
        running = reward + gamma * running
        returns.insert(0, running)
    return np.array(returns, dtype=np.float32)


def batched_gradients(actor, observations, actions, advantages, gaussian):
    """Our loss on a batch holding this one episode (sum over the batch, gamma^t discounts)."""
    mask = np.ones((1, EPISODE_LENGTH), dtype=np.float32)
    discounts = step_discounts(mask, GAMMA, True)
    family = Gaussian if gaussian else Categorical
    with tf.GradientTape() as tape:
        distribution = policy_distribution(actor, observations[None], family)
        loss, _ = actor_loss(distribution, actions[None], advantages, discounts, mask, "sum")
    return loss, tape.gradient(loss, actor.trainable_variables)


def assert_gradients_equal(ours, course) -> None:
    """Equal to 1e-6 relative to each gradient's scale: the two computations order their
    float32 operations differently (log-softmax against log of softmax), and the gradients
    reach thousands, so elementwise float32 agreement is about 1e-7 of the largest entry."""
    for mine, theirs in zip(ours, course, strict=True):
        mine, theirs = np.asarray(mine), np.asarray(theirs)
        scale = max(1.0, float(np.abs(theirs).max()))
        assert float(np.abs(mine - theirs).max()) <= TOLERANCE * scale


def test_reinforce_gradient_equals_course_episode_update() -> None:
    observations, actions, rewards = fixed_episode()
    actor = networks.build_categorical_policy(4, (128,), 2, SEED, LAYER_SEED_STEP)
    policy = course_cartpole_policy()
    returns = course_returns(rewards)

    with tf.GradientTape() as tape:  # the course, verbatim in spirit
        probabilities = policy(observations)
        chosen = tf.reduce_sum(probabilities * tf.one_hot(actions, 2), axis=1)
        discounts = tf.pow(GAMMA, tf.range(EPISODE_LENGTH, dtype=tf.float32))
        course_loss = -tf.reduce_sum(discounts * returns * tf.math.log(chosen))
    course = tape.gradient(course_loss, policy.trainable_variables)

    ours_returns = discounted_returns(rewards[None], GAMMA, np.ones((1, EPISODE_LENGTH)))
    advantages = advantages_of(
        tf.constant(ours_returns, tf.float32), None, tf.ones((1, EPISODE_LENGTH)), "none"
    )
    loss, ours = batched_gradients(actor, observations, actions, advantages, gaussian=False)
    np.testing.assert_allclose(float(loss), float(course_loss), rtol=TOLERANCE)
    assert_gradients_equal(ours, course)


def test_gaussian_gradient_with_standardised_baseline_equals_course() -> None:
    observations, actions, rewards = fixed_episode(gaussian=True)
    actor = networks.build_gaussian_policy(4, (256, 256), 1, SEED, LAYER_SEED_STEP)
    course_actor = course_pendulum_actor()
    values = np.linspace(5.0, 1.0, EPISODE_LENGTH).astype(np.float32)  # V recorded while acting
    returns = course_returns(rewards)
    advantages = returns - values
    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

    with tf.GradientTape() as tape:
        mean, log_std = course_actor(observations)
        normal = tfp.distributions.Normal(mean[:, 0], tf.exp(log_std[:, 0]))
        discounts = tf.pow(GAMMA, tf.range(EPISODE_LENGTH, dtype=tf.float32))
        course_loss = -tf.reduce_sum(discounts * advantages * normal.log_prob(actions[:, 0]))
    course = in_role_order(
        course_actor, tape.gradient(course_loss, course_actor.trainable_variables)
    )

    mask = tf.ones((1, EPISODE_LENGTH))
    ours_advantages = advantages_of(
        tf.constant(returns[None]), tf.constant(values[None]), mask, "episode"
    )
    loss, ours = batched_gradients(actor, observations, actions, ours_advantages, gaussian=True)
    np.testing.assert_allclose(float(loss), float(course_loss), rtol=1e-5)
    assert_gradients_equal(ours, course)


def test_normalised_variant_full_update_equals_course() -> None:
    """Variant 4: V recorded before the critic's 10 Huber steps, then one actor step on the
    standardised weight, both with Adam(clipnorm=1); compare the weights afterwards."""
    observations, actions, rewards = fixed_episode()
    settings = TrainingSettings(
        baseline=True,
        critic_steps=10,
        standardise="episode",
        actor_learning_rate=3e-5,
        critic_learning_rate=1e-4,
    )
    actor = networks.build_categorical_policy(4, (128,), 2, SEED, LAYER_SEED_STEP)
    critic = networks.build_critic(4, (128,), SEED + CRITIC_SEED_OFFSET, LAYER_SEED_STEP)
    course_policy, the_course_critic = course_cartpole_policy(), course_critic()

    returns = course_returns(rewards)
    values = the_course_critic(observations)[:, 0].numpy()  # recorded while acting
    critic_optimizer = keras.optimizers.Adam(1e-4, clipnorm=1.0)
    huber = keras.losses.Huber()
    for _ in range(10):
        with tf.GradientTape() as tape:
            critic_loss = huber(returns[:, None], the_course_critic(observations))
        gradients = tape.gradient(critic_loss, the_course_critic.trainable_variables)
        critic_optimizer.apply_gradients(
            zip(gradients, the_course_critic.trainable_variables, strict=True)
        )
    advantages = returns - values
    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    actor_optimizer = keras.optimizers.Adam(3e-5, clipnorm=1.0)
    with tf.GradientTape() as tape:
        probabilities = course_policy(observations)
        chosen = tf.reduce_sum(probabilities * tf.one_hot(actions, 2), axis=1)
        discounts = tf.pow(GAMMA, tf.range(EPISODE_LENGTH, dtype=tf.float32))
        loss = -tf.reduce_sum(discounts * advantages * tf.math.log(chosen))
    gradients = tape.gradient(loss, course_policy.trainable_variables)
    actor_optimizer.apply_gradients(zip(gradients, course_policy.trainable_variables, strict=True))

    learner = Learner(settings, actor, critic, Categorical)
    mask = np.ones((1, EPISODE_LENGTH), dtype=np.float32)
    learner.update(
        observations[None],
        actions[None],
        discounted_returns(rewards[None], GAMMA, mask),
        step_discounts(mask, GAMMA, True),
        mask,
    )
    for model, reference in ((actor, course_policy), (critic, the_course_critic)):
        for mine, theirs in zip(model.get_weights(), reference.get_weights(), strict=True):
            np.testing.assert_allclose(mine, theirs, rtol=TOLERANCE, atol=TOLERANCE)
    assert not np.allclose(actor.get_weights()[0], course_cartpole_policy().get_weights()[0])
