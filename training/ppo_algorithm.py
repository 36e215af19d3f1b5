"""Proximal policy optimisation: the clipped surrogate, its compiled update, and the algorithm
object the training loop drives.

Per update: collect ``rollout_steps`` steps of every environment under the current policy
(episodes run on across updates), estimate advantages with GAE(lambda) in NumPy, then run
``epochs`` passes of shuffled minibatches through one ``tf.function``. The loss is the clipped
surrogate plus ``value_coef`` times the critic's squared error minus ``entropy_coef`` times the
entropy, with advantages normalised per minibatch and the global gradient norm clipped, as in
Schulman et al. (2017) and Stable-Baselines3. Actor and critic are separate MLPs trained by
one Adam; a Gaussian policy has a state-independent log standard deviation, which is not part
of the saved agent (evaluation acts on the mean).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf
from keras import ops

from training import networks
from training.distributions import distribution_for
from training.loop import UpdateOutcome
from training.returns import EPSILON, RunningMeanStd, gae_advantages
from training.rollouts import Rollout, RolloutCollector, make_policy

#: Adam's epsilon in PPO's reference implementations (OpenAI Baselines, Stable-Baselines3);
#: Keras' default 1e-7 makes early steps on near-zero gradients larger.
ADAM_EPSILON = 1e-5
#: Normalised rewards are clipped to +/- this, as VecNormalize does.
REWARD_CLIP = 10.0
#: Prefix of the resume-state arrays that hold the episodes in flight.
EPISODES = "episodes/"


def turn_graph_rewrites_off() -> None:
    """Switch off Grappler's graph rewrites for this process. They run when a compiled
    function is first called (about 0.25 s for PPO's update here, a tenth of a fast run's
    training) and buy nothing measurable on graphs this small. The switch is process-wide and
    must stay put: TensorFlow re-instantiates a function when it changes."""
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})


def clipped_surrogate(log_probs, old_log_probs, advantages, clip_range, weights):
    """-mean_t min(rho_t A_t, clip(rho_t, 1 - eps, 1 + eps) A_t) with rho_t = pi / pi_old,
    over the samples whose weight is 1 (weight 0 drops a sample)."""
    ratio = ops.exp(log_probs - old_log_probs)
    clipped = ops.clip(ratio, 1.0 - clip_range, 1.0 + clip_range)
    surrogate = ops.minimum(ratio * advantages, clipped * advantages)
    return -ops.sum(surrogate * weights) / ops.maximum(ops.sum(weights), 1.0)


def weighted_mean(values, weights):
    return ops.sum(values * weights) / ops.maximum(ops.sum(weights), 1.0)


def normalise(values, weights):
    """(x - mean) / (std + epsilon) over the samples whose weight is 1."""
    mean = weighted_mean(values, weights)
    std = ops.sqrt(weighted_mean(ops.square(values - mean), weights))
    return (values - mean) / (std + EPSILON)


def minibatch_indices(
    samples: int, minibatch_size: int, epochs: int, rng: np.random.Generator
) -> np.ndarray:
    """(epochs * samples / size, size) sample indices: each epoch one fresh shuffle cut into
    minibatches. ``minibatch_size`` is capped at ``samples`` and must divide it."""
    size = min(minibatch_size, samples)
    if samples % size:
        raise ValueError(f"minibatch size {size} does not divide the {samples} rollout samples")
    return np.concatenate([rng.permutation(samples).reshape(-1, size) for _ in range(epochs)])


def schedule_fraction(settings: Any, env_steps: int) -> float:
    """What the learning rate and clip range are multiplied by after ``env_steps`` steps:
    1, or with ``linear_decay`` the fraction of ``decay_env_steps`` still to go (the RL Zoo's
    linear schedule), never below 0."""
    if not settings.linear_decay:
        return 1.0
    return max(0.0, 1.0 - env_steps / settings.decay_env_steps)


class PPOLearner:
    """Actor, critic, (log-std), one Adam over all of them, and the compiled update."""

    def __init__(
        self,
        settings: Any,
        actor: keras.Model,
        critic: keras.Model,
        log_std: keras.Variable | None,
        distribution: Any,
    ) -> None:
        self.settings = settings
        self.actor = actor
        self.critic = critic
        self.log_std = log_std
        self.distribution = distribution
        self.variables = [*actor.trainable_variables, *critic.trainable_variables]
        if log_std is not None:
            self.variables.append(log_std)
        self.optimizer = keras.optimizers.Adam(
            settings.learning_rate, epsilon=ADAM_EPSILON, global_clipnorm=settings.max_grad_norm
        )
        self.optimizer.build(self.variables)
        turn_graph_rewrites_off()
        observation_size = actor.input_shape[-1]
        action_shape = [None, actor.output_shape[-1]] if log_std is not None else [None]
        samples = tf.TensorSpec([None], tf.float32)
        self._update = tf.function(
            self._update_step,
            input_signature=[
                tf.TensorSpec([None, observation_size], tf.float32),
                tf.TensorSpec(action_shape, distribution.action_dtype),
                samples,
                samples,
                samples,
                tf.TensorSpec([None, None], tf.int32),
                tf.TensorSpec([], tf.float32),
            ],
            # The minibatch loop is an explicit tf.while_loop, so AutoGraph has nothing to
            # convert; skipping it saves about 0.4 s of start-up.
            autograph=False,
        )

    def policy(self, observations):
        """The policy's distribution at a batch of observations, as tensors."""
        outputs = self.actor(observations, training=True)
        if self.log_std is not None:
            outputs = (outputs, ops.broadcast_to(self.log_std, ops.shape(outputs)))
        return self.distribution.from_outputs(outputs)

    def losses(self, observations, actions, old_log_probs, advantages, returns, weights, clip):
        """(total, policy loss, value loss, entropy) on one minibatch."""
        settings = self.settings
        if settings.normalise_advantages:
            advantages = normalise(advantages, weights)
        policy = self.policy(observations)
        policy_loss = clipped_surrogate(
            policy.log_prob(actions), old_log_probs, advantages, clip, weights
        )
        values = self.critic(observations, training=True)[:, 0]
        value_loss = weighted_mean(ops.square(returns - values), weights)
        entropy = weighted_mean(policy.entropy(), weights)
        total = policy_loss + settings.value_coef * value_loss - settings.entropy_coef * entropy
        return total, policy_loss, value_loss, entropy

    def _update_step(
        self, observations, actions, advantages, returns, weights, minibatches, clip_range
    ):
        old_log_probs = ops.stop_gradient(self.policy(observations).log_prob(actions))
        samples = (observations, actions, old_log_probs, advantages, returns, weights)

        def minibatch_step(step, totals):
            indices = minibatches[step]
            with tf.GradientTape() as tape:
                total, *parts = self.losses(
                    *(ops.take(values, indices, axis=0) for values in samples), clip_range
                )
            gradients = tape.gradient(total, self.variables)
            self.optimizer.apply_gradients(zip(gradients, self.variables, strict=True))
            return step + 1, totals + ops.stack(parts)

        count = ops.shape(minibatches)[0]
        _, totals = tf.while_loop(
            lambda step, _: step < count, minibatch_step, (tf.constant(0), tf.zeros(3))
        )
        return totals / ops.cast(count, "float32")

    def update(
        self,
        observations: np.ndarray,
        actions: np.ndarray,
        advantages: np.ndarray,
        returns: np.ndarray,
        weights: np.ndarray,
        minibatches: np.ndarray,
        learning_rate: float,
        clip_range: float,
    ) -> dict[str, float]:
        """All epochs of minibatch steps on one flattened rollout; returns the mean losses.

        ``minibatches`` (K, M) holds the sample indices of each of the K steps in order;
        ``weights`` is 1 on samples to learn from, 0 on autoreset steps.
        """
        self.optimizer.learning_rate.assign(learning_rate)
        policy_loss, value_loss, entropy = self._update(
            tf.convert_to_tensor(observations, tf.float32),
            tf.convert_to_tensor(actions.astype(self.distribution.action_dtype)),
            tf.convert_to_tensor(advantages, tf.float32),
            tf.convert_to_tensor(returns, tf.float32),
            tf.convert_to_tensor(weights, tf.float32),
            tf.convert_to_tensor(minibatches, tf.int32),
            tf.constant(clip_range, tf.float32),
        ).numpy()
        return {
            "actor_loss": float(policy_loss),
            "critic_loss": float(value_loss),
            "entropy": float(entropy),
        }

    # --- state for --resume (plain arrays, saved as .npz) ----------------------------------
    def state(self) -> dict[str, np.ndarray]:
        arrays = {f"variable_{i:03d}": np.asarray(v.numpy()) for i, v in enumerate(self.variables)}
        for i, variable in enumerate(self.optimizer.variables):
            arrays[f"optimizer_{i:03d}"] = np.asarray(variable.numpy())
        return arrays

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        for i, variable in enumerate(self.variables):
            variable.assign(arrays[f"variable_{i:03d}"])
        for i, variable in enumerate(self.optimizer.variables):
            variable.assign(arrays[f"optimizer_{i:03d}"])


