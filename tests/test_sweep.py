"""training.sweep: grid and space parsing, checks before Ray, the objective, summaries and
promotion, and tiny sweeps on a private Ray (a failing trial, an Optuna search with ASHA).

The cluster paths (--address HOST:PORT, ray://) against a real head are in
tests/test_sweep_cluster.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import tools
from training.gaussian_actor_critic import GaussianActorCriticSettings
from training.reinforce import ReinforceSettings
from training.reinforce_normalised import ReinforceNormalisedSettings
from training.settings import POSITIVE, TrainingSettings, setting
from training.sweep import cli, cluster, driver, report, space
from training.sweep.space import Distribution, SweepError

REPO_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
SCRIPTS = (
    "reinforce",
    "reinforce_baseline",
    "reinforce_baseline_lr",
    "reinforce_normalised",
    "gaussian_actor_critic",
)
TRIAL_FIELDS = {
    "trial",
    "overrides",
    "seed",
    "status",
    "solved",
    "time_to_solve",
    "steps_to_solve",
    "final_greedy_score",
    "objective",
    "run_dir",
    "error",
}


def tree_digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with its content hash (empty if the folder is absent)."""
    if not folder.exists():
        return {}
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


# --- scripts -----------------------------------------------------------------------------------
@pytest.mark.parametrize("script", SCRIPTS)
def test_each_script_resolves_to_its_own_settings_class(script: str) -> None:
    settings_class = space.settings_class_for(script)
    assert script == settings_class.SCRIPT
    assert settings_class.__module__ == f"training.{script}"


def test_unknown_script_and_wrong_agent_are_refused() -> None:
    with pytest.raises(SweepError, match=r"no module training\.nonsense"):
        space.settings_class_for("nonsense")
    with pytest.raises(SweepError, match="not a training script"):
        space.settings_class_for("../x")
    with pytest.raises(SweepError, match="trains cartpole, not pendulum"):
        space.check_script_trains(ReinforceSettings, "pendulum")
    space.check_script_trains(GaussianActorCriticSettings, "pendulum")


def test_default_scripts_train_their_agent() -> None:
    for agent, script in space.DEFAULT_SCRIPTS.items():
        space.check_script_trains(space.settings_class_for(script), agent)


