"""A sweep's results, without Ray: the objective, the summary, the table and the figures.

The driver hands over one plain row per trial (and its learning curve); everything here works
on those rows, so a summary can be rebuilt or tested without a cluster.
"""

from __future__ import annotations

import csv
import importlib.metadata
import json
import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from training.sweep.space import SweepPlan, describe, grid_combinations

CURVE_POINTS = 200  # points on the common axis the learning curves are interpolated onto
FIGURE_SIZE = (8.0, 4.5)
SETTING_PANEL_SIZE = (4.0, 3.2)
SETTING_COLUMNS = 3  # panels per row of the settings figure
FIGURE_DPI = 100
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
    "objective",
    "run_dir",
    "error",
)
OBJECTIVE_TEXT = (
    "seconds of training to solve (smaller is better); a trial that did not solve counts "
    "budget x (2 - score / solve threshold), so it ranks after every solved trial and by "
    "its greedy score (a pruned trial by its running reward)"
)
STATUS_COLOURS = {"solved": "tab:green", "unsolved": "tab:orange", "pruned": "tab:grey"}
STOPPED = ("pruned", "stopped")  # statuses of trials that did not run to their own end


# --- the objective -------------------------------------------------------------------------------
def objective(
    solved: bool, seconds: float, score: float | None, budget: float, threshold: float
) -> float:
    """Seconds to solve; an unsolved trial scores ``budget * (2 - score / threshold)`` with
    the score clipped to [0, threshold], i.e. between one and two budgets.

    One number for Optuna to minimise that keeps the ranking the issue asks for: solved
    trials by time (at most ``budget``: runs stop there), then unsolved ones by score. With
    no time budget a trial's own training time stands in for it.
    """
    if solved:
        return float(seconds)
    budget = budget if budget > 0 else float(seconds)
    fraction = 0.0 if score is None or math.isnan(score) else score / threshold
    return budget * (2.0 - min(max(fraction, 0.0), 1.0))


