"""PPO: GAE and the clipped surrogate by hand, rollouts across updates, and the script end to end
(outputs, determinism, exact resume) on tiny budgets."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf
from test_training_scripts import only_run

from agents import AGENT_CLASSES
from training import ppo
from training.loop import Trainer, train
from training.ppo import SCRIPT, clipped_surrogate, minibatch_indices, schedule_fraction
from training.rollouts import RewardNormaliser, RolloutCollector, gae_advantages, make_envs
from training.settings import SettingError
from training.tasks import TASKS

GAMMA, LAMBDA = 0.5, 0.5


def column(*values: float) -> np.ndarray:
    """One environment's values over time, shaped (T, 1) like a rollout of one env."""
    return np.array(values, dtype=np.float64)[:, None]


def gae(rewards, values, next_values, terminated, ended) -> np.ndarray:
    return gae_advantages(
        column(*rewards),
        column(*values),
        column(*next_values),
        column(*terminated).astype(bool),
        column(*ended).astype(bool),
        GAMMA,
        LAMBDA,
    )[:, 0]


# --- GAE by hand (gamma = lambda = 0.5, so gamma * lambda = 0.25) --------------------------------
# Three steps with r = 1 and V(s_0..s_2) = 2, 3, 4; the value after the last step is 100.
def test_gae_terminal_step_does_not_bootstrap() -> None:
    # delta_2 = 1 - 4 = -3 (the 100 is ignored); delta_1 = 1 + 0.5*4 - 3 = 0;
    # delta_0 = 1 + 0.5*3 - 2 = 0.5; A_1 = 0 + 0.25*(-3); A_0 = 0.5 + 0.25*A_1.
    advantages = gae([1, 1, 1], [2, 3, 4], [3, 4, 100], [0, 0, 1], [0, 0, 1])
    np.testing.assert_allclose(advantages, [0.3125, -0.75, -3.0])


def test_gae_truncated_step_bootstraps_from_the_final_observation() -> None:
    # Cut by the time limit: delta_2 = 1 + 0.5*100 - 4 = 47; A_1 = 0.25*47; A_0 = 0.5+0.25*A_1.
    advantages = gae([1, 1, 1], [2, 3, 4], [3, 4, 100], [0, 0, 0], [0, 0, 1])
    np.testing.assert_allclose(advantages, [3.4375, 11.75, 47.0])


def test_gae_rollout_ending_mid_episode_bootstraps_from_the_next_observation() -> None:
    # Nothing ended: the sum stops at the rollout's end, bootstrapped with V(s_3) = 10:
    # delta_2 = 1 + 0.5*10 - 4 = 2; A_1 = 0 + 0.25*2; A_0 = 0.5 + 0.25*0.5.
    advantages = gae([1, 1, 1], [2, 3, 4], [3, 4, 10], [0, 0, 0], [0, 0, 0])
    np.testing.assert_allclose(advantages, [0.625, 0.5, 2.0])


def test_gae_does_not_leak_across_an_episode_end() -> None:
    # Step 0 ends an episode (failure); steps 1-2 belong to the next one.
    advantages = gae([1, 1, 1], [2, 3, 4], [3, 4, 10], [1, 0, 0], [1, 0, 0])
    assert advantages[0] == pytest.approx(1 - 2)
    np.testing.assert_allclose(advantages[1:], [0.5, 2.0])


def test_gae_treats_each_environment_on_its_own() -> None:
    rewards = np.ones((3, 2))
    values = np.array([[2, 2], [3, 3], [4, 4]], dtype=np.float64)
    next_values = np.array([[3, 3], [4, 4], [100, 10]], dtype=np.float64)
    ended = np.array([[0, 0], [0, 0], [1, 0]], dtype=bool)
    advantages = gae_advantages(
        rewards, values, next_values, np.zeros((3, 2), bool), ended, GAMMA, LAMBDA
    )
    np.testing.assert_allclose(advantages, [[3.4375, 0.625], [11.75, 0.5], [47.0, 2.0]])