@dataclass(frozen=True)
class OwnFieldsSettings(TrainingSettings):
    """A script with a setting of its own, as PPO's is."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"course": {}, "fast": {"max_seconds": 60.0}}
    SCRIPT: ClassVar[str] = "own_fields"

    clip_range: float = setting(0.2, "a setting only this script has", bounds=POSITIVE)


def test_a_script_with_settings_of_its_own(monkeypatch) -> None:
    module = types.ModuleType("training.own_fields")
    OwnFieldsSettings.__module__ = module.__name__
    module.OwnFieldsSettings = OwnFieldsSettings
    # The names its annotations use; TrainingSettings is imported, not its settings class.
    module.__dict__.update(Any=Any, ClassVar=ClassVar, TrainingSettings=TrainingSettings)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    settings_class = space.settings_class_for("own_fields")
    assert settings_class is OwnFieldsSettings
    parsed = space.parse_space(["clip_range=uniform:0.1:0.3"], settings_class)
    space.check_trials(settings_class, {}, (1,), {}, parsed)
    with pytest.raises(SweepError, match="clip_range"):
        space.check_trials(
            settings_class, {}, (1,), space.parse_grid(["clip_range=0"], settings_class), {}
        )
    assert space.default_space_items(settings_class) == (
        "actor_learning_rate=loguniform:3e-05:0.003",
    )


# --- grid parsing ------------------------------------------------------------------------------
def test_grid_values_take_the_field_types() -> None:
    grid = space.parse_grid(
        [
            "actor_learning_rate=1e-3,3e-3",
            "num-envs=8,16",
            "baseline=true,no",
            "actor_hidden=64x64,128",
            "standardise=batch",
        ],
        ReinforceNormalisedSettings,
    )
    assert grid == {
        "actor_learning_rate": [1e-3, 3e-3],
        "num_envs": [8, 16],
        "baseline": [True, False],
        "actor_hidden": [(64, 64), (128,)],
        "standardise": ["batch"],
    }
    assert all(isinstance(v, float) for v in grid["actor_learning_rate"])
    assert all(type(v) is int for v in grid["num_envs"])
    assert len(space.grid_combinations(grid)) == 2 * 2 * 2 * 2 * 1


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("learning_rate=1e-3", "valid keys"),  # unknown field
        ("seed=1,2", "set by the sweep"),  # reserved: seeds come from --seeds
        ("num_envs=1.5", "int"),
        ("actor_learning_rate=fast", "float"),
        ("baseline=maybe", "bool"),
        ("standardise=always", "standardise"),  # not one of the field's choices
        ("actor_hidden=64,x", "tuple"),
        ("num_envs", "KEY=V1,V2"),
    ],
)
def test_bad_grid_items_explain_themselves(item: str, message: str) -> None:
    with pytest.raises(SweepError, match=message):
        space.parse_grid([item], ReinforceNormalisedSettings)


def test_unknown_key_lists_every_sweepable_field() -> None:
    with pytest.raises(SweepError) as caught:
        space.parse_grid(["nonsense=1"], ReinforceNormalisedSettings)
    for name in space.sweepable_fields(ReinforceNormalisedSettings):
        assert name in str(caught.value)


# --- search spaces -----------------------------------------------------------------------------
def test_space_items_parse_into_distributions() -> None:
    parsed = space.parse_space(
        [
            "actor_learning_rate=loguniform:1e-4:1e-2",
            "entropy-coef=uniform:0:0.02",
            "critic_steps=int:1:10",
            "actor_hidden=choice:64x64,128",
            "standardise=choice:batch,episode",
        ],
        ReinforceNormalisedSettings,
    )
    assert parsed == {
        "actor_learning_rate": Distribution("loguniform", (1e-4, 1e-2)),
        "entropy_coef": Distribution("uniform", (0.0, 0.02)),
        "critic_steps": Distribution("int", (1, 10)),
        "actor_hidden": Distribution("choice", ((64, 64), (128,))),
        "standardise": Distribution("choice", ("batch", "episode")),
    }
    assert parsed["actor_hidden"].text() == "choice:64x64,128"


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("actor_learning_rate=normal:0:1", "unknown distribution"),
        ("actor_learning_rate=loguniform:0:1e-2", "above 0"),
        ("actor_learning_rate=uniform:1e-2:1e-4", "LOW < HIGH"),
        ("actor_learning_rate=uniform:1e-2", "uniform:LOW:HIGH"),
        ("critic_steps=uniform:1:10", "needs a float setting"),
        ("actor_learning_rate=int:1:3", "needs an integer setting"),
        ("critic_steps=int:5:1", "low bound is above"),
        ("standardise=choice:batch,always", "standardise"),
        ("nonsense=uniform:0:1", "valid keys"),
        ("critic_steps", "KEY=DIST"),
    ],
)
def test_bad_space_items_explain_themselves(item: str, message: str) -> None:
    with pytest.raises(SweepError, match=message):
        space.parse_space([item], ReinforceNormalisedSettings)


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_has_a_valid_default_space(script: str) -> None:
    settings_class = space.settings_class_for(script)
    parsed = space.parse_space(space.default_space_items(settings_class), settings_class)
    assert parsed
    fast = settings_class.preset(space.PRESET)
    space.check_trials(settings_class, {}, (1,), {}, parsed)
    for name, distribution in parsed.items():
        if distribution.kind in ("loguniform", "uniform", "int"):
            low, high = distribution.values
            assert low <= getattr(fast, name) <= high, name  # the preset lies inside


def test_a_script_without_a_table_entry_searches_its_learning_rates(monkeypatch) -> None:
    monkeypatch.delitem(space.DEFAULT_SPACES, "reinforce")
    items = space.default_space_items(ReinforceSettings)
    fast = ReinforceSettings.preset(space.PRESET)
    assert f"actor_learning_rate=loguniform:{fast.actor_learning_rate / 10:g}:" in items[0]
    assert all("learning_rate" in item for item in items)


# --- trial settings and the checks before Ray ---------------------------------------------------
def test_trial_settings_are_the_fast_preset_plus_overrides(tmp_path: Path) -> None:
    settings = space.build_settings(
        ReinforceNormalisedSettings, {"actor_hidden": [32, 32], "num_envs": 4}, 7, str(tmp_path)
    )
    fast = ReinforceNormalisedSettings.preset("fast")
    assert settings.actor_hidden == (32, 32)  # Tune's lists become the field's tuple
    assert settings.num_envs == 4
    assert settings.seed == 7
    assert settings.episodes_per_update == fast.episodes_per_update
    assert settings.stop == fast.stop
    assert (settings.progress_bar, settings.threads) == (False, space.TRIAL_THREADS)
    assert Path(settings.runs_dir) == tmp_path


def test_bad_trial_settings_fail_before_ray() -> None:
    grid = space.parse_grid(["num_envs=16,0"], ReinforceNormalisedSettings)
    with pytest.raises(SweepError, match=r"^--grid num_envs=0: num_envs must be at least 1"):
        space.check_trials(ReinforceNormalisedSettings, {}, (1,), grid, {})
    bad_space = {"critic_steps": Distribution("int", (0, 4))}
    with pytest.raises(SweepError, match=r"^--space critic_steps=int:0:4 \(at 0\)"):
        space.check_trials(ReinforceNormalisedSettings, {}, (1,), {}, bad_space)


def test_a_setting_without_effect_is_refused() -> None:
    """REINFORCE has no critic: sweeping its learning rate would change nothing."""
    grid = space.parse_grid(["critic_learning_rate=1e-3,1e-2"], ReinforceSettings)
    with pytest.raises(SweepError, match="critic_learning_rate has no effect without --baseline"):
        space.check_trials(ReinforceSettings, {}, (1,), grid, {})
    grid["baseline"] = [True]  # with a critic it has one
    space.check_trials(ReinforceSettings, {}, (1,), grid, {})


def test_decoded_trial_config_takes_the_field_types() -> None:
    config = {"seed": 3, "actor_hidden": "64x64", "critic_hidden": [32], "num_envs": 8}
    assert driver.decode_config(ReinforceNormalisedSettings, config) == {
        "actor_hidden": (64, 64),
        "critic_hidden": (32,),
        "num_envs": 8,
    }


def usage_error(capsys, argv: list[str]) -> str:
    """Run the command line expecting a usage error: exit 2 and exactly one line."""
    with pytest.raises(SystemExit) as caught:
        cli.main(argv)
    assert caught.value.code == cli.EXIT_USAGE
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("python -m training.sweep: error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--grid", "nonsense=1"], "valid keys"),
        (["--grid", "num_envs=0"], "--grid num_envs=0"),  # a range the settings refuse
        (["--grid", "num_envs=0", "--search", "optuna", "--samples", "2"], "--grid num_envs=0"),
        (["--grid", "max_episodes=1,0", "--seeds", "2"], "--grid max_episodes=0"),
        (["--samples", "3"], "need --search optuna"),
        (["--space", "critic_steps=int:1:3"], "need --search optuna"),
        (["--search", "optuna"], "needs --samples"),
        (["--search", "optuna", "--samples", "2", "--seeds", "3"], "one seed per sample"),
        (["--search", "optuna", "--samples", "2", "--grid", "num_envs=8,16"], "one value"),
        (["--search", "optuna", "--samples", "2", "--space", "epochs=x"], "distribution"),
        (["--scheduler", "asha", "--max-seconds", "0"], "no time budget"),
        (["--script", "gaussian_actor_critic"], "trains pendulum, not cartpole"),
        (["--script", "nonsense"], "no module training.nonsense"),
        (["--seeds", "0"], "--seeds"),
        (["--address", "ray://head:10001", "--cpus", "2"], "--cpus"),
    ],
)
def test_command_line_mistakes_cost_one_line(capsys, extra: list[str], message: str) -> None:
    assert message in usage_error(capsys, ["--agent", "cartpole", *extra])


def test_an_out_folder_that_cannot_be_created_is_one_line(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    status = cli.main(["--agent", "cartpole", "--out", str(blocker / "sweep")])
    assert status == cli.EXIT_USAGE
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        f"python -m training.sweep: error: --out {blocker / 'sweep'}: cannot create the folder "
        "(Not a directory); choose a folder you can write to"
    ]


def test_cpus_with_a_running_ray_is_one_line(monkeypatch) -> None:
    """A Ray already running on the machine (here: named by RAY_ADDRESS) is joined, or, when
    the command asks to size a private one, reported in one line before anything starts."""
    pytest.importorskip("ray")
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    with pytest.raises(cluster.ClusterError, match="already running on this machine at"):
        cluster.connect(None, cpus=2)


def test_an_unreachable_cluster_fails_at_once_in_one_line(tmp_path: Path) -> None:
    """A refused address fails in seconds with one line naming it and the fix."""
    pytest.importorskip("ray")
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        command = [sys.executable, "-m", "training.sweep", "--agent", "cartpole"]
        completed = subprocess.run(
            [*command, "--address", address, "--out", str(tmp_path / "out")],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert completed.returncode == cli.EXIT_FAILED
        lines = completed.stderr.strip().splitlines()
        assert lines[-1].startswith(f"python -m training.sweep: error: --address {address}: ")
        assert "Connection refused" in lines[-1] and "ray start --head" in lines[-1]
        assert "Traceback" not in completed.stderr


# --- the objective, summaries, the best trial ---------------------------------------------------
def test_objective_ranks_solved_by_time_then_unsolved_by_score() -> None:
    budget, threshold = 120.0, 500.0
    assert report.objective(True, 7.5, 500.0, budget, threshold) == 7.5
    assert report.objective(False, 120.0, 250.0, budget, threshold) == 180.0  # 120 * (2 - 0.5)
    assert report.objective(False, 120.0, 500.0, budget, threshold) == 120.0  # clipped
    assert report.objective(False, 120.0, -5.0, budget, threshold) == 240.0
    assert report.objective(False, 30.0, math.nan, budget, threshold) == 240.0
    assert report.objective(False, 30.0, 250.0, 0.0, threshold) == 45.0  # no budget: own time
    ranked = sorted(
        [(False, 120.0, 400.0), (True, 100.0, 500.0), (False, 60.0, 100.0), (True, 5.0, 490.0)],
        key=lambda trial: report.objective(*trial, budget, threshold),
    )
    assert ranked == [
        (True, 5.0, 490.0),
        (True, 100.0, 500.0),
        (False, 120.0, 400.0),
        (False, 60.0, 100.0),
    ]


def plan_for(search: str = "grid", **changes) -> space.SweepPlan:
    values = {
        "agent": "cartpole",
        "script": "reinforce_normalised",
        "seeds": (1, 2),
        "fixed": {"max_seconds": 30.0},
        "grid": {},
        "space": {},
        "search": search,
        "samples": 0,
        "scheduler": "none",
        "budget": 30.0,
        "solve_threshold": 475.0,
    }
    return space.SweepPlan(**{**values, **changes})


def row(trial: int, seed: int, time_to_solve: float | None, **changes) -> dict:
    solved = time_to_solve is not None
    score = 500.0 if solved else 100.0
    values = {
        "trial": trial,
        "overrides": {},
        "seed": seed,
        "status": "finished",
        "solved": solved,
        "stop_reason": "solved" if solved else "max_seconds",
        "time_to_solve": time_to_solve,
        "steps_to_solve": 1000 * trial if solved else None,
        "episodes": 10,
        "train_seconds": time_to_solve or 30.0,
        "trial_seconds": 40.0,
        "final_greedy_score": score,
        "objective": report.objective(solved, time_to_solve or 30.0, score, 30.0, 475.0),
        "run_dir": f"runs/trial{trial}",
        "error": None,
    }
    return {**values, **changes}


def test_rates_and_best_trials() -> None:
    trials = [row(0, 1, 30.0), row(1, 2, None), row(2, 3, 10.0), row(3, 4, 20.0)]
    summary = {"trials": trials, **report.rates(trials)}
    assert summary["solve_rate"] == pytest.approx(3 / 4)
    assert summary["median_time_to_solve"] == pytest.approx(20.0)
    assert report.best_trial(summary)["trial"] == 2
    assert report.best_solved_trial(summary)["trial"] == 2
    unsolved = {"trials": [row(1, 2, None), row(2, 3, None, final_greedy_score=300.0)]}
    unsolved["trials"][1]["objective"] = report.objective(False, 30.0, 300.0, 30.0, 475.0)
    assert report.best_solved_trial(unsolved) is None
    assert report.best_trial(unsolved)["trial"] == 2  # the higher greedy score
    errored = {"trials": [row(0, 1, None, status="error", objective=None, error="boom")]}
    assert report.best_trial(errored) is None


def test_the_best_trial_is_a_ready_to_run_command() -> None:
    plan = plan_for("optuna", seeds=(5,), samples=2, fixed={"max_seconds": 30.0})
    overrides = {
        "actor_learning_rate": 0.0012345678901234,
        "actor_hidden": [64, 64],
        "bootstrap_truncated": False,
        "standardise": "batch",
    }
    trials = [row(0, 5, None), row(1, 5, 12.5, overrides=overrides)]
    summary = report.summarise(plan, trials, 50.0, "python -m training.sweep ...")
    best = summary["best"]
    assert best["trial"] == 1
    assert best["command"] == (
        "python -m training.reinforce_normalised --preset fast --seed 5 --max-seconds 30.0 "
        "--actor-learning-rate 0.0012345678901234 --actor-hidden 64 64 "
        "--no-bootstrap-truncated --standardise batch"
    )
    lines = report.best_lines(summary)
    assert lines[0].startswith("best: trial 1 (seed 5) solved in 12.5 s")
    assert lines[1] == best["command"]
    # The command parses with the script's own command line into the trial's settings.
    from training.settings import parse_command

    parsed = parse_command(ReinforceNormalisedSettings, best["command"].split()[3:]).settings
    assert parsed.actor_learning_rate == overrides["actor_learning_rate"]
    assert parsed.actor_hidden == (64, 64)
    assert (parsed.seed, parsed.max_seconds, parsed.bootstrap_truncated) == (5, 30.0, False)


def test_curves_share_an_axis_and_stopped_runs_hold_their_last_value() -> None:
    short = (np.array([0.0, 10.0]), np.array([0.0, 10.0]))
    long = (np.array([0.0, 20.0]), np.array([0.0, 40.0]))
    axis, values = report.interpolate_curves([short, long], points=5)
    assert axis[0] == 0.0 and axis[-1] == 20.0
    assert values.shape == (2, 5)
    assert values[0, -1] == 10.0  # held after its run stopped
    assert values[1, -1] == 40.0


def test_error_message_is_the_trials_own_exception() -> None:
    class WrappedTaskError(Exception):
        def __init__(self, cause: BaseException) -> None:
            super().__init__("\x1b[36mray::ImplicitFunc.train()\x1b[39m (pid=1, ip=x)\n   ^^^")
            self.cause = cause

    wrapped = WrappedTaskError(ValueError("num_envs must be at least 1"))
    assert driver.error_message(wrapped) == "ValueError: num_envs must be at least 1"
    bare = RuntimeError("\x1b[36mray::x\x1b[39m header\nActorDiedError: the actor died")
    assert driver.error_message(bare) == "ActorDiedError: the actor died"


def test_reporting_does_not_import_ray() -> None:
    """Reporting and parsing work without Ray (it is an extra); the package imports cheaply."""
    code = (
        "import sys, agents, submit, training.loop, tools.promote, training.sweep;"
        "import training.sweep.report, training.sweep.space, training.sweep.cli;"
        "import training.reinforce_normalised, training.gaussian_actor_critic;"
        "sys.exit('ray' in sys.modules)"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
    assert completed.returncode == 0, completed.stderr.decode()


# --- exit status and promotion (trials faked) ----------------------------------------------------
def fake_trials(rows: list[dict]):
    def run(plan, out, address, cpus, command):
        return driver.SweepRun(rows, [None] * len(rows), 1.0, "nowhere")

    return run


def test_a_failed_trial_makes_the_sweep_fail(tmp_path: Path, monkeypatch, capsys) -> None:
    failed = row(1, 2, None, status="error", objective=None, error="ValueError: boom")
    monkeypatch.setattr(driver, "run_trials", fake_trials([row(0, 1, 5.0), failed]))
    out = tmp_path / "out"
    assert cli.main(["--agent", "cartpole", "--seeds", "2", "--out", str(out)]) == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["error_count"] == 1
    assert summary["trials"][1]["error"] == "ValueError: boom"
    printed = capsys.readouterr().out
    assert "error: ValueError: boom" in printed
    assert printed.strip().splitlines()[-2].startswith("best: trial 0")
    monkeypatch.setattr(driver, "run_trials", fake_trials([row(0, 1, 5.0), row(1, 2, None)]))
    assert cli.main(["--agent", "cartpole", "--seeds", "2", "--out", str(out)]) == 0


def fake_promote(monkeypatch, calls: list[tuple], refuse: bool = False) -> None:
    """Stand-in for tools.promote that records its calls (its own tests cover copying)."""
    fake = types.ModuleType("tools.promote")

    class PromotionError(RuntimeError):
        pass

    def promote_run(run_dir: Path, weights_dir: Path, overwrite: bool = False) -> dict:
        calls.append((run_dir, weights_dir, overwrite))
        if refuse:
            raise PromotionError("weights exist")
        return {"seed": 3}

    fake.PromotionError = PromotionError
    fake.promote_run = promote_run
    fake.DEFAULT_WEIGHTS_DIR = Path("unused")
    monkeypatch.setitem(sys.modules, "tools.promote", fake)
    monkeypatch.setattr(tools, "promote", fake, raising=False)


def test_promote_only_with_the_flag(tmp_path: Path, monkeypatch) -> None:
    """--promote hands the fastest solved trial's run folder to promote_run, passing
    --overwrite on; without --promote promote_run is never called."""
    calls: list[tuple] = []
    fake_promote(monkeypatch, calls)
    monkeypatch.setattr(
        driver, "run_trials", fake_trials([row(0, 1, 30.0), row(1, 2, 10.0), row(2, 3, None)])
    )
    out, weights = tmp_path / "out", tmp_path / "weights"
    base = ["--agent", "cartpole", "--seeds", "3", "--out", str(out), "--weights-dir", str(weights)]
    assert cli.main(base) == 0
    assert calls == []
    assert cli.main([*base, "--promote"]) == 0
    assert cli.main([*base, "--promote", "--overwrite"]) == 0
    best = out.resolve() / "runs/trial1"
    assert calls == [(best, weights, False), (best, weights, True)]
    recorded = json.loads((out / "summary.json").read_text())
    assert recorded["promoted"]["trial"] == 1


def test_promote_fails_cleanly(tmp_path: Path, monkeypatch, capsys) -> None:
    calls: list[tuple] = []
    fake_promote(monkeypatch, calls, refuse=True)
    base = ["--agent", "cartpole", "--seeds", "1", "--out", str(tmp_path), "--promote"]
    monkeypatch.setattr(driver, "run_trials", fake_trials([row(0, 1, 5.0)]))
    assert cli.main(base) == 1
    assert "weights exist" in capsys.readouterr().err
    monkeypatch.setattr(driver, "run_trials", fake_trials([row(0, 1, None)]))
    assert cli.main(base) == 1
    assert "no trial solved" in capsys.readouterr().err
    assert len(calls) == 1


# --- end to end on a private Ray ------------------------------------------------------------------
def test_a_trial_that_fails_in_its_worker(tmp_path: Path, monkeypatch, capsys) -> None:
    """One trial runs, one raises inside its Ray worker (the checks before Ray are bypassed
    to get there): the sweep exits 1 and summary.json holds the trial's own message."""
    pytest.importorskip("ray")
    monkeypatch.setattr(
        cli, "check_trials", lambda settings_class, *args: settings_class.preset("fast")
    )
    import signal

    before = tree_digest(REPO_WEIGHTS)
    handler = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "sweep"
    argv = ["--agent", "cartpole", "--grid", "num_envs=16,0", "--grid", "max_episodes=32"]
    argv += ["--address", "local", "--cpus", "2", "--out", str(out)]
    assert cli.main(argv) == 1
    assert signal.getsignal(signal.SIGTERM) is handler  # not ray.init's, left behind

    summary = json.loads((out / "summary.json").read_text())
    assert summary["trial_count"] == 2 and summary["error_count"] == 1
    failed, finished = sorted(summary["trials"], key=lambda trial: trial["status"])
    assert set(finished) >= TRIAL_FIELDS and set(failed) >= TRIAL_FIELDS
    assert failed["overrides"] == {"num_envs": 0, "max_episodes": 32}
    assert failed["status"] == "error"
    assert failed["error"].startswith("SettingError: num_envs must be at least 1")
    assert finished["status"] == "finished" and finished["error"] is None
    assert finished["episodes"] == 32  # the grid's budget reached the trial
    assert finished["solved"] == (finished["time_to_solve"] is not None)
    assert isinstance(finished["final_greedy_score"], float)
    run_dir = out / finished["run_dir"]
    assert (run_dir / "progress.csv").exists()
    assert list(run_dir.glob("events.out.tfevents.*"))  # TensorBoard logs for every trial
    assert (out / "summary.csv").read_text().count("\n") == 1 + 2
    figure = out / "learning_curves.png"
    assert figure.read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr()
    assert "solve rate" in printed.out
    assert "error: SettingError: num_envs must be at least 1" in printed.out
    assert "Traceback" not in printed.out + printed.err
    assert tree_digest(REPO_WEIGHTS) == before


