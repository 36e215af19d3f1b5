"""Multi-seed and hyperparameter sweeps on Ray Tune, locally or on a Ray cluster.

Single policy-gradient runs mislead (results swing with the seed), so this trains the same
settings over many seeds, optionally over a grid of settings, and reports how often and how fast
they solve. Every trial is one call of :func:`training.loop.train` (the scripts' own loop) with
the agent's shipped ``fast`` preset, the grid's overrides and the trial's seed::

    python -m training.sweep --agent cartpole --seeds 10
    python -m training.sweep --agent pendulum --seeds 5 --grid entropy_coef=0,0.01 --promote
    python -m training.sweep --agent cartpole --seeds 20 --address ray://head:10001

Without ``--address`` Ray starts inside this process, sized to this machine; with it, the same
sweep runs on an existing cluster (whose nodes need this project's dependencies; the
``agents`` and ``training`` packages are shipped to them). Outputs in ``--out``:
summary.json and summary.csv (one row per trial), learning_curves.png (mean +/- std running
reward across seeds against environment steps), runs/ (each trial's run folder) and ray/
(Tune's own records). ``--promote`` ships the fastest solved trial's agent to ``weights/`` with
tools.promote (existing weights are replaced only with ``--overwrite`` as well).

Ray is the optional ``sweep`` extra: it is imported here only, inside functions.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import itertools
import json
import logging
import math
import os
import shlex
import statistics
import sys
import time
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.gaussian_actor_critic import GaussianActorCriticSettings
from training.reinforce_normalised import ReinforceNormalisedSettings
from training.settings import TrainingSettings, field_metadata

#: The settings class whose ``fast`` preset is the shipped training for each agent.
AGENT_SETTINGS: dict[str, type[TrainingSettings]] = {
    "cartpole": ReinforceNormalisedSettings,
    "pendulum": GaussianActorCriticSettings,
}
PRESET = "fast"
#: Fields the sweep sets itself, so a grid may not: the seed comes from --seeds, the rest
#: keeps trials quiet, single-threaded and inside the sweep's folder.
RESERVED_FIELDS = frozenset({"agent", "seed", "runs_dir", "progress_bar", "threads"})
TRIAL_THREADS = 1  # TensorFlow threads per trial: one trial per CPU scales best
CPUS_PER_TRIAL = 1
FIRST_SEED = 1  # seeds 1..N, as the training-speed benchmark uses
TUPLE_SEPARATOR = "x"  # actor_hidden=64x64,128 is two values: (64, 64) and (128,)
TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})
#: Progress keys forwarded to Tune after every update (greedy_score may be None: NaN then).
REPORTED = ("running_reward", "greedy_score", "env_steps", "wall_time", "episodes", "updates")
CURVE_POINTS = 200  # points on the common axis the learning curves are interpolated onto
FIGURE_SIZE = (8.0, 4.5)
FIGURE_DPI = 100
#: Headless rendering and quiet TensorFlow in every Ray worker, local or remote.
WORKER_ENV = {"MUJOCO_GL": "egl", "SDL_VIDEODRIVER": "dummy", "TF_CPP_MIN_LOG_LEVEL": "2"}
SUMMARY_COLUMNS = (
    "trial",
    "overrides",
    "seed",
    "status",
    "solved",
    "stop_reason",
    "time_to_solve",
    "steps_to_solve",
    "episodes",
    "train_seconds",
    "trial_seconds",
    "final_greedy_score",
    "run_dir",
)


class GridError(ValueError):
    """A --grid item that names an unknown field or holds a value of the wrong type."""


# --- grid parsing ------------------------------------------------------------------------------
def sweepable_fields(settings_class: type[TrainingSettings]) -> list[str]:
    """The settings fields a grid may vary: every field except the ones the sweep owns."""
    return [f.name for f in dataclasses.fields(settings_class) if f.name not in RESERVED_FIELDS]


def parse_value(text: str, kind: Any, name: str) -> Any:
    """One grid value converted to the field's declared type, or a GridError saying why not."""
    text = text.strip()
    try:
        if kind is bool:
            word = text.lower()
            if word in TRUE_WORDS | FALSE_WORDS:
                return word in TRUE_WORDS
            raise ValueError(f"expected one of {sorted(TRUE_WORDS | FALSE_WORDS)}")
        if kind == tuple[int, ...]:
            return tuple(int(part) for part in text.split(TUPLE_SEPARATOR))
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is str:
            choices = field_metadata(name)["choices"]
            if choices and text not in choices:
                raise ValueError(f"expected one of {list(choices)}")
            return text
    except ValueError as error:
        raise GridError(
            f"--grid {name}: {text!r} is not a valid {_type_name(kind)}: {error}"
        ) from None
    raise GridError(f"--grid {name}: fields of type {_type_name(kind)} cannot be swept")


