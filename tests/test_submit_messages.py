"""submit.py with the course's files and the usual mistakes: every message leads to the fix.

The course's code writes lone `.keras` checkpoints and `{'seed': None}` configs; those bundle,
and the report says what was loaded and, once, that such files carry no hash. Each mistake
(the other task's files, a run folder, weights given to `--verify`, an output folder that
cannot be written) is one line or one failed check naming the flag and what to pass instead.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import keras
import pytest
from conftest import cartpole_model, course_cartpole_model, course_pendulum_model
from test_submit import QUICK, assert_no_bundle, run_submit
from test_submit_code import run_text

from agents import CartPoleAgent

REPO_ROOT = Path(__file__).resolve().parent.parent
NO_HASH = "course-format files carry no hash"


def course_files(folder: Path, shape: str) -> Path:
    """Files as the course's code writes them; returns their prefix."""
    folder.mkdir(parents=True, exist_ok=True)
    agent = "pendulum" if shape == "lone pendulum" else "cartpole"
    prefix = folder / agent
    model = course_pendulum_model() if agent == "pendulum" else course_cartpole_model()
    keras.models.save_model(model, prefix.with_suffix(".keras"))
    seeds = {"seed None": {"seed": None}, "seed 42": {"seed": 42}}
    if shape in seeds:
        prefix.with_suffix(".config").write_bytes(pickle.dumps(seeds[shape]))
    return prefix


@pytest.mark.parametrize(
    ("shape", "loaded"),
    [
        ("lone cartpole", "cartpole.keras alone (no cartpole.config, as the course saves it)"),
        ("seed None", "cartpole.keras + cartpole.config (the course's {'seed': None})"),
        ("seed 42", "cartpole.keras + cartpole.config (the course's {'seed': 42})"),
        ("lone pendulum", "pendulum.keras alone (no pendulum.config, as the course saves it)"),
    ],
)
def test_course_files_submit_saying_what_was_loaded(tmp_path: Path, shape: str, loaded: str):
    prefix = course_files(tmp_path / "course", shape)
    completed = run_text("--weights", prefix, "--out", tmp_path / "dist", *QUICK)  # no --agent
    assert completed.returncode == 0, completed.stdout + completed.stderr
    weights_line = next(line for line in completed.stdout.splitlines() if " weights " in line)
    assert loaded in weights_line and f"--agent {prefix.name}, as the files say" in weights_line
    assert completed.stdout.count(NO_HASH) == 1 and "+ .config" not in completed.stdout
    assert "Warning" not in completed.stderr and "Traceback" not in completed.stderr
    assert (tmp_path / "dist" / f"{prefix.name}.zip").is_file()


def test_a_checked_pair_needs_no_agent_and_says_nothing_of_hashes(
    pendulum_weights: Path, tmp_path: Path
):
    out = tmp_path / "dist"
    code, report = run_submit("--weights", pendulum_weights, "--out", out, *QUICK)
    assert code == 0 and (out / "pendulum.zip").is_file(), report
    detail = report["checks"][0]["detail"]
    assert "pendulum.keras + pendulum.config load safely" in detail
    assert "--agent pendulum, as the files say" in detail and NO_HASH not in detail


def test_files_of_neither_task_ask_for_agent(tmp_path: Path):
    prefix = tmp_path / "three"
    three_actions = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, activation="softmax")]
    )
    keras.models.save_model(three_actions, prefix.with_suffix(".keras"))
    completed = run_text("--weights", prefix, "--out", tmp_path / "dist")
    assert completed.returncode == 2 and len(completed.stderr.splitlines()) == 1
    assert "pass --agent cartpole or --agent pendulum" in completed.stderr


@pytest.mark.parametrize(("saved", "asked"), [("pendulum", "cartpole"), ("cartpole", "pendulum")])
def test_the_other_tasks_weights_name_the_agent_to_use(
    pendulum_weights: Path, cartpole_weights: Path, tmp_path: Path, saved: str, asked: str
):
    weights = {"pendulum": pendulum_weights, "cartpole": cartpole_weights}[saved]
    out = tmp_path / "dist"
    code, report = run_submit("--agent", asked, "--weights", weights, "--out", out)
    assert code == 1 and report["error"]["check"] == "weights"
    assert f"use --agent {saved}" in report["fix"]
    assert_no_bundle(out)


def run_folder(tmp_path: Path) -> Path:
    run = tmp_path / "runs" / "reinforce-seed1"
    CartPoleAgent(cartpole_model(), seed=1).save(run / "final")
    return run


def test_a_run_folder_as_weights_names_its_final_agent(tmp_path: Path):
    run = run_folder(tmp_path)
    out = tmp_path / "dist"
    code, report = run_submit("--agent", "cartpole", "--weights", run, "--out", out)
    assert code == 1 and f"pass --weights {run / 'final'}" in report["fix"]
    completed = run_text("--weights", run, "--out", out)  # without --agent: one line
    assert completed.returncode == 1 and len(completed.stderr.splitlines()) == 1
    assert f"--weights {run}: is a folder; pass --weights {run / 'final'}" in completed.stderr
    assert_no_bundle(out)


def test_verify_of_weights_says_it_is_not_a_bundle_and_how_to_build_one(
    pendulum_weights: Path,
):
    model = pendulum_weights.with_suffix(".keras")
    completed = run_text("--verify", model)
    assert completed.returncode == 2 and len(completed.stderr.splitlines()) == 1
    assert f"--verify {model}: this is not a bundle" in completed.stderr
    command = f"build one with python submit.py --agent pendulum --weights {pendulum_weights}"
    assert command in completed.stderr
    assert "tamper" not in completed.stdout + completed.stderr


def test_an_out_folder_that_cannot_be_written_is_a_usage_error_naming_out(
    pendulum_weights: Path,
):
    completed = run_text(
        "--agent", "pendulum", "--weights", pendulum_weights, "--out", "/proc/x.zip", *QUICK
    )
    assert completed.returncode == 2 and len(completed.stderr.splitlines()) == 1
    assert "--out /proc/x.zip: cannot write a file in /proc" in completed.stderr
    assert ".pendulum." not in completed.stderr  # no temporary file's name


def test_weights_that_are_not_there_without_agent_say_so(tmp_path: Path):
    completed = run_text("--weights", tmp_path / "nothing", "--out", tmp_path / "dist")
    assert completed.returncode == 1 and len(completed.stderr.splitlines()) == 1
    assert f"--weights {tmp_path / 'nothing'}: " in completed.stderr
    assert "nothing.keras: model file not found; pass PREFIX" in completed.stderr


def test_a_critic_without_agent_says_what_it_is_not_which_agent(tmp_path: Path):
    """The course's baseline saves its critic at an early stop: no --agent would help."""
    prefix = tmp_path / "critic"
    critic = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)]
    )
    keras.models.save_model(critic, prefix.with_suffix(".keras"))
    completed = run_text("--weights", prefix, "--out", tmp_path / "dist")
    assert completed.returncode == 1 and len(completed.stderr.splitlines()) == 1
    assert "a value network" in completed.stderr and "--agent" not in completed.stderr
    code, report = run_submit("--agent", "cartpole", "--weights", prefix, "--out", tmp_path / "d")
    assert code == 1 and "a value network" in report["error"]["detail"]
    assert report["fix"] == "do what the error says: it names what to use instead"