def test_optuna_search_with_asha(tmp_path: Path, capsys) -> None:
    """A 3-sample Optuna search with ASHA: every trial runs with sampled settings inside the
    space, and the output ends with the best trial and its ready-to-run command."""
    pytest.importorskip("ray")
    pytest.importorskip("optuna")
    out = tmp_path / "search"
    argv = ["--agent", "cartpole", "--search", "optuna", "--samples", "3", "--scheduler", "asha"]
    argv += ["--script", "reinforce_normalised"]
    argv += ["--space", "actor_learning_rate=loguniform:1e-3:1e-2"]
    argv += ["--space", "critic_steps=int:1:3"]
    argv += ["--grid", "max_episodes=48", "--max-seconds", "60", "--first-seed", "4"]
    argv += ["--address", "local", "--cpus", "2", "--out", str(out)]
    assert cli.main(argv) == 0

    summary = json.loads((out / "summary.json").read_text())
    assert (summary["search"], summary["scheduler"]) == ("optuna", "asha")
    assert summary["trial_count"] == 3
    assert summary["fixed"] == {"max_episodes": 48, "max_seconds": 60.0}
    sampled = set()
    for trial in summary["trials"]:
        assert trial["seed"] == 4
        assert trial["status"] in ("finished", "pruned")
        assert 1e-3 <= trial["overrides"]["actor_learning_rate"] <= 1e-2
        assert trial["overrides"]["critic_steps"] in (1, 2, 3)
        assert trial["objective"] > 0
        sampled.add(trial["overrides"]["actor_learning_rate"])
    assert len(sampled) == 3  # Optuna sampled three different settings
    best = summary["best"]
    assert best["objective"] == min(t["objective"] for t in summary["trials"])
    assert best["command"].startswith("python -m training.reinforce_normalised --preset fast")
    assert f"--actor-learning-rate {best['overrides']['actor_learning_rate']!r}" in best["command"]
    assert (out / "settings.png").read_bytes()[:4] == b"\x89PNG"
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2].startswith(f"best: trial {best['trial']} (seed 4)")
    assert lines[-1] == best["command"]


