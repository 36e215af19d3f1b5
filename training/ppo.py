"""Proximal policy optimisation (Schulman et al., 2017) for either task, top to bottom.

python -m training.ppo --agent cartpole               # the fast preset: solves in seconds
python -m training.ppo --agent pendulum --preset zoo  # the RL Zoo's tuned hyperparameters

Each update: a fixed-length rollout of every environment (episodes run on across updates),
GAE(lambda) advantages, then epochs of shuffled minibatch steps on the clipped surrogate, the
critic's squared error and an entropy bonus, with Stable-Baselines3's networks and defaults.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import gymnasium as gym
import numpy as np

from training import rollouts
from training import settings as core
from training.distributions import Categorical, Gaussian
from training.loop import run_script
from training.rollouts import NumpyForward, RewardNormaliser, RolloutCollector, gae_advantages
from training.run_state import LOSS_COLUMNS, UpdateOutcome, assign_arrays, variable_arrays
from training.tasks import TASKS


# --- settings -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PPOSettings(core.RunSettings):
    """PPO: fixed-length rollouts, GAE(lambda) and the clipped surrogate, for either task."""

    DIVERGENCE_SUSPECTS: ClassVar[tuple[str, ...]] = (
        *("learning_rate", "gamma", "gae_lambda", "clip_range"),
        *("max_grad_norm", "value_coef", "entropy_coef"),
    )

    actor_hidden: core.Layers = (64, 64)
    """hidden layer sizes of the policy"""
    critic_hidden: core.Layers = (64, 64)
    """hidden layer sizes of the critic"""
    activation: Literal["tanh", "relu"] = "tanh"
    """hidden layers' activation"""
    rollout_steps: core.Count = 2048
    """steps each environment takes per update"""
    epochs: core.Count = 10
    """passes over each rollout in shuffled minibatches"""
    minibatch_size: core.Count = 64
    """samples per gradient step (capped at num_envs * rollout_steps, which it must divide)"""
    gae_lambda: core.Fraction = 0.95
    """GAE lambda: 0 gives one-step TD errors, 1 Monte-Carlo returns"""
    clip_range: core.Positive = 0.2
    """probability ratios beyond 1 +/- this earn the surrogate nothing"""
    learning_rate: core.Positive = 3e-4
    """Adam learning rate (one Adam for actor, critic and log-std)"""
    linear_decay: bool = False
    """decay the learning rate and clip range linearly to 0 at decay_env_steps"""
    decay_env_steps: core.Count = 1_000_000
    """with --linear-decay: environment steps at which it reaches 0 (the Zoo's n_timesteps)"""
    value_coef: core.NonNegative = 0.5
    """weight of the critic's squared error"""
    entropy_coef: core.NonNegative = 0.0
    """weight of the entropy bonus"""
    max_grad_norm: core.Positive = 0.5
    """cap on the global norm of all gradients together"""
    normalise_advantages: bool = True
    """standardise advantages within each minibatch"""
    normalise_observations: bool = False
    """standardise observations by their running mean and std (folded into the agent)"""
    normalise_rewards: bool = False
    """divide rewards by the running std of the discounted return (as VecNormalize)"""
    reward_scale: core.Positive = 1.0
    """rewards are multiplied by this for the advantages and the critic's targets"""
    log_std_init: float = 0.0
    """initial log standard deviation of a Gaussian policy"""

    def __post_init__(self) -> None:
        super().__post_init__()
        samples = self.num_envs * self.rollout_steps
        if samples % min(self.minibatch_size, samples):
            problem = f"must divide --num-envs x --rollout-steps = {samples}"
            raise core.SettingError("minibatch_size", problem)


def both(cartpole: Any, pendulum: Any) -> dict[str, Any]:  # a value that differs by agent
    return {"cartpole": cartpole, "pendulum": pendulum}


