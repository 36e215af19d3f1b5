"""training.sweep: grid parsing, summaries and promotion, and a tiny 2-trial sweep on Ray."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import tools
from training import sweep
from training.reinforce_normalised import ReinforceNormalisedSettings

REPO_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
TRIAL_FIELDS = {
    "trial",
    "overrides",
    "seed",
    "solved",
    "time_to_solve",
    "steps_to_solve",
    "final_greedy_score",
    "run_dir",
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


# --- grid parsing ------------------------------------------------------------------------------
def test_grid_values_take_the_field_types() -> None:
    grid = sweep.parse_grid(
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
    assert len(sweep.grid_combinations(grid)) == 2 * 2 * 2 * 2 * 1


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
    with pytest.raises(sweep.GridError, match=message):
        sweep.parse_grid([item], ReinforceNormalisedSettings)


def test_unknown_key_lists_every_sweepable_field() -> None:
    with pytest.raises(sweep.GridError) as caught:
        sweep.parse_grid(["nonsense=1"], ReinforceNormalisedSettings)
    for name in sweep.sweepable_fields(ReinforceNormalisedSettings):
        assert name in str(caught.value)


def test_command_line_rejects_a_bad_grid(capsys) -> None:
    with pytest.raises(SystemExit):
        sweep.parse_args(["--agent", "cartpole", "--seeds", "2", "--grid", "nonsense=1"])
    assert "valid keys" in capsys.readouterr().err


def test_trial_settings_are_the_fast_preset_plus_overrides(tmp_path: Path) -> None:
    settings = sweep.build_settings(
        "cartpole", {"actor_hidden": [32, 32], "num_envs": 4}, 7, tmp_path
    )
    fast = ReinforceNormalisedSettings.preset("fast")
    assert settings.actor_hidden == (32, 32)  # Tune's lists become the field's tuple
    assert settings.num_envs == 4
    assert settings.seed == 7
    assert settings.episodes_per_update == fast.episodes_per_update
    assert settings.stop == fast.stop
    assert (settings.progress_bar, settings.threads) == (False, sweep.TRIAL_THREADS)
    assert Path(settings.runs_dir) == tmp_path


# --- summaries, curves, promotion --------------------------------------------------------------
def row(trial: int, seed: int, time_to_solve: float | None) -> dict:
    solved = time_to_solve is not None
    return {
        "trial": trial,
        "overrides": {},
        "seed": seed,
        "status": "finished",
        "solved": solved,
        "stop_reason": "solved" if solved else "max_seconds",
        "time_to_solve": time_to_solve,
        "steps_to_solve": 1000 * trial if solved else None,
        "final_greedy_score": 500.0 if solved else 100.0,
        "run_dir": f"runs/trial{trial}",
    }


def test_rates_and_best_trial() -> None:
    trials = [row(0, 1, 30.0), row(1, 2, None), row(2, 3, 10.0), row(3, 4, 20.0)]
    summary = {"trials": trials, **sweep._rates(trials)}
    assert summary["solve_rate"] == pytest.approx(3 / 4)
    assert summary["median_time_to_solve"] == pytest.approx(20.0)
    assert sweep.best_trial(summary)["trial"] == 2
    assert sweep.best_trial({"trials": [row(1, 2, None)]}) is None


def test_curves_share_an_axis_and_stopped_runs_hold_their_last_value() -> None:
    short = (np.array([0.0, 10.0]), np.array([0.0, 10.0]))
    long = (np.array([0.0, 20.0]), np.array([0.0, 40.0]))
    axis, values = sweep.interpolate_curves([short, long], points=5)
    assert axis[0] == 0.0 and axis[-1] == 20.0
    assert values.shape == (2, 5)
    assert values[0, -1] == 10.0  # held after its run stopped
    assert values[1, -1] == 40.0


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


def fake_sweep(trials: list[dict]):
    def run(agent, seeds, grid, out, *args) -> dict:
        out.mkdir(parents=True, exist_ok=True)
        return {"trials": trials, "groups": [], "sweep_wall_seconds": 1.0, **sweep._rates(trials)}

    return run


def test_promote_only_with_the_flag(tmp_path: Path, monkeypatch) -> None:
    """--promote hands the fastest solved trial's run folder to promote_run, passing
    --overwrite on; without --promote promote_run is never called."""
    calls: list[tuple] = []
    fake_promote(monkeypatch, calls)
    monkeypatch.setattr(
        sweep, "run_sweep", fake_sweep([row(0, 1, 30.0), row(1, 2, 10.0), row(2, 3, None)])
    )
    out, weights = tmp_path / "out", tmp_path / "weights"
    base = ["--agent", "cartpole", "--seeds", "3", "--out", str(out), "--weights-dir", str(weights)]
    assert sweep.main(base) == 0
    assert calls == []
    assert sweep.main([*base, "--promote"]) == 0
    assert sweep.main([*base, "--promote", "--overwrite"]) == 0
    best = out.resolve() / "runs/trial1"
    assert calls == [(best, weights, False), (best, weights, True)]
    recorded = json.loads((out / "summary.json").read_text())
    assert recorded["promoted"]["trial"] == 1


def test_promote_fails_cleanly(tmp_path: Path, monkeypatch, capsys) -> None:
    calls: list[tuple] = []
    fake_promote(monkeypatch, calls, refuse=True)
    base = ["--agent", "cartpole", "--seeds", "1", "--out", str(tmp_path), "--promote"]
    monkeypatch.setattr(sweep, "run_sweep", fake_sweep([row(0, 1, 5.0)]))
    assert sweep.main(base) == 1
    assert "weights exist" in capsys.readouterr().err
    monkeypatch.setattr(sweep, "run_sweep", fake_sweep([row(0, 1, None)]))
    assert sweep.main(base) == 1
    assert "no trial solved" in capsys.readouterr().err
    assert len(calls) == 1


# --- end to end through Ray ----------------------------------------------------------------------
def test_two_trial_sweep_through_ray(tmp_path: Path, capsys) -> None:
    pytest.importorskip("ray")
    before = tree_digest(REPO_WEIGHTS)
    out, weights = tmp_path / "sweep", tmp_path / "weights"
    argv = [
        "--agent",
        "cartpole",
        "--seeds",
        "2",
        "--grid",
        "max_episodes=32",
        "--cpus",
        "2",
        "--out",
        str(out),
        "--weights-dir",
        str(weights),
    ]
    assert sweep.main(argv) == 0

    summary = json.loads((out / "summary.json").read_text())
    assert summary["trial_count"] == 2
    assert len(summary["trials"]) == 2
    assert {trial["seed"] for trial in summary["trials"]} == {1, 2}
    for trial in summary["trials"]:
        assert set(trial) >= TRIAL_FIELDS
        assert trial["status"] == "finished"
        assert trial["overrides"] == {"max_episodes": 32}
        assert trial["episodes"] == 32  # the grid's budget reached the trial
        assert trial["solved"] == (trial["time_to_solve"] is not None)
        assert isinstance(trial["final_greedy_score"], float)
        assert (out / trial["run_dir"] / "progress.csv").exists()
    assert 0.0 <= summary["solve_rate"] <= 1.0
    assert (out / "summary.csv").read_text().count("\n") == 1 + 2
    figure = out / "learning_curves.png"
    assert figure.stat().st_size > 0
    assert figure.read_bytes()[:4] == b"\x89PNG"
    assert "solve rate" in capsys.readouterr().out
    assert not weights.exists()  # nothing promoted without --promote
    assert tree_digest(REPO_WEIGHTS) == before


def test_ray_stays_optional() -> None:
    """Importing the package (the sweep module included) must not import Ray: it is an extra."""
    code = (
        "import sys, agents, submit, training.loop, tools.promote, training.sweep;"
        "import training.reinforce_normalised, training.gaussian_actor_critic;"
        "sys.exit('ray' in sys.modules)"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
    assert completed.returncode == 0, completed.stderr.decode()