def test_sigterm_stops_the_sweep_and_keeps_what_ran(tmp_path: Path) -> None:
    """SIGTERM (as from `timeout` or a job scheduler) stops every trial through Tune: the
    summary of what ran is written and the sweep exits 143."""
    pytest.importorskip("ray")
    import signal
    import time

    out = tmp_path / "sweep"
    command = [sys.executable, "-m", "training.sweep", "--agent", "cartpole", "--seeds", "2"]
    # REINFORCE takes longer to solve than the 2 s this test trains (PPO may not).
    command += ["--script", "reinforce_normalised"]
    command += ["--grid", "max_episodes=1000000", "--max-seconds", "120"]
    command += ["--address", "local", "--cpus", "2", "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list((out / "runs").glob("*/progress.csv")) and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(2)  # a few updates into training
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stdout + stderr
    assert "Traceback" not in stdout + stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped_by"] == "SIGTERM"
    assert summary["trials"]
    for trial in summary["trials"]:
        assert (trial["status"], trial["stop_reason"]) == ("stopped", "SIGTERM")
    assert "sweep: stopped by SIGTERM" in stdout


def test_tune_gets_the_space_the_searcher_and_the_scheduler() -> None:
    """The plan as Tune sees it: int bounds both included, tuple choices as text (Optuna's
    choices are scalars), Optuna minimising the objective, ASHA and the median rule pruning on
    the running reward at equal training time."""
    pytest.importorskip("ray")
    pytest.importorskip("optuna")
    from ray.tune.schedulers import ASHAScheduler, MedianStoppingRule
    from ray.tune.search.optuna import OptunaSearch

    searched = {
        "critic_steps": Distribution("int", (1, 3)),
        "actor_hidden": Distribution("choice", ((64, 64), (128,))),
        "actor_learning_rate": Distribution("loguniform", (1e-4, 1e-2)),
    }
    plan = plan_for("optuna", seeds=(7,), samples=4, space=searched, budget=120.0)
    tune_space = driver.param_space(plan)
    assert (tune_space["critic_steps"].lower, tune_space["critic_steps"].upper) == (1, 4)
    assert tune_space["actor_hidden"].categories == ["64x64", "128"]
    assert tune_space["seed"] == 7
    assert driver.decode_config(ReinforceNormalisedSettings, {"actor_hidden": "64x64"}) == {
        "actor_hidden": (64, 64)
    }

    config = driver.tune_config(dataclasses.replace(plan, scheduler="asha"))
    assert isinstance(config.search_alg, OptunaSearch) and config.num_samples == 4
    assert (config.search_alg.metric, config.search_alg.mode) == ("objective", "min")
    asha = config.scheduler
    assert isinstance(asha, ASHAScheduler)
    assert (asha._time_attr, asha._metric, asha._mode) == ("wall_time", "running_reward", "max")
    assert sorted(milestone for milestone, _ in asha._brackets[0]._rungs) == [7.5, 30.0]
    median = driver.tune_config(dataclasses.replace(plan, scheduler="median")).scheduler
    assert isinstance(median, MedianStoppingRule)
    assert (median._time_attr, median._metric) == ("wall_time", "running_reward")
    grid = driver.tune_config(plan_for("grid"))
    assert grid.search_alg is None and grid.scheduler is None