# "fast" solves fastest here; "zoo" is the RL Zoo's tuned PPO (rl-baselines3-zoo's ppo.yml).
# Layer i is seeded seed + i, the critic's seed + 100 + i: the shipped weights' seeds.
SOLVED = {name: task.solve_score for name, task in TASKS.items()}
SHARED = (
    dict(layer_seed_step=1, critic_seed_offset=100, running_reward_from_zeros=False)
    | dict(checkpoint_names="episode", checkpoint_every=1000, max_seconds=120.0)
    | dict(stop="solved", solve_threshold=SOLVED, max_episodes=1_000_000)
    | dict(max_env_steps=both(300_000, 200_000))
)
PRESETS: dict[str, dict[str, Any]] = {
    "fast": SHARED
    | dict(num_envs=both(8, 2), rollout_steps=both(32, 64), minibatch_size=both(64, 128))
    | dict(gamma=both(0.98, 0.99), gae_lambda=both(0.8, 0.95), learning_rate=both(1e-3, 3e-3))
    | dict(reward_scale=both(1.0, 0.1))
    # CartPole's greedy check is cheap, so tried early; the pendulum's waits for the bar.
    | dict(gate_episodes=both(5, 2), eval_gate=both(100.0, SOLVED["pendulum"])),
    "zoo": SHARED
    | dict(num_envs=both(8, 1), rollout_steps=32, epochs=both(20, 5))
    | dict(minibatch_size=both(256, 64))  # SB3 caps the pendulum's 64 at its 32 samples
    | dict(gamma=both(0.98, 0.999), gae_lambda=both(0.8, 0.9), clip_range=both(0.2, 0.4))
    | dict(learning_rate=both(1e-3, 0.000222425), max_grad_norm=both(0.5, 0.3))
    | dict(linear_decay=both(True, False), decay_env_steps=both(100_000, 1_000_000))
    | dict(entropy_coef=both(0.0, 1.37976e-07), value_coef=both(0.5, 0.19816))
    # The pendulum's "normalize: true": VecNormalize's observation and reward statistics.
    | dict(normalise_observations=both(False, True), normalise_rewards=both(False, True))
    | dict(gate_episodes=5, eval_gate=SOLVED),
}


# --- networks -----------------------------------------------------------------------------------
#: Orthogonal kernels with gain sqrt(2) in hidden layers, 0.01 on the policy's output (its
#: first policy is near-uniform) and 1 on the value's; zero biases (the PPO paper, SB3).
HIDDEN_GAIN, POLICY_GAIN, VALUE_GAIN = 2.0**0.5, 0.01, 1.0
EPSILON = 1e-8  # under the square root of every standardisation, as in SB3 and gymnasium


def orthogonal_mlp(inputs: int, hidden, outputs: int, gain: float, seed: int, settings, name: str):
    """observation -> ``activation`` layers -> linear outputs; layer i seeded seed + i * step."""
    import keras

    def dense(units: int, i: int, gain: float, activation: str | None = None):
        initializer = keras.initializers.Orthogonal(gain, seed=seed + i * settings.layer_seed_step)
        name = f"hidden_{i}" if activation else "output"
        return keras.layers.Dense(units, activation, kernel_initializer=initializer, name=name)

    layers = [dense(n, i, HIDDEN_GAIN, settings.activation) for i, n in enumerate(hidden)]
    layers.append(dense(outputs, len(hidden), gain))
    return keras.Sequential([keras.Input((inputs,)), *layers], name=name)


def export(actor, categorical: bool, rms=None):
    """The agent's model on raw observations: any standardisation (x - mean) / scale folded into
    the first Dense layer (W / scale row-wise, b - (mean / scale) W), a softmax after logits."""
    import keras

    if rms is not None:
        scale, (kernel, bias, *rest) = np.sqrt(rms.var + EPSILON), actor.get_weights()
        actor = keras.models.clone_model(actor)
        actor.set_weights([kernel / scale[:, None], bias - (rms.mean / scale) @ kernel, *rest])
    if not categorical:
        return actor
    softmax = keras.layers.Activation("softmax", name="probabilities")
    layers = [keras.Input((actor.input_shape[-1],)), *actor.layers, softmax]
    return keras.Sequential(layers, name="policy")