def _type_name(kind: Any) -> str:
    if kind == tuple[int, ...]:
        return f"tuple of ints (e.g. 64{TUPLE_SEPARATOR}64)"
    return getattr(kind, "__name__", str(kind))


def parse_grid(
    items: Sequence[str], settings_class: type[TrainingSettings]
) -> dict[str, list[Any]]:
    """``["KEY=V1,V2", ...]`` to ``{field: [values]}``, typed by the dataclass's fields.

    Keys may use dashes or underscores (``actor-learning-rate`` = ``actor_learning_rate``).
    Unknown or reserved keys raise a GridError that lists the valid ones.
    """
    valid = sweepable_fields(settings_class)
    hints = typing.get_type_hints(settings_class)
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, separator, values = item.partition("=")
        name = key.strip().replace("-", "_")
        if not separator or not values.strip():
            raise GridError(f"--grid {item!r}: expected KEY=V1,V2,...")
        if name not in valid:
            why = "is set by the sweep itself" if name in RESERVED_FIELDS else "is not a setting"
            raise GridError(f"--grid {name} {why}; valid keys: {', '.join(valid)}")
        if name in grid:
            raise GridError(f"--grid {name} given twice")
        grid[name] = [parse_value(text, hints[name], name) for text in values.split(",")]
    return grid


