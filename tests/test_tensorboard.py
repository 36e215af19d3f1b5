"""TensorBoard logs of a run: read back from the event files, they hold exactly progress.csv
(plus steps per second and the greedy evaluations), open in TensorBoard's own loader, and
a resumed run's logs drop the rows its CSV dropped."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import pytest

from training.loop import train
from training.reinforce import SCRIPT
from training.runs import SCALAR_COLUMNS, RunFolder

FLOAT32 = 1e-6  # scalars are stored as float32


def read_events(run_dir: Path) -> dict[str, dict[int, float]]:
    """Every scalar in the run's event files as {tag: {step: value}}, read with TensorFlow's
    own reader (no tensorboard package needed)."""
    import tensorflow as tf

    scalars: dict[str, dict[int, float]] = defaultdict(dict)
    files = sorted(run_dir.glob("events.out.tfevents.*"))
    assert files, f"no event file in {run_dir}"
    for path in files:
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                assert value.tag not in scalars or event.step not in scalars[value.tag]
                scalars[value.tag][event.step] = value.simple_value
    return scalars


def read_progress(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "progress.csv").open(newline="") as stream:
        return list(csv.DictReader(stream))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A tiny REINFORCE run that evaluates after every update from the second on."""
    runs = tmp_path_factory.mktemp("runs")
    settings = SCRIPT.preset(
        "fast",
        num_envs=4,
        episodes_per_update=4,
        max_episodes=24,
        eval_episodes=4,
        gate_episodes=4,
        eval_gate=0.0,
        runs_dir=str(runs),
        progress_bar=False,
    )
    return train(settings, SCRIPT).run_dir


def test_scalars_match_progress_csv(run_dir: Path) -> None:
    scalars = read_events(run_dir)
    rows = read_progress(run_dir)
    assert len(rows) == 24
    for column in SCALAR_COLUMNS:
        logged = scalars[f"train/{column}"]
        assert sorted(logged) == [int(row["episode"]) for row in rows], column
        for row in rows:
            assert logged[int(row["episode"])] == pytest.approx(float(row[column]), rel=FLOAT32)


def test_steps_per_second_per_update(run_dir: Path) -> None:
    rows = read_progress(run_dir)
    last_rows = {int(row["update"]): row for row in rows}  # each update's last episode
    rates = read_events(run_dir)["speed/steps_per_second"]
    assert sorted(rates) == sorted(int(row["episode"]) for row in last_rows.values())
    previous_steps = previous_wall = 0.0
    for update in sorted(last_rows):
        row = last_rows[update]
        steps, wall = float(row["env_steps"]), float(row["wall_time"])
        expected = (steps - previous_steps) / (wall - previous_wall)
        assert rates[int(row["episode"])] == pytest.approx(expected, rel=1e-4)
        previous_steps, previous_wall = steps, wall


def test_evaluations_are_logged_at_their_episode(run_dir: Path) -> None:
    evaluations = json.loads((run_dir / "summary.json").read_text())["evaluations"]
    assert len(evaluations) >= 4  # one per update from the second
    scalars = read_events(run_dir)
    for record in evaluations:
        for key, value in record.items():
            if key not in ("update", "episode", "wall_time"):
                logged = scalars[f"eval/{key}"][record["episode"]]
                assert logged == pytest.approx(value, rel=FLOAT32)


def test_tensorboard_opens_the_logs(run_dir: Path) -> None:
    """TensorBoard's own loader sees the same scalars."""
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator"
    )
    loaded = event_accumulator.EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    loaded.Reload()
    rows = read_progress(run_dir)
    rewards = loaded.Scalars("train/reward")
    assert [event.step for event in rewards] == [int(row["episode"]) for row in rows]
    assert [event.value for event in rewards] == [float(row["reward"]) for row in rows]
    tags = set(loaded.Tags()["scalars"])
    assert {f"train/{column}" for column in SCALAR_COLUMNS} | {"speed/steps_per_second"} <= tags
    assert any(tag.startswith("eval/") for tag in tags)


def test_no_tensorboard_writes_no_events(tmp_path: Path) -> None:
    settings = SCRIPT.preset(
        "fast",
        num_envs=2,
        episodes_per_update=2,
        max_episodes=2,
        runs_dir=str(tmp_path),
        progress_bar=False,
        tensorboard=False,
    )
    run_dir = train(settings, SCRIPT).run_dir
    assert (run_dir / "progress.csv").exists()
    assert not list(run_dir.glob("events.out.tfevents.*"))


def progress_rows(first: int, last: int, reward: float) -> list[dict]:
    return [
        {
            "episode": episode,
            "update": episode,
            "reward": reward,
            "length": 10,
            "running_reward": reward,
            "actor_loss": 0.5,
            "critic_loss": 0.0,
            "entropy": 0.6,
            "env_steps": 10 * episode,
            "wall_time": 0.1 * episode,
        }
        for episode in range(first, last + 1)
    ]


def test_a_resumed_run_drops_the_rows_its_csv_dropped(tmp_path: Path) -> None:
    """A run killed after logging episodes 1-6 but saving its state at 3 resumes from 3: the
    CSV drops 4-6 and TensorBoard, reading every file of the folder, must drop them too."""
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator"
    )
    killed = RunFolder(tmp_path, tensorboard=True)
    killed.open_progress()
    killed.append_progress(progress_rows(1, 6, reward=1.0))
    killed.close()
    resumed = RunFolder(tmp_path, tensorboard=True)
    resumed.open_progress(keep_episodes=3)
    resumed.append_progress(progress_rows(4, 5, reward=2.0))
    resumed.close()

    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2
    expected = [(int(row["episode"]), float(row["reward"])) for row in read_progress(tmp_path)]
    assert expected == [(1, 1.0), (2, 1.0), (3, 1.0), (4, 2.0), (5, 2.0)]
    loaded = event_accumulator.EventAccumulator(str(tmp_path), size_guidance={"scalars": 0})
    loaded.Reload()
    assert [(event.step, event.value) for event in loaded.Scalars("train/reward")] == expected
