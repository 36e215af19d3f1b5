"""The evaluation command and the headless videos, on small models built here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cartpole_model, pendulum_model

from agents import CartPoleAgent, InvertedPendulumAgent
from agents.evaluation import evaluate

REPO_ROOT = Path(__file__).resolve().parent.parent


def run_module(module: str, *args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )


@pytest.fixture
def pendulum_prefix(tmp_path: Path) -> Path:
    prefix = tmp_path / "pendulum"
    InvertedPendulumAgent(pendulum_model(), seed=2).save(prefix)
    return prefix


def test_evaluate_command_json_matches_the_shared_evaluate(tmp_path: Path) -> None:
    prefix = tmp_path / "cartpole"
    agent = CartPoleAgent(cartpole_model(), seed=2)
    agent.save(prefix)
    completed = run_module(
        "tools.evaluate",
        "--agent",
        "cartpole",
        "--weights",
        prefix,
        "--episodes",
        "4",
        "--seed",
        "3",
        "--max-steps",
        "20",
        "--json",
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    expected = evaluate(CartPoleAgent.load(prefix), "CartPole-v1", 4, 3, max_steps=20)
    assert report["returns"] == list(expected.returns)
    assert report["max_steps"] == 20 and max(report["lengths"]) <= 20
    assert {"mean", "std", "min", "max", "act_p50_us", "act_p99_us"} <= report.keys()


def test_evaluate_command_records_videos(pendulum_prefix: Path, tmp_path: Path) -> None:
    completed = run_module(
        "tools.evaluate",
        "--agent",
        "pendulum",
        "--weights",
        pendulum_prefix,
        "--episodes",
        "2",
        "--record",
        tmp_path / "v",
        "--record-episodes",
        "2",
    )
    assert completed.returncode == 0, completed.stderr
    assert sorted(path.name for path in (tmp_path / "v").iterdir()) == [
        "pendulum-seed0-episode-0.mp4",
        "pendulum-seed1-episode-0.mp4",
    ]


def test_evaluate_command_records_only_scored_episodes(pendulum_prefix: Path, tmp_path: Path):
    completed = run_module("tools.evaluate", "--agent", "pendulum", "--weights",
                           pendulum_prefix, "--episodes", "1", "--record", tmp_path / "v",
                           "--record-episodes", "2")
    assert completed.returncode == 2
    assert "at most --episodes" in completed.stderr
    assert not (tmp_path / "v").exists()


def test_evaluate_command_reports_bad_weights(tmp_path: Path) -> None:
    completed = run_module(
        "tools.evaluate", "--agent", "cartpole", "--weights", tmp_path / "missing"
    )
    assert completed.returncode == 1
    assert "missing.keras: model file not found; pass PREFIX" in completed.stderr


def test_evaluate_needs_no_agent_when_the_config_names_it(pendulum_prefix: Path) -> None:
    completed = run_module("tools.evaluate", "--weights", pendulum_prefix, "--episodes", "1",
                           "--max-steps", "5", "--json")  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["env_id"] == "InvertedPendulum-v5"
    assert completed.stderr == ""  # a checked pair: no note


def test_evaluate_without_agent_or_weights_says_what_to_pass() -> None:
    completed = run_module("tools.evaluate")
    assert completed.returncode == 2
    assert "pass --agent {cartpole,pendulum}" in completed.stderr
    assert "--weights" in completed.stderr


def test_weights_of_the_other_task_name_the_agent_to_use(pendulum_prefix: Path) -> None:
    completed = run_module("tools.evaluate", "--agent", "cartpole", "--weights", pendulum_prefix)
    assert completed.returncode == 1
    assert "--agent pendulum" in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1


def fake_run(folder: Path, stems: tuple[str, ...], final: bool = True) -> Path:
    """A run folder as training leaves it: settings.json, checkpoints and final."""
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "settings.json").write_text(json.dumps({"agent": "pendulum", "script": "ppo"}))
    for seed, stem in enumerate(stems):
        InvertedPendulumAgent(pendulum_model(seed=seed), seed=2).save(folder / "checkpoints" / stem)
    if final:
        InvertedPendulumAgent(pendulum_model(seed=9), seed=2).save(folder / "final")
    return folder


def test_a_run_folder_given_as_weights_suggests_its_final_agent(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "run", ("episode_000000",))
    completed = run_module("tools.evaluate", "--agent", "pendulum", "--weights", run)
    assert completed.returncode == 1
    assert f"its final agent is {run / 'final'}" in completed.stderr
    completed = run_module("tools.evaluate", "--weights", run)  # no --agent: the same advice
    assert completed.returncode == 1 and f"{run / 'final'}" in completed.stderr


def test_videos_of_a_run_compare_the_untrained_policy_with_the_final_agent(
    tmp_path: Path,
) -> None:
    """A run that saved its untrained policy (episode 0) and then only its final agent, as a
    PPO or fast-preset run does, still gets the early-vs-later video."""
    run = fake_run(tmp_path / "run", ("episode_000000",))
    out = tmp_path / "videos"
    completed = run_module("tools.videos", "--run", run, "--max-steps", "5", "--out", out)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0].startswith(f"early: {run / 'checkpoints' / 'episode_000000'} scored")
    assert lines[1].startswith(f"later: {run / 'final'} scored")
    assert (out / "pendulum-early-vs-later.mp4").stat().st_size > 1000
    assert not list(tmp_path.glob("**/*.gif")) and not list(tmp_path.glob("**/*.png"))


def test_videos_of_a_run_with_only_a_final_agent_say_what_to_do(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "run", ())
    completed = run_module("tools.videos", "--run", run)
    assert completed.returncode == 2
    assert "two checkpoints, or a checkpoint and final" in completed.stderr
    assert "--early PREFIX --later PREFIX" in completed.stderr


def test_videos_are_recorded_headless_and_side_by_side(
    pendulum_prefix: Path, tmp_path: Path
) -> None:
    early = tmp_path / "early"
    InvertedPendulumAgent(pendulum_model(seed=5), seed=2).save(early)
    out = tmp_path / "videos"
    completed = run_module(
        "tools.videos",
        "--agent",
        "pendulum",
        "--early",
        early,
        "--later",
        pendulum_prefix,
        "--out",
        out,
        "--gif",
        tmp_path / "a.gif",
        "--strip",
        tmp_path / "a.png",
    )
    assert completed.returncode == 0, completed.stderr
    names = sorted(path.name for path in out.iterdir())
    assert names == [
        "pendulum-early-episode-0.mp4",
        "pendulum-early-vs-later.mp4",
        "pendulum-later-episode-0.mp4",
    ]
    assert all((out / name).stat().st_size > 1000 for name in names)
    from PIL import Image

    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.n_frames > 1 and gif.width == 2 * 240
    with Image.open(tmp_path / "a.png") as strip:
        assert strip.width == 6 * 160


def test_recording_happens_in_process_without_tensorflow(tmp_path: Path) -> None:
    """The evaluation command films in its own process and never imports TensorFlow or Keras:
    a process that has loaded TensorFlow crashes when it renders on Mesa OpenGL."""
    prefix = tmp_path / "cartpole"
    CartPoleAgent(cartpole_model(), seed=2).save(prefix)
    script = (
        "import sys; from tools import evaluate; "
        f"code = evaluate.main(['--agent', 'cartpole', '--weights', {str(prefix)!r}, "
        f"'--episodes', '1', '--max-steps', '30', '--record', {str(tmp_path / 'v')!r}]); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras'})); "
        "raise SystemExit(code)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, cwd=REPO_ROOT
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().splitlines()[-1] == "[]"
    assert [path.name for path in (tmp_path / "v").iterdir()] == ["cartpole-seed0-episode-0.mp4"]