def grid_combinations(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values (one empty combination for an empty grid)."""
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]


def build_settings(
    agent: str, overrides: dict[str, Any], seed: int, runs_dir: Path
) -> TrainingSettings:
    """A trial's settings: the agent's fast preset, the overrides, the seed, sweep plumbing."""
    settings_class = AGENT_SETTINGS[agent]
    return settings_class.preset(
        PRESET,
        **settings_class.typed(overrides),
        seed=seed,
        runs_dir=str(runs_dir),
        progress_bar=False,
        threads=TRIAL_THREADS,
    )


# --- one trial (runs in a Ray worker) --------------------------------------------------------
def run_trial(
    config: dict[str, Any], agent: str, fixed: dict[str, Any], runs_dir: str, command: str
) -> None:
    """Tune's function trainable: one training run, reporting progress after every update.

    ``config`` holds the seed and this trial's grid values; ``fixed`` the overrides every
    trial shares (e.g. a time cap). The last report adds how the run ended and the final
    agent's greedy score: the summary is built from it.
    """
    from ray import tune

    from training.loop import train

    started = time.perf_counter()
    overrides = {**fixed, **{key: value for key, value in config.items() if key != "seed"}}
    settings = build_settings(agent, overrides, int(config["seed"]), Path(runs_dir))

    def on_update(progress: dict[str, Any]) -> None:
        tune.report({key: _number(progress[key]) for key in REPORTED})

    result = train(settings, command=command, on_update=on_update)
    tune.report(
        {
            **{key: _number(value) for key, value in _last_progress(result).items()},
            "greedy_score": final_greedy_score(result, settings),
            "done": True,
            "solved": result.solved,
            "stop_reason": result.stop_reason,
            "train_seconds": result.train_seconds,
            "trial_seconds": time.perf_counter() - started,
            "run_dir": str(result.run_dir),
        }
    )


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def _last_progress(result: Any) -> dict[str, Any]:
    return {
        "running_reward": result.running_reward,
        "env_steps": result.env_steps,
        "wall_time": result.train_seconds,
        "episodes": result.episodes,
        "updates": result.updates,
    }


def final_greedy_score(result: Any, settings: TrainingSettings) -> float:
    """The final agent's greedy mean over ``eval_episodes``: the solving evaluation's score
    when the run solved (it evaluated exactly this agent), else one evaluation now, so unsolved
    trials are compared on the same footing."""
    if result.solved and result.evaluations and "agent_greedy_mean" in result.evaluations[-1]:
        return float(result.evaluations[-1]["agent_greedy_mean"])
    if not result.saved_final:
        return math.nan
    from agents import AGENT_CLASSES
    from agents.evaluation import evaluate
    from training.loop import evaluation_seed
    from training.tasks import TASKS

    agent = AGENT_CLASSES[settings.agent].load(result.run_dir / "final")
    seed = evaluation_seed(settings.seed, result.updates)
    return evaluate(agent, TASKS[settings.agent].env_id, settings.eval_episodes, seed).mean


# --- the driver ------------------------------------------------------------------------------
def start_ray(address: str | None, cpus: int | None) -> None:
    """Connect to ``address``, or start Ray in this process with ``cpus`` CPUs (default: all
    of this machine's); quiet, no dashboard."""
    import ray

    import agents
    import training

    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address is None:
        ray.init(
            num_cpus=cpus or os.cpu_count(),
            include_dashboard=False,
            runtime_env={"env_vars": WORKER_ENV},
            **quiet,
        )
    else:
        # Remote nodes get this checkout's code; their Python environment must have the rest.
        ray.init(
            address=address,
            runtime_env={"env_vars": WORKER_ENV, "py_modules": [agents, training]},
            **quiet,
        )


def run_sweep(
    agent: str,
    seeds: Sequence[int],
    grid: dict[str, list[Any]],
    out: Path,
    address: str | None = None,
    cpus: int | None = None,
    max_seconds: float | None = None,
    command: str = "",
) -> dict[str, Any]:
    """Run every (grid combination, seed) trial on Ray Tune and return the summary.

    ``max_seconds`` overrides the preset's training-time cap of every trial.
    """
    import ray
    from ray import tune

    out = out.resolve()  # trials run with another working directory
    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    fixed = {} if max_seconds is None else {"max_seconds": max_seconds}
    space: dict[str, Any] = {key: tune.grid_search(values) for key, values in grid.items()}
    space["seed"] = tune.grid_search(list(seeds))
    trainable = tune.with_resources(
        tune.with_parameters(
            run_trial, agent=agent, fixed=fixed, runs_dir=str(runs_dir), command=command
        ),
        {"cpu": CPUS_PER_TRIAL},
    )
    started = time.perf_counter()
    owns_ray = not ray.is_initialized()
    if owns_ray:
        start_ray(address, cpus)
    try:
        tuner = tune.Tuner(
            trainable,
            param_space=space,
            run_config=tune.RunConfig(
                name="tune",
                storage_path=str(out / "ray"),
                verbose=0,
                callbacks=[_TrialPrinter(list(grid))],
            ),
        )
        results = _ordered(tuner.fit(), list(grid))
    finally:
        if owns_ray:
            ray.shutdown()
    trials = [_trial_row(index, result, list(grid), out) for index, result in enumerate(results)]
    curves = [_curve(row, result, out) for row, result in zip(trials, results, strict=True)]
    summary = summarise(agent, trials, grid, time.perf_counter() - started, command)
    _write_outputs(summary, out)
    plot_curves(trials, curves, out / "learning_curves.png", agent)
    return summary


def _ordered(results: Any, keys: list[str]) -> list[Any]:
    """Tune's results sorted by grid values then seed, so tables read in a stable order."""
    return sorted(
        results, key=lambda r: ([repr(r.config.get(k)) for k in keys], r.config.get("seed"))
    )


def _TrialPrinter(keys: list[str]) -> Any:  # noqa: N802 - builds a Tune callback instance
    """A Tune callback printing one line per finished trial, so a long sweep shows progress."""
    from ray import tune

    class TrialPrinter(tune.Callback):
        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            metrics = trial.last_result or {}
            what = _describe(trial.config, keys)
            if metrics.get("solved"):
                outcome = (
                    f"solved in {metrics['train_seconds']:.1f} s, "
                    f"{int(metrics['env_steps']):,} steps"
                )
            else:
                outcome = f"{metrics.get('stop_reason', 'no result')}"
            print(f"  trial {what}: {outcome}", flush=True)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            print(f"  trial {_describe(trial.config, keys)}: error", flush=True)

    return TrialPrinter()


def _describe(config: dict[str, Any], keys: list[str]) -> str:
    return " ".join([*(f"{k}={config.get(k)}" for k in keys), f"seed={config.get('seed')}"])


def _trial_row(index: int, result: Any, keys: list[str], out: Path) -> dict[str, Any]:
    """One summary row from a Tune result (an errored trial keeps its config, status error)."""
    metrics = result.metrics or {}
    finished = bool(metrics.get("done")) and result.error is None
    solved = finished and bool(metrics.get("solved"))
    run_dir = metrics.get("run_dir")
    score = metrics.get("greedy_score")
    return {
        "trial": index,
        "overrides": {key: _plain(result.config.get(key)) for key in keys},
        "seed": int(result.config["seed"]),
        "status": "finished" if finished else "error",
        "solved": solved,
        "stop_reason": metrics.get("stop_reason"),
        "time_to_solve": metrics["train_seconds"] if solved else None,
        "steps_to_solve": int(metrics["env_steps"]) if solved else None,
        "episodes": int(metrics["episodes"]) if "episodes" in metrics else None,
        "train_seconds": metrics.get("train_seconds"),
        "trial_seconds": metrics.get("trial_seconds"),
        "final_greedy_score": None if score is None or math.isnan(score) else float(score),
        "run_dir": _relative(run_dir, out) if run_dir else None,
        "error": None if result.error is None else str(result.error).splitlines()[0],
    }


def _plain(value: Any) -> Any:
    """JSON-friendly value (tuples as lists)."""
    return list(value) if isinstance(value, tuple) else value


def _relative(path: str, out: Path) -> str:
    """Run folders relative to the sweep folder, so summaries stay valid when it moves."""
    try:
        return str(Path(path).relative_to(out))
    except ValueError:
        return path


def summarise(
    agent: str,
    trials: list[dict[str, Any]],
    grid: dict[str, list[Any]],
    wall_seconds: float,
    command: str,
) -> dict[str, Any]:
    """Solve rate and median time/steps to solve, overall and per grid combination."""
    import ray

    groups = []
    for combination in grid_combinations(grid):
        plain = {key: _plain(value) for key, value in combination.items()}
        members = [row for row in trials if row["overrides"] == plain]
        groups.append({"overrides": plain, **_rates(members)})
    return {
        "agent": agent,
        "settings_class": AGENT_SETTINGS[agent].__name__,
        "preset": PRESET,
        "command": command,
        "grid": {key: [_plain(v) for v in values] for key, values in grid.items()},
        "seeds": sorted({row["seed"] for row in trials}),
        "sweep_wall_seconds": wall_seconds,
        "ray_version": ray.__version__,
        **_rates(trials),
        "groups": groups,
        "trials": trials,
    }


def _rates(rows: list[dict[str, Any]]) -> dict[str, Any]:
    solved = [row for row in rows if row["solved"]]
    times = [row["time_to_solve"] for row in solved]
    steps = [row["steps_to_solve"] for row in solved]
    return {
        "trial_count": len(rows),
        "solved_count": len(solved),
        "solve_rate": len(solved) / len(rows) if rows else 0.0,
        "median_time_to_solve": statistics.median(times) if times else None,
        "median_steps_to_solve": statistics.median(steps) if steps else None,
    }


def _write_outputs(summary: dict[str, Any], out: Path) -> None:
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    with (out / "summary.csv").open("w", newline="") as stream:
        writer = csv.DictWriter(stream, SUMMARY_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in summary["trials"]:
            writer.writerow({**row, "overrides": json.dumps(row["overrides"])})


# --- learning curves -------------------------------------------------------------------------
def _curve(row: dict[str, Any], result: Any, out: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(env steps, running reward) of one trial: from its progress.csv (one point per episode)
    when the run folder is on this machine, else from the progress it reported to Tune (a
    multi-node cluster keeps run folders on the nodes that ran them)."""
    if row["run_dir"]:
        progress = out / row["run_dir"] / "progress.csv"
        if progress.exists():
            with progress.open(newline="") as stream:
                rows = list(csv.DictReader(stream))
            if rows:
                steps = np.array([float(r["env_steps"]) for r in rows])
                rewards = np.array([float(r["running_reward"]) for r in rows])
                # An update's episodes share its step count: keep each update's last row.
                last = np.append(steps[1:] != steps[:-1], True)
                return steps[last], rewards[last]
    frame = result.metrics_dataframe
    if frame is None or frame.empty or "env_steps" not in frame:
        return None
    return frame["env_steps"].to_numpy(float), frame["running_reward"].to_numpy(float)


def interpolate_curves(
    curves: list[tuple[np.ndarray, np.ndarray]], points: int = CURVE_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """Curves resampled on a common axis from 0 to the longest run's last x.

    A run that stopped early holds its final value afterwards (a solved run stopped because it
    was solved), so every point averages all seeds.
    """
    end = max(float(x[-1]) for x, _ in curves)
    axis = np.linspace(0.0, end, points)
    values = np.stack([np.interp(axis, x, y, left=y[0], right=y[-1]) for x, y in curves])
    return axis, values


def plot_curves(
    trials: list[dict[str, Any]],
    curves: list[tuple[np.ndarray, np.ndarray] | None],
    path: Path,
    agent: str,
) -> Path:
    """Mean +/- std running reward across seeds vs env steps, one band per grid combination."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=FIGURE_SIZE)
    groups: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for row, curve in zip(trials, curves, strict=True):
        if curve is not None and len(curve[0]):
            label = ", ".join(f"{k}={v}" for k, v in row["overrides"].items()) or "shipped"
            groups.setdefault(label, []).append(curve)
    for label, members in groups.items():
        axis, values = interpolate_curves(members)
        mean, std = values.mean(axis=0), values.std(axis=0)
        (line,) = axes.plot(axis, mean, lw=1.8, label=f"{label} ({len(members)} seeds)")
        axes.fill_between(axis, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    threshold = AGENT_SETTINGS[agent].preset(PRESET).solve_threshold
    axes.axhline(threshold, color="grey", ls="--", lw=1, label=f"solve threshold ({threshold:g})")
    axes.set(
        xlabel="environment steps",
        ylabel="running reward (mean +/- std)",
        title=f"{agent}: running reward across seeds (stopped runs hold their last value)",
    )
    axes.legend(loc="lower right", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=FIGURE_DPI)
    plt.close(figure)
    return path


# --- reporting -------------------------------------------------------------------------------
def format_table(summary: dict[str, Any]) -> str:
    """The per-trial table and the headline rates, as printed at the end of a sweep."""
    header = (
        f"{'trial':>5}  {'overrides':<30} {'seed':>5}  {'solved':<7}"
        f"{'time s':>8} {'steps':>10} {'greedy':>8}  stop"
    )
    lines = [header, "-" * len(header)]
    for row in summary["trials"]:
        overrides = ", ".join(f"{k}={v}" for k, v in row["overrides"].items()) or "-"
        time_text = _fmt(row["time_to_solve"], ".1f")
        steps_text = _fmt(row["steps_to_solve"], ",")
        score_text = _fmt(row["final_greedy_score"], ".1f")
        solved = "yes" if row["solved"] else ("ERROR" if row["status"] == "error" else "no")
        lines.append(
            f"{row['trial']:>5}  {overrides:<30} {row['seed']:>5}  {solved:<7}"
            f"{time_text:>8} {steps_text:>10} {score_text:>8}  {row['stop_reason'] or '-'}"
        )
    if len(summary["groups"]) > 1:
        lines.append("")
        for group in summary["groups"]:
            overrides = ", ".join(f"{k}={v}" for k, v in group["overrides"].items())
            lines.append(f"{overrides}: {_rate_text(group)}")
    lines += ["", f"all trials: {_rate_text(summary)}"]
    lines.append(f"sweep wall time {summary['sweep_wall_seconds']:.1f} s")
    return "\n".join(lines)


def _rate_text(rates: dict[str, Any]) -> str:
    median = rates["median_time_to_solve"]
    steps = rates["median_steps_to_solve"]
    text = (
        f"solve rate {rates['solved_count']}/{rates['trial_count']} "
        f"({100 * rates['solve_rate']:.0f}%)"
    )
    if median is not None:
        text += f", median time to solve {median:.1f} s ({steps:,.0f} env steps)"
    return text


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def best_trial(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The solved trial with the shortest training time to solve, or None."""
    solved = [row for row in summary["trials"] if row["solved"]]
    return min(solved, key=lambda row: row["time_to_solve"]) if solved else None


def promote_best(
    summary: dict[str, Any], out: Path, weights_dir: Path | None, overwrite: bool
) -> int:
    """Ship the fastest solved trial through tools.promote (which writes the record and
    refuses to replace weights unless ``overwrite``); 1 when there is nothing to ship."""
    from tools import promote

    best = best_trial(summary)
    if best is None:
        print("--promote: no trial solved; weights left unchanged", file=sys.stderr)
        return 1
    weights_dir = weights_dir or promote.DEFAULT_WEIGHTS_DIR
    try:
        record = promote.promote_run(out / best["run_dir"], weights_dir, overwrite)
    except promote.PromotionError as error:
        print(f"--promote: {error}", file=sys.stderr)
        return 1
    print(f"promoted trial {best['trial']} (seed {best['seed']}) to {weights_dir}")
    summary["promoted"] = {"trial": best["trial"], "record": record}
    _write_outputs(summary, out)
    return 0


# --- command line ----------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m training.sweep",
        description="Train many seeds (and a grid of settings) of an agent's shipped fast "
        "preset on Ray Tune; report solve rate and time to solve.",
    )
    parser.add_argument("--agent", choices=tuple(AGENT_SETTINGS), required=True)
    parser.add_argument("--seeds", type=int, required=True, help="number of seeds per setting")
    parser.add_argument(
        "--first-seed", type=int, default=FIRST_SEED, help=f"seeds start here [{FIRST_SEED}]"
    )
    parser.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a settings field and its values (repeatable: the grid is their product); "
        f"tuples as 64{TUPLE_SEPARATOR}64",
    )
    parser.add_argument("--address", help="an existing Ray cluster (default: start Ray here)")
    parser.add_argument(
        "--cpus", type=int, help="CPUs for a local Ray, one trial each [this machine's count]"
    )
    parser.add_argument(
        "--max-seconds", type=float, help="training-time cap per trial [the preset's]"
    )
    parser.add_argument("--out", type=Path, help="sweep folder [runs/sweep-<agent>-<timestamp>]")
    parser.add_argument(
        "--promote",
        action="store_true",
        help="copy the fastest solved trial's agent and its record into --weights-dir "
        "(tools.promote)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="with --promote: replace existing weights"
    )
    parser.add_argument(
        "--weights-dir", type=Path, help="where --promote ships to [the package's weights/]"
    )
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    if args.cpus is not None and args.address is not None:
        parser.error("--cpus sizes a local Ray; a cluster given by --address has its own")
    if args.cpus is not None and args.cpus < CPUS_PER_TRIAL:
        parser.error(f"--cpus must be at least {CPUS_PER_TRIAL}")
    try:
        args.grid = parse_grid(args.grid, AGENT_SETTINGS[args.agent])
    except GridError as error:
        parser.error(str(error))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sweep, print the table, write the outputs; promote with ``--promote``."""
    args = parse_args(argv)
    words = list(sys.argv[1:] if argv is None else argv)
    command = shlex.join(["python", "-m", "training.sweep", *words])
    out = args.out or Path("runs") / f"sweep-{args.agent}-{time.strftime('%Y%m%d-%H%M%S')}"
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    trial_count = args.seeds * len(grid_combinations(args.grid))
    where = args.address or f"local Ray, {args.cpus or os.cpu_count()} CPUs"
    print(f"sweep: {trial_count} trials of {args.agent} on {where}; outputs in {out}", flush=True)
    summary = run_sweep(
        args.agent, seeds, args.grid, out, args.address, args.cpus, args.max_seconds, command
    )
    print(format_table(summary))
    print(f"summary: {out / 'summary.json'}, figure: {out / 'learning_curves.png'}")
    if args.promote:
        return promote_best(summary, out.resolve(), args.weights_dir, args.overwrite)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
