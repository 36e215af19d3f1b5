"""submit.py and the tools: a user's mistake is one line and a non-zero exit, a stop signal
leaves nothing behind, and nothing computed is lost.

Real command lines in subprocesses where the exit status or a signal is the point; the
submissions use test_submit's QUICK settings.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from conftest import cartpole_model
from test_submit import QUICK

from agents import CartPoleAgent

REPO_ROOT = Path(__file__).resolve().parent.parent
#: How long a test waits for a submission to reach the stage it interrupts.
STAGE_TIMEOUT_SECONDS = 120


@pytest.fixture
def temporary_folder(tmp_path: Path) -> Path:
    """The TMPDIR of the commands run here, so their temporary folders can be watched."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    return folder


def command(*args: str | Path) -> list[str]:
    script = [str(REPO_ROOT / "submit.py")] if args[0] == "submit" else ["-m", f"tools.{args[0]}"]
    return [sys.executable, *script, *map(str, args[1:])]


def run(*args: str | Path, tmpdir: Path | None = None) -> subprocess.CompletedProcess:
    environment = dict(os.environ, **({"TMPDIR": str(tmpdir)} if tmpdir else {}))
    return subprocess.run(
        command(*args), capture_output=True, text=True, check=False, cwd=REPO_ROOT,
        env=environment,
    )  # fmt: skip


def assert_one_line(completed: subprocess.CompletedProcess, status: int, *phrases: str) -> None:
    """Exit `status`, and one line on stderr that holds every phrase (no traceback)."""
    lines = completed.stderr.strip().splitlines()
    assert completed.returncode == status, completed.stderr
    assert len(lines) == 1 and "Traceback" not in completed.stderr, completed.stderr
    assert all(phrase in lines[0] for phrase in phrases), lines[0]


def start_submit(weights: Path, out: Path, tmpdir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        command("submit", "--agent", "pendulum", "--weights", weights, "--out", out, *QUICK),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env=dict(os.environ, TMPDIR=str(tmpdir)),
        start_new_session=True,  # a signal to its group reaches the probe too, as Ctrl-C does
    )


def wait_for(process: subprocess.Popen, folder: Path, pattern: str) -> list[Path]:
    """Wait until `folder` holds something matching `pattern` (the run reached that stage)."""
    deadline = time.monotonic() + STAGE_TIMEOUT_SECONDS
    while not (found := sorted(folder.glob(pattern))):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"no {pattern} in {folder}"
        time.sleep(0.05)
    return found


def test_submit_out_is_a_zip_path_and_replaces_its_own_bundle(
    pendulum_weights: Path, tmp_path: Path
) -> None:
    out = tmp_path / "x" / "c.zip"
    for _ in range(2):  # the second run replaces the first run's bundle
        completed = run("submit", "--agent", "pendulum", "--weights", pendulum_weights,
                        "--out", out, *QUICK)  # fmt: skip
        assert completed.returncode == 0, completed.stdout + completed.stderr
        assert out.is_file() and zipfile.is_zipfile(out)
        assert sorted(path.name for path in out.parent.iterdir()) == ["c.zip"]
    foreign = tmp_path / "notes.zip"
    foreign.write_bytes(b"not a bundle")
    completed = run("submit", "--agent", "pendulum", "--weights", pendulum_weights,
                    "--out", foreign, *QUICK)  # fmt: skip
    assert_one_line(completed, 2, f"--out {foreign}", "not a bundle from this command")
    assert foreign.read_bytes() == b"not a bundle"


def test_submit_verify_of_a_missing_file_says_it_is_missing(tmp_path: Path) -> None:
    completed = run("submit", "--verify", tmp_path / "nope.zip")
    assert_one_line(completed, 2, f"--verify {tmp_path / 'nope.zip'}: no such file")
    assert "tamper" not in completed.stdout + completed.stderr


