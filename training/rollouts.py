"""Vectorised rollouts that return batches of complete episodes under the current policy.

Every collection resets the environments with a seed derived from the run's seed and the
update counter and keeps the first K episodes to start (see :func:`collect`). Environments
with nothing left to do keep stepping (a vector env steps all of them): their steps count as
environment steps but are not learned from.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers.vector import NormalizeObservation, RecordEpisodeStatistics

from agents.model_config import keras_arrays, plan_of_keras_model
from training.distributions import distribution_for

# policy(observations, rng) -> (actions for env.step, actions to learn from)
Policy = Callable[[np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


class NumpyForward:
    """A NumPy copy of a policy for sampling: ``refresh()`` after each update, then call it.

    It is the agents' own forward pass (one implementation for acting and for rollouts): the
    model's config is read once here, and each refresh only copies the current arrays out.
    Categorical models return logits (n, actions); Gaussian ones (mean, log_std).
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self._plan = plan_of_keras_model(model)
        self._read_arrays = keras_arrays(model, self._plan)
        outputs = len(self._plan.output_names)
        self.outputs = 0 if outputs == 1 else tuple(range(outputs))
        self.refresh()

    def refresh(self) -> None:
        """Re-read the weights (they change with every update)."""
        self._forward = self._plan.bind(self._read_arrays(), self.outputs)

    def __call__(self, observations: np.ndarray):
        return self._forward(np.asarray(observations, dtype=np.float32))


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


@dataclass
class Rollout:
    """``steps`` consecutive steps of every environment, time-major (T, N, ...).

    Gymnasium's next-step autoreset makes the step after an episode's end a reset step: its
    action is ignored, its reward is 0 and it belongs to no episode, so ``valid`` is False
    there and the loss skips it. ``observations`` has T + 1 entries: entry t + 1 is what step
    t returned (after a time-limit truncation, the episode's final observation).
    """

    observations: np.ndarray  # (T + 1, N, obs) float32
    actions: np.ndarray  # (T, N) int or (T, N, act) float32: the actions to learn from
    rewards: np.ndarray  # (T, N) float32
    terminated: np.ndarray  # (T, N) bool: the episode failed at this step
    ended: np.ndarray  # (T, N) bool: failed or cut by the time limit
    valid: np.ndarray  # (T, N) bool: False on autoreset steps
    scores: np.ndarray  # (E,) float: total reward of each episode that ended in the rollout
    lengths: np.ndarray  # (E,) int: their lengths

    @property
    def env_steps(self) -> int:
        """Every environment step taken, autoreset steps included."""
        return int(self.valid.size)

    @property
    def trained_steps(self) -> int:
        """The steps the update learns from (autoreset steps excluded)."""
        return int(self.valid.sum())


class RolloutCollector:
    """Fixed-length rollouts over vectorised environments whose episodes run on across
    rollouts (PPO's way): the environments, the current observations, whether each
    environment's next step is an autoreset step, and the running episode scores persist
    between calls of :meth:`collect`. Call :meth:`reset` once before the first rollout.
    ``normalise_observations``: gymnasium's ``NormalizeObservation`` standardises them as the
    environments return them, its statistics ``obs_rms`` taking every observation, resets
    included (as SB3's ``VecNormalize``); they are part of :meth:`state`."""

    def __init__(self, envs: gym.vector.VectorEnv, normalise_observations: bool = False) -> None:
        check_next_step_autoreset(envs)
        self.envs = NormalizeObservation(envs) if normalise_observations else envs
        self.obs_rms = self.envs.obs_rms if normalise_observations else None
        self.started = False

    def reset(self, reset_seed: int) -> None:
        """Start fresh episodes in every environment."""
        num_envs = self.envs.num_envs
        self.observations, _ = self.envs.reset(seed=reset_seed)
        self.resetting = np.zeros(num_envs, dtype=bool)  # the next step is an autoreset step
        self.episode_scores = np.zeros(num_envs, dtype=np.float64)
        self.episode_lengths = np.zeros(num_envs, dtype=np.int64)
        self.started = True

    def collect(self, policy: Policy, steps: int, rng: np.random.Generator) -> Rollout:
        """Step every environment ``steps`` times under ``policy``."""
        first, log, scores, lengths = self.observations, [], [], []
        for _ in range(steps):
            env_actions, learned_actions = policy(self.observations, rng)
            observations, rewards, terminated, truncated, _ = self.envs.step(env_actions)
            valid = ~self.resetting
            ended = (terminated | truncated) & valid
            self.episode_scores += np.where(valid, rewards, 0.0)
            self.episode_lengths += valid
            scores.extend(self.episode_scores[ended])
            lengths.extend(self.episode_lengths[ended])
            self.episode_scores[ended] = 0.0
            self.episode_lengths[ended] = 0
            log.append((observations, learned_actions, rewards, terminated & valid, ended, valid))
            self.resetting = ended
            self.observations = observations
        obs, actions, rewards, terminated, ended, valid = map(np.asarray, zip(*log, strict=True))
        return Rollout(
            np.asarray([first, *obs], dtype=np.float32),
            actions if actions.dtype.kind in "iu" else actions.astype(np.float32),
            rewards.astype(np.float32),
            terminated,
            ended,
            valid,
            np.asarray(scores, dtype=np.float64),
            np.asarray(lengths, dtype=np.int64),
        )

    def state(self) -> dict[str, np.ndarray]:
        """The episodes in flight (the collector's and the environments' side) and any
        observation statistics, as arrays."""
        own = {name: np.array(getattr(self, name)) for name in IN_FLIGHT}
        if self.obs_rms is not None:
            own.update({f"obs_rms/{k}": np.array(getattr(self.obs_rms, k)) for k in RMS_FIELDS})
        environments = environment_state(self.envs)
        return {**own, **{f"env/{key}": value for key, value in environments.items()}}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Continue the episodes :meth:`state` saved, exactly where they were."""
        prefix = "env/"
        restore_environment_state(
            self.envs, {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
        )
        for name in IN_FLIGHT:
            setattr(self, name, np.array(arrays[name]))
        for key in RMS_FIELDS if self.obs_rms is not None else ():  # after the reset above
            setattr(self.obs_rms, key, np.array(arrays[f"obs_rms/{key}"]))
        self.started = True


#: The collector's side of the episodes in flight, and a gymnasium ``RunningMeanStd``'s fields.
IN_FLIGHT = ("observations", "resetting", "episode_scores", "episode_lengths")
RMS_FIELDS = ("mean", "var", "count")


# --- environment state, for resuming runs whose episodes span updates -------------------------
def _generator_state(generator: np.random.Generator) -> np.ndarray:
    """A NumPy generator's state as a JSON string array (its integers exceed 64 bits)."""
    return np.asarray(json.dumps(generator.bit_generator.state))


