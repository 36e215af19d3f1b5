"""Nothing lost in a run folder (training.runs, training.run_safety): one writer at a time, a
killed holder's lock taken over, atomic writes, and each damaged file named in one line."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import cartpole_model

from agents import CartPoleAgent
from training import run_safety
from training.run_safety import (
    DamagedRunFileError,
    RunFolderHeldError,
    held_by,
    read_settings_json,
)
from training.runs import PROGRESS_COLUMNS, RunFolder

REPO = Path(__file__).resolve().parents[1]
SETTINGS = {"script": "reinforce", "seed": 1, "agent": "cartpole"}


def new_run(tmp_path: Path) -> RunFolder:
    return RunFolder.create(tmp_path / "runs", "reinforce-seed1", SETTINGS, tensorboard=False)


def assert_one_line(error: BaseException, *parts: str) -> str:
    text = str(error)
    assert "\n" not in text and text.strip() == text
    for part in parts:
        assert part in text, text
    return text


def holder(folder: Path, then: str) -> subprocess.Popen:
    """A process that opens ``folder`` as its writer, prints "held", then runs ``then``."""
    code = textwrap.dedent(
        f"""
        import os, signal, sys
        from training.runs import RunFolder
        run = RunFolder.open({str(folder)!r}, tensorboard=False)
        print("held", flush=True)
        {then}
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline() == "held\n"
    return process


# --- the lock ----------------------------------------------------------------------------------
def test_a_second_writer_in_this_process_is_refused_until_the_first_closes(tmp_path) -> None:
    first = new_run(tmp_path)
    assert first.locked and first.notice is None
    assert held_by(first.path) == os.getpid()
    with pytest.raises(RunFolderHeldError) as refused:
        RunFolder.open(first.path, tensorboard=False)
    assert_one_line(
        refused.value, str(first.path), f"in use by process {os.getpid()}", f"kill {os.getpid()}"
    )
    assert refused.value.pid == os.getpid()
    first.close()
    first.close()  # twice is harmless
    assert held_by(first.path) is None
    assert (first.path / ".lock").read_bytes() == b""  # a clean release names no one
    with RunFolder.open(first.path, tensorboard=False) as second:
        assert second.locked and second.notice is None
    assert held_by(first.path) is None


def test_a_writer_in_another_process_is_named_and_its_exit_frees_the_folder(tmp_path) -> None:
    run = new_run(tmp_path)
    run.close()
    process = holder(run.path, "sys.stdin.read()")
    try:
        assert held_by(run.path) == process.pid
        with pytest.raises(RunFolderHeldError) as refused:
            RunFolder.open(run.path, tensorboard=False)
        assert_one_line(
            refused.value,
            f"{run.path}: the run folder is in use by process {process.pid}",
            "then resume",
        )
    finally:
        process.communicate("", timeout=60)
    assert process.returncode == 0
    assert held_by(run.path) is None  # released at exit without close()
    with RunFolder.open(run.path, tensorboard=False) as again:
        assert again.notice is None


def test_a_lock_left_by_a_killed_process_is_taken_over_with_a_notice(tmp_path) -> None:
    run = new_run(tmp_path)
    run.close()
    process = holder(run.path, "os.kill(os.getpid(), signal.SIGKILL)")
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert held_by(run.path) is None  # the kernel released the lock with the process
    with RunFolder.open(run.path, tensorboard=False) as taken:
        assert taken.locked
        assert_one_line(
            taken.notice,
            str(run.path),
            f"left by process {process.pid}",
            "ended without releasing it",
        )
    with RunFolder.open(run.path, tensorboard=False) as next_time:
        assert next_time.notice is None  # the notice is about the killed holder only


