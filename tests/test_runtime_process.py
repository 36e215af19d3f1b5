"""The agents in a process of their own, as the evaluator runs them: no TensorFlow, and rendering
works. Each check runs in a subprocess whose exit status is asserted, so a crash (the
segmentation fault a TensorFlow import causes when Mesa renders) fails the test instead of
killing pytest."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
HEADLESS = {"MUJOCO_GL": "egl", "SDL_VIDEODRIVER": "dummy", "PYTHONPATH": str(REPO_ROOT)}
#: Enough steps to see the viewer work for both tasks while keeping the test short.
VIEWER_STEPS = 150


def run_python(code: str, environment: dict[str, str] | None = None) -> str:
    """Run `code` in a fresh Python from the repository root; fail on any non-zero exit."""
    completed = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        env={**os.environ, **HEADLESS, **(environment or {})},
        timeout=300,
    )
    assert completed.returncode == 0, (
        f"exit status {completed.returncode} (a negative status is a signal, -11 a "
        f"segmentation fault)\n{completed.stderr[-2000:]}"
    )
    return completed.stdout


LOAD_AND_ACT = """
import sys
import numpy as np
from agents import CartPoleAgent, InvertedPendulumAgent
pendulum = InvertedPendulumAgent.load("weights/pendulum")
cartpole = CartPoleAgent.load("weights/cartpole")
pendulum_action = pendulum.act(np.zeros(4), {})
cartpole_action = cartpole.act([0.0, 0.0, 0.02, 0.0], {})
assert pendulum_action.dtype == np.float32 and pendulum_action.shape == (1,)
assert cartpole_action in (0, 1)
"""


def test_import_load_and_act_import_neither_tensorflow_nor_keras() -> None:
    stdout = run_python(
        LOAD_AND_ACT
        + "print(sorted({name.split('.')[0] for name in sys.modules} & "
        "{'tensorflow', 'keras', 'h5py'}))"
    )
    # The weights were read with h5py, and neither TensorFlow nor Keras was imported.
    assert stdout.strip() == "['h5py']", stdout


def test_training_imports_tensorflow_without_keras_optional_imports() -> None:
    # Keras imports these for helpers no run uses (0.85 s in all); they stay importable.
    stdout = run_python(
        "import sys\n"
        "from training.startup import import_tensorflow_quietly\n"
        "import_tensorflow_quietly()\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        "print(sorted({'keras', 'pandas', 'matplotlib', 'cv2', 'IPython'} & loaded))\n"
        "import pandas, matplotlib, IPython  # (OpenCV is not a dependency)\n"
        "print(pandas.DataFrame({'a': [1]}).shape)\n"
    )
    assert stdout.split("\n")[:2] == ["['keras']", "(1, 1)"], stdout


@pytest.mark.parametrize("collecting", [True, False])
def test_the_tensorflow_import_leaves_its_objects_to_no_garbage_collection(collecting) -> None:
    # They live as long as the process: collecting them during the import alone costs 0.35 s.
    stdout = run_python(
        "import gc\n"
        f"None if {collecting} else gc.disable()\n"
        "from training.startup import import_tensorflow_quietly\n"
        "import_tensorflow_quietly()\n"
        "print(gc.isenabled(), gc.get_freeze_count() > 100_000)\n"
    )
    assert stdout.split() == [str(collecting), "True"], stdout


def test_shipped_agents_act_then_render_offscreen_in_the_same_process() -> None:
    render = """
import json
import gymnasium as gym
frames = {}
for env_id, agent in (("InvertedPendulum-v5", pendulum), ("CartPole-v1", cartpole)):
    env = gym.make(env_id, render_mode="rgb_array")
    observation, info = env.reset(seed=0)
    for _ in range(20):
        observation, _, terminated, truncated, info = env.step(agent.act(observation, info))
    frames[env_id] = env.render()
    env.close()
print(json.dumps({key: [*frame.shape, bool(frame.std() > 0)] for key, frame in frames.items()}))
"""
    stdout = run_python(LOAD_AND_ACT + render)
    frames = json.loads(stdout.strip().splitlines()[-1])  # shape and "not a blank image"
    assert frames == {
        "InvertedPendulum-v5": [480, 480, 3, True],
        "CartPole-v1": [400, 600, 3, True],
    }


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="needs xvfb-run (apt install xvfb)")
@pytest.mark.parametrize("agent", ["cartpole", "pendulum"])
def test_kymnasium_evaluate_runs_in_the_real_viewer(agent: str) -> None:
    completed = subprocess.run(
        ["xvfb-run", "-a", sys.executable, "benchmarks/viewer_episode.py", "--agent", agent,
         "--max-steps", str(VIEWER_STEPS), "--json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        # The real viewer: no EGL or dummy driver, the X server Xvfb provides (Mesa).
        env={k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "SDL_VIDEODRIVER")},
        timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, f"exit status {completed.returncode}\n{completed.stderr}"
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["steps"] == VIEWER_STEPS and result["return"] == VIEWER_STEPS
    assert result["forbidden_modules_loaded"] == []


def test_the_viewer_without_a_display_says_to_use_xvfb_run_instead_of_aborting() -> None:
    """MuJoCo's GLFW viewer aborts with a C assertion (exit 134) when there is no display; the
    command checks first and names the fix in one line."""
    hidden = ("DISPLAY", "WAYLAND_DISPLAY", "MUJOCO_GL", "SDL_VIDEODRIVER")
    completed = subprocess.run(
        [sys.executable, "benchmarks/viewer_episode.py", "--agent", "pendulum", "--max-steps", "5"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        env={k: v for k, v in os.environ.items() if k not in hidden},
        timeout=300,
    )
    assert completed.returncode == 2, completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and "Assertion" not in completed.stderr
    command = "xvfb-run -a python benchmarks/viewer_episode.py --agent pendulum --max-steps 5"
    assert command in lines[0]
