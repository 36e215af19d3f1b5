"""The course presets against the course's own code: networks, one real episode, stop rules,
checkpoints and the running reward.

The course side is written from the course text (``course_networks``), never from the
project's builders, so a difference in seeds or layout shows up here.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from course_networks import (
    course_cartpole_policy,
    course_critic,
    course_pendulum_actor,
    in_role_order,
)

from agents import AGENT_CLASSES
from training import (
    gaussian_actor_critic,
    reinforce,
    reinforce_baseline,
    reinforce_baseline_lr,
    reinforce_normalised,
)
from training.loop import train
from training.rollouts import make_envs
from training.run_state import RunState, UpdateOutcome, checkpoint_due
from training.runs import early_and_later
from training.settings import Script
from training.tasks import TASKS

MODULES = {
    "reinforce": reinforce,
    "reinforce_baseline": reinforce_baseline,
    "reinforce_baseline_lr": reinforce_baseline_lr,
    "reinforce_normalised": reinforce_normalised,
    "gaussian_actor_critic": gaussian_actor_critic,
}
#: One Adam step moves a weight by about its learning rate (3e-4 at most in the course), ten
#: critic steps by about ten times the critic's (1e-4): far below this. A different
#: initialisation is off by tenths.
ONE_EPISODE_DRIFT = 2e-3
COURSE_CHECKPOINTS = ["199", "399", "599", "799", "999"]
SCRIPTS = {name: module.SCRIPT for name, module in MODULES.items()}
#: Every run keeps its untrained policy too, for the early-vs-later video.
UNTRAINED = "episode_000000"


def course_actor_weights(agent: str) -> list[np.ndarray]:
    if agent == "pendulum":
        actor = course_pendulum_actor()
        return in_role_order(actor, actor.get_weights())
    return course_cartpole_policy().get_weights()


def course_algorithm(script: str):
    settings = SCRIPTS[script].preset("course")
    envs = make_envs(TASKS[settings.agent].env_id, settings.num_envs)
    return settings, SCRIPTS[script].algorithm_class(settings, envs)


@pytest.mark.parametrize("script", SCRIPTS)
def test_course_preset_starts_from_the_course_weights(script: str) -> None:
    settings, algorithm = course_algorithm(script)
    for ours, course in zip(
        algorithm.exported.get_weights(), course_actor_weights(settings.agent), strict=True
    ):
        np.testing.assert_array_equal(ours, course)
    critic = algorithm.critic
    assert (critic is not None) == (script != "reinforce")
    if critic is not None:
        for ours, course in zip(critic.get_weights(), course_critic().get_weights(), strict=True):
            np.testing.assert_array_equal(ours, course)
    if critic is not None and settings.agent == "cartpole":
        # what seed=42 on every layer implies: actor and critic hidden layers start identical
        np.testing.assert_array_equal(critic.get_weights()[0], algorithm.exported.get_weights()[0])
    if settings.agent == "pendulum":  # and the mean and log-sigma heads start identical
        weights = algorithm.exported.get_weights()
        np.testing.assert_array_equal(weights[4], weights[6])


@pytest.mark.parametrize("script", SCRIPTS)
def test_one_course_episode_stays_at_the_course_weights(script: str, tmp_path: Path) -> None:
    """The course preset as it is (one environment, one episode per update): after one
    episode every weight is within one update's drift of the course's initial weights, the
    update did change them, and the running reward is the course's score / 30."""
    module = MODULES[script]
    argv = ["--max-episodes", "1", "--runs-dir", str(tmp_path), "--no-progress-bar"]
    assert module.main(argv) == 0
    (run,) = tmp_path.iterdir()
    stored = json.loads((run / "settings.json").read_text())
    assert (stored["num_envs"], stored["episodes_per_update"]) == (1, 1)
    agent = stored["agent"]
    trained = AGENT_CLASSES[agent].load(run / "final").model.get_weights()
    drift = [
        float(np.abs(ours - course).max())
        for ours, course in zip(trained, course_actor_weights(agent), strict=True)
    ]
    assert max(drift) <= ONE_EPISODE_DRIFT, drift
    assert max(drift) > 0.0  # the episode was learned from
    with np.load(run / "resume_state.npz") as state:
        critic = [state[k] for k in sorted(state.files) if k.startswith("critic/weight_")]
    if critic:
        for ours, course in zip(critic, course_critic().get_weights(), strict=True):
            assert float(np.abs(ours - course).max()) <= ONE_EPISODE_DRIFT
    with (run / "progress.csv").open(newline="") as stream:
        (row,) = list(csv.DictReader(stream))
    assert float(row["running_reward"]) == pytest.approx(float(row["reward"]) / 30, abs=1e-6)
    # the checkpoint at the stop has the course's name: the zero-based episode index
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["0.config", "0.keras", f"{UNTRAINED}.config", f"{UNTRAINED}.keras"]