def test_without_flock_a_live_recorded_holder_still_refuses(tmp_path, monkeypatch) -> None:
    """On a file system without flock the recorded pid and host decide."""
    run = new_run(tmp_path)
    run.close()

    def no_flock(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(run_safety.fcntl, "flock", no_flock)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        record = {"pid": sleeper.pid, "host": run_safety.socket.gethostname()}
        (run.path / ".lock").write_text(json.dumps(record))
        assert held_by(run.path) == sleeper.pid
        with pytest.raises(RunFolderHeldError, match=f"in use by process {sleeper.pid}"):
            RunFolder.open(run.path, tensorboard=False)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert held_by(run.path) is None
    with RunFolder.open(run.path, tensorboard=False) as taken:
        assert f"left by process {sleeper.pid}" in taken.notice


def test_opening_removes_what_killed_writers_left(tmp_path) -> None:
    run = new_run(tmp_path)
    run.close()
    run.checkpoints.mkdir()
    leftovers = [
        run.path / ".resume_state.npz.123.abcd1234.tmp",
        run.path / ".settings.json.tmp",
        run.checkpoints / ".episode_000064.0123456789ab.tmp.keras",
        run.checkpoints / ".episode_000064.0123456789ab.tmp.config",
    ]
    kept = [run.path / "notes.txt", run.checkpoints / "episode_000064.keras"]
    for path in leftovers + kept:
        path.write_text("x")
    with RunFolder.open(run.path, tensorboard=False):
        assert not any(path.exists() for path in leftovers)
        assert all(path.exists() for path in kept)


# --- atomic writes -----------------------------------------------------------------------------
def state(episodes: int) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    return {"actor/0": np.full((4, 8), float(episodes))}, {"episodes": episodes}


@pytest.mark.parametrize("failure", ["full disk", "Ctrl-C"])
def test_a_write_cut_short_keeps_the_previous_resume_state(tmp_path, monkeypatch, failure):
    run = new_run(tmp_path)
    run.save_state(*state(64))
    real_savez = np.savez

    def cut_short(stream, **arrays):
        real_savez(stream, **arrays)
        stream.truncate(stream.tell() // 2)
        raise (
            OSError(errno.ENOSPC, "No space left on device")
            if failure == "full disk"
            else (KeyboardInterrupt())
        )

    monkeypatch.setattr(np, "savez", cut_short)
    expected = OSError if failure == "full disk" else KeyboardInterrupt
    with pytest.raises(expected) as raised:
        run.save_state(*state(128))
    if failure == "full disk":  # one line naming the file (describe_error prints it)
        assert raised.value.filename == str(run.state_path)
        assert raised.value.strerror == "No space left on device"
    monkeypatch.undo()
    arrays, counters = run.load_state()
    assert int(counters["episodes"]) == 64 and arrays["actor/0"][0, 0] == 64.0
    assert sorted(p.name for p in run.path.iterdir()) == [
        ".lock",
        "resume_state.npz",
        "settings.json",
    ]
    run.close()


def test_a_full_disk_while_writing_json_keeps_the_old_file(tmp_path, monkeypatch) -> None:
    run = new_run(tmp_path)
    before = (run.path / "settings.json").read_text()

    def full(fd: int) -> None:  # delayed allocation: the disk is found full at fsync
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as raised:
        run.write_json("settings.json", {"changed": True})
    monkeypatch.undo()
    assert raised.value.filename == str(run.path / "settings.json")
    assert (run.path / "settings.json").read_text() == before
    assert sorted(p.name for p in run.path.iterdir()) == [".lock", "settings.json"]
    run.close()


# --- damaged files -----------------------------------------------------------------------------
def saved_run(tmp_path: Path, episodes: int = 6) -> RunFolder:
    """A run with ``episodes`` progress rows, a checkpoint and a resume state, closed."""
    run = new_run(tmp_path)
    run.open_progress()
    run.append_progress([row(episode) for episode in range(1, episodes + 1)])
    CartPoleAgent(cartpole_model(), seed=1).save(run.checkpoint_prefix(episodes, "episode"))
    run.save_state(*state(episodes))
    run.close()
    return run


def row(episode: int) -> dict[str, float]:
    return {column: float(episode) for column in PROGRESS_COLUMNS} | {"episode": episode}


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda path: path.unlink(), "missing"),
        (
            lambda path: path.write_bytes(b"not an npz file"),
            "damaged or incomplete (not an npz archive)",
        ),
        (lambda path: path.write_bytes(path.read_bytes()[:200]), "damaged or incomplete ("),
        (lambda path: np.savez(path, weights=np.zeros(3)), "damaged: it holds no counters"),
    ],
    ids=["missing", "not-npz", "cut-in-half", "no-counters"],
)
def test_a_damaged_resume_state_is_named_in_one_line(tmp_path, damage, problem) -> None:
    run = saved_run(tmp_path)
    damage(run.state_path)
    with pytest.raises(DamagedRunFileError) as raised:
        RunFolder.open(run.path, tensorboard=False).load_state()
    assert_one_line(
        raised.value,
        f"{run.state_path}: {problem}",
        "start a new run",
        f"its last checkpoint, {run.checkpoints / 'episode_000006'}, is an agent",
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "missing"),
        (b"", "damaged or incomplete: empty"),
        (b'{"script": "reinf', "damaged or incomplete: not valid JSON ("),
        (b"[1, 2]", "damaged: holds a JSON list, not the run's settings"),
        (b"\xff\xfe{}", "unreadable (not text)"),
    ],
    ids=["missing", "empty", "cut", "list", "binary"],
)
def test_a_damaged_settings_json_is_named_in_one_line(tmp_path, content, problem) -> None:
    run = saved_run(tmp_path)
    assert read_settings_json(run.path) == SETTINGS
    run.record_command("python -m training.reinforce --seed 1")
    settings = run.path / "settings.json"
    settings.unlink() if content is None else settings.write_bytes(content)
    with pytest.raises(DamagedRunFileError) as raised:
        read_settings_json(run.path)
    assert_one_line(
        raised.value, f"{settings}: {problem}", "start a new run", "command.txt holds the command"
    )


