"""training.sweep: the flags and every trial's settings checked before Ray, Tune's pieces, the
objective, the summary with its best and ship commands, and 2-trial sweeps on a private Ray
(one trial failing in its worker; one stopped by SIGTERM).

The cluster paths (--address HOST:PORT, ray://) against a real head are in
tests/test_sweep_cluster.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import types
from pathlib import Path
from typing import Any

import pytest

from training import sweep
from training import sweep_report as report
from training.settings import parse_command

REPO_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
#: Each script, with the agent its fast preset trains.
SCRIPTS = {
    "ppo": "cartpole",
    "reinforce": "cartpole",
    "reinforce_baseline": "cartpole",
    "reinforce_baseline_lr": "cartpole",
    "reinforce_normalised": "cartpole",
    "gaussian_actor_critic": "pendulum",
}
ROW_FIELDS = {"trial", "overrides", "seed", "status", "solved", "wall_time", "objective", "error"}


def plan_of(*words: str, agent: str = "cartpole") -> argparse.Namespace:
    """The sweep's plan: its flags, checked and completed by make_plan."""
    args = sweep.build_parser().parse_args(["--agent", agent, *words])
    sweep.make_plan(args)
    return args


def tree_digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with its content hash (empty if the folder is absent)."""
    if not folder.exists():
        return {}
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


# --- scripts and their search spaces -----------------------------------------------------------
@pytest.mark.parametrize(("script", "agent"), SCRIPTS.items())
def test_each_script_searches_its_own_space_around_its_fast_preset(script: str, agent: str):
    plan = plan_of("--script", script, "--search", "optuna", "--samples", "2", agent=agent)
    loaded = sweep.load_script(script)
    assert loaded.name == script and plan.space  # from the script's search_space()
    fast = loaded.preset("fast", agent=agent)
    for name, domain in loaded.search_space().items():
        values = sweep.ends(domain)  # make_plan built settings with each of them
        assert plan.space[name] == f"{type(domain).__name__} {values}"
        if name.startswith("critic"):  # only a script with a critic searches its settings
            assert getattr(fast, "baseline", True), f"{script} has no critic to tune"
        if type(domain).__name__ != "Categorical":
            assert values[0] <= getattr(fast, name) <= values[-1], name  # the preset inside


def test_a_search_space_the_settings_refuse_is_one_line(capsys, monkeypatch) -> None:
    """A search_space() edited out of bounds fails before Ray at the end it breaks."""
    from ray import tune

    script = sweep.load_script("ppo")
    bad = {"epochs": tune.randint(0, 5), "learning_rate": tune.loguniform(1e-4, 1e-3)}
    edited = dataclasses.replace(script, search_space=lambda: bad)
    monkeypatch.setattr(sweep, "load_script", lambda name: edited)
    line = usage_error(capsys, ["--agent", "cartpole", "--search", "optuna", "--samples", "2"])
    assert "training.ppo.search_space() epochs (at 0): --epochs must be at least 1" in line


def test_a_single_grid_value_fixes_a_searched_setting() -> None:
    plan = plan_of("--search", "optuna", "--samples", "2", "--grid", "epochs=7")
    assert plan.fixed["epochs"] == 7 and "epochs" not in plan.space and plan.space
    with pytest.raises(sweep.SweepError, match="nothing that --grid does not fix"):
        plan_of(
            "--search",
            "optuna",
            "--samples",
            "2",
            "--grid",
            "epochs=7",
            "--grid",
            "learning_rate=1e-3",
            "--grid",
            "clip_range=0.2",
            "--grid",
            "gae_lambda=0.9",
        )


def test_grid_values_take_the_field_types() -> None:
    plan = plan_of(
        *("--script", "reinforce_normalised", "--grid", "actor_learning_rate=1e-3,3e-3"),
        *("--grid", "num-envs=8,16", "--grid", "baseline=true,yes"),
        *("--grid", "actor_hidden=64x64,128", "--grid", "standardise=batch"),
    )
    assert plan.grid == {
        "actor_learning_rate": [1e-3, 3e-3],
        "num_envs": [8, 16],
        "baseline": [True, True],
        "actor_hidden": [(64, 64), (128,)],
        "standardise": ["batch"],
    }
    assert all(type(v) is int for v in plan.grid["num_envs"])


def test_a_trial_config_decodes_to_the_field_types() -> None:
    script = sweep.load_script("reinforce_normalised")
    assert sweep.decode(script, {"seed": 3, "actor_hidden": "64x64", "critic_hidden": [32]}) == {
        "actor_hidden": (64, 64),
        "critic_hidden": (32,),
    }


def test_tune_gets_the_searcher_the_scheduler_and_reused_actors() -> None:
    pytest.importorskip("optuna")
    from ray.tune.schedulers import ASHAScheduler, MedianStoppingRule
    from ray.tune.search.optuna import OptunaSearch

    plan = plan_of("--search", "optuna", "--samples", "4", "--scheduler", "asha")
    config = sweep.tune_config(plan)
    assert isinstance(config.search_alg, OptunaSearch) and config.num_samples == 4
    assert (config.search_alg.metric, config.search_alg.mode) == ("objective", "min")
    assert isinstance(config.scheduler, ASHAScheduler)
    assert config.reuse_actors  # TensorFlow loads once per worker, not once per trial
    median = sweep.tune_config(plan_of("--scheduler", "median")).scheduler
    assert isinstance(median, MedianStoppingRule)
    grid = sweep.tune_config(plan_of("--seeds", "2"))
    assert grid.search_alg is None and grid.scheduler is None and grid.reuse_actors


# --- mistakes cost one line, before Ray starts ---------------------------------------------------
def usage_error(capsys, argv: list[str]) -> str:
    """Run the command line expecting a usage error: exit 2 and exactly one line."""
    with pytest.raises(SystemExit) as caught:
        sweep.main(argv)
    assert caught.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("python -m training.sweep: error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--grid", "nonsense=1"], "is not a setting; valid keys: num_envs, "),
        (["--grid", "seed=1,2"], "--grid seed is set by the sweep"),
        (["--grid", "num_envs=0"], "--grid num_envs=0: --num-envs must be at least 1, got 0"),
        (["--grid", "num_envs=1.5"], "--grid num_envs=1.5: expected a whole number"),
        (["--grid", "normalise_advantages=maybe"], "expected true or false"),
        (["--grid", "activation=sigmoid"], "--grid activation=sigmoid: --activation must be"),
        (["--grid", "actor_hidden=64,x"], "--grid actor_hidden=x: expected numbers as 64x64"),
        (["--grid", "num_envs"], "expected GRID KEY=..."),
        (["--grid", "max_episodes=1,0", "--seeds", "2"], "--grid max_episodes=0: "),
        (["--grid", "num_envs=0", "--search", "optuna", "--samples", "2"], "--grid num_envs=0"),
        (["--samples", "3"], "--samples needs --search optuna"),
        (["--space", "epochs=int:1:3"], "unrecognized arguments: --space"),
        (["--search", "optuna"], "needs --samples"),
        (["--search", "optuna", "--samples", "2", "--seeds", "3"], "one seed per sample"),
        (["--search", "optuna", "--samples", "2", "--grid", "num_envs=8,16"], "one value"),
        (["--scheduler", "asha", "--max-seconds", "0"], "give --max-seconds"),
        (["--script", "gaussian_actor_critic"], "--script gaussian_actor_critic: --agent must"),
        (["--script", "nonsense"], "training.nonsense is not a training script"),
        (["--script", "../x"], "is not a training script"),
        (["--seeds", "0"], "--seeds"),
        (["--address", "ray://head:10001", "--cpus", "2"], "--cpus sizes a private Ray"),
    ],
)
def test_command_line_mistakes_cost_one_line(capsys, extra: list[str], message: str) -> None:
    assert message in usage_error(capsys, ["--agent", "cartpole", *extra])


def test_cpus_beside_a_cluster_named_by_ray_address_is_one_line(capsys, monkeypatch) -> None:
    """Inside `ray job submit` RAY_ADDRESS names the cluster: --cpus cannot size it."""
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    assert "--cpus sizes a private Ray" in usage_error(
        capsys, ["--agent", "pendulum", "--cpus", "2"]
    )


def test_an_out_folder_that_cannot_be_created_is_one_line(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    line = usage_error(capsys, ["--agent", "cartpole", "--out", str(blocker / "sweep")])
    assert f"--out {blocker / 'sweep'}: cannot create the folder" in line


def test_an_unreachable_cluster_fails_at_once_in_one_line(tmp_path: Path) -> None:
    """A port nothing listens on, given by --address or by RAY_ADDRESS (as a stale shell may
    hold), fails in seconds with one line naming it and the fix."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = ["--out", str(tmp_path / "out")]
    command = [sys.executable, "-m", "training.sweep", "--agent", "cartpole", *out]
    for address in (
        f"127.0.0.1:{port}",
        f"ray://127.0.0.1:{port}",
        f"RAY_ADDRESS 127.0.0.1:{port}",
    ):
        flags = [] if address.startswith("RAY") else ["--address", address]
        env = {**os.environ, "RAY_ADDRESS": address.split()[-1]} if not flags else None
        started = time.monotonic()
        completed = subprocess.run(
            [*command, *flags], capture_output=True, text=True, env=env, timeout=60, check=False
        )
        assert time.monotonic() - started < 15
        assert completed.returncode == 1
        label = address if not flags else f"--address {address}"
        kind = "Ray Client port" if address.startswith("ray://") else "GCS port (--port)"
        assert completed.stderr.strip().splitlines() == [
            f"python -m training.sweep: error: {label}: cannot connect (Connection refused); "
            f"check that the head runs (`ray start --head`) and that this is its {kind}"
        ]


