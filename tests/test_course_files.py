"""Every file the course's own code writes, brought to this package's agents, tools and submit.py.

The files are made as the course makes them: its networks (tests/course_networks.py) saved with
`keras.models.save_model`, its training loops' lone `{dir}/{episode}.keras` checkpoints, and its
`CartPoleAgent.save` pairs, whose config is a pickle of `{'seed': seed}` (seed None unless the
student passed one). The pendulum agent saves a lone `.keras`. The baseline variant's early-stop
file is its critic, which cannot act: it is refused with what to do instead.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
from course_networks import course_cartpole_policy, course_critic, course_pendulum_actor

from agents import (
    AgentFileError,
    CartPoleAgent,
    InvertedPendulumAgent,
    UncheckedFilesWarning,
    agent_name_of,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Where the score and speed are not the point: few episodes, no bar, no latency limit.
QUICK_SUBMIT = ["--episodes", "2", "--min-score", "0", "--max-p99-us", "1e6"]


def course_agent_save(model: keras.Model, path: Path, seed: int | None) -> None:
    """The course's `CartPoleAgent.save(path)`: the model, and a pickle of `{'seed': seed}`."""
    keras.models.save_model(model, f"{path}.keras")
    with open(f"{path}.config", "wb") as stream:
        pickle.dump({"seed": seed}, stream)


@pytest.fixture(scope="module")
def course_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each shape the course writes, by a short name, as the prefix a student would pass."""
    folder = tmp_path_factory.mktemp("course")
    (folder / "reinforce").mkdir()
    (folder / "baseline").mkdir()
    keras.models.save_model(course_cartpole_policy(), folder / "reinforce" / "199.keras")
    keras.models.save_model(course_cartpole_policy(), folder / "reinforce" / "999.keras")
    course_agent_save(course_cartpole_policy(), folder / "unseeded", seed=None)
    course_agent_save(course_cartpole_policy(), folder / "seeded", seed=42)
    keras.models.save_model(course_pendulum_actor(), folder / "pendulum.keras")
    # The baseline variant, stopping early at episode 350, saves its critic there.
    keras.models.save_model(course_critic(), folder / "baseline" / "350.keras")
    return {
        "lone cartpole checkpoint": folder / "reinforce" / "199",
        "{'seed': None} + .keras": folder / "unseeded",
        "{'seed': 42} + .keras": folder / "seeded",
        "lone pendulum .keras": folder / "pendulum",
        "baseline early-stop critic": folder / "baseline" / "350",
    }


#: The shapes that can act, and the agent each one is.
USABLE = {
    "lone cartpole checkpoint": "cartpole",
    "{'seed': None} + .keras": "cartpole",
    "{'seed': 42} + .keras": "cartpole",
    "lone pendulum .keras": "pendulum",
}
AGENTS = {"cartpole": CartPoleAgent, "pendulum": InvertedPendulumAgent}


def run(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *map(str, args)], capture_output=True, text=True, check=False,
        cwd=REPO_ROOT,
    )  # fmt: skip


def assert_no_raw_warning_or_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr
    assert "Warning" not in stderr  # no `UncheckedFilesWarning: ...` with a source line
    assert ".py:" not in stderr


@pytest.mark.parametrize("shape", sorted(USABLE))
def test_each_course_shape_loads_and_acts_as_keras_would(
    course_files: dict[str, Path], shape: str, observations: np.ndarray
) -> None:
    prefix = course_files[shape]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        agent = AGENTS[USABLE[shape]].load(prefix)
    assert [warning.category for warning in caught] == [UncheckedFilesWarning]
    assert agent.seed == 42  # the course's None, or its 42
    model = keras.models.load_model(f"{prefix}.keras", safe_mode=True)
    outputs = model(observations.astype(np.float32))
    if USABLE[shape] == "cartpole":
        expected = keras.ops.convert_to_numpy(outputs).argmax(axis=1)
        np.testing.assert_array_equal([agent.act(o, {}) for o in observations], expected)
    else:
        mean = np.clip(keras.ops.convert_to_numpy(outputs[0]), -3.0, 3.0)
        actions = np.stack([agent.act(o, {}) for o in observations])
        np.testing.assert_allclose(actions, mean, atol=1e-5)


@pytest.mark.parametrize("shape", sorted(USABLE))
def test_the_files_name_their_task(course_files: dict[str, Path], shape: str) -> None:
    assert agent_name_of(course_files[shape]) == USABLE[shape]


def test_the_note_is_one_plain_line_naming_the_missing_config(
    course_files: dict[str, Path],
) -> None:
    prefix = course_files["lone cartpole checkpoint"]
    with pytest.warns(UncheckedFilesWarning) as caught:
        CartPoleAgent.load(prefix)
    note = str(caught[0].message)
    assert note.startswith(f"{prefix}.keras: a course-style file (no 199.config beside it), ")
    assert "no hash" in note and "\n" not in note and "course-style)" not in note
    with pytest.warns(UncheckedFilesWarning, match=r"\{'seed': None\} in unseeded\.config"):
        CartPoleAgent.load(course_files["{'seed': None} + .keras"])


def test_the_baseline_early_stop_critic_is_refused_saying_what_it_is_and_what_to_do(
    course_files: dict[str, Path],
) -> None:
    prefix = course_files["baseline early-stop critic"]
    assert agent_name_of(prefix) is None  # a critic fits no task
    for agent_class in AGENTS.values():
        with pytest.raises(AgentFileError) as refused:
            agent_class.load(prefix)
        message = str(refused.value)
        assert "a value network (4 -> 128 ReLU -> 1 linear, the critic's V(s))" in message
        assert "cannot act" in message and "previous checkpoint" in message
        assert "python -m training.reinforce_baseline --preset course" in message


@pytest.mark.parametrize("shape", sorted(USABLE))
def test_tools_evaluate_scores_each_shape_without_agent_saying_once_there_is_no_hash(
    course_files: dict[str, Path], shape: str
) -> None:
    completed = run("-m", "tools.evaluate", "--weights", course_files[shape], "--episodes", "2",
                    "--max-steps", "20", "--json")  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["episodes"] == 2
    assert_no_raw_warning_or_traceback(completed.stderr)
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("evaluate: note: ") and "no hash" in lines[0]


def test_tools_videos_films_the_courses_early_and_later_checkpoints_without_agent(
    course_files: dict[str, Path], tmp_path: Path
) -> None:
    """The course's own comparison, 199 against 999, from its lone checkpoints."""
    early = course_files["lone cartpole checkpoint"]
    completed = run("-m", "tools.videos", "--early", early, "--later", early.with_name("999"),
                    "--max-steps", "5", "--out", tmp_path)  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "cartpole-early-vs-later.mp4").is_file()
    assert_no_raw_warning_or_traceback(completed.stderr)
    notes = completed.stderr.strip().splitlines()
    assert [note.split(": ")[:3] for note in notes] == [
        ["videos", "note", f"{early}.keras"],
        ["videos", "note", f"{early.with_name('999')}.keras"],
    ]  # one line per file, although each file is loaded twice


