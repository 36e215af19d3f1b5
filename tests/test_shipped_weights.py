"""The weights the package ships: they load, match their records, score, and submit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import keras
import numpy as np
import pytest

from agents import AGENT_CLASSES
from agents.agent_files import agent_paths, sha256_of
from agents.evaluation import evaluate
from agents.numpy_forward import KERAS_TOLERANCE
from training.solve_check import greedy_mean

REPO_ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = REPO_ROOT / "weights"
#: The best possible score of each task (every step rewarded, episodes capped).
MAXIMUM = {"cartpole": 500.0, "pendulum": 1000.0}
#: Episodes of the record's own evaluation played again (its first ones: same seeds, same cap).
RECHECKED_EPISODES = 5


@pytest.mark.parametrize("kind", sorted(AGENT_CLASSES))
def test_shipped_weights_match_their_record(kind: str) -> None:
    record = json.loads((WEIGHTS / f"{kind}.json").read_text())
    for path in agent_paths(WEIGHTS / kind):
        assert record["sha256"][path.name] == sha256_of(path)
    agent = AGENT_CLASSES[kind].load(WEIGHTS / kind)
    batch = np.random.default_rng(0).normal(scale=2.0, size=(256, 4)).astype(np.float32)
    expected = agent.model(batch)  # Keras, from the same file, in safe mode
    expected = expected if isinstance(expected, list) else [expected]
    for ours, theirs in zip(agent.outputs(batch), expected, strict=True):
        np.testing.assert_allclose(ours, keras.ops.convert_to_numpy(theirs), atol=KERAS_TOLERANCE)
    assert agent.seed == record["seed"] and f"--seed {record['seed']}" in record["command"]


@pytest.mark.parametrize("kind", sorted(AGENT_CLASSES))
def test_the_record_evaluation_holds_for_these_weights(kind: str) -> None:
    """The record's scores are true of the shipped files: its first episodes, played again
    with its seed and step cap, score inside the record's [min, max]."""
    record = json.loads((WEIGHTS / f"{kind}.json").read_text())
    agent_class = AGENT_CLASSES[kind]
    assert record["evaluation"]  # one entry per step cap
    for stored in record["evaluation"].values():
        result = evaluate(
            agent_class.load(WEIGHTS / kind),
            agent_class.env_id,
            RECHECKED_EPISODES,
            stored["seed"],
            stored["max_steps"],
        )
        assert stored["min"] <= min(result.returns) <= max(result.returns) <= stored["max"]


@pytest.mark.parametrize("kind", sorted(AGENT_CLASSES))
def test_shipped_agents_score_the_maximum_on_fresh_seeds(kind: str) -> None:
    agent_class = AGENT_CLASSES[kind]
    result = evaluate(agent_class.load(WEIGHTS / kind), agent_class.env_id, 3, seed=5000)
    assert result.returns == (MAXIMUM[kind],) * 3


@pytest.mark.parametrize("kind", sorted(AGENT_CLASSES))
@pytest.mark.parametrize("weights", [WEIGHTS, WEIGHTS / "early"])
def test_the_solve_check_plays_the_episodes_evaluate_plays(kind: str, weights: Path) -> None:
    """Training's check (every episode side by side, ``act_batch``) and the evaluator's way
    (``evaluate``: one ``act`` a step) score the same: the same episodes, the same actions.
    The early checkpoints' episodes end at varied lengths, which any difference would move."""
    agent_class = AGENT_CLASSES[kind]
    agent, env_id = agent_class.load(weights / kind), agent_class.env_id
    envs = gym.make_vec(env_id, RECHECKED_EPISODES, vectorization_mode="sync")  # copies
    batched, finished = greedy_mean(envs, agent.act_batch, 0.0, MAXIMUM[kind], seed=7000)
    assert finished and batched == evaluate(agent, env_id, RECHECKED_EPISODES, seed=7000).mean


@pytest.mark.parametrize("kind", sorted(AGENT_CLASSES))
def test_main_job_submits_the_shipped_weights(kind: str, tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "submit.py", "--agent", kind, "--out", str(tmp_path), "--json"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(completed.stdout)
    assert completed.returncode == 0 and report["ok"], report
    assert Path(report["bundle"]) == tmp_path / f"{kind}.zip"