def _set_generator_state(generator: np.random.Generator, state: np.ndarray) -> None:
    generator.bit_generator.state = json.loads(str(state))


def environment_state(envs: gym.vector.VectorEnv) -> dict[str, np.ndarray]:
    """Everything that decides how ``envs`` continue, as plain arrays (npz, no pickle).

    Supports the two kinds of vector env the tasks use: gymnasium's native CartPole vector
    env, and a synchronous vector env of MuJoCo environments (MuJoCo's full integration
    state, which makes the continuation exact). Anything else is refused.
    """
    from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv
    from gymnasium.vector import SyncVectorEnv

    vector = envs.unwrapped
    if isinstance(vector, CartPoleVectorEnv):
        return {
            "state": np.array(vector.state),
            "steps": np.array(vector.steps),
            "prev_done": np.array(vector.prev_done),
            "rng": _generator_state(vector.np_random),
        }
    if isinstance(vector, SyncVectorEnv) and all(_is_mujoco(env) for env in vector.envs):
        import mujoco

        # MuJoCo's complete integration state: positions, velocities, controls, warm-start...
        signature = mujoco.mjtState.mjSTATE_INTEGRATION
        arrays: dict[str, np.ndarray] = {"autoreset": np.array(vector._autoreset_envs)}
        for i, env in enumerate(vector.envs):
            physics = env.unwrapped
            state = np.empty(mujoco.mj_stateSize(physics.model, signature))
            mujoco.mj_getState(physics.model, physics.data, state, signature)
            arrays[f"{i}/physics"] = state
            arrays[f"{i}/elapsed_steps"] = np.asarray(_time_limit(env)._elapsed_steps)
            arrays[f"{i}/rng"] = _generator_state(physics.np_random)
        return arrays
    raise ValueError(f"cannot save the state of {vector} to resume it")


def restore_environment_state(envs: gym.vector.VectorEnv, arrays: dict[str, np.ndarray]) -> None:
    """Put ``envs`` (freshly made) back into the state :func:`environment_state` saved."""
    import mujoco

    envs.reset(seed=0)  # initialises every layer (order checks, buffers); then overwritten
    vector = envs.unwrapped
    if "state" in arrays:
        vector.state = np.array(arrays["state"])
        vector.steps = np.array(arrays["steps"])
        vector.prev_done = np.array(arrays["prev_done"])
        _set_generator_state(vector.np_random, arrays["rng"])
        return
    vector._autoreset_envs = np.array(arrays["autoreset"])
    signature = mujoco.mjtState.mjSTATE_INTEGRATION
    for i, env in enumerate(vector.envs):
        physics = env.unwrapped
        mujoco.mj_setState(physics.model, physics.data, arrays[f"{i}/physics"], signature)
        _time_limit(env)._elapsed_steps = int(arrays[f"{i}/elapsed_steps"])
        _set_generator_state(physics.np_random, arrays[f"{i}/rng"])


def _is_mujoco(env: gym.Env) -> bool:
    from gymnasium.envs.mujoco.mujoco_env import MujocoEnv

    return isinstance(env.unwrapped, MujocoEnv)


def _time_limit(env: gym.Env) -> gym.wrappers.TimeLimit:
    while not isinstance(env, gym.wrappers.TimeLimit):
        env = env.env
    return env
