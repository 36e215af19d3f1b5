"""Vectorised rollouts that return batches of complete episodes under the current policy.

Every collection resets the environments with a seed derived from the run's seed and the
update counter and keeps the first K episodes to start (see :func:`collect`). Environments
with nothing left to do keep stepping (a vector env steps all of them): their steps count as
environment steps but are not learned from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium.wrappers.vector import RecordEpisodeStatistics

from training.distributions import distribution_for
from training.networks import NumpyForward

# policy(observations, rng) -> (actions for env.step, actions to learn from)
Policy = Callable[[np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def make_envs(env_id: str, num_envs: int) -> gym.vector.VectorEnv:
    """N copies of ``env_id``: the native vector version when gymnasium has one (CartPole),
    otherwise a synchronous vector env; wrapped to record episode scores."""
    mode = "vector_entry_point" if gym.spec(env_id).vector_entry_point else "sync"
    return RecordEpisodeStatistics(gym.make_vec(env_id, num_envs, vectorization_mode=mode))


def check_next_step_autoreset(envs: gym.vector.VectorEnv) -> None:
    """Refuse vector envs that do not reset on the step after an episode ends.

    The rollouts below rely on next-step autoreset (the step after an episode's end is a reset
    step that belongs to no episode); under same-step or disabled autoreset they would
    silently mix or drop steps.
    """
    mode = envs.metadata.get("autoreset_mode")
    if mode != gym.vector.AutoresetMode.NEXT_STEP:
        raise ValueError(
            f"the rollouts need gymnasium's next-step autoreset, but these environments use "
            f"{mode!r}: make them with autoreset_mode=AutoresetMode.NEXT_STEP"
        )


def make_policy(
    forward: NumpyForward,
    action_space: gym.Space,
    greedy: bool = False,
    learn_clipped: bool = False,
) -> Policy:
    """Sample from (or, ``greedy``, take the mode of) the policy the action space calls for.

    Continuous actions are clipped to the space's bounds before they reach the environment;
    the loss scores the unclipped sample (an unbiased estimate of the gradient), or with
    ``learn_clipped`` the clipped action, as the course does.
    """
    distribution = distribution_for(action_space)
    pick = distribution.mode_numpy if greedy else None
    bounds = (
        (action_space.low, action_space.high) if isinstance(action_space, gym.spaces.Box) else None
    )

    def act(observations: np.ndarray, rng: np.random.Generator):
        outputs = forward(observations)
        actions = pick(outputs) if pick else distribution.sample_numpy(outputs, rng)
        if bounds is None:
            return actions, actions
        clipped = np.clip(actions, *bounds).astype(np.float32)
        return clipped, clipped if learn_clipped else actions

    return act


@dataclass
class EpisodeBatch:
    """Complete episodes padded to the longest: row b holds episode b, ``mask`` marks steps."""

    observations: np.ndarray  # (B, T, obs) float32
    actions: np.ndarray  # (B, T) int32 or (B, T, act) float32
    rewards: np.ndarray  # (B, T) float32
    mask: np.ndarray  # (B, T) float32, 1 on real steps
    lengths: np.ndarray  # (B,) int
    scores: np.ndarray  # (B,) float, the episodes' total rewards
    env_steps: int  # every environment step taken, in the batch's episodes or not
    final_observations: np.ndarray  # (B, obs) float32, the observation after the last step
    truncated: np.ndarray  # (B,) bool, ended by the time limit rather than by failing

    @property
    def trained_steps(self) -> int:
        """Steps of the batch's episodes: the ones the update learns from."""
        return int(self.lengths.sum())


