"""Run folders: checkpoint names, and which two checkpoints form the early-vs-later pair."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import pendulum_model

from agents import InvertedPendulumAgent
from training.runs import checkpoint_episodes, checkpoint_name, checkpoints_of, early_and_later

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_checkpoint_names_both_ways() -> None:
    assert checkpoint_name(200, "course") == "199"  # the course's zero-based episode index
    assert checkpoint_name(200, "episode") == "episode_000200"
    for episodes in (1, 200, 1000, 123_456):
        for naming in ("course", "episode"):
            assert checkpoint_episodes(checkpoint_name(episodes, naming)) == episodes
    for other in ("final", "199.5", "episode_", "episode_x", "-1", ""):
        assert checkpoint_episodes(other) is None


def fake_checkpoints(run: Path, *stems: str, pair: bool = True) -> None:
    folder = run / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    for stem in stems:
        (folder / f"{stem}.keras").write_bytes(b"")
        if pair:
            (folder / f"{stem}.config").write_bytes(b"")


def test_early_and_later_are_the_first_and_last_checkpoints(tmp_path: Path) -> None:
    course = tmp_path / "course"
    fake_checkpoints(course, "999", "199", "599", "1199")  # "1199" < "199" as text
    fake_checkpoints(course, "1399", pair=False)  # a half-written pair does not count
    (course / "checkpoints" / "notes.keras").write_bytes(b"")
    assert [episodes for episodes, _ in checkpoints_of(course)] == [200, 600, 1000, 1200]
    early, later = early_and_later(course)
    assert (early, later) == (course / "checkpoints" / "199", course / "checkpoints" / "1199")

    batched = tmp_path / "batched"
    fake_checkpoints(batched, "episode_001008", "episode_000208", "episode_002000")
    early, later = early_and_later(batched)
    assert (early.name, later.name) == ("episode_000208", "episode_002000")


def test_early_and_later_need_two_checkpoints(tmp_path: Path) -> None:
    fake_checkpoints(tmp_path, "199")
    with pytest.raises(ValueError, match=r"two checkpoints.*found 1"):
        early_and_later(tmp_path)


def test_videos_of_a_run_compare_its_first_and_last_checkpoints(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "settings.json").write_text(json.dumps({"agent": "pendulum"}))
    for seed, stem in enumerate(("199", "599", "999")):
        InvertedPendulumAgent(pendulum_model(seed=seed)).save(run / "checkpoints" / stem)
    completed = subprocess.run(
        [sys.executable, "-m", "tools.videos", "--run", str(run), "--max-steps", "5",
         "--out", str(tmp_path / "videos")],
        capture_output=True, text=True, check=False, cwd=REPO_ROOT,
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0].startswith(f"early: {run / 'checkpoints' / '199'} scored")
    assert lines[1].startswith(f"later: {run / 'checkpoints' / '999'} scored")
    assert (tmp_path / "videos" / "pendulum-early-vs-later.mp4").is_file()


def test_videos_of_a_run_without_two_checkpoints_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "settings.json").write_text(json.dumps({"agent": "pendulum"}))
    completed = subprocess.run(
        [sys.executable, "-m", "tools.videos", "--run", str(tmp_path)],
        capture_output=True, text=True, check=False, cwd=REPO_ROOT,
    )
    assert completed.returncode == 2
    assert "two checkpoints" in completed.stderr