class Standardised:
    """A NumPy forward pass that first standardises observations with frozen statistics
    (``freeze`` them once per rollout, so a rollout is collected and learned from alike)."""

    def __init__(self, forward: Any) -> None:
        self.forward = forward
        self.shift: np.ndarray | float = 0.0
        self.scale: np.ndarray | float = 1.0

    def freeze(self, statistics: RunningMeanStd | None) -> None:
        if statistics is not None:
            self.shift = statistics.mean.astype(np.float32)
            self.scale = statistics.std().astype(np.float32)

    def standardise(self, observations: np.ndarray) -> np.ndarray:
        return ((observations - self.shift) / self.scale).astype(np.float32)

    def refresh(self) -> None:
        self.forward.refresh()

    def __call__(self, observations: np.ndarray):
        return self.forward(self.standardise(observations))


def fold_standardisation(model: keras.Sequential, shift, scale) -> keras.Sequential:
    """A copy of ``model`` that takes raw observations: the standardisation (x - shift) / scale
    folded into its first Dense layer (W / scale row-wise, b - (shift / scale) W), so the saved
    agent needs no extra layer and the evaluator's raw observations just work."""
    folded = keras.models.clone_model(model)
    weights = model.get_weights()
    kernel, bias = weights[0], weights[1]
    weights[0] = kernel / scale[:, None]
    weights[1] = bias - (shift / scale) @ kernel
    folded.set_weights(weights)
    return folded