def test_gae_with_lambda_one_is_the_bootstrapped_return_minus_the_value() -> None:
    rewards, values = column(1, 2, 3), column(0.5, 0.25, 2.0)
    next_values = column(0.25, 2.0, 8.0)
    never = np.zeros((3, 1), bool)
    advantages = gae_advantages(rewards, values, next_values, never, never, 0.9, 1.0)
    returns = [1 + 0.9 * 2 + 0.81 * 3 + 0.729 * 8, 2 + 0.9 * 3 + 0.81 * 8, 3 + 0.9 * 8]
    np.testing.assert_allclose(advantages[:, 0], np.array(returns) - values[:, 0])


# --- the clipped surrogate by hand ---------------------------------------------------------------
def test_clipped_surrogate_by_hand() -> None:
    # Ratios 1.5, 0.5, 1.5, 0.5 with advantages +1, +1, -1, -1 and clip 0.2:
    # min(1.5, 1.2) = 1.2; min(0.5, 0.8) = 0.5; min(-1.5, -1.2) = -1.5; min(-0.5, -0.8) = -0.8.
    ratios = np.array([1.5, 0.5, 1.5, 0.5, 3.0])
    old = np.array([-1.0, -0.5, -2.0, -0.1, -1.0], dtype=np.float32)
    log_probs = tf.Variable((old + np.log(ratios)).astype(np.float32))
    advantages = tf.constant([1.0, 1.0, -1.0, -1.0, 5.0])
    weights = tf.constant([1.0, 1.0, 1.0, 1.0, 0.0])  # the last sample is left out
    with tf.GradientTape() as tape:
        loss = clipped_surrogate(log_probs, tf.constant(old), advantages, 0.2, weights)
    assert float(loss) == pytest.approx(-(1.2 + 0.5 - 1.5 - 0.8) / 4, rel=1e-6)
    # Clipped terms pass no gradient; the others pass -ratio * A / n (d ratio / d log p = ratio).
    gradient = tape.gradient(loss, log_probs).numpy()
    np.testing.assert_allclose(gradient, [0.0, -0.5 / 4, 1.5 / 4, 0.0, 0.0], rtol=1e-6)


def test_minibatches_shuffle_every_epoch() -> None:
    order = minibatch_indices(12, 4, 3, np.random.default_rng(0))
    assert order.shape == (9, 4)
    for epoch in order.reshape(3, 12):
        assert sorted(epoch) == list(range(12))
    assert minibatch_indices(8, 64, 2, np.random.default_rng(0)).shape == (2, 8)  # capped
    with pytest.raises(ValueError, match="does not divide"):
        minibatch_indices(12, 5, 1, np.random.default_rng(0))


def test_linear_schedule_reaches_zero_at_the_decay_steps() -> None:
    zoo = SCRIPT.preset("zoo", agent="cartpole")
    assert schedule_fraction(zoo, 25_000) == pytest.approx(0.75)
    assert schedule_fraction(zoo, 200_000) == 0.0
    assert schedule_fraction(SCRIPT.preset("fast"), 25_000) == 1.0


def test_reward_normalisation_follows_vecnormalize_by_hand() -> None:
    """Each environment's discounted return accumulates over its valid steps and restarts after
    an episode ends; every reward is divided by the std of all the returns seen so far (the
    statistics start from a negligible prior) and clipped to +/- 10."""
    rewards = np.array([[1.0, 2.0], [3.0, 0.0], [1.0, 5.0], [2.0, 1.0]])
    valid = np.array([[1, 1], [1, 0], [1, 1], [1, 1]], dtype=bool)  # env 1 resets at step 1
    ended = np.array([[0, 1], [1, 0], [0, 0], [0, 0]], dtype=bool)
    normaliser = RewardNormaliser(2, gamma=0.5)
    scaled = normaliser(rewards, valid, ended)
    # Returns seen: step 0: 1, 2 (env 1 ends); step 1: 3.5 (env 0 ends); step 2: 1, 5;
    # step 3: 2.5, 3.5.
    seen = [[1.0, 2.0], [3.5], [1.0, 5.0], [2.5, 3.5]]
    for t, _ in enumerate(seen):
        std = np.std(np.concatenate(seen[: t + 1]))
        np.testing.assert_allclose(scaled[t], rewards[t] / std, rtol=1e-3)
    np.testing.assert_allclose(normaliser.returns, [2.5, 3.5])
    # A return that hardly varies yet: 1 / its tiny std is clipped.
    constant = RewardNormaliser(1, gamma=0.0)
    np.testing.assert_array_equal(
        constant(np.ones((2, 1)), np.ones((2, 1), bool), ~valid[:2, :1]), 10.0
    )