@pytest.mark.parametrize(
    ("tool", "flag", "extra"),
    [
        ("submit", "--out", ("--agent", "pendulum")),
        ("evaluate", "--record", ("--agent", "pendulum", "--episodes", "1")),
        ("videos", "--out", ("--agent", "pendulum")),
        ("promote", "--weights-dir", ("RUN",)),
    ],
)
def test_an_output_folder_that_cannot_be_created_is_one_line(
    pendulum_weights: Path, tmp_path: Path, tool: str, flag: str, extra: tuple[str, ...]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    weights = {"evaluate": "--weights", "videos": "--later"}.get(tool)
    extra = tuple(str(tmp_path) if word == "RUN" else word for word in extra)
    weights_args = (weights, pendulum_weights) if weights else ()
    completed = run(tool, *extra, *weights_args, flag, blocker / "out")
    assert_one_line(completed, 2, f"{flag} {blocker / 'out'}: cannot create it")


@pytest.mark.parametrize(
    ("tool", "args", "shown"),
    [
        ("evaluate", ("--agent", "pendulum", "--weights", "MISSING"), "--weights"),
        ("videos", ("--agent", "pendulum", "--early", "MISSING", "--later", "WEIGHTS"), "--early"),
        ("videos", ("--agent", "pendulum", "--later", "MISSING"), "--later"),
        ("promote", ("MISSING",), "RUN_DIR"),
    ],
)
def test_a_wrong_weights_path_is_one_line(
    pendulum_weights: Path, tmp_path: Path, tool: str, args: tuple[str, ...], shown: str
) -> None:
    missing = tmp_path / "missing"
    names = {"MISSING": str(missing), "WEIGHTS": str(pendulum_weights)}
    out = ("--out", tmp_path / "videos") if tool == "videos" else ()
    completed = run(tool, *(names.get(word, word) for word in args), *out)
    assert_one_line(completed, 1, f"{shown} {missing}")
    assert not (tmp_path / "videos").exists() or not any((tmp_path / "videos").iterdir())


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    completed = run("evaluate", "--agent", "cartpole", "--weights", tmp_path / "x", "--debug")
    assert completed.returncode == 1
    assert "Traceback" in completed.stderr and "AgentFileError" in completed.stderr


def test_evaluate_prints_the_scores_before_recording_and_reports_a_failed_recording(
    tmp_path: Path,
) -> None:
    prefix = tmp_path / "cartpole"
    CartPoleAgent(cartpole_model(), seed=2).save(prefix)
    script = (
        "import sys; from tools import evaluate\n"
        "def fail(self, name):\n"
        "    print('FILMING', flush=True)\n"
        "    raise OSError(28, 'No space left on device')\n"
        "evaluate.VideoPerSeed.start_recording = fail\n"
        f"raise SystemExit(evaluate.main(['--agent', 'cartpole', '--weights', {str(prefix)!r}, "
        f"'--episodes', '3', '--max-steps', '30', '--record', {str(tmp_path / 'v')!r}]))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, cwd=REPO_ROOT
    )
    assert_one_line(completed, 4, f"--record {tmp_path / 'v'} failed", "scores above stand")
    scores, filming = completed.stdout.index("  mean "), completed.stdout.index("FILMING")
    assert scores < filming


def test_ctrl_c_during_submit_is_one_line_and_leaves_nothing(
    pendulum_weights: Path, tmp_path: Path, temporary_folder: Path
) -> None:
    out = tmp_path / "dist"
    process = start_submit(pendulum_weights, out, temporary_folder)
    wait_for(process, temporary_folder, "submit-probe-*")  # the fresh Python is running
    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=STAGE_TIMEOUT_SECONDS)
    completed = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert_one_line(completed, 130, "submit: stopped by Ctrl-C; no bundle was written")
    assert list(out.iterdir()) == [] and list(temporary_folder.iterdir()) == []


def test_a_killed_submit_leaves_files_the_next_run_removes(
    pendulum_weights: Path, tmp_path: Path, temporary_folder: Path
) -> None:
    out = tmp_path / "dist"
    process = start_submit(pendulum_weights, out, temporary_folder)
    wait_for(process, temporary_folder, "submit-verify-*")  # the zip is being verified
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
    left = sorted(out.iterdir()) + sorted(temporary_folder.iterdir())
    assert len(left) >= 3 and all(str(process.pid) in path.name for path in left), left
    # A concurrent run (this process stands for it: alive) keeps its files; so does anything
    # that is not a leftover.
    alive = os.getpid()
    kept = [
        out / f".pendulum.{alive}.abcd1234.zip",
        temporary_folder / f"submit-stage-{alive}-x1y2z3w4",
    ]
    kept += [out / ".notes.zip", temporary_folder / "submit-notes"]
    for path in kept:
        path.mkdir() if "submit-" in path.name else path.write_bytes(b"")
    completed = run("submit", "--agent", "pendulum", "--weights", pendulum_weights, "--out",
                    out, *QUICK, tmpdir=temporary_folder)  # fmt: skip
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert not any(path.exists() for path in left)
    assert all(path.exists() for path in kept)
    assert sorted(out.iterdir()) == sorted([out / "pendulum.zip", *kept[:1], kept[2]])


def test_a_video_that_cannot_be_written_keeps_the_scores_and_is_one_line(tmp_path: Path) -> None:
    prefix = tmp_path / "cartpole"
    CartPoleAgent(cartpole_model(), seed=2).save(prefix)
    videos = tmp_path / "v"
    (videos / "cartpole-seed0-episode-0.mp4").mkdir(parents=True)  # a folder where the MP4 goes
    completed = run("evaluate", "--agent", "cartpole", "--weights", prefix, "--episodes", "2",
                    "--max-steps", "30", "--record", videos)  # fmt: skip
    assert_one_line(completed, 4, f"--record {videos} failed", "Is a directory")
    assert "greedy episodes, seeds 0..1" in completed.stdout and "  mean " in completed.stdout
