"""Vectorised rollouts: batches of whole episodes (REINFORCE) or fixed-length rollouts (PPO),
with what PPO computes over a rollout (GAE, VecNormalize-style rewards). A vector env steps
every environment: steps outside a batch's episodes are not learned from."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers.utils import RunningMeanStd
from gymnasium.wrappers.vector import NormalizeObservation, RecordEpisodeStatistics

from agents.model_config import keras_arrays, plan_of_keras_model
from training.distributions import distribution_for

# policy(observations, rng) -> (actions for env.step, actions to learn from)
Policy = Callable[[np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


class NumpyForward:
    """The agents' own NumPy forward pass of a Keras model, so acting and rollouts share one
    implementation; ``refresh()`` after each update copies the new weights out."""

    def __init__(self, model: Any) -> None:
        self._plan = plan_of_keras_model(model)
        self._read_arrays = keras_arrays(model, self._plan)
        outputs = len(self._plan.output_names)
        self._outputs = 0 if outputs == 1 else tuple(range(outputs))
        self.refresh()

    def refresh(self) -> None:
        self._forward = self._plan.bind(self._read_arrays(), self._outputs)

    def __call__(self, observations: np.ndarray):
        """Logits (n, actions) for a categorical policy, (mean, log_std) for a Gaussian one."""
        return self._forward(np.asarray(observations, dtype=np.float32))


def make_envs(env_id: str, num_envs: int) -> gym.vector.VectorEnv:
    """N copies of ``env_id`` recording episode scores, natively vectorised where possible."""
    mode = "vector_entry_point" if gym.spec(env_id).vector_entry_point else "sync"
    return RecordEpisodeStatistics(gym.make_vec(env_id, num_envs, vectorization_mode=mode))


def check_next_step_autoreset(envs: gym.vector.VectorEnv) -> None:
    """Refuse other autoreset modes: under them the rollouts would silently mix or drop steps."""
    mode = envs.metadata.get("autoreset_mode")
    if mode != gym.vector.AutoresetMode.NEXT_STEP:
        raise ValueError(
            f"the rollouts need gymnasium's next-step autoreset, but these environments use "
            f"{mode!r}: make them with autoreset_mode=AutoresetMode.NEXT_STEP"
        )


def make_policy(forward: NumpyForward, space: gym.Space, learn_clipped: bool = False) -> Policy:
    """Sample from the space's distribution. Box actions are clipped for the environment; the
    loss scores the unclipped sample (an unbiased gradient) or, with ``learn_clipped``, the
    clipped action as the course does."""
    distribution = distribution_for(space)
    box = isinstance(space, gym.spaces.Box)

    def act(observations: np.ndarray, rng: np.random.Generator):
        actions = distribution.sample_numpy(forward(observations), rng)
        if not box:
            return actions, actions
        clipped = np.clip(actions, space.low, space.high).astype(np.float32)
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
        return int(self.lengths.sum())


def collect(
    envs: gym.vector.VectorEnv,
    policy: Policy,
    num_episodes: int,
    rng: np.random.Generator,
    reset_seed: int,
) -> EpisodeBatch:
    """Step the environments until the first ``num_episodes`` episodes to START have ended:
    chosen before their length is known, they are an unbiased sample (the first to END would
    favour short ones). The step after an end is a reset step that belongs to no episode."""
    check_next_step_autoreset(envs)
    num_envs = envs.num_envs
    episode_of = np.where(np.arange(num_envs) < num_episodes, np.arange(num_envs), -1)
    started = min(num_envs, num_episodes)
    previous_done = np.zeros(num_envs, dtype=bool)
    observations, _ = envs.reset(seed=reset_seed)
    log = []  # per step: (observations, actions learned from, rewards, episode ids)
    scores = np.zeros(num_episodes, dtype=np.float64)
    size = envs.single_observation_space.shape[0]
    final_observations = np.zeros((num_episodes, size), dtype=np.float32)
    cut = np.zeros(num_episodes, dtype=bool)
    while (episode_of >= 0).any():
        env_actions, learned_actions = policy(observations, rng)
        next_observations, rewards, terminated, truncated, info = envs.step(env_actions)
        done = terminated | truncated
        ids = np.where(previous_done, -1, episode_of)
        log.append((observations, learned_actions, rewards, ids))
        for i in np.flatnonzero(done & (ids >= 0)):
            scores[ids[i]] = info["episode"]["r"][i]
            final_observations[ids[i]] = next_observations[i]  # next-step autoreset
            cut[ids[i]] = truncated[i] and not terminated[i]
            episode_of[i] = started if started < num_episodes else -1  # the next one wanted
            started = min(started + 1, num_episodes)
        previous_done = done
        observations = next_observations

    # Row ``episode id`` of padded arrays gets that episode's steps, in time order.
    observation_log, action_log, reward_log, id_log = zip(*log, strict=True)
    ids = np.asarray(id_log)  # (T, N)
    steps, env = np.nonzero(ids >= 0)  # time-major, so each episode's steps stay in order
    episode = ids[steps, env]
    order = np.argsort(episode, kind="stable")
    steps, env, episode = steps[order], env[order], episode[order]
    lengths = np.bincount(episode, minlength=num_episodes)
    position = np.arange(len(episode)) - np.concatenate([[0], np.cumsum(lengths)[:-1]])[episode]
    horizon = int(lengths.max())

    def pad(log: Any, dtype: type) -> np.ndarray:
        values = np.asarray(log, dtype=dtype)[steps, env]
        out = np.zeros((num_episodes, horizon, *values.shape[1:]), dtype=dtype)
        out[episode, position] = values
        return out

    return EpisodeBatch(
        pad(observation_log, np.float32),
        pad(action_log, np.int32 if np.ndim(action_log[0]) == 1 else np.float32),
        pad(reward_log, np.float32),
        pad(np.ones(ids.shape), np.float32),  # the mask
        lengths.astype(np.int64),
        scores,
        int(ids.size),
        final_observations,
        cut,
    )


@dataclass
class Rollout:
    """``steps`` consecutive steps of every environment, time-major (T, N, ...); the loss skips
    autoreset steps (``valid`` False). ``observations[t + 1]`` is what step t returned (after a
    time-limit cut, the episode's final observation)."""

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
        return int(self.valid.size)

    @property
    def trained_steps(self) -> int:
        return int(self.valid.sum())


# --- what PPO computes over a rollout: advantages, and VecNormalize-style rewards ---------
def gae_advantages(
    rewards: np.ndarray,
    values: np.ndarray,
    next_values: np.ndarray,
    terminated: np.ndarray,
    ended: np.ndarray,
    gamma: float,
    gae_lambda: float,
) -> np.ndarray:
    """GAE over a time-major rollout (T, ...), in float64. ``delta_t = r_t + gamma * (1 -
    terminated_t) * next_values[t] - values[t]``: a failure has no future, a time-limit cut or the
    rollout's end bootstraps from what step t returned. ``A_t = delta_t + gamma * lambda * (1 -
    ended_t) * A_{t+1}`` stops at every episode's end."""
    rewards = np.asarray(rewards, dtype=np.float64)
    future = gamma * (1.0 - np.asarray(terminated, dtype=np.float64))
    continues = gamma * gae_lambda * (1.0 - np.asarray(ended, dtype=np.float64))
    deltas = rewards + future * next_values - np.asarray(values, dtype=np.float64)
    advantages = np.zeros_like(deltas)
    running = np.zeros(deltas.shape[1:])
    for t in range(len(deltas) - 1, -1, -1):
        running = deltas[t] + continues[t] * running
        advantages[t] = running
    return advantages


class RewardNormaliser:
    """Rewards over the running std of each environment's discounted return (valid steps only,
    restarting after every end), clipped to +/- ``clip``, as SB3's ``VecNormalize``. Not gymnasium's
    ``NormalizeReward``: scores stay in the task's units here, and it neither clips, restarts
    after a cut, nor resumes exactly."""

    FIELDS = ("mean", "var", "count")  # the statistics' arrays in the resume state

    def __init__(self, num_envs: int, gamma: float, clip: float = 10.0) -> None:
        self.statistics = RunningMeanStd()
        self.returns = np.zeros(num_envs)
        self.gamma = gamma
        self.clip = clip

    def __call__(self, rewards: np.ndarray, valid: np.ndarray, ended: np.ndarray) -> np.ndarray:
        """A time-major rollout's rewards (T, N), normalised; ``valid`` and ``ended`` (T, N)."""
        rewards = np.asarray(rewards, dtype=np.float64).copy()
        for t, (steps, end) in enumerate(zip(valid, ended, strict=True)):
            self.returns[steps] = self.returns[steps] * self.gamma + rewards[t, steps]
            if steps.any():
                self.statistics.update(self.returns[steps])
            scaled = rewards[t] / np.sqrt(self.statistics.var + 1e-8)  # SB3 and gymnasium
            rewards[t] = np.clip(scaled, -self.clip, self.clip)
            self.returns[end] = 0.0
        return rewards

    def state(self, prefix: str) -> dict[str, np.ndarray]:
        arrays = {f"{prefix}{k}": np.array(getattr(self.statistics, k)) for k in self.FIELDS}
        return {**arrays, f"{prefix}returns": self.returns.copy()}

    def load_state(self, arrays: dict[str, np.ndarray], prefix: str) -> None:
        for key in self.FIELDS:
            setattr(self.statistics, key, np.array(arrays[f"{prefix}{key}"]))
        self.returns = np.array(arrays[f"{prefix}returns"])


IN_FLIGHT = ("observations", "resetting", "episode_scores", "episode_lengths")  # the collector's
RMS_FIELDS = RewardNormaliser.FIELDS  # a gymnasium RunningMeanStd's, as the rewards' statistics


class RolloutCollector:
    """Fixed-length rollouts whose episodes run on from one rollout to the next (PPO's way);
    :meth:`reset` once first. ``normalise_observations``: gymnasium's ``NormalizeObservation``,
    whose ``obs_rms`` takes every observation, resets included (as SB3's ``VecNormalize``)."""

    def __init__(self, envs: gym.vector.VectorEnv, normalise_observations: bool = False) -> None:
        check_next_step_autoreset(envs)
        self.envs = NormalizeObservation(envs) if normalise_observations else envs
        self.obs_rms = self.envs.obs_rms if normalise_observations else None
        self.started = False

    def reset(self, reset_seed: int) -> None:
        num_envs = self.envs.num_envs
        self.observations, _ = self.envs.reset(seed=reset_seed)
        self.resetting = np.zeros(num_envs, dtype=bool)  # the next step is an autoreset step
        self.episode_scores = np.zeros(num_envs, dtype=np.float64)
        self.episode_lengths = np.zeros(num_envs, dtype=np.int64)
        self.started = True

    def collect(self, policy: Policy, steps: int, rng: np.random.Generator) -> Rollout:
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
        """The episodes in flight (ours and the environments') and any observation statistics."""
        own = {name: np.array(getattr(self, name)) for name in IN_FLIGHT}
        if self.obs_rms is not None:
            own.update({f"obs_rms/{k}": np.array(getattr(self.obs_rms, k)) for k in RMS_FIELDS})
        environments = environment_state(self.envs)
        return {**own, **{f"env/{key}": value for key, value in environments.items()}}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Continue the episodes :meth:`state` saved, exactly where they were."""
        environments = {k[4:]: v for k, v in arrays.items() if k.startswith("env/")}
        restore_environment_state(self.envs, environments)
        for name in IN_FLIGHT:
            setattr(self, name, np.array(arrays[name]))
        for key in RMS_FIELDS if self.obs_rms is not None else ():  # after the reset above
            value = np.array(arrays[f"obs_rms/{key}"])  # count a float, as float32 stats stay
            setattr(self.obs_rms, key, value.item() if key == "count" else value)
        self.started = True


# --- environment state, for resuming runs whose episodes span updates -------------------------
CARTPOLE_FIELDS = ("state", "steps", "prev_done")


def _rng_state(generator: np.random.Generator) -> np.ndarray:
    """A JSON string array: the state's integers exceed 64 bits."""
    return np.asarray(json.dumps(generator.bit_generator.state))


def environment_state(envs: gym.vector.VectorEnv) -> dict[str, np.ndarray]:
    """What decides how ``envs`` (CartPole's native vector env, or synchronous MuJoCo envs with
    their full integration state) continue, as plain arrays (npz, no pickle)."""
    from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv

    vector = envs.unwrapped
    if isinstance(vector, CartPoleVectorEnv):
        arrays = {name: np.array(getattr(vector, name)) for name in CARTPOLE_FIELDS}
        return {**arrays, "rng": _rng_state(vector.np_random)}
    from gymnasium.envs.mujoco.mujoco_env import MujocoEnv  # 0.15 s: not for CartPole

    if isinstance(vector, gym.vector.SyncVectorEnv) and all(
        isinstance(env.unwrapped, MujocoEnv) for env in vector.envs
    ):
        import mujoco

        signature = mujoco.mjtState.mjSTATE_INTEGRATION
        arrays = {"autoreset": np.array(vector._autoreset_envs)}
        for i, env in enumerate(vector.envs):
            physics = env.unwrapped
            state = np.empty(mujoco.mj_stateSize(physics.model, signature))
            mujoco.mj_getState(physics.model, physics.data, state, signature)
            arrays[f"{i}/physics"] = state
            arrays[f"{i}/elapsed_steps"] = np.asarray(env.get_wrapper_attr("_elapsed_steps"))
            arrays[f"{i}/rng"] = _rng_state(physics.np_random)
        return arrays
    raise ValueError(f"cannot save the state of {vector} to resume it")


def restore_environment_state(envs: gym.vector.VectorEnv, arrays: dict[str, np.ndarray]) -> None:
    """Put ``envs`` (freshly made) back into the state :func:`environment_state` saved."""
    import mujoco

    envs.reset(seed=0)  # initialises every layer (order checks, buffers); then overwritten
    vector = envs.unwrapped
    if "state" in arrays:
        for name in CARTPOLE_FIELDS:
            setattr(vector, name, np.array(arrays[name]))
        vector.np_random.bit_generator.state = json.loads(str(arrays["rng"]))
        return
    vector._autoreset_envs = np.array(arrays["autoreset"])
    signature = mujoco.mjtState.mjSTATE_INTEGRATION
    for i, env in enumerate(vector.envs):
        physics = env.unwrapped
        mujoco.mj_setState(physics.model, physics.data, arrays[f"{i}/physics"], signature)
        env.set_wrapper_attr("_elapsed_steps", int(arrays[f"{i}/elapsed_steps"]), force=False)
        physics.np_random.bit_generator.state = json.loads(str(arrays[f"{i}/rng"]))