def test_observation_statistics_cover_every_observation_and_fold_into_the_agent() -> None:
    """gymnasium's NormalizeObservation sees every observation the environments return,
    resets included; the saved agent takes raw observations (the statistics folded in)."""
    collectors = [RolloutCollector(make_envs("CartPole-v1", 3), normalise) for normalise in (0, 1)]
    rollouts = []
    for collector in collectors:
        collector.reset(reset_seed=4)
        rng = np.random.default_rng(0)
        rollouts.append(
            collector.collect(lambda o, rng: (rng.integers(0, 2, len(o)),) * 2, 30, rng)
        )
    raw = rollouts[0].observations.reshape(-1, 4).astype(np.float64)
    rms = collectors[1].obs_rms
    np.testing.assert_allclose(rms.mean, raw.mean(axis=0), rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(rms.var, raw.var(axis=0), rtol=1e-3)
    np.testing.assert_array_equal(rollouts[1].rewards, rollouts[0].rewards)  # same episodes

    algorithm = ppo.PPO(SCRIPT.preset("fast", agent="cartpole"), make_envs("CartPole-v1", 8))
    algorithm.obs_rms = SimpleNamespace(mean=np.array([1.0, -2.0, 0.5, 0.0]), var=np.full(4, 4.0))
    observations = np.random.default_rng(0).normal(scale=3.0, size=(500, 4)).astype(np.float32)
    standardised = ((observations - algorithm.obs_rms.mean) / np.sqrt(4.0 + 1e-8)).astype("f4")
    logits = algorithm.actor(standardised).numpy()
    probabilities = algorithm.exported(observations).numpy()
    np.testing.assert_allclose(probabilities, tf.nn.softmax(logits).numpy(), atol=1e-5)
    greedy = AGENT_CLASSES["cartpole"](algorithm.exported).act_batch(observations)
    np.testing.assert_array_equal(greedy, logits.argmax(axis=-1))


# --- rollouts that run on across updates ---------------------------------------------------------
def test_rollouts_mark_autoreset_steps_and_carry_episodes_over() -> None:
    envs = make_envs("CartPole-v1", 3)
    collector = RolloutCollector(envs)
    collector.reset(reset_seed=4)
    rng = np.random.default_rng(0)

    def random_policy(observations, rng):
        actions = rng.integers(0, 2, len(observations))
        return actions, actions

    first = collector.collect(random_policy, 40, rng)
    second = collector.collect(random_policy, 40, rng)
    np.testing.assert_array_equal(second.observations[0], first.observations[-1])
    for rollout in (first, second):
        # The step after an episode's end is an autoreset step: no reward, not learned from.
        after_end = np.zeros_like(rollout.valid)
        after_end[1:] = rollout.ended[:-1]
        np.testing.assert_array_equal(rollout.valid, ~after_end)
        assert np.all(rollout.rewards[~rollout.valid] == 0)
        # The observation a failing step returns is the failed state, not a reset one.
        failed = rollout.observations[1:][rollout.terminated]
        assert np.all((np.abs(failed[:, 0]) > 2.4) | (np.abs(failed[:, 2]) > 0.2094))
        assert rollout.env_steps == 120 and rollout.trained_steps == rollout.valid.sum()
    # Episode scores count only the episodes' own steps, across both rollouts.
    ended = sum(int(r.ended.sum()) for r in (first, second))
    assert len(first.scores) + len(second.scores) == ended
    np.testing.assert_array_equal(first.scores, first.lengths)  # +1 a step


def test_rollouts_refuse_same_step_autoreset() -> None:
    envs = gym.make_vec(
        "CartPole-v1",
        2,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
    )
    with pytest.raises(ValueError, match="next-step autoreset"):
        RolloutCollector(envs)


# --- the script end to end -----------------------------------------------------------------------
def tiny(runs_dir: Path, agent: str, *extra: str) -> list[str]:
    return [
        "--agent",
        agent,
        "--num-envs",
        "2",
        "--rollout-steps",
        "16",
        "--minibatch-size",
        "16",
        "--epochs",
        "2",
        "--max-env-steps",
        "96",
        "--checkpoint-every",
        "3",
        "--runs-dir",
        str(runs_dir),
        "--no-progress-bar",
        *extra,
    ]


def read_rows(run: Path, drop: tuple[str, ...] = ("wall_time",)) -> list[dict[str, str]]:
    with (run / "progress.csv").open(newline="") as stream:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(stream)]


