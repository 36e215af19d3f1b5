"""Run folders: checkpoint names, which two checkpoints form the early-vs-later pair, and
nothing lost with real runs: a second writer refused, a killed holder's lock taken over,
each damaged file one line and exit 1, a write cut short leaving the previous state."""

from __future__ import annotations

import csv
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import pendulum_model

from agents import CartPoleAgent, InvertedPendulumAgent
from training.run_safety import held_by
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
        [
            sys.executable,
            "-m",
            "tools.videos",
            "--run",
            str(run),
            "--max-steps",
            "5",
            "--out",
            str(tmp_path / "videos"),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
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
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )
    assert completed.returncode == 2
    assert "two checkpoints" in completed.stderr


# --- nothing lost: one writer at a time, damaged files named (real training runs) -------------
SCRIPT = [sys.executable, "-m", "training.reinforce"]
BASE_EPISODES = 64  # the base run: 4 updates of 16 episodes, resume state at episode 64


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    """A short fast run (no stop rule, so every resume trains to its budget); tests copy it."""
    runs = tmp_path_factory.mktemp("runs")
    completed = subprocess.run(
        [
            *SCRIPT,
            "--preset",
            "fast",
            "--stop",
            "none",
            "--max-episodes",
            str(BASE_EPISODES),
            "--runs-dir",
            str(runs),
            "--no-progress-bar",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    (run,) = runs.iterdir()
    return run


def copy_of(base_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / base_run.name
    shutil.copytree(base_run, run)
    return run


def resume(run: Path, episodes: int, **popen: object) -> subprocess.Popen:
    return subprocess.Popen(
        [*SCRIPT, "--resume", str(run), "--max-episodes", str(episodes)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        **popen,
    )


def finish(process: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def only_line(text: str) -> str:
    assert text.count("\n") == 1 and text.endswith("\n") and "Traceback" not in text, text
    return text.strip()


def episodes_logged(run: Path) -> list[int]:
    with (run / "progress.csv").open(newline="") as stream:
        return [int(row["episode"]) for row in csv.DictReader(stream)]


def wait_until(condition, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_second_resume_is_refused_while_the_first_finishes(base_run, tmp_path) -> None:
    run = copy_of(base_run, tmp_path)
    first = resume(run, 320)
    try:
        wait_until(lambda: held_by(run) == first.pid, first)
        status, out, err = finish(resume(run, 320), timeout=120)
        assert first.poll() is None  # refused while the first still trains
        assert status == 2 and out == ""
        assert only_line(err) == (
            f"reinforce: error: {run}: the run folder is in use by process {first.pid}, which is "
            f"writing to it; wait for it to finish or stop it (kill {first.pid}), then resume"
        )
        status, out, err = finish(first)
    finally:
        first.kill()
    assert status == 0 and err == "" and only_line(out)
    assert episodes_logged(run) == list(range(1, 321))  # every episode once, in order
    assert held_by(run) is None


def test_a_run_whose_holder_was_killed_resumes_with_a_notice(base_run, tmp_path) -> None:
    run = copy_of(base_run, tmp_path)
    killed = resume(run, 640)
    try:  # killed after it logged an update past its last saved state (episode 64)
        wait_until(lambda: len(episodes_logged(run)) > BASE_EPISODES, killed)
        killed.send_signal(signal.SIGKILL)
        killed.communicate(timeout=60)
    finally:
        killed.kill()
    status, out, err = finish(resume(run, 96))
    assert status == 0 and only_line(out).startswith("reinforce: max_episodes after 96 episodes")
    assert only_line(err) == (
        f"reinforce: {run}: took over the lock left by process {killed.pid} on "
        f"{socket.gethostname()}, which ended without releasing it (killed, or the machine "
        "stopped); continuing from the last saved state"
    )
    assert episodes_logged(run) == list(range(1, 97))  # the killed run's extra rows dropped


def cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def drop_row_ten(path: Path) -> None:
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:10] + lines[11:]))


@pytest.mark.parametrize(
    ("name", "damage", "problem"),
    [
        ("resume_state.npz", cut_in_half, "damaged or incomplete ("),
        ("settings.json", cut_in_half, "damaged"),
        ("progress.csv", drop_row_ten, "damaged: line 11 holds episode 11, expected 10"),
        ("checkpoints/episode_000064.keras", cut_in_half, "damaged: "),
    ],
    ids=["resume-state", "settings", "progress", "checkpoint"],
)
def test_each_damaged_file_is_one_line_and_exit_1(base_run, tmp_path, name, damage, problem):
    run = copy_of(base_run, tmp_path)
    damage(run / name)
    before = {path: path.read_bytes() for path in run.rglob("*") if path.is_file()}
    status, out, err = finish(resume(run, 96))
    assert status == 1 and out == ""
    line = only_line(err)
    assert line.startswith(f"reinforce: error: {run / name}: {problem}"), line
    assert "start a new run" in line
    after = {path: path.read_bytes() for path in run.rglob("*") if path.is_file()}
    assert after == before  # nothing was written into the damaged run


INTERRUPTED_WRITE = """
import os, signal, sys
import numpy as np

real_savez = np.savez


def savez(stream, **arrays):  # the resume state's write stops half way
    real_savez(stream, **arrays)
    stream.truncate(stream.tell() // 2)
    stream.flush()
    if sys.argv[1] == "killed":
        os.kill(os.getpid(), signal.SIGKILL)
    raise OSError(28, "No space left on device")


np.savez = savez
from training import reinforce

raise SystemExit(reinforce.main(["--resume", sys.argv[2], "--max-episodes", "96"]))
"""


@pytest.mark.parametrize("how", ["killed", "full disk"])
def test_a_write_cut_short_leaves_the_previous_resume_state_resumable(base_run, tmp_path, how):
    run = copy_of(base_run, tmp_path)
    cut = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_WRITE, how, str(run)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        timeout=300,
    )
    with np.load(run / "resume_state.npz") as state:
        assert int(state["counter/episodes"]) == BASE_EPISODES  # the previous state, whole
    if how == "full disk":  # one line, and every agent file left there loads
        assert cut.returncode == 1 and cut.stdout == ""
        assert only_line(cut.stderr) == (
            f"reinforce: error: {run / 'resume_state.npz'}: No space left on device"
        )
        for _, prefix in checkpoints_of(run):
            CartPoleAgent.load(prefix)
        assert not list(run.glob(".*.tmp"))
    else:
        assert cut.returncode == -signal.SIGKILL
    status, out, err = finish(resume(run, 96))
    assert status == 0 and only_line(out).startswith("reinforce: max_episodes after 96")
    assert ("took over the lock" in err) == (how == "killed")
    assert episodes_logged(run) == list(range(1, 97))
    assert not list(run.glob(".*.tmp"))  # a killed writer's temporary file is removed
    with np.load(run / "resume_state.npz") as state:
        assert int(state["counter/episodes"]) == 96
