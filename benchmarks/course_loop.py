"""The course's training loop as taught, for benchmarks/training_speed.py to race against.

python benchmarks/course_loop.py --agent cartpole --seed 1 --cap 60

A Keras call per environment step and one update per episode: CartPole runs variant 4
(baseline, 10 critic steps, standardised weight, learning rates 3e-5 / 1e-4), the pendulum
variant 5 (Gaussian 256-256 actor, same updates). It stops when a greedy evaluation solves the
task or at the cap, and prints a JSON report as its last line. It is written out here on
purpose, independent of training/: it is the baseline being measured.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.tasks import TASKS

GAMMA = 0.99
RUNNING_WINDOW = 30
EVAL_EPISODES = 20


def course_worker(task: str, seed: int, cap: float) -> dict:
    """The course's training loop as taught: a Keras call per step, an update per episode.

    CartPole runs variant 4 (baseline, 10 critic steps, standardised weight, lrs 3e-5/1e-4);
    the pendulum runs variant 5 (Gaussian 256-256 actor, same updates). Stops at the cap.
    """
    import gymnasium as gym
    import keras
    import numpy as np
    import tensorflow as tf
    import tensorflow_probability as tfp

    from agents import AGENT_CLASSES
    from agents.evaluation import evaluate
    from training.gaussian_actor_critic import critic_network, gaussian_policy
    from training.reinforce import mlp, with_softmax

    keras.utils.set_random_seed(seed)
    env_id, threshold = TASKS[task].env_id, TASKS[task].solve_score
    env = gym.make(env_id)
    pendulum = task == "pendulum"
    if pendulum:
        actor = gaussian_policy(4, (256, 256), 1, seed, 1)
        policy = actor
    else:
        actor = mlp(4, (128,), 2, seed, 1, "policy_logits")
        policy = with_softmax(actor)
    critic = critic_network(4, (128,), seed + 100, 1)
    actor_optimizer = keras.optimizers.Adam(3e-5, clipnorm=1.0)
    critic_optimizer = keras.optimizers.Adam(1e-4, clipnorm=1.0)
    huber = keras.losses.Huber()
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    steps, episode_rewards, solved_at = 0, [], None
    episode = 0
    while time.perf_counter() - start < cap:
        observation, _ = env.reset(seed=seed + episode)
        observations, actions, rewards, values = [], [], [], []
        done = False
        while not done and time.perf_counter() - start < cap:
            batch = tf.convert_to_tensor(observation[None], tf.float32)
            values.append(float(critic(batch)[0, 0]))  # V recorded while acting
            if pendulum:
                mean, log_std = policy(batch)
                sample = tfp.distributions.Normal(mean[0, 0], tf.exp(log_std[0, 0])).sample()
                action = float(sample)
                env_action = np.array([np.clip(action, -3.0, 3.0)], dtype=np.float32)
            else:
                probabilities = policy(batch).numpy()[0].astype(np.float64)
                action = int(rng.choice(2, p=probabilities / probabilities.sum()))
                env_action = action
            next_observation, reward, terminated, truncated, _ = env.step(env_action)
            observations.append(observation)
            actions.append(action)
            rewards.append(reward)
            observation = next_observation
            done = terminated or truncated
            steps += 1
        if not done:
            break  # the cap fell mid-episode
        episode += 1
        episode_rewards.append(sum(rewards))
        returns, running = [], 0.0
        for reward in reversed(rewards):
            running = reward + GAMMA * running
            returns.insert(0, running)
        returns = np.array(returns, dtype=np.float32)
        states = tf.convert_to_tensor(np.array(observations), tf.float32)
        for _ in range(10):
            with tf.GradientTape() as tape:
                loss = huber(returns[:, None], critic(states))
            critic_optimizer.apply_gradients(
                zip(
                    tape.gradient(loss, critic.trainable_variables),
                    critic.trainable_variables,
                    strict=True,
                )
            )
        advantages = returns - np.array(values, dtype=np.float32)
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        discounts = GAMMA ** np.arange(len(rewards), dtype=np.float32)
        with tf.GradientTape() as tape:
            if pendulum:
                mean, log_std = actor(states)
                log_probabilities = tfp.distributions.Normal(
                    mean[:, 0], tf.exp(log_std[:, 0])
                ).log_prob(np.array(actions, np.float32))
            else:
                chosen = tf.reduce_sum(policy(states) * tf.one_hot(actions, 2), axis=1)
                log_probabilities = tf.math.log(chosen)
            loss = -tf.reduce_sum(discounts * advantages * log_probabilities)
        actor_optimizer.apply_gradients(
            zip(
                tape.gradient(loss, actor.trainable_variables),
                actor.trainable_variables,
                strict=True,
            )
        )
        running_reward = float(np.mean(episode_rewards[-RUNNING_WINDOW:]))
        if running_reward >= threshold and episode % 10 == 0:
            agent = AGENT_CLASSES[task](policy, seed=seed)
            if evaluate(agent, env_id, EVAL_EPISODES, seed + 10_000).mean >= threshold:
                solved_at = time.perf_counter() - start
                break
    seconds = time.perf_counter() - start
    return {
        "steps": steps,
        "train_seconds": seconds,
        "steps_per_second": steps / seconds,
        "episodes": len(episode_rewards),
        "solved_after": solved_at,
        "running_reward": float(np.mean(episode_rewards[-RUNNING_WINDOW:]))
        if episode_rewards
        else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--agent", choices=tuple(TASKS), required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cap", type=float, default=60.0, help="training-time cap, seconds")
    args = parser.parse_args()
    print(json.dumps({"seed": args.seed, **course_worker(args.agent, args.seed, args.cap)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