def final_weights(run: Path, agent: str) -> list[np.ndarray]:
    return AGENT_CLASSES[agent].load(run / "final").model.get_weights()


@pytest.mark.parametrize("agent", list(TASKS))
def test_script_writes_every_output_and_the_agent_loads(agent: str, tmp_path: Path) -> None:
    assert ppo.main(tiny(tmp_path, agent)) == 0
    run = only_run(tmp_path)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stop_reason"] == "max_env_steps" and summary["env_steps"] == 96
    assert summary["updates"] == 3 and summary["solved"] is False
    rows = read_rows(run)
    assert len(rows) == summary["episodes"] and all(float(r["reward"]) > 0 for r in rows)
    stored = json.loads((run / "settings.json").read_text())
    assert stored["script"] == "ppo" and stored["agent"] == agent and stored["rollout_steps"] == 16
    assert stored["solve_threshold"] == TASKS[agent].solve_score
    assert (run / "learning_curve.png").exists() and (run / "resume_state.npz").exists()

    loaded = AGENT_CLASSES[agent].load(run / "final")
    env = gym.make(TASKS[agent].env_id)
    observation, info = env.reset(seed=0)
    assert env.action_space.contains(loaded.act(observation, info))
    # The exported model loads through the allowlist (load refuses anything else), and the
    # NumPy pass computes what Keras computes on the same file, observation folding included.
    batch = np.asarray([observation], dtype=np.float32)
    keras_outputs = loaded.model(batch, training=False)
    if isinstance(keras_outputs, (list, tuple)):
        keras_outputs = keras_outputs[0]
    np.testing.assert_allclose(
        loaded.outputs(batch)[0], np.asarray(keras_outputs), rtol=1e-5, atol=1e-5
    )
    outputs = loaded.model.outputs
    assert len(outputs) == 1 and tuple(outputs[0].shape) == (None, 2 if agent == "cartpole" else 1)


def test_presets_differ_by_agent_and_zoo_is_the_rl_zoo() -> None:
    cartpole = SCRIPT.preset("zoo", agent="cartpole")
    assert (cartpole.num_envs, cartpole.rollout_steps, cartpole.minibatch_size) == (8, 32, 256)
    assert (cartpole.epochs, cartpole.gamma, cartpole.gae_lambda) == (20, 0.98, 0.8)
    assert (cartpole.learning_rate, cartpole.clip_range, cartpole.linear_decay) == (1e-3, 0.2, True)
    pendulum = SCRIPT.preset("zoo", agent="pendulum")
    assert (pendulum.num_envs, pendulum.rollout_steps, pendulum.epochs) == (1, 32, 5)
    assert (pendulum.gamma, pendulum.gae_lambda, pendulum.clip_range) == (0.999, 0.9, 0.4)
    assert (pendulum.max_grad_norm, pendulum.value_coef) == (0.3, 0.19816)
    assert pendulum.learning_rate == pytest.approx(2.22425e-4)
    assert pendulum.solve_threshold == 950.0 and cartpole.solve_threshold == 475.0
    assert (pendulum.normalise_observations, pendulum.normalise_rewards) == (True, True)
    assert SCRIPT.preset("fast", agent="pendulum").solve_threshold == 950.0
    with pytest.raises(SettingError, match="must divide"):
        SCRIPT.preset("fast", num_envs=3, rollout_steps=10, minibatch_size=4)


