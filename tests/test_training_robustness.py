"""Every failure is one clear line, and nothing is lost: settings, divergence, the resume lock,
Ctrl-C and SIGTERM, output folders, quiet start-up and file modes."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import typing
from pathlib import Path

import numpy as np
import pytest
from run_helpers import COURSE_SCRIPTS, only_run, read_rows, settings_for, tiny

from agents import AGENT_CLASSES
from training import (
    reinforce,
    reinforce_baseline,
    reinforce_normalised,
)
from training.exits import (
    EXIT_DIVERGED,
    EXIT_FAILED,
    EXIT_TERMINATED,
    Terminated,
    deferred_interrupt,
    terminate_as_interrupt,
)
from training.loop import TrainingError, train
from training.run_safety import DamagedRunFileError
from training.run_state import RunState, TrainingResult
from training.settings import Bounds, SettingError, flag_of, parse_command
from training.solve_check import SolveCheck

REPO = Path(__file__).resolve().parents[1]
#: Numbers that may take any finite value (a score to reach); every other number has bounds.
UNBOUNDED = {"target_running_reward", "solve_threshold", "eval_gate"}


def run_main(script, argv: list[str], capsys) -> tuple[int, str, str]:
    """A script's exit status and what it printed (stdout, stderr)."""
    try:
        status = script.main(argv)
    except SystemExit as exit_info:
        status = exit_info.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def one_line(text: str) -> str:
    assert text.endswith("\n") and text.count("\n") == 1, text
    assert "Traceback" not in text
    return text.strip()


# --- settings ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["--num-envs", "0"], "--num-envs must be at least 1, got 0"),
        (["--max-episodes", "0"], "--max-episodes must be at least 1, got 0"),
        (["--eval-episodes", "0"], "--eval-episodes must be at least 1, got 0"),
        (["--checkpoint-every", "0"], "--checkpoint-every must be at least 1, got 0"),
        (["--actor-hidden", "0"], "--actor-hidden must each be at least 1, got 0"),
        (["--actor-hidden", "64", "0"], "--actor-hidden must each be at least 1, got 64 0"),
        (["--gamma", "1.5"], "--gamma must be above 0 and at most 1, got 1.5"),
        (["--gamma", "0"], "--gamma must be above 0 and at most 1, got 0.0"),
        (
            ["--actor-learning-rate", "nan"],
            "--actor-learning-rate must be a finite number, got nan",
        ),
        (["--actor-learning-rate", "-0.001"], "--actor-learning-rate must be above 0, got -0.001"),
        (["--clipnorm", "0"], "--clipnorm must be above 0, got 0.0"),
        (["--entropy-coef", "inf"], "--entropy-coef must be a finite number, got inf"),
        (["--max-seconds", "-1"], "--max-seconds must be at least 0, got -1.0"),
        (["--seed", "-1"], "--seed must be at least 0, got -1"),
        (["--bootstrap-truncated"], "--bootstrap-truncated needs --baseline"),
        (
            ["--preset", "fast", "--solve-threshold", "600"],
            "--solve-threshold can never be reached: CartPole-v1 scores at most 500, got 600",
        ),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_flag(argv, line, capsys) -> None:
    status, out, err = run_main(reinforce, argv, capsys)
    assert status == 2 and out == ""
    assert one_line(err) == f"reinforce: error: {line}"


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--num-envs", "x"], "--num-envs"),  # not a number: tyro's own message
        (["--episodes", "30"], "--episodes"),  # abbreviated: never --episodes-per-update
    ],
)
def test_a_flag_tyro_refuses_exits_2_naming_it(argv, flag, capsys) -> None:
    status, out, err = run_main(reinforce, argv, capsys)
    assert status == 2 and out == "" and "Traceback" not in err
    assert re.search(f"{flag}(?![-\\w])", err), err