def best_trial(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The trial with the smallest objective (errored trials have none), or None."""
    ranked = [row for row in summary["trials"] if row.get("objective") is not None]
    return min(ranked, key=lambda row: row["objective"]) if ranked else None


def best_solved_trial(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The solved trial with the shortest training time to solve, or None."""
    solved = [row for row in summary["trials"] if row["solved"]]
    return min(solved, key=lambda row: row["time_to_solve"]) if solved else None


# --- summary -----------------------------------------------------------------------------------
def summarise(
    plan: SweepPlan, trials: list[dict[str, Any]], wall_seconds: float, command: str
) -> dict[str, Any]:
    """Solve rate, median time and steps to solve (overall and per grid combination), the
    best trial with its ready-to-run command, and every trial's row."""
    groups = []
    if plan.search == "grid":
        for combination in grid_combinations(plan.grid):
            plain = {key: _plain(value) for key, value in combination.items()}
            members = [row for row in trials if row["overrides"] == plain]
            groups.append({"overrides": plain, **rates(members)})
    summary: dict[str, Any] = {
        "agent": plan.agent,
        "script": plan.script,
        "preset": "fast",
        "command": command,
        "search": plan.search,
        "scheduler": plan.scheduler,
        "samples": plan.samples if plan.search == "optuna" else None,
        "space": {key: d.text() for key, d in plan.space.items()},
        "grid": {key: [_plain(v) for v in values] for key, values in plan.grid.items()},
        "fixed": {key: _plain(value) for key, value in plan.fixed.items()},
        "seeds": sorted({row["seed"] for row in trials}),
        "budget_seconds": plan.budget,
        "solve_threshold": plan.solve_threshold,
        "objective": OBJECTIVE_TEXT,
        "sweep_wall_seconds": wall_seconds,
        "ray_version": _version("ray"),
        "optuna_version": _version("optuna") if plan.search == "optuna" else None,
        **rates(trials),
        "error_count": sum(row["status"] == "error" for row in trials),
        "groups": groups,
        "trials": trials,
    }
    best = best_trial(summary)
    summary["best"] = None
    if best is not None:
        overrides = {key: _typed(value) for key, value in best["overrides"].items()}
        summary["best"] = {
            "trial": best["trial"],
            "seed": best["seed"],
            "overrides": best["overrides"],
            "solved": best["solved"],
            "objective": best["objective"],
            "time_to_solve": best["time_to_solve"],
            "final_greedy_score": best["final_greedy_score"],
            "command": plan.trial_command(overrides, best["seed"]),
        }
    return summary


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def rates(rows: list[dict[str, Any]]) -> dict[str, Any]:
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


def _plain(value: Any) -> Any:
    """JSON-friendly value (tuples as lists)."""
    return list(value) if isinstance(value, tuple) else value


def _typed(value: Any) -> Any:
    """Back from JSON: lists were tuples."""
    return tuple(value) if isinstance(value, list) else value


def write_outputs(summary: dict[str, Any], out: Path) -> None:
    """summary.json (everything) and summary.csv (one row per trial)."""
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    with (out / "summary.csv").open("w", newline="") as stream:
        writer = csv.DictWriter(stream, SUMMARY_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in summary["trials"]:
            writer.writerow({**row, "overrides": json.dumps(row["overrides"])})


# --- the table ---------------------------------------------------------------------------------
def format_table(summary: dict[str, Any]) -> str:
    """The per-trial table and the headline rates, as printed at the end of a sweep."""
    header = (
        f"{'trial':>5} {'seed':>5}  {'solved':<7}{'time s':>8} {'steps':>10} {'greedy':>8} "
        f"{'objective':>10}  {'stop':<14} settings"
    )
    lines = [header, "-" * len(header)]
    for row in summary["trials"]:
        outcome = {"error": "ERROR", "pruned": "pruned", "stopped": "stopped"}.get(row["status"])
        solved = outcome or ("yes" if row["solved"] else "no")
        lines.append(
            f"{row['trial']:>5} {row['seed']:>5}  {solved:<7}"
            f"{_fmt(row['time_to_solve'], '.1f'):>8} {_fmt(row['steps_to_solve'], ','):>10} "
            f"{_fmt(row['final_greedy_score'], '.1f'):>8} {_fmt(row['objective'], '.1f'):>10}"
            f"  {row['stop_reason'] or '-':<14} {describe(_short(row['overrides']))}"
        )
        if row["status"] == "error":
            lines.append(f"{'':>6}error: {row['error']}")
    if len(summary["groups"]) > 1:
        lines.append("")
        for group in summary["groups"]:
            lines.append(f"{describe(group['overrides'])}: {rate_text(group)}")
    lines += ["", f"all trials: {rate_text(summary)}"]
    if summary["error_count"]:
        lines.append(f"{summary['error_count']} trial(s) failed: see the error lines above")
    lines.append(f"sweep wall time {summary['sweep_wall_seconds']:.1f} s")
    return "\n".join(lines)


def _short(overrides: dict[str, Any]) -> dict[str, Any]:
    """Sampled floats to 3 significant digits, so a search's table stays readable."""
    return {k: float(f"{v:.3g}") if isinstance(v, float) else v for k, v in overrides.items()}


def best_lines(summary: dict[str, Any]) -> list[str]:
    """The closing ``best:`` line and the best trial's command (ready to run)."""
    best = summary["best"]
    if best is None:
        return ["best: none (every trial failed)"]
    outcome = (
        f"solved in {best['time_to_solve']:.1f} s"
        if best["solved"]
        else f"not solved (greedy {_fmt(best['final_greedy_score'], '.1f')})"
    )
    settings = describe(best["overrides"]) if best["overrides"] else "the fast preset"
    return [
        f"best: trial {best['trial']} (seed {best['seed']}) {outcome}, "
        f"objective {best['objective']:.1f}, with {settings}",
        best["command"],
    ]


def rate_text(counts: dict[str, Any]) -> str:
    median = counts["median_time_to_solve"]
    steps = counts["median_steps_to_solve"]
    text = (
        f"solve rate {counts['solved_count']}/{counts['trial_count']} "
        f"({100 * counts['solve_rate']:.0f}%)"
    )
    if median is not None:
        text += f", median time to solve {median:.1f} s ({steps:,.0f} env steps)"
    return text


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


# --- learning curves -----------------------------------------------------------------------------
def progress_curve(
    row: dict[str, Any], out: Path, reported: tuple[np.ndarray, np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray] | None:
    """(env steps, running reward) of one trial: from its progress.csv when the run folder is
    on this machine, else what it reported to Tune (``reported``; a multi-node cluster keeps
    run folders on the nodes that ran them)."""
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
    return reported


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


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(
    summary: dict[str, Any],
    curves: list[tuple[np.ndarray, np.ndarray] | None],
    path: Path,
) -> Path:
    """Grid sweeps: mean +/- std running reward across seeds vs env steps, one band per grid
    combination. Searches: one line per trial (each has its own settings)."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=FIGURE_SIZE)
    if summary["search"] == "grid":
        groups: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        for row, curve in zip(summary["trials"], curves, strict=True):
            if curve is not None and len(curve[0]):
                label = describe(row["overrides"]) if row["overrides"] else "fast preset"
                groups.setdefault(label, []).append(curve)
        for label, members in groups.items():
            axis, values = interpolate_curves(members)
            mean, std = values.mean(axis=0), values.std(axis=0)
            (line,) = axes.plot(axis, mean, lw=1.8, label=f"{label} ({len(members)} seeds)")
            axes.fill_between(axis, mean - std, mean + std, color=line.get_color(), alpha=0.2)
        ylabel = "running reward (mean +/- std)"
    else:
        for row, curve in zip(summary["trials"], curves, strict=True):
            if curve is not None and len(curve[0]):
                kind = _outcome(row)
                axes.plot(*curve, lw=1.0, alpha=0.7, color=STATUS_COLOURS[kind])
        for kind, colour in STATUS_COLOURS.items():
            axes.plot([], [], color=colour, label=kind)
        ylabel = "running reward"
    threshold = summary["solve_threshold"]
    axes.axhline(threshold, color="grey", ls="--", lw=1, label=f"solve threshold ({threshold:g})")
    axes.set(
        xlabel="environment steps",
        ylabel=ylabel,
        title=f"{summary['agent']} ({summary['script']}): running reward "
        "(stopped runs hold their last value)",
    )
    axes.legend(loc="lower right", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=FIGURE_DPI)
    plt.close(figure)
    return path


def _outcome(row: dict[str, Any]) -> str:
    if row["status"] in STOPPED:
        return "pruned"
    return "solved" if row["solved"] else "unsolved"


def plot_settings(summary: dict[str, Any], path: Path) -> Path | None:
    """One panel per varied setting: each trial's objective against its value (log axis for
    loguniform settings), coloured by outcome; None when no setting varies."""
    keys = list(summary["space"]) or [k for k, v in summary["grid"].items() if len(v) > 1]
    rows = [row for row in summary["trials"] if row["objective"] is not None]
    if not keys or not rows:
        return None
    plt = _pyplot()
    from matplotlib.ticker import NullFormatter

    width, height = SETTING_PANEL_SIZE
    columns = min(len(keys), SETTING_COLUMNS)
    rows_of_panels = -(-len(keys) // columns)
    figure, panels = plt.subplots(
        rows_of_panels,
        columns,
        figsize=(width * columns, height * rows_of_panels),
        squeeze=False,
        sharey=True,
    )
    flat = list(panels.flat)
    for axes in flat[len(keys) :]:
        axes.set_visible(False)
    for axes, key in zip(flat, keys, strict=False):
        values = [row["overrides"][key] for row in rows]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if numeric:
            xs = [float(v) for v in values]
        else:
            labels = sorted({json.dumps(v) for v in values})
            xs = [labels.index(json.dumps(v)) for v in values]
            axes.set_xticks(range(len(labels)), [label.strip('"') for label in labels])
        for x, row in zip(xs, rows, strict=True):
            axes.scatter(x, row["objective"], color=STATUS_COLOURS[_outcome(row)], s=24)
        if summary["space"].get(key, "").startswith("loguniform"):
            axes.set_xscale("log")
            axes.xaxis.set_minor_formatter(NullFormatter())
        axes.set_xlabel(key)
        if summary["budget_seconds"] > 0:
            axes.axhline(summary["budget_seconds"], color="grey", ls="--", lw=1)
    for row_of_panels in panels:
        row_of_panels[0].set_ylabel("objective (s)")
    for kind, colour in STATUS_COLOURS.items():
        flat[0].scatter([], [], color=colour, label=kind)
    flat[0].legend(fontsize="small", title="above the line: unsolved", title_fontsize="small")
    figure.suptitle(f"{summary['agent']} ({summary['script']}): each setting vs the objective")
    figure.tight_layout()
    figure.savefig(path, dpi=FIGURE_DPI)
    plt.close(figure)
    return path