def progress_lines(count: int) -> list[str]:
    header = ",".join(PROGRESS_COLUMNS)
    rows = [
        ",".join(str(row(episode)[c]) for c in PROGRESS_COLUMNS) for episode in range(1, count + 1)
    ]
    return [header, *rows]


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        (None, "missing, but the resume state is at episode 6"),
        (["episode,reward", "1,2"], "damaged: its first line is not progress.csv's header"),
        (
            [*progress_lines(6)[:3], "x,y", *progress_lines(6)[4:]],
            "damaged: line 4 is not a complete row of numbers",
        ),
        (
            progress_lines(6)[:3] + progress_lines(6)[4:],
            "damaged: line 4 holds episode 4, expected 3",
        ),
        (
            progress_lines(4),
            "incomplete: it holds episodes 1 to 4, the resume state is at episode 6",
        ),
    ],
    ids=["missing", "header", "text-row", "gap", "short"],
)
def test_a_damaged_progress_csv_is_named_in_one_line(tmp_path, lines, problem) -> None:
    run = saved_run(tmp_path)
    if lines is None:
        run.progress_path.unlink()
    else:
        run.progress_path.write_text("\r\n".join(lines) + "\r\n")
    before = run.progress_path.read_bytes() if lines is not None else None
    again = RunFolder.open(run.path, tensorboard=False)
    with pytest.raises(DamagedRunFileError) as raised:
        again.open_progress(6)
    again.close()
    assert_one_line(raised.value, f"{run.progress_path}: {problem}", "start a new run")
    if before is not None:
        assert run.progress_path.read_bytes() == before  # the evidence is left as it was


def test_rows_after_the_saved_state_and_a_cut_last_line_are_dropped(tmp_path) -> None:
    run = saved_run(tmp_path, episodes=6)
    with run.progress_path.open("a", newline="") as stream:  # a killed run's last rows
        stream.write("\r\n".join(progress_lines(9)[7:]) + "\r\n" + "10,1.0,3")
    with RunFolder.open(run.path, tensorboard=False) as again:
        again.open_progress(6)
        again.append_progress([row(7)])
    assert [r["episode"] for r in run.read_progress()] == [str(e) for e in range(1, 8)]


def test_a_damaged_latest_checkpoint_is_named_in_one_line(tmp_path) -> None:
    run = saved_run(tmp_path)
    prefix = run.checkpoints / "episode_000006"
    assert run.check_latest_checkpoint(CartPoleAgent) == prefix
    CartPoleAgent(cartpole_model(seed=3), seed=1).save(run.checkpoints / "episode_000003")
    assert run.check_latest_checkpoint(CartPoleAgent) == prefix  # the newest is checked
    advice = f"delete episode_000006.keras and episode_000006.config from {run.checkpoints}"
    model, config = (
        prefix.with_name(prefix.name + ".keras"),
        prefix.with_name(prefix.name + ".config"),
    )
    good_model = model.read_bytes()

    model.write_bytes(good_model[: len(good_model) // 2])  # cut in half
    with pytest.raises(DamagedRunFileError) as raised:
        run.check_latest_checkpoint(CartPoleAgent)
    assert_one_line(raised.value, f"{model}: damaged: ", advice, "or start a new run")

    CartPoleAgent(cartpole_model(seed=4), seed=1).save(run.checkpoints / "other")
    model.write_bytes((run.checkpoints / "other.keras").read_bytes())  # another save's model
    with pytest.raises(DamagedRunFileError) as raised:
        run.check_latest_checkpoint(CartPoleAgent)
    assert_one_line(raised.value, f"{model}: damaged: does not match", advice)

    config.unlink()  # a save cut between its two renames
    with pytest.raises(DamagedRunFileError) as raised:
        run.check_latest_checkpoint(CartPoleAgent)
    assert_one_line(raised.value, f"{config}: missing: the checkpoint's save was cut short", advice)

    empty = RunFolder(tmp_path / "empty")
    assert empty.check_latest_checkpoint(CartPoleAgent) is None