@dataclass
class Experience:
    """One update's rollout and the order its samples are visited in."""

    rollout: Rollout
    minibatches: np.ndarray


class PPO:
    """The algorithm object the training loop drives (see ``training.loop.Algorithm``)."""

    def __init__(self, settings: Any, envs) -> None:
        self.settings = settings
        observation_size = envs.single_observation_space.shape[0]
        space = envs.single_action_space
        self.distribution = distribution_for(space)
        self.continuous = isinstance(space, gym.spaces.Box)
        outputs = space.shape[0] if self.continuous else int(space.n)
        self.actor = networks.build_orthogonal_mlp(
            observation_size,
            settings.actor_hidden,
            outputs,
            settings.activation,
            networks.POLICY_OUTPUT_GAIN,
            settings.seed,
            "policy_mean" if self.continuous else "policy_logits",
        )
        critic = networks.build_orthogonal_mlp(
            observation_size,
            settings.critic_hidden,
            1,
            settings.activation,
            networks.VALUE_OUTPUT_GAIN,
            settings.seed + 100,
            "critic",
        )
        log_std = None
        if self.continuous:
            log_std = keras.Variable(
                np.full(outputs, settings.log_std_init, np.float32), name="log_std"
            )
            actor_forward = networks.StateIndependentGaussianForward(self.actor, log_std)
            self._exported = self.actor
        else:
            actor_forward = networks.NumpyForward(self.actor)
            self._exported = networks.export_categorical_policy(self.actor)
        self.forward = Standardised(actor_forward)
        self.critic_forward = Standardised(networks.NumpyForward(critic))
        self.policy = make_policy(self.forward, space)
        self._greedy = make_policy(self.forward, space, greedy=True)
        self.learner = PPOLearner(settings, self.actor, critic, log_std, self.distribution)
        self.collector = RolloutCollector(envs)
        # Running statistics (as Stable-Baselines3's VecNormalize keeps them), if asked for.
        self.observation_statistics = (
            RunningMeanStd((observation_size,)) if settings.normalise_observations else None
        )
        self.reward_statistics = RunningMeanStd() if settings.normalise_rewards else None
        self.discounted_returns = np.zeros(envs.num_envs)  # per environment, for the latter
        self.env_steps = 0  # drives the linear schedule; part of the resume state
        # The episodes in flight as of the last update learned from, and as of the last
        # rollout collected: a run interrupted before learning resumes from the former.
        self._episodes_learned: dict[str, np.ndarray] = {}
        self._episodes_collected: dict[str, np.ndarray] = {}

    @property
    def exported(self) -> keras.Model:
        """The model the agent saves: the policy, taking raw observations."""
        if self.observation_statistics is None:
            return self._exported
        statistics = self.observation_statistics
        folded = fold_standardisation(self.actor, statistics.mean, statistics.std())
        return folded if self.continuous else networks.export_categorical_policy(folded)

    def greedy_policy(self):
        """The deterministic policy with the current weights, for the solve check."""
        self.forward.refresh()
        self.forward.freeze(self.observation_statistics)
        return self._greedy

    def collect(self, rng: np.random.Generator, reset_seed: int) -> Experience:
        """The next rollout; the environments are reset (with ``reset_seed``) only before the
        first one, afterwards their episodes carry on."""
        settings = self.settings
        if not self.collector.started:
            self.collector.reset(reset_seed)
        self.forward.refresh()
        self.forward.freeze(self.observation_statistics)
        rollout = self.collector.collect(self.policy, settings.rollout_steps, rng)
        self._episodes_collected = self.collector.state()
        order = minibatch_indices(rollout.env_steps, settings.minibatch_size, settings.epochs, rng)
        return Experience(rollout, order)

    def scaled_rewards(self, rollout: Rollout) -> np.ndarray:
        """The rewards the advantages see: times ``reward_scale``, and with
        ``normalise_rewards`` first divided by the running std of the discounted return, step
        by step as VecNormalize does (autoreset steps skipped)."""
        settings = self.settings
        rewards = rollout.rewards.astype(np.float64)
        statistics = self.reward_statistics
        if statistics is not None:
            returns = self.discounted_returns
            for t, (valid, ended) in enumerate(zip(rollout.valid, rollout.ended, strict=True)):
                returns[valid] = returns[valid] * settings.gamma + rewards[t, valid]
                statistics.update(returns[valid])
                rewards[t] = np.clip(rewards[t] / statistics.std(), -REWARD_CLIP, REWARD_CLIP)
                returns[ended] = 0.0
        return rewards * settings.reward_scale

    def advantages(
        self, rollout: Rollout, observations: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """GAE advantages and the critic's targets (advantage + value), both (T, N), from the
        rollout's standardised observations (T + 1, N, obs)."""
        settings = self.settings
        steps_plus_one, num_envs, size = observations.shape
        self.critic_forward.refresh()
        values = self.critic_forward.forward(observations.reshape(-1, size))
        values = values.reshape(steps_plus_one, num_envs).astype(np.float64)
        advantages = gae_advantages(
            self.scaled_rewards(rollout),
            values[:-1],
            values[1:],
            rollout.terminated,
            rollout.ended,
            settings.gamma,
            settings.gae_lambda,
        )
        return advantages, advantages + values[:-1]

    def learn(self, experience: Experience) -> UpdateOutcome:
        settings = self.settings
        rollout = experience.rollout
        self._episodes_learned = self._episodes_collected
        observations = self.forward.standardise(rollout.observations)  # as collected
        advantages, returns = self.advantages(rollout, observations)
        samples = rollout.env_steps
        self.env_steps += samples
        fraction = schedule_fraction(settings, self.env_steps)
        losses = self.learner.update(
            observations[:-1].reshape(samples, -1),
            rollout.actions.reshape(samples, *rollout.actions.shape[2:]),
            advantages.reshape(-1),
            returns.reshape(-1),
            rollout.valid.reshape(-1).astype(np.float32),
            experience.minibatches,
            settings.learning_rate * fraction,
            settings.clip_range * fraction,
        )
        if self.observation_statistics is not None:
            # What the steps returned: the next rollouts standardise with these too.
            self.observation_statistics.update(rollout.observations[1:].reshape(samples, -1))
        return UpdateOutcome(
            scores=rollout.scores,
            lengths=rollout.lengths,
            losses=losses,
            env_steps=rollout.env_steps,
            trained_steps=rollout.trained_steps,
        )

    def state(self) -> dict[str, np.ndarray]:
        """Weights, optimiser, schedule, normalisation statistics and the episodes in flight
        after the last update, so that a resumed run continues exactly as an uninterrupted
        one would."""
        arrays = {
            **self.learner.state(),
            "env_steps": np.asarray(self.env_steps),
            "discounted_returns": self.discounted_returns.copy(),
            **{f"{EPISODES}{k}": v for k, v in self._episodes_learned.items()},
        }
        if self.observation_statistics is not None:
            arrays.update(self.observation_statistics.state("observation_statistics/"))
        if self.reward_statistics is not None:
            arrays.update(self.reward_statistics.state("reward_statistics/"))
        return arrays

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.learner.load_state(arrays)
        self.env_steps = int(arrays["env_steps"])
        self.discounted_returns = np.array(arrays["discounted_returns"])
        if self.observation_statistics is not None:
            self.observation_statistics.load_state(arrays, "observation_statistics/")
        if self.reward_statistics is not None:
            self.reward_statistics.load_state(arrays, "reward_statistics/")
        episodes = {k[len(EPISODES) :]: v for k, v in arrays.items() if k.startswith(EPISODES)}
        if episodes:  # else no update had finished: the first collect resets as usual
            self.collector.load_state(episodes)
            self._episodes_learned = episodes