def test_tools_evaluate_refuses_the_critic_in_one_line_with_the_fix(
    course_files: dict[str, Path],
) -> None:
    completed = run("-m", "tools.evaluate", "--weights", course_files["baseline early-stop critic"])
    assert completed.returncode == 1
    assert_no_raw_warning_or_traceback(completed.stderr)
    assert len(completed.stderr.strip().splitlines()) == 1
    assert "value network" in completed.stderr and "previous checkpoint" in completed.stderr


def test_tools_evaluate_names_the_agent_for_a_course_file_of_the_other_task(
    course_files: dict[str, Path],
) -> None:
    completed = run("-m", "tools.evaluate", "--agent", "cartpole",
                    "--weights", course_files["lone pendulum .keras"])  # fmt: skip
    assert completed.returncode == 1
    assert "policy for InvertedPendulum-v5" in completed.stderr
    assert "--agent pendulum" in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("shape", sorted(USABLE))
def test_submit_bundles_each_shape(course_files: dict[str, Path], shape: str, tmp_path: Path):
    completed = run("submit.py", "--agent", USABLE[shape], "--weights", course_files[shape],
                    "--out", tmp_path / "dist", *QUICK_SUBMIT, "--json")  # fmt: skip
    report = json.loads(completed.stdout)
    assert completed.returncode == 0 and report["ok"], report.get("error")
    assert_no_raw_warning_or_traceback(completed.stderr)
    assert (tmp_path / "dist" / f"{USABLE[shape]}.zip").is_file()


def test_submit_refuses_the_critic_saying_what_it_is(
    course_files: dict[str, Path], tmp_path: Path
) -> None:
    completed = run("submit.py", "--agent", "cartpole", "--weights",
                    course_files["baseline early-stop critic"], "--out", tmp_path / "dist",
                    *QUICK_SUBMIT, "--json")  # fmt: skip
    report = json.loads(completed.stdout)
    assert completed.returncode == 1 and report["error"]["check"] == "weights"
    assert "value network" in report["error"]["detail"]
    assert not (tmp_path / "dist" / "cartpole.zip").exists()