def test_help_offers_ppo_settings_and_hides_unused_ones(capsys) -> None:
    with pytest.raises(SystemExit):
        ppo.main(["--help"])
    text = capsys.readouterr().out
    for flag in ("--agent", "--preset NAME", "fast:", "zoo:", "--rollout-steps", "--clip-range"):
        assert flag in text
    assert "--resume" in text and "unused" not in text
    for unused in ("--critic-steps", "--actor-learning-rate", "--standardise", "--clipnorm"):
        assert unused not in text


def settings_for(runs_dir: Path, agent: str, **overrides) -> ppo.PPOSettings:
    values = {
        "agent": agent,
        "num_envs": 2,
        "rollout_steps": 16,
        "minibatch_size": 16,
        "epochs": 2,
        "max_env_steps": 6 * 32,
        "checkpoint_every": 1000,
        "runs_dir": str(runs_dir),
        "progress_bar": False,
    }
    return SCRIPT.preset("fast", **{**values, **overrides})


def test_same_seed_same_progress_and_weights(tmp_path: Path) -> None:
    first = train(settings_for(tmp_path / "a", "pendulum"), SCRIPT)
    second = train(settings_for(tmp_path / "b", "pendulum"), SCRIPT)
    assert read_rows(first.run_dir) == read_rows(second.run_dir)
    for a, b in zip(
        final_weights(first.run_dir, "pendulum"),
        final_weights(second.run_dir, "pendulum"),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    other = train(settings_for(tmp_path / "c", "pendulum", seed=7), SCRIPT)
    assert read_rows(other.run_dir) != read_rows(first.run_dir)


def test_a_warm_ppo_trains_exactly_as_a_fresh_one_and_traces_once(tmp_path: Path) -> None:
    """A sweep worker's next trial goes on from the last trial's PPO (networks, Adam, traced
    update) with its own initial values: row for row and weight for weight a fresh run."""
    both = {"normalise_observations": True, "normalise_rewards": True}
    first = Trainer(settings_for(tmp_path, "pendulum", seed=3, **both), SCRIPT)
    first.start(None, None)
    first.train()
    settings = settings_for(tmp_path, "pendulum", **both)
    warm = Trainer(settings, SCRIPT, warm=first.algorithm)
    warm.start(None, None)
    result = warm.train()
    assert warm.algorithm.update is first.algorithm.update  # not traced again
    fresh = train(settings, SCRIPT)
    assert result.updates == fresh.updates == 6
    assert read_rows(result.run_dir) == read_rows(fresh.run_dir)
    weights = [final_weights(run, "pendulum") for run in (result.run_dir, fresh.run_dir)]
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)
    changed = settings_for(tmp_path, "pendulum", epochs=3, **both)
    other = Trainer(changed, SCRIPT, warm=warm.algorithm)
    other.start(None, None)  # other settings: its own networks and update
    assert other.algorithm.update is not warm.algorithm.update
    other.close()


@pytest.mark.parametrize(
    ("agent", "normalise"), [("cartpole", False), ("pendulum", False), ("pendulum", True)]
)
def test_resume_continues_exactly_mid_episode(agent: str, normalise: bool, tmp_path) -> None:
    """Episodes run on across updates; the resume state holds them (environment state
    included) and any running normalisation statistics, so a run stopped after 3 updates
    and resumed for 3 more matches an uninterrupted run of 6, row for row and weight for
    weight."""
    extra = {"normalise_observations": normalise, "normalise_rewards": normalise}
    straight = train(settings_for(tmp_path / "straight", agent, **extra), SCRIPT)
    part = train(settings_for(tmp_path / "resumed", agent, max_env_steps=3 * 32, **extra), SCRIPT)
    assert part.updates == 3
    with np.load(part.run_dir / "resume_state.npz") as state:
        assert state["episodes/episode_lengths"].any()  # stopped with episodes in flight
    resumed = train(settings_for(tmp_path / "resumed", agent, **extra), SCRIPT, part.run_dir)
    assert resumed.updates == 6 and resumed.env_steps == straight.env_steps
    assert read_rows(resumed.run_dir) == read_rows(straight.run_dir)
    for a, b in zip(
        final_weights(straight.run_dir, agent), final_weights(resumed.run_dir, agent), strict=True
    ):
        np.testing.assert_array_equal(a, b)