# --- the loss and the update ---------------------------------------------------------------------
def log_prob_and_entropy(outputs, log_std, actions):
    """log pi(a|s) and the entropy: categorical over logits (no ``log_std``) or Gaussian."""
    from keras import ops

    if log_std is None:
        policy = Categorical(outputs)
    else:  # the state-independent log-std, one per action dimension, for every sample
        policy = Gaussian(outputs, ops.broadcast_to(log_std, ops.shape(outputs)))
    return policy.log_prob(actions), policy.entropy()


def clipped_surrogate(log_probs, old_log_probs, advantages, clip_range, weights):
    """-mean_t min(rho_t A_t, clip(rho_t, 1 - eps, 1 + eps) A_t) with rho_t = pi / pi_old,
    over the samples whose weight is 1 (weight 0 drops a sample)."""
    from keras import ops

    ratio = ops.exp(log_probs - old_log_probs)
    clipped = ops.clip(ratio, 1.0 - clip_range, 1.0 + clip_range)
    surrogate = ops.minimum(ratio * advantages, clipped * advantages)
    return -ops.sum(surrogate * weights) / ops.maximum(ops.sum(weights), 1.0)


def ppo_loss(actor, critic, log_std, batch, clip_range, settings):
    """(total, policy loss, value loss, entropy) on one minibatch."""
    from keras import ops

    observations, actions, old_log_probs, advantages, returns, weights = batch

    def mean(values):  # over the samples to learn from
        return ops.sum(values * weights) / ops.maximum(ops.sum(weights), 1.0)

    if settings.normalise_advantages:
        centre = mean(advantages)
        std = ops.sqrt(mean(ops.square(advantages - centre)))
        advantages = (advantages - centre) / (std + EPSILON)
    log_probs, entropy = log_prob_and_entropy(actor(observations, training=True), log_std, actions)
    policy_loss = clipped_surrogate(log_probs, old_log_probs, advantages, clip_range, weights)
    value_loss = mean(ops.square(returns - critic(observations, training=True)[:, 0]))
    entropy = mean(entropy)
    total = policy_loss + settings.value_coef * value_loss - settings.entropy_coef * entropy
    return total, policy_loss, value_loss, entropy


def make_update(actor, critic, log_std, optimizer, variables, settings):
    """The compiled update: all epochs' minibatch steps (K rows of ``minibatches``) on one
    flattened rollout; weight 0 marks autoreset steps. Returns the mean of each loss part."""
    import tensorflow as tf
    from keras import ops

    def update(observations, actions, advantages, returns, weights, minibatches, clip_range):
        outputs = actor(observations, training=True)
        old_log_probs = ops.stop_gradient(log_prob_and_entropy(outputs, log_std, actions)[0])
        samples = (observations, actions, old_log_probs, advantages, returns, weights)

        def minibatch_step(step, totals):
            batch = [ops.take(values, minibatches[step], axis=0) for values in samples]
            with tf.GradientTape() as tape:
                total, *parts = ppo_loss(actor, critic, log_std, batch, clip_range, settings)
            gradients = tape.gradient(total, variables)
            optimizer.apply_gradients(zip(gradients, variables, strict=True))
            return step + 1, totals + ops.stack(parts)

        count = ops.shape(minibatches)[0]
        start = (tf.constant(0), tf.zeros(3))
        _, totals = tf.while_loop(lambda step, _: step < count, minibatch_step, start)
        return totals / ops.cast(count, "float32")

    # Grappler's rewrites cost 0.25 s at the first call and buy nothing here (process-wide).
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    vector, matrix = tf.TensorSpec([None], tf.float32), tf.TensorSpec([None, None], tf.float32)
    actions = tf.TensorSpec([None], tf.int32) if log_std is None else matrix
    indices, scalar = tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([], tf.float32)
    signature = [matrix, actions, vector, vector, vector, indices, scalar]
    # AutoGraph has nothing to convert (the loop is explicit): skipping it saves 0.4 s.
    return tf.function(update, input_signature=signature, autograph=False)