def test_importing_the_sweep_loads_neither_ray_nor_tensorflow() -> None:
    """--help and a mistake answer at once; the summary works without Ray (an extra)."""
    code = (
        "import sys, training.sweep, training.sweep_report, training.ppo, training.reinforce;"
        "sys.exit(bool({'ray', 'tensorflow'} & set(sys.modules)))"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
    assert completed.returncode == 0, completed.stderr.decode()


# --- the objective, the summary and the best trial's command -------------------------------------
def test_objective_ranks_solved_by_time_then_unsolved_by_score() -> None:
    budget, threshold = 120.0, 500.0
    assert report.objective(True, 7.5, 500.0, budget, threshold) == 7.5
    assert report.objective(False, 120.0, 250.0, budget, threshold) == 180.0  # 120 * (2 - 0.5)
    assert report.objective(False, 120.0, 500.0, budget, threshold) == 120.0  # clipped
    assert report.objective(False, 120.0, -5.0, budget, threshold) == 240.0
    assert report.objective(False, 30.0, math.nan, budget, threshold) == 240.0
    assert report.objective(False, 30.0, 250.0, 0.0, threshold) == 45.0  # no budget: own time


def row(trial: int, seed: int, time_to_solve: float | None, **changes) -> dict:
    solved = time_to_solve is not None
    score = 500.0 if solved else 100.0
    values = {
        **{"trial": trial, "overrides": {}, "seed": seed, "status": "finished", "solved": solved},
        "stop_reason": "solved" if solved else "max_seconds",
        **{"wall_time": time_to_solve or 30.0, "env_steps": 1000 * trial, "episodes": 10},
        "greedy_score": score,
        "objective": report.objective(solved, time_to_solve or 30.0, score, 30.0, 475.0),
        **{"run_dir": f"runs/trial{trial}", "error": None},
    }
    return {**values, **changes}


def test_rates_the_best_trial_and_the_one_to_ship(tmp_path: Path) -> None:
    """The best trial has the smallest objective; the command that ships weights names the
    fastest solved trial's run folder; a failed trial is never best."""
    plan = plan_of("--seeds", "4")
    trials = [row(0, 1, 30.0), row(1, 2, None), row(2, 3, 10.0), row(3, 4, 20.0)]
    summary = report.summarise(plan, trials, tmp_path)
    assert (summary["solve_rate"], summary["median_time_to_solve"]) == (3 / 4, 20.0)
    assert summary["best"]["trial"] == 2
    assert summary["promote"] == f"python -m tools.promote {tmp_path}/runs/trial2 --overwrite"
    failed = [row(0, 1, None, status="error", error="boom"), row(1, 2, None)]
    summary = report.summarise(plan, failed, tmp_path)
    assert (summary["best"]["trial"], summary["promote"], summary["error_count"]) == (1, None, 1)


def test_the_best_trial_is_a_ready_to_run_command(tmp_path: Path) -> None:
    plan = plan_of("--script", "reinforce_normalised", "--first-seed", "5", "--max-seconds", "30")
    overrides = {
        "actor_learning_rate": 0.0012345678901234,
        "actor_hidden": [64, 64],
        "bootstrap_truncated": False,
        "standardise": "batch",
    }
    trials = [row(0, 5, None), row(1, 5, 12.5, overrides=overrides)]
    summary = report.summarise(plan, trials, tmp_path)
    command = summary["best"]["command"]
    assert command == (
        "python -m training.reinforce_normalised --preset fast --seed 5 --agent cartpole "
        "--max-seconds 30.0 --actor-learning-rate 0.0012345678901234 --actor-hidden 64 64 "
        "--no-bootstrap-truncated --standardise batch"
    )
    # The script's own command line reads it back into the trial's settings.
    script = sweep.load_script("reinforce_normalised")
    parsed = parse_command(script, command.split()[3:]).settings
    assert parsed.actor_learning_rate == overrides["actor_learning_rate"]
    assert (parsed.actor_hidden, parsed.seed, parsed.max_seconds) == ((64, 64), 5, 30.0)
    assert parsed.bootstrap_truncated is False


def test_error_message_is_the_trials_own_exception() -> None:
    wrapped = WorkerError(ValueError("num_envs must be at least 1"))
    assert report.error_message(wrapped) == "ValueError: num_envs must be at least 1"
    died = RuntimeError("\x1b[36mThe actor died\x1b[39m unexpectedly\nmore of Ray's text")
    assert report.error_message(died) == "RuntimeError: The actor died unexpectedly"


# --- exit status and promotion (trials faked) ----------------------------------------------------
class WorkerError(Exception):
    """What Ray raises for a trial that failed in its worker: the trial's own error as cause."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__("\x1b[36mray::ImplicitFunc.train()\x1b[39m (pid=1, ip=x)")
        self.cause = cause


def result(seed: int, time_to_solve: float | None, error: Exception | None = None) -> Any:
    """A stand-in for a Tune Result of a trial on the CartPole fast preset."""
    solved = time_to_solve is not None
    metrics = {
        **{"finished": True, "solved": solved, "wall_time": time_to_solve or 30.0},
        **{"env_steps": 1000 * seed, "episodes": 10, "updates": 5, "running_reward": 90.0},
        **{"greedy_score": 500.0 if solved else 100.0, "run_dir": f"runs/trial{seed}"},
        "stop_reason": "solved" if solved else "max_seconds",
        "objective": report.objective(solved, time_to_solve or 30.0, 100.0, 30.0, 475.0),
    }
    metrics = {} if error else metrics
    error = WorkerError(error) if error else None
    return types.SimpleNamespace(
        metrics=metrics, config={"seed": seed}, error=error, metrics_dataframe=None
    )


def fake_trials(monkeypatch, results: list[Any]) -> None:
    """Trials that ran (as Tune returns them), without Ray (so nothing to shut down)."""
    stopped = threading.Thread(target=lambda: None)
    stopped.start()
    pairs = [(r, {}) for r in results]
    monkeypatch.setattr(sweep, "run_trials", lambda *args: (pairs, "here", stopped))


def test_a_failed_trial_makes_the_sweep_fail(tmp_path: Path, monkeypatch, capsys) -> None:
    fake_trials(monkeypatch, [result(1, 5.0), result(2, None, ValueError("boom"))])
    out = tmp_path / "out"
    assert sweep.main(["--agent", "cartpole", "--seeds", "2", "--out", str(out)]) == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["error_count"] == 1 and summary["trials"][1]["error"] == "ValueError: boom"
    assert (summary["ran_on"], summary["stopped_by"]) == ("here", None)
    printed = capsys.readouterr().out
    assert "trial 1 error: ValueError: boom" in printed
    assert printed.strip().splitlines()[-2].startswith("best: trial 0 (seed 1) solved in 5.0 s")
    fake_trials(monkeypatch, [result(1, 5.0), result(2, None)])
    assert sweep.main(["--agent", "cartpole", "--seeds", "2", "--out", str(out)]) == 0


def test_the_sweep_prints_how_to_ship_the_fastest_solved_trial(tmp_path: Path, monkeypatch, capsys):
    """Nothing is promoted: the sweep prints the tools.promote command for the fastest solved
    trial (none when no trial solved), and the shipped weights stay as they were."""
    before = tree_digest(REPO_WEIGHTS)
    fake_trials(monkeypatch, [result(1, 30.0), result(2, 10.0), result(3, None)])
    out = tmp_path / "out"
    assert sweep.main(["--agent", "cartpole", "--seeds", "3", "--out", str(out)]) == 0
    ship = f"python -m tools.promote {out}/runs/trial2 --overwrite"
    assert f"ship the fastest solved trial: {ship}" in capsys.readouterr().out
    assert json.loads((out / "summary.json").read_text())["promote"] == ship
    fake_trials(monkeypatch, [result(1, None)])
    assert sweep.main(["--agent", "cartpole", "--out", str(out)]) == 0
    assert "tools.promote" not in capsys.readouterr().out
    assert tree_digest(REPO_WEIGHTS) == before


# --- 2-trial sweeps on a private Ray --------------------------------------------------------------
def test_a_sweep_with_a_trial_that_fails_in_its_worker(tmp_path: Path, monkeypatch, capsys):
    """Two trials share one Ray worker: one trains, the other raises there (the checks before
    Ray are bypassed to get there). The sweep exits 1, summary.json holds the trial's own
    message, and the figures are drawn once, at the end."""
    pytest.importorskip("ray")
    monkeypatch.setattr(sweep, "check_trials", lambda script, plan, space: script.preset("fast"))
    before, handler = tree_digest(REPO_WEIGHTS), signal.getsignal(signal.SIGTERM)
    out = tmp_path / "sweep"
    argv = ["--agent", "cartpole", "--grid", "num_envs=8,0", "--grid", "max_env_steps=512"]
    assert sweep.main([*argv, "--address", "local", "--cpus", "1", "--out", str(out)]) == 1
    assert signal.getsignal(signal.SIGTERM) is handler  # not ray.init's, left behind

    summary = json.loads((out / "summary.json").read_text())
    assert (summary["trial_count"], summary["error_count"]) == (2, 1)
    finished, failed = summary["trials"]  # in the grid's order
    assert set(finished) >= ROW_FIELDS and set(failed) >= ROW_FIELDS
    assert failed["overrides"] == {"num_envs": 0, "max_env_steps": 512}
    assert failed["status"] == "error"
    assert failed["error"] == "SettingError: --num-envs must be at least 1, got 0"
    assert (finished["status"], finished["error"]) == ("finished", None)
    assert finished["objective"] > 0 and finished["episodes"] > 0
    run_dir = out / finished["run_dir"]
    assert json.loads((run_dir / "settings.json").read_text())["max_env_steps"] == 512
    assert list(run_dir.glob("events.out.tfevents.*"))  # TensorBoard logs for every trial
    header, *rows = (out / "summary.csv").read_text().splitlines()  # Tune's own table
    assert "config/num_envs" in header.split(",") and len(rows) == 1  # of trials that reported
    assert (out / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr()
    assert "all trials: solve rate " in printed.out
    assert "trial 1 error: SettingError: --num-envs must be at least 1, got 0" in printed.out
    assert (
        printed.out.strip()
        .splitlines()[-1]
        .startswith("python -m training.ppo --preset fast --seed 1 --agent cartpole --num-envs 8")
    )
    assert "Traceback" not in printed.out + printed.err
    assert tree_digest(REPO_WEIGHTS) == before


def test_a_reused_worker_trains_as_a_fresh_process_would(tmp_path: Path) -> None:
    """Tune reuses its workers (TensorFlow loads once per worker): seed 2, trained after
    seed 1 in the same worker, gives the episodes and weights of a run of its own."""
    pytest.importorskip("ray")
    from training.loop import train
    from training.ppo import SCRIPT

    argv = ["--agent", "cartpole", "--seeds", "2", "--grid", "max_env_steps=1024", "--cpus", "1"]
    assert sweep.main([*argv, "--address", "local", "--out", str(tmp_path / "sweep")]) == 0
    header, *rows = (tmp_path / "sweep/summary.csv").read_text().splitlines()  # Tune's table
    pids = {row.split(",")[header.split(",").index("pid")] for row in rows}
    assert len(rows) == 2 and len(pids) == 1  # one worker trained both
    values = {"agent": "cartpole", "seed": 2, "max_env_steps": 1024, "threads": 1}
    alone = train(SCRIPT.preset("fast", **values, runs_dir=str(tmp_path / "alone")), SCRIPT)
    (swept,) = (tmp_path / "sweep/runs").glob("ppo-seed2-*")
    for name in ("progress.csv", "final.keras"):
        rows = [(folder / name).read_bytes() for folder in (swept, alone.run_dir)]
        if name == "progress.csv":  # the same episodes, up to the wall-time column
            rows = [[line.rsplit(b",", 1)[0] for line in r.splitlines()] for r in rows]
        else:
            rows = [keras_arrays(r) for r in rows]
        assert rows[0] == rows[1], name


def keras_arrays(data: bytes) -> list[tuple[str, bytes]]:
    """The weight arrays inside a .keras file, by name."""
    import io
    import zipfile

    import h5py

    arrays: list[tuple[str, bytes]] = []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        weights = io.BytesIO(archive.read("model.weights.h5"))
    with h5py.File(weights, "r") as file:
        file.visititems(
            lambda name, item: (
                arrays.append((name, item[()].tobytes()))
                if isinstance(item, h5py.Dataset)
                else None
            )
        )
    return arrays


def test_sigterm_stops_the_sweep_and_keeps_what_ran(tmp_path: Path) -> None:
    """SIGTERM (as from `timeout` or a job scheduler) stops every trial through Tune's
    stopper: the summary of what ran is written and the sweep exits 143."""
    pytest.importorskip("ray")
    out = tmp_path / "sweep"
    command = [sys.executable, "-m", "training.sweep", "--agent", "cartpole", "--seeds", "2"]
    command += ["--script", "reinforce_normalised", "--grid", "max_episodes=1000000"]
    command += ["--grid", "eval_gate=500", "--address", "local", "--cpus", "2", "--out", str(out)]
    ray_tmp = tempfile.mkdtemp(prefix="rt-", dir="/tmp")  # short: Ray's sockets live in it
    pipes = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process = subprocess.Popen(command, env={**os.environ, "RAY_TMPDIR": ray_tmp}, **pipes)
    deadline = time.monotonic() + 120
    while not list((out / "runs").glob("*/progress.csv")) and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(1)  # a few updates into training
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stdout + stderr
    assert "Traceback" not in stdout + stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped_by"] == "SIGTERM" and summary["trials"]
    assert {trial["status"] for trial in summary["trials"]} == {"stopped"}
    assert "sweep: stopped by SIGTERM" in stdout
    # The sweep skips the interpreter's teardown once Ray is down: none of its processes is left.
    deadline = time.monotonic() + 10
    while (left := processes_mentioning(ray_tmp)) and time.monotonic() < deadline:
        time.sleep(0.2)
    names = [process_name(pid) for pid in left]
    for pid in left:  # not to outlive the test either
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(ray_tmp, ignore_errors=True)
    assert not names


def processes_mentioning(folder: str) -> list[int]:
    """Processes with a file open in ``folder`` (Ray's agents rename themselves and drop the
    environment, but keep their logs open in the session folder)."""
    found = []
    for process in Path("/proc").glob("[0-9]*"):
        try:
            if any(os.readlink(fd).startswith(folder) for fd in (process / "fd").iterdir()):
                found.append(int(process.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def process_name(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
