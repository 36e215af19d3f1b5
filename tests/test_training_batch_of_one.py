"""With one environment and one episode per update, our batched update is the course's.

The course's per-episode computation is written out plainly here (its own networks from
``course_networks``, a Python loop for the returns, a GradientTape over the whole episode,
tensorflow-probability for the Normal) and compared with the scripts' own losses and updates
(``training.reinforce``, ``training.gaussian_actor_critic``) on a fixed episode, their
networks built by the course presets.
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

from training import gaussian_actor_critic, reinforce
from training.distributions import Categorical
from training.returns import discounted_returns, per_step, step_discounts
from training.rollouts import make_envs
from training.tasks import TASKS

GAMMA = 0.99
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


def course_algorithm(script, **changes):
    """The script's algorithm with its course preset (one environment, as the course)."""
    settings = script.preset("course", **changes)
    return script.algorithm_class(settings, make_envs(TASKS[settings.agent].env_id, 1))


def reinforce_gradients(algorithm, observations, actions, advantages):
    """reinforce.py's actor loss on one episode, and its gradients."""
    mask = np.ones((1, EPISODE_LENGTH), dtype=np.float32)
    discounts = step_discounts(mask, GAMMA, True)
    with tf.GradientTape() as tape:
        policy = Categorical(per_step(algorithm.actor, observations[None]))
        loss = reinforce.actor_loss(
            policy.log_prob(actions[None]),
            policy.entropy(),
            advantages,
            discounts,
            mask,
            algorithm.settings,
        )
    return loss, tape.gradient(loss, algorithm.actor.trainable_variables)


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
    algorithm = course_algorithm(reinforce.SCRIPT)
    policy = course_cartpole_policy()
    returns = course_returns(rewards)

    with tf.GradientTape() as tape:  # the course, verbatim in spirit
        probabilities = policy(observations)
        chosen = tf.reduce_sum(probabilities * tf.one_hot(actions, 2), axis=1)
        discounts = tf.pow(GAMMA, tf.range(EPISODE_LENGTH, dtype=tf.float32))
        course_loss = -tf.reduce_sum(discounts * returns * tf.math.log(chosen))
    course = tape.gradient(course_loss, policy.trainable_variables)

    ours_returns = discounted_returns(rewards[None], GAMMA, np.ones((1, EPISODE_LENGTH)))
    advantages = tf.constant(ours_returns, tf.float32)
    loss, ours = reinforce_gradients(algorithm, observations, actions, advantages)
    np.testing.assert_allclose(float(loss), float(course_loss), rtol=TOLERANCE)
    assert_gradients_equal(ours, course)


def course_critic_steps(critic, observations, returns, learning_rate):
    """The course's 10 critic steps: Keras' Huber loss, Adam with clipnorm 1."""
    optimizer = keras.optimizers.Adam(learning_rate, clipnorm=1.0)
    huber = keras.losses.Huber()
    for _ in range(10):
        with tf.GradientTape() as tape:
            critic_loss = huber(returns[:, None], critic(observations))
        gradients = tape.gradient(critic_loss, critic.trainable_variables)
        optimizer.apply_gradients(zip(gradients, critic.trainable_variables, strict=True))


def course_standardised(returns, values):
    advantages = returns - values
    return (advantages - advantages.mean()) / (advantages.std() + 1e-8)


def update_on_episode(algorithm, observations, actions, rewards):
    """The script's own compiled update on one whole episode (no bootstrap), as the course."""
    mask = np.ones((1, EPISODE_LENGTH), dtype=np.float32)
    returns = discounted_returns(rewards[None], GAMMA, mask).astype(np.float32)
    finals, tails = np.zeros((1, 4), np.float32), np.zeros_like(mask)
    discounts = step_discounts(mask, GAMMA, True)
    return algorithm.update(
        observations[None], actions[None], returns, discounts, mask, finals, tails
    )


def assert_weights_equal(ours: list, course: list) -> None:
    for mine, theirs in zip(ours, course, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=TOLERANCE, atol=TOLERANCE)


def test_gaussian_variant_full_update_equals_course() -> None:
    """Variant 5: V recorded before the critic's 10 Huber steps, then one actor step on the
    standardised weight with tensorflow-probability's Normal, both with Adam(clipnorm=1);
    compare the weights afterwards."""
    observations, actions, rewards = fixed_episode(gaussian=True)
    course_actor, the_course_critic = course_pendulum_actor(), course_critic()
    returns = course_returns(rewards)
    values = the_course_critic(observations)[:, 0].numpy()  # recorded while acting
    course_critic_steps(the_course_critic, observations, returns, 1e-4)
    advantages = course_standardised(returns, values)
    with tf.GradientTape() as tape:
        mean, log_std = course_actor(observations)
        normal = tfp.distributions.Normal(mean[:, 0], tf.exp(log_std[:, 0]))
        discounts = tf.pow(GAMMA, tf.range(EPISODE_LENGTH, dtype=tf.float32))
        course_loss = -tf.reduce_sum(discounts * advantages * normal.log_prob(actions[:, 0]))
    variables = course_actor.trainable_variables
    gradients = tape.gradient(course_loss, variables)
    keras.optimizers.Adam(3e-5, clipnorm=1.0).apply_gradients(
        zip(gradients, variables, strict=True)
    )

    algorithm = course_algorithm(gaussian_actor_critic.SCRIPT)
    loss, *_ = update_on_episode(algorithm, observations, actions, rewards)
    np.testing.assert_allclose(float(loss), float(course_loss), rtol=1e-5)
    assert_weights_equal(
        algorithm.actor.get_weights(), in_role_order(course_actor, course_actor.get_weights())
    )
    assert_weights_equal(algorithm.critic.get_weights(), the_course_critic.get_weights())
    assert not np.allclose(
        algorithm.actor.get_weights()[0], course_pendulum_actor().get_weights()[0]
    )


def test_normalised_variant_full_update_equals_course() -> None:
    """Variant 4: V recorded before the critic's 10 Huber steps, then one actor step on the
    standardised weight, both with Adam(clipnorm=1); compare the weights afterwards."""
    observations, actions, rewards = fixed_episode()
    from training import reinforce_normalised

    algorithm = course_algorithm(reinforce_normalised.SCRIPT)
    course_policy, the_course_critic = course_cartpole_policy(), course_critic()

    returns = course_returns(rewards)
    values = the_course_critic(observations)[:, 0].numpy()  # recorded while acting
    course_critic_steps(the_course_critic, observations, returns, 1e-4)
    advantages = course_standardised(returns, values)
    actor_optimizer = keras.optimizers.Adam(3e-5, clipnorm=1.0)
    with tf.GradientTape() as tape:
        probabilities = course_policy(observations)
        chosen = tf.reduce_sum(probabilities * tf.one_hot(actions, 2), axis=1)
        discounts = tf.pow(GAMMA, tf.range(EPISODE_LENGTH, dtype=tf.float32))
        loss = -tf.reduce_sum(discounts * advantages * tf.math.log(chosen))
    gradients = tape.gradient(loss, course_policy.trainable_variables)
    actor_optimizer.apply_gradients(zip(gradients, course_policy.trainable_variables, strict=True))

    update_on_episode(algorithm, observations, actions, rewards)
    assert_weights_equal(algorithm.actor.get_weights(), course_policy.get_weights())
    assert_weights_equal(algorithm.critic.get_weights(), the_course_critic.get_weights())
    assert not np.allclose(
        algorithm.actor.get_weights()[0], course_cartpole_policy().get_weights()[0]
    )