def minibatch_indices(samples: int, size: int, epochs: int, rng: np.random.Generator):
    """Sample indices (epochs * samples / size, size): each epoch a fresh shuffle, cut up."""
    size = min(size, samples)
    if samples % size:
        raise ValueError(f"minibatch size {size} does not divide the {samples} rollout samples")
    return np.concatenate([rng.permutation(samples).reshape(-1, size) for _ in range(epochs)])


def schedule_fraction(settings: PPOSettings, env_steps: int) -> float:
    """Learning rate and clip range factor: 1, or what linear_decay leaves after env_steps."""
    return max(0.0, 1.0 - env_steps / settings.decay_env_steps) if settings.linear_decay else 1.0


# --- the algorithm the loop drives --------------------------------------------------------------
class PPO:
    """The networks, one Adam over all their variables, the compiled update, the rollouts.
    ``warm``: a finished run's PPO whose settings differ at most in the seed (a sweep worker's):
    its networks, Adam and traced update go on from this run's initial values and fresh slots."""

    def __init__(self, settings: PPOSettings, envs, warm: PPO | None = None) -> None:
        import keras

        self.settings = s = settings
        size, space = envs.single_observation_space.shape[0], envs.single_action_space
        self.space = space
        self.bounds = (space.low, space.high) if isinstance(space, gym.spaces.Box) else None
        self.action_dtype = np.int32 if self.bounds is None else np.float32
        outputs = int(space.n) if self.bounds is None else space.shape[0]
        name = "policy_logits" if self.bounds is None else "policy_mean"
        self.actor = orthogonal_mlp(size, s.actor_hidden, outputs, POLICY_GAIN, s.seed, s, name)
        seed = s.seed + s.critic_seed_offset
        self.critic = orthogonal_mlp(size, s.critic_hidden, 1, VALUE_GAIN, seed, s, "critic")
        self.variables = [*self.actor.trainable_variables, *self.critic.trainable_variables]
        self.log_std = None  # a Gaussian policy's state-independent log standard deviation
        if self.bounds is not None:
            self.log_std = keras.Variable(np.full(outputs, s.log_std_init, np.float32), "log_std")
            self.variables.append(self.log_std)
        # Adam's epsilon as in SB3 (Keras' 1e-7 makes early steps on tiny gradients larger).
        adam = keras.optimizers.Adam(s.learning_rate, epsilon=1e-5, global_clipnorm=s.max_grad_norm)
        adam.build(self.variables)
        self.optimizer = adam
        self.parts = [("ppo", self.variables, adam)]  # kept for --resume
        self.update = make_update(self.actor, self.critic, self.log_std, adam, self.variables, s)
        if warm is not None and dataclasses.replace(warm.settings, seed=s.seed) == s:
            assign_arrays(warm.parts, variable_arrays(self.parts))  # this run's starting point
            self.actor, self.critic, self.log_std = warm.actor, warm.critic, warm.log_std
            self.variables, self.optimizer, self.parts = warm.variables, warm.optimizer, warm.parts
            self.update = warm.update  # traced already
        self.plain_export = export(self.actor, categorical=self.bounds is None)
        self.actor_forward = NumpyForward(self.actor)  # the rollouts' fast NumPy pass
        self.critic_forward = NumpyForward(self.critic)
        self.collector = RolloutCollector(envs, s.normalise_observations)
        self.obs_rms = self.collector.obs_rms  # gymnasium's NormalizeObservation statistics
        self.rewards = RewardNormaliser(envs.num_envs, s.gamma) if s.normalise_rewards else None
        self.env_steps = 0  # drives the linear schedule
        self.learned: dict[str, np.ndarray] = {}  # the episodes in flight at the last update

    def policy(self):
        """The NumPy policy on the collector's (standardised) observations: (actions for the
        environments, clipped; actions to learn from)."""
        self.actor_forward.refresh()  # the current weights
        if self.bounds is None:
            return rollouts.make_policy(self.actor_forward, self.space)
        forward, log_std = self.actor_forward, self.log_std.numpy().astype(np.float32)
        return rollouts.make_policy(lambda x: (forward(x), log_std), self.space)

    @property
    def exported(self):
        """The model the agent saves: the policy, taking raw observations."""
        if self.obs_rms is None:
            return self.plain_export
        return export(self.actor, self.bounds is None, self.obs_rms)

    def collect(self, rng: np.random.Generator, reset_seed: int):
        """The next rollout and its minibatches (the environments reset before the first only)."""
        s = self.settings
        if not self.collector.started:
            self.collector.reset(reset_seed)
        rollout = self.collector.collect(self.policy(), s.rollout_steps, rng)
        return rollout, minibatch_indices(rollout.env_steps, s.minibatch_size, s.epochs, rng)

    def learn(self, experience) -> UpdateOutcome:
        """GAE on the rollout (in NumPy), then the compiled update."""
        s, (rollout, minibatches) = self.settings, experience
        self.learned = {f"episodes/{k}": v for k, v in self.collector.state().items()}
        observations = rollout.observations  # (T + 1, N, obs), as the policy saw them
        self.critic_forward.refresh()
        values = self.critic_forward(observations.reshape(-1, observations.shape[-1]))
        values = values.reshape(observations.shape[:2]).astype(np.float64)
        rewards = rollout.rewards.astype(np.float64)
        if self.rewards is not None:  # normalised as VecNormalize does
            rewards = self.rewards(rewards, rollout.valid, rollout.ended)
        rewards, ends = rewards * s.reward_scale, (rollout.terminated, rollout.ended)
        advantages = gae_advantages(rewards, values[:-1], values[1:], *ends, s.gamma, s.gae_lambda)
        returns = advantages + values[:-1]  # the critic's targets
        samples = rollout.env_steps
        self.env_steps += samples
        fraction = schedule_fraction(s, self.env_steps)
        self.optimizer.learning_rate.assign(s.learning_rate * fraction)
        actions = rollout.actions.reshape(samples, *rollout.actions.shape[2:])
        flat = (x.reshape(-1).astype(np.float32) for x in (advantages, returns, rollout.valid))
        inputs = (observations[:-1].reshape(samples, -1), actions.astype(self.action_dtype), *flat)
        clip = np.float32(s.clip_range * fraction)
        losses = self.update(*inputs, minibatches.astype(np.int32), clip).numpy()
        losses = dict(zip(LOSS_COLUMNS, map(float, losses), strict=True))  # in the update's order
        steps = (samples, rollout.trained_steps)
        return UpdateOutcome(rollout.scores, rollout.lengths, losses, *steps)

    def state(self) -> dict[str, np.ndarray]:
        """Everything a resumed run needs to continue exactly as an uninterrupted one would."""
        arrays = variable_arrays(self.parts) | {"env_steps": np.asarray(self.env_steps)}
        arrays |= self.rewards.state("rewards/") if self.rewards is not None else {}
        return arrays | self.learned

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        assign_arrays(self.parts, arrays)
        self.env_steps = int(arrays["env_steps"])
        if self.rewards is not None:
            self.rewards.load_state(arrays, "rewards/")
        self.learned = {k: v for k, v in arrays.items() if k.startswith("episodes/")}
        if self.learned:  # else no update had finished: the first collect resets as usual
            self.collector.load_state({k[9:]: v for k, v in self.learned.items()})


def search_space() -> dict[str, Any]:
    """What a sweep varies by default: about ten times either way of the fast preset."""
    from ray import tune

    spaces = {"learning_rate": tune.loguniform(3e-4, 1e-2), "clip_range": tune.uniform(0.1, 0.4)}
    return {**spaces, "gae_lambda": tune.uniform(0.8, 0.99), "epochs": tune.randint(4, 21)}


SCRIPT = core.Script("ppo", PPOSettings, PPO, PRESETS, "fast", search_space)


def main(argv: list[str] | None = None) -> int:
    return run_script(SCRIPT, argv)


if __name__ == "__main__":
    from training.startup import exit_now

    exit_now(main())