def test_an_abbreviated_flag_is_refused_before_anything_runs(tmp_path) -> None:
    """``python -m training.reinforce --episodes 30`` once trained 1,020 episodes (argparse
    read it as --episodes-per-update 30); it is refused, exit 2, and nothing is written."""
    done = subprocess.run(
        [sys.executable, "-m", "training.reinforce", "--episodes", "30"],
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    assert re.search(r"--episodes(?![-\w])", done.stderr), done.stderr
    assert list(tmp_path.iterdir()) == []  # no runs/ folder: nothing trained


def bounds_of(hint) -> Bounds | None:
    return next((m for m in getattr(hint, "__metadata__", ()) if isinstance(m, Bounds)), None)


@pytest.mark.parametrize("module", COURSE_SCRIPTS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_every_numeric_setting_has_its_range(module) -> None:
    """Each number is checked generically from its type's bounds: a value outside is refused
    with the field's name, NaN is refused for every float, and every preset is valid."""
    script = module.SCRIPT
    for preset in script.presets:
        script.preset(preset)
    settings_class = script.settings_class
    hints = typing.get_type_hints(settings_class, include_extras=True)
    kinds = typing.get_type_hints(settings_class)  # without the bounds
    defaults = settings_class()
    numeric = [
        f.name
        for f in dataclasses.fields(settings_class)
        if kinds[f.name] in (int, float, tuple[int, ...])
    ]
    assert {"num_envs", "gamma", "actor_hidden", "clipnorm", "max_seconds"} <= set(numeric)
    for name in numeric:
        kind, bounds = kinds[name], bounds_of(hints[name])
        if name in UNBOUNDED:
            assert bounds is None
        else:
            assert bounds is not None, f"{name} has no range"
            low = bounds.at_least - 1 if bounds.at_least is not None else bounds.above
            value = (int(low),) if kind == tuple[int, ...] else kind(low)
            with pytest.raises(SettingError) as error:
                dataclasses.replace(defaults, **{name: value})
            assert error.value.name == name
        if kind is float:
            with pytest.raises(SettingError, match=f"^{flag_of(name)} must be a finite number"):
                dataclasses.replace(defaults, **{name: math.nan})
    with pytest.raises(SettingError) as error:
        dataclasses.replace(defaults, gamma=1.5)
    assert str(error.value) == "--gamma must be above 0 and at most 1, got 1.5"
    with pytest.raises(SettingError) as error:
        dataclasses.replace(defaults, num_envs=2.5)
    assert str(error.value) == "--num-envs must be a whole number, got 2.5"


def test_help_and_bad_flags_never_import_tensorflow() -> None:
    """--help of every training script, and a refused flag, answer before TensorFlow loads."""
    code = f"""
import contextlib, io, json, sys
from training import {", ".join(m.__name__.rsplit(".", 1)[-1] for m in COURSE_SCRIPTS)}
results = []
for script in ({", ".join(m.__name__.rsplit(".", 1)[-1] for m in COURSE_SCRIPTS)}):
    for argv in (["--help"], ["--num-envs", "0"]):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                script.main(argv)
            except SystemExit as exit_info:
                status = exit_info.code
        results.append([script.__name__, argv[0], status, "--num-envs" in out.getvalue(),
                        err.getvalue()])
print(json.dumps({{"results": results, "tensorflow": "tensorflow" in sys.modules,
                  "keras": "keras" in sys.modules}}))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert not report["tensorflow"] and not report["keras"]
    assert len(report["results"]) == 2 * len(COURSE_SCRIPTS)
    for name, first, status, listed, err in report["results"]:
        if first == "--help":
            assert status == 0 and listed and err == "", name
        else:
            assert status == 2 and err.endswith("--num-envs must be at least 1, got 0\n"), name


# --- output folders ------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["under a file", "in /proc"])
def test_an_output_folder_that_cannot_be_created_is_one_line(where, tmp_path, capsys) -> None:
    if where == "in /proc":
        if not Path("/proc/self").is_dir():
            pytest.skip("no /proc here")
        runs_dir = "/proc/no-such-runs-dir/x"
    else:
        (tmp_path / "a-file").write_text("")
        runs_dir = str(tmp_path / "a-file" / "runs")
    status, out, err = run_main(reinforce, ["--runs-dir", runs_dir], capsys)
    assert status == 2 and out == ""
    line = one_line(err)
    assert line.startswith(f"reinforce: error: --runs-dir {runs_dir}: cannot create it (")
    assert line.endswith("pick a folder you can write to")


# --- the resume lock -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A tiny finished reinforce run (shared: the tests below copy it before changing it)."""
    runs = tmp_path_factory.mktemp("runs")
    assert reinforce.main(tiny(runs)) == 0
    return only_run(runs)


def test_resume_refuses_changed_settings_and_names_them(finished_run, capsys) -> None:
    before = {name: (finished_run / name).read_text() for name in ("settings.json", "command.txt")}
    status, out, err = run_main(reinforce, ["--resume", str(finished_run), "--seed", "3"], capsys)
    assert status == 2 and out == ""
    line = one_line(err)
    assert line.startswith(
        "reinforce: error: --resume keeps the run's settings, refused: --seed 3 (the run has "
        "--seed 42); drop it or start a new run (a resume may change only --max-episodes, "
    )
    status, _, err = run_main(
        reinforce,
        ["--resume", str(finished_run), "--gamma", "0.9", "--actor-hidden", "8", "--baseline"],
        capsys,
    )
    assert status == 2
    line = one_line(err)
    for named in (
        "--gamma 0.9 (the run has --gamma 0.99)",
        "--actor-hidden 8 (the run has --actor-hidden 128)",
        "--baseline (the run has --no-baseline)",
    ):
        assert named in line
    status, _, err = run_main(
        reinforce, ["--resume", str(finished_run), "--preset", "fast"], capsys
    )
    assert status == 2 and "--preset cannot be combined with --resume" in one_line(err)
    after = {name: (finished_run / name).read_text() for name in before}
    assert after == before  # nothing was written


def test_resume_accepts_the_same_settings_and_a_new_budget(finished_run) -> None:
    command = parse_command(
        reinforce.SCRIPT,
        ["--resume", str(finished_run), "--seed", "42", "--num-envs", "2", "--max-episodes", "9"],
    )
    stored = json.loads((finished_run / "settings.json").read_text())
    assert stored["max_episodes"] == 4 and command.resume == finished_run
    expected = dataclasses.replace(reinforce.ReinforceSettings.from_json(stored), max_episodes=9)
    assert command.settings == expected


def test_resume_of_what_is_not_a_resumable_run_is_one_line(finished_run, tmp_path, capsys):
    not_a_run = tmp_path / "empty"
    not_a_run.mkdir()
    a_file = tmp_path / "file.txt"
    a_file.write_text("")
    stateless = tmp_path / "stateless"
    shutil.copytree(finished_run, stateless)
    (stateless / "resume_state.npz").unlink()
    cases = {
        tmp_path / "missing": "no such folder",
        a_file: "not a folder: give a run folder, such as runs/<script>-seed<seed>-<time>",
        not_a_run: "not a run folder (it has no settings.json)",
        stateless: "the run has no resume state (resume_state.npz): it stopped before saving "
        "any; start a new run",
    }
    for path, problem in cases.items():
        status, out, err = run_main(reinforce, ["--resume", str(path)], capsys)
        assert status == 2 and out == ""
        assert one_line(err) == f"reinforce: error: --resume {path}: {problem}"
    status, _, err = run_main(reinforce_baseline, ["--resume", str(finished_run)], capsys)
    assert status == 2
    assert one_line(err).endswith(
        "a run of reinforce, not reinforce_baseline: resume it with python -m training.reinforce"
    )


def test_a_resume_state_of_another_layout_is_one_line(finished_run, tmp_path, capsys) -> None:
    """Arrays under names this script does not write (another version's) are named, not a
    traceback."""
    moved = tmp_path / "moved"
    shutil.copytree(finished_run, moved)
    state = moved / "resume_state.npz"
    with np.load(state) as archive:
        arrays = {
            name if name.startswith("counter/") else f"old/{name}": archive[name]
            for name in archive.files
        }
    np.savez(state, **arrays)
    status, out, err = run_main(reinforce, ["--resume", str(moved)], capsys)
    assert status == EXIT_FAILED and out == ""
    line = one_line(err)
    assert line.startswith(f"reinforce: error: {state}: damaged, incomplete or from another ver")
    assert line.endswith("; start a new run")


def test_a_damaged_resume_state_is_one_line(finished_run, tmp_path, capsys) -> None:
    damaged = tmp_path / "damaged"
    shutil.copytree(finished_run, damaged)
    (damaged / "resume_state.npz").write_bytes(b"not an npz file")
    status, out, err = run_main(reinforce, ["--resume", str(damaged)], capsys)
    assert status == EXIT_FAILED and out == ""
    line = one_line(err)
    state = damaged / "resume_state.npz"
    assert line.startswith(f"reinforce: error: {state}: damaged or incomplete (")
    assert "start a new run" in line
    # --debug: the traceback instead
    with pytest.raises((TrainingError, DamagedRunFileError), match=re.escape(str(state))):
        reinforce.main(["--resume", str(damaged), "--debug"])


# --- divergence ----------------------------------------------------------------------------


def break_update_three(monkeypatch, broken: str) -> dict[str, int]:
    """Make the third update go wrong: a NaN loss, an infinite gradient norm (as the learner
    reports a non-finite gradient), or NaN weights behind finite figures."""
    real_learn = reinforce.Reinforce.learn
    calls = {"n": 0}

    def learn(self, batch):
        outcome = real_learn(self, batch)
        calls["n"] += 1
        if calls["n"] == 3:
            if broken == "loss":
                outcome.losses["actor_loss"] = math.nan
            elif broken == "gradient":
                outcome.losses["actor_gradient_norm"] = math.inf
            else:
                variable = self.actor.trainable_variables[0]
                variable.assign(np.full(variable.shape, np.nan, dtype=np.float32))
        return outcome

    monkeypatch.setattr(reinforce.Reinforce, "learn", learn)
    return calls


@pytest.mark.parametrize("broken", ["loss", "gradient", "weights"])
def test_a_non_finite_update_stops_the_run_and_keeps_the_last_finite_checkpoint(
    broken, tmp_path, monkeypatch
) -> None:
    """A non-finite loss or gradient stops the run at update 3; NaN weights behind finite
    figures are caught before they are saved (update 3 is due a checkpoint). Either way the
    checkpoint of update 2 (episode 4) is the last, and the resume state matches it."""
    calls = break_update_three(monkeypatch, broken)
    result = train(settings_for(tmp_path, max_episodes=10), reinforce_normalised.SCRIPT)
    assert calls["n"] == 3 and result.stop_reason == "diverged" and not result.saved_final
    logged = 6 if broken == "weights" else 4  # the figures of update 3 looked fine
    assert result.episodes == logged
    run = result.run_dir
    assert f"diverged at update 3 (after episode {logged}): " in result.divergence
    problem = {
        "loss": "actor_loss is nan",
        "gradient": "actor_gradient_norm is inf",
        "weights": "actor/weight_000 not finite",
    }[broken]
    assert problem in result.divergence
    assert f"kept the last finite checkpoint {run / 'checkpoints' / 'episode_000004'}" in (
        result.divergence
    )
    assert "suspect --actor-learning-rate 0.003, --critic-learning-rate 0.01, --gamma 0.99" in (
        result.divergence
    )
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "episode_000000.config",  # the untrained policy, saved as the run starts
        "episode_000000.keras",
        "episode_000002.config",
        "episode_000002.keras",
        "episode_000004.config",
        "episode_000004.keras",
    ]
    assert not (run / "final.keras").exists()
    with np.load(run / "resume_state.npz") as saved:
        assert int(saved["counter/episodes"]) == 4
        assert all(np.isfinite(saved[k]).all() for k in saved.files if k != "counter/evaluations")
    weights = AGENT_CLASSES["cartpole"].load(run / "checkpoints" / "episode_000004").model
    assert all(np.isfinite(w).all() for w in weights.get_weights())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stop_reason"] == "diverged" and summary["divergence"] == result.divergence


def test_the_update_reports_its_gradient_norms() -> None:
    """The figures the loop checks include the gradients' global norms (a non-finite gradient
    can leave the loss finite): here the critic's, against a gradient taken by hand."""
    import keras
    import tensorflow as tf

    from training.rollouts import EpisodeBatch, make_envs

    settings = reinforce.ReinforceSettings(
        baseline=True, actor_hidden=(8,), critic_hidden=(8,), progress_bar=False
    )
    envs = make_envs("CartPole-v1", 1)
    algorithm = reinforce.Reinforce(settings, envs)
    envs.close()
    observations = np.random.default_rng(2).normal(size=(1, 5, 4)).astype(np.float32)
    rewards = np.ones((1, 5), dtype=np.float32)
    returns = np.zeros(5, dtype=np.float32)
    for t in reversed(range(5)):  # G_t = r_t + gamma G_{t+1}, by hand
        returns[t] = 1.0 + settings.gamma * (returns[t + 1] if t < 4 else 0.0)
    with tf.GradientTape() as tape:
        values = algorithm.critic(observations[0])[:, 0]
        loss = keras.losses.Huber()(tf.constant(returns), values)  # as the course's critic
    gradients = tape.gradient(loss, algorithm.critic.trainable_variables)
    expected = float(tf.linalg.global_norm(gradients))
    batch = EpisodeBatch(
        observations=observations,
        actions=np.zeros((1, 5), np.int32),
        rewards=rewards,
        mask=np.ones((1, 5), np.float32),
        lengths=np.array([5]),
        scores=np.array([5.0]),
        env_steps=5,
        final_observations=np.zeros((1, 4), np.float32),
        truncated=np.array([False]),
    )
    figures = algorithm.learn(batch).losses
    np.testing.assert_allclose(figures["critic_gradient_norm"], expected, rtol=1e-5)
    assert 0 < figures["actor_gradient_norm"] < math.inf


def test_a_huge_learning_rate_exits_3_with_one_line(tmp_path, capsys) -> None:
    status, out, err = run_main(
        reinforce, tiny(tmp_path, "--actor-learning-rate", "1e30", "--max-episodes", "40"), capsys
    )
    assert status == EXIT_DIVERGED and out == ""
    line = one_line(err)
    assert line.startswith("reinforce: error: diverged at update ")
    assert "suspect --actor-learning-rate 1e+30, --gamma 0.99, --clipnorm 1.0" in line
    run = only_run(tmp_path)
    assert not (run / "final.keras").exists()
    for checkpoint in (run / "checkpoints").glob("*.keras"):  # only finite ones were kept
        model = AGENT_CLASSES["cartpole"].load(checkpoint.with_suffix("")).model
        assert all(np.isfinite(w).all() for w in model.get_weights())


# --- greedy figures ------------------------------------------------------------------------
def test_final_line_and_summary_name_the_greedy_figure_that_decided(tmp_path, capsys) -> None:
    argv = tiny(tmp_path, "--preset", "fast", "--solve-threshold", "5", "--eval-episodes", "2")
    argv += ["--gate-episodes", "2", "--eval-gate", "0"]
    status, out, err = run_main(reinforce, argv, capsys)
    assert status == 0 and err == ""
    run = only_run(tmp_path)
    evaluations = json.loads((run / "summary.json").read_text())["evaluations"]
    figures = [set(record) - {"update", "episode", "wall_time"} for record in evaluations]
    assert figures == [{"agent_greedy_mean"}]
    agent_mean = evaluations[-1]["agent_greedy_mean"]
    line = one_line(out)
    assert line.startswith("reinforce: solved after 2 episodes, 1 updates")
    assert f", agent greedy mean {agent_mean:.1f} over 2 episodes, running reward " in line


def test_an_agent_evaluation_that_gave_up_is_named_in_the_final_line(tmp_path, capsys) -> None:
    """The agent's evaluation stops once the threshold is out of reach and records its upper
    bound; a run whose last evaluation did so still ends with one line naming that figure."""
    record = {"update": 3, "episode": 6, "wall_time": 1.0, "agent_greedy_upper_bound": 412.5}
    result = TrainingResult(tmp_path, "max_episodes", 6, 3, 60, 60, 1.0, 20.0, False, [record])
    assert result.report("reinforce", 20) == 0
    line = one_line(capsys.readouterr().out)
    assert line.startswith("reinforce: max_episodes after 6 episodes, 3 updates")
    assert ", agent greedy upper bound 412.5 over 20 episodes, running reward 20.0; " in line


def test_an_evaluation_done_before_an_interruption_is_not_repeated() -> None:
    """A run stopped right after an evaluation resumes at the same update: the check gives the
    recorded answer instead of a second record."""
    settings = settings_for(Path("unused"), eval_episodes=2, eval_gate=0.0)
    state = RunState(settings)
    state.updates, state.episodes = 5, 10
    state.scores.extend([500.0, 500.0])
    check = SolveCheck(settings, "CartPole-v1")
    for recorded, solved in ((400.0, False), (480.0, True)):
        state.evaluations = [{"update": 5, "episode": 10, "agent_greedy_mean": recorded}]
        assert check(state, make_agent=None) is solved
        assert len(state.evaluations) == 1


# --- signals -------------------------------------------------------------------------------
def test_sigterm_is_held_during_an_update_then_raised_as_terminated() -> None:
    steps = []
    before = signal.getsignal(signal.SIGTERM)  # another library (Ray) may have set one
    with pytest.raises(Terminated), terminate_as_interrupt():
        with deferred_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
            steps.append("the update finished")
        steps.append("not reached")
    assert steps == ["the update finished"]
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is put back


def test_sigterm_saves_and_the_resumed_run_matches_a_straight_one(tmp_path) -> None:
    """A real fast run killed with SIGTERM, then resumed, gives the same progress.csv (without
    wall times) and the same weights as an uninterrupted run; each prints one line only."""
    budget, kill_after = 320, 32  # 20 updates of 16 episodes; SIGTERM after the second

    def command(runs: str, *extra: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "training.reinforce",
            "--no-progress-bar",
            *extra,
            "--runs-dir",
            str(tmp_path / runs),
        ]

    fast = ("--preset", "fast", "--max-episodes", str(budget))
    pipes = {"cwd": REPO, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    straight = subprocess.Popen(command("straight", *fast), **pipes)
    killed = subprocess.Popen(command("killed", *fast), **pipes)
    try:
        deadline = time.monotonic() + 300
        while True:
            logged = list((tmp_path / "killed").glob("*/progress.csv"))
            if logged and len(read_rows(logged[0].parent)) >= kill_after:
                break
            assert killed.poll() is None and time.monotonic() < deadline, killed.stderr.read()
            time.sleep(0.02)
        killed.send_signal(signal.SIGTERM)
        out, err = killed.communicate(timeout=120)
        straight_out, straight_err = straight.communicate(timeout=300)
    finally:
        killed.kill()
        straight.kill()
    run = logged[0].parent
    assert killed.returncode == EXIT_TERMINATED and err == ""
    episodes = len(read_rows(run))
    assert kill_after <= episodes < budget  # stopped in the middle
    assert one_line(out) == (
        f"reinforce: stopped by SIGTERM after {episodes} episodes; saved a checkpoint and the "
        f"resume state; continue with: python -m training.reinforce --resume {run}"
    )
    with np.load(run / "resume_state.npz") as saved:
        assert int(saved["counter/episodes"]) == episodes  # covers every logged episode
    assert (run / "checkpoints" / f"episode_{episodes:06d}.keras").exists()
    assert straight.returncode == 0 and straight_err == "" and one_line(straight_out)

    resumed = subprocess.run(
        [sys.executable, "-m", "training.reinforce", "--resume", str(run)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0 and resumed.stderr == "" and one_line(resumed.stdout)
    straight_run = only_run(tmp_path / "straight")

    def outcome(run_dir: Path) -> tuple:
        summary = json.loads((run_dir / "summary.json").read_text())
        rows = [{k: v for k, v in row.items() if k != "wall_time"} for row in read_rows(run_dir)]
        keys = ("stop_reason", "episodes", "updates", "env_steps", "trained_steps")
        return rows, [summary[key] for key in keys]

    assert outcome(run) == outcome(straight_run)
    ours = AGENT_CLASSES["cartpole"].load(run / "final").model.get_weights()
    theirs = AGENT_CLASSES["cartpole"].load(straight_run / "final").model.get_weights()
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a, b)
    commands = (run / "command.txt").read_text().splitlines()
    assert len(commands) == 2 and commands[1].endswith(f"--resume {run}")


# --- file modes ----------------------------------------------------------------------------
def test_weight_files_honour_the_umask(tmp_path) -> None:
    from conftest import cartpole_model

    agent = AGENT_CLASSES["cartpole"](cartpole_model(), seed=0)
    previous = os.umask(0o022)
    try:
        agent.save(tmp_path / "agent")
    finally:
        os.umask(previous)
    for suffix in (".keras", ".config"):
        assert (tmp_path / f"agent{suffix}").stat().st_mode & 0o777 == 0o644