def collect(
    envs: gym.vector.VectorEnv,
    policy: Policy,
    num_episodes: int,
    rng: np.random.Generator,
    reset_seed: int,
) -> EpisodeBatch:
    """Step the environments until the first ``num_episodes`` episodes to START have ended.

    Whether an episode is in the batch is decided when it starts, before its length is known,
    so the batch is an unbiased sample of the policy's episodes (taking the first episodes to
    END would favour short ones). An environment whose episode ends starts the next accepted
    episode, if any is left, so few steps are wasted. Uses gymnasium's default next-step
    autoreset: the step after an episode's end is a reset step (action ignored, reward 0),
    which belongs to no episode.
    """
    check_next_step_autoreset(envs)
    num_envs = envs.num_envs
    episode_of = np.where(np.arange(num_envs) < num_episodes, np.arange(num_envs), -1)
    started = min(num_envs, num_episodes)
    previous_done = np.zeros(num_envs, dtype=bool)
    observations, _ = envs.reset(seed=reset_seed)
    observation_log, action_log, reward_log, id_log = [], [], [], []
    scores = np.zeros(num_episodes, dtype=np.float64)
    final_observations = np.zeros(
        (num_episodes, envs.single_observation_space.shape[0]), dtype=np.float32
    )
    cut = np.zeros(num_episodes, dtype=bool)
    while (episode_of >= 0).any():
        env_actions, learned_actions = policy(observations, rng)
        next_observations, rewards, terminated, truncated, info = envs.step(env_actions)
        done = terminated | truncated
        ids = np.where(previous_done, -1, episode_of)
        observation_log.append(observations)
        action_log.append(learned_actions)
        reward_log.append(rewards)
        id_log.append(ids)
        ended = done & (ids >= 0)
        for i in np.flatnonzero(ended):
            scores[ids[i]] = info["episode"]["r"][i]
            final_observations[ids[i]] = next_observations[i]  # next-step autoreset
            cut[ids[i]] = truncated[i] and not terminated[i]
            if started < num_episodes:
                episode_of[i] = started
                started += 1
            else:
                episode_of[i] = -1
        previous_done = done
        observations = next_observations
    return _to_batch(
        observation_log, action_log, reward_log, id_log, scores, final_observations, cut
    )


def _to_batch(
    observation_log, action_log, reward_log, id_log, scores, final_observations, cut
) -> EpisodeBatch:
    """Gather each episode's steps (in time order) into row ``episode id`` of padded arrays."""
    ids = np.asarray(id_log)  # (T, N)
    steps, envs = np.nonzero(ids >= 0)  # time-major, so each episode's steps stay in order
    episode = ids[steps, envs]
    order = np.argsort(episode, kind="stable")
    steps, envs, episode = steps[order], envs[order], episode[order]
    lengths = np.bincount(episode, minlength=len(scores))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    position = np.arange(len(episode)) - starts[episode]
    batch, horizon = len(scores), int(lengths.max())
    mask = np.zeros((batch, horizon), dtype=np.float32)
    mask[episode, position] = 1.0
    observations = np.asarray(observation_log, dtype=np.float32)
    out_observations = np.zeros((batch, horizon, observations.shape[-1]), dtype=np.float32)
    out_observations[episode, position] = observations[steps, envs]
    actions = np.asarray(action_log)
    action_dtype = np.int32 if actions.ndim == 2 else np.float32
    out_actions = np.zeros((batch, horizon, *actions.shape[2:]), dtype=action_dtype)
    out_actions[episode, position] = actions[steps, envs]
    out_rewards = np.zeros((batch, horizon), dtype=np.float32)
    out_rewards[episode, position] = np.asarray(reward_log, dtype=np.float32)[steps, envs]
    return EpisodeBatch(
        out_observations,
        out_actions,
        out_rewards,
        mask,
        lengths.astype(np.int64),
        scores,
        int(ids.size),
        final_observations,
        cut,
    )


def greedy_mean(
    envs: gym.vector.VectorEnv,
    policy: Policy,
    threshold: float,
    max_reward_per_episode: float,
    seed: int,
) -> tuple[float, bool]:
    """Mean score of one greedy episode per environment, or an upper bound on it once the
    threshold is out of reach (so a failing check stops early).

    Assumes rewards of at most 1 a step, true for both tasks: an unfinished episode can still
    gain ``max_reward_per_episode`` minus its length. Returns (mean or bound, finished).
    """
    num_envs = envs.num_envs
    observations, _ = envs.reset(seed=seed)
    totals = np.zeros(num_envs)
    lengths = np.zeros(num_envs)
    running = np.ones(num_envs, dtype=bool)
    rng = np.random.default_rng(seed)
    while running.any():
        actions, _ = policy(observations, rng)
        observations, rewards, terminated, truncated, _ = envs.step(actions)
        totals += rewards * running
        lengths += running
        running &= ~(terminated | truncated)
        best = totals + np.where(running, max_reward_per_episode - lengths, 0.0)
        if best.mean() < threshold:
            return float(best.mean()), False
    return float(totals.mean()), True
