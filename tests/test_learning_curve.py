"""The learning curve is drawn by a child process: the run never imports matplotlib, the child
never outlives the run, and a child that fails says why."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from training.learning_curve import CurveDrawer

REPO_ROOT = Path(__file__).resolve().parent.parent
ROWS = [{"episode": "1", "reward": "10", "running_reward": "5"}] * 2


def test_the_child_draws_the_png() -> None:
    drawer = CurveDrawer()
    png = drawer.png(ROWS, "ppo (cartpole, seed 1)", 475.0)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert drawer.child.returncode == 0
    drawer.close()  # after drawing: nothing left to stop


def test_a_child_that_fails_raises_with_its_error() -> None:
    drawer = CurveDrawer()
    with pytest.raises(RuntimeError, match=r"(?s)drawing the learning curve failed.*ValueError"):
        drawer.png(ROWS, "title", "not a number")  # the child's f"{threshold:g}" fails


def test_an_unused_child_is_gone_after_close() -> None:
    drawer = CurveDrawer()
    drawer.close()
    assert drawer.child.returncode is not None
    drawer.close()  # twice is harmless


def test_ctrl_c_reaches_the_run_not_the_child() -> None:
    # A terminal's Ctrl-C goes to the whole process group; only the run reports it.
    drawer = CurveDrawer()
    status = Path(f"/proc/{drawer.child.pid}/status")
    deadline = time.monotonic() + 30
    while not ignores_sigint(status) and time.monotonic() < deadline:
        time.sleep(0.01)  # until the child has set its signal handling
    os.kill(drawer.child.pid, signal.SIGINT)
    png = drawer.png(ROWS, "title", None)
    assert png[:4] == b"\x89PNG"


def ignores_sigint(status: Path) -> bool:
    line = next(x for x in status.read_text().splitlines() if x.startswith("SigIgn:"))
    return bool(int(line.split()[1], 16) >> (signal.SIGINT - 1) & 1)


def test_a_run_draws_its_curve_without_importing_matplotlib(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from training.ppo import main\n"
        f"main(['--agent', 'cartpole', '--max-episodes', '3', '--runs-dir', {str(tmp_path)!r},"
        " '--no-progress-bar', '--rollout-steps', '16'])\n"
        "print('matplotlib' in sys.modules)\n"
    )
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip().splitlines()[-1] == "False"
    (run,) = tmp_path.iterdir()
    assert (run / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