def test_the_course_running_reward_is_its_ring_buffer() -> None:
    """RunState against the course's code, episode by episode, past the window's end."""
    scores = np.random.default_rng(0).integers(8, 500, size=75).astype(float)
    state = RunState(reinforce.SCRIPT.preset("course"))
    reward_per_episode = np.zeros(30)
    for episode, score in enumerate(scores):
        state.record(UpdateOutcome(np.array([score]), np.array([int(score)]), {}, 1, 1))
        reward_per_episode[episode % 30] = score
        assert state.running_reward() == pytest.approx(np.mean(reward_per_episode), rel=1e-12)
    fast = RunState(reinforce.SCRIPT.preset("fast"))
    fast.record(UpdateOutcome(scores[:1], np.array([1]), {}, 1, 1))
    assert fast.running_reward() == scores[0]  # the fast presets: the episodes seen so far


def test_checkpoint_schedule_is_the_courses() -> None:
    """The course saves when (episode + 1) % 200 == 0 (zero-based episode)."""
    saved, last = [], 0
    for episodes in range(1, 1001):
        if checkpoint_due(episodes, last, 200):
            saved.append(episodes - 1)
            last = episodes
    assert saved == [episode for episode in range(1000) if (episode + 1) % 200 == 0]


class ScriptedAlgorithm:
    """Stands in for learning: every update is one episode scoring ``score``, at no cost, so
    the loop's own stop rule and checkpoints can run a whole course-length run in seconds."""

    def __init__(self, settings, envs, score: float) -> None:
        self.score = score
        size, step = envs.single_observation_space.shape[0], settings.layer_seed_step
        if settings.agent == "pendulum":
            self.exported = gaussian_actor_critic.gaussian_policy(
                size, settings.actor_hidden, 1, settings.seed, step
            )
        else:
            logits = reinforce.mlp(
                size, settings.actor_hidden, 2, settings.seed, step, "policy_logits"
            )
            self.exported = reinforce.with_softmax(logits)

    def collect(self, rng, reset_seed):
        return None

    def learn(self, experience) -> UpdateOutcome:
        return UpdateOutcome(np.array([self.score]), np.array([int(self.score)]), {}, 1, 1)

    def state(self) -> dict[str, np.ndarray]:
        return {}

    def load_state(self, arrays) -> None:
        pass


def scripted(script: Script, score: float) -> Script:
    """``script`` with its algorithm replaced by one that scores ``score`` every episode."""
    return Script(
        script.name,
        script.settings_class,
        lambda settings, envs: ScriptedAlgorithm(settings, envs, score),
        script.presets,
        script.default_preset,
    )


def test_course_pendulum_runs_1000_episodes_and_saves_199_to_999(tmp_path: Path) -> None:
    """Variant 5 has no early stop: perfect scores from the first episode on still run all
    1000 episodes, saving the checkpoints the course's evaluation compares."""
    script = scripted(gaussian_actor_critic.SCRIPT, TASKS["pendulum"].max_score)
    settings = script.preset("course", runs_dir=str(tmp_path), progress_bar=False)
    result = train(settings, script)
    assert (result.stop_reason, result.episodes) == ("max_episodes", 1000)
    checkpoints = sorted(p.stem for p in (result.run_dir / "checkpoints").glob("*.keras"))
    assert checkpoints == [*COURSE_CHECKPOINTS, UNTRAINED]
    early, later = early_and_later(result.run_dir)
    assert (early.name, later.name) == ("199", "999")
    assert AGENT_CLASSES["pendulum"].load(later).extra_config["training"]["episodes"] == 1000


def test_course_cartpole_stops_when_the_ring_buffer_passes_300(tmp_path: Path) -> None:
    """Variants 1-4 stop at a running reward above 300: with perfect scores of 500 the course's
    zero-filled buffer reaches 300 at the 18th episode and passes it at the 19th
    (500 * 19 / 30 = 317); a mean of the scores so far would stop after the first."""
    script = scripted(reinforce_normalised.SCRIPT, TASKS["cartpole"].max_score)
    settings = script.preset("course", runs_dir=str(tmp_path), progress_bar=False)
    result = train(settings, script)
    assert (result.stop_reason, result.episodes) == ("running_reward", 19)
    assert result.running_reward == pytest.approx(500 * 19 / 30)
    checkpoints = sorted(p.name for p in (result.run_dir / "checkpoints").glob("*.keras"))
    assert checkpoints == ["18.keras", f"{UNTRAINED}.keras"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_fast_presets_keep_their_own_settings(script: str) -> None:
    """Where the course presets now follow the course, the fast presets keep what they trained
    the shipped weights with."""
    course, fast = SCRIPTS[script].preset("course"), SCRIPTS[script].preset("fast")
    assert (course.layer_seed_step, course.critic_seed_offset) == (0, 0)
    assert (fast.layer_seed_step, fast.critic_seed_offset) == (1, 100)
    assert course.running_reward_from_zeros and not fast.running_reward_from_zeros
    assert (course.checkpoint_names, fast.checkpoint_names) == ("course", "episode")
    assert fast.stop == "solved"
    if course.agent == "pendulum":
        assert course.stop == "none" and course.learn_clipped_actions
        assert not fast.learn_clipped_actions
    else:
        assert course.stop == "running_reward"
