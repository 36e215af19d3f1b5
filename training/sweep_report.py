"""A sweep's plan and results without Ray: the objective, summary.json, the table, the figures.

Tune's Results become one plain row per trial here, so a summary can be rebuilt or tested
without a cluster; the figures are drawn once, at the end (matplotlib loads only then).
"""

from __future__ import annotations

import json
import math
import re
import shlex
import statistics
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.settings import as_flag

PRESET = "fast"  # every trial starts from its script's fast preset
OBJECTIVE_TEXT = (
    "seconds of training to solve (smaller is better); a trial that did not solve counts "
    "budget x (2 - score / solve threshold), so it ranks after every solved trial and by its "
    "latest greedy score (its running reward when it was never evaluated)"
)
COLOURS = {"solved": "tab:green", "unsolved": "tab:orange", "pruned": "tab:grey"}
ANSI_CODES = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Plan:
    """Everything a sweep runs, checked before Ray starts."""

    agent: str
    script: str
    seeds: tuple[int, ...]
    fixed: dict[str, Any]  # settings every trial shares (single-valued --grid, --max-seconds)
    grid: dict[str, list[Any]]  # varied settings, crossed with the seeds
    space: dict[str, str]  # --search optuna: each setting's distribution, as --space spells it
    search: str  # "grid" or "optuna"
    samples: int
    scheduler: str  # "none", "asha" or "median"
    budget: float = 0.0  # each trial's training seconds (ranks unsolved trials)
    threshold: float = 0.0  # the solve threshold

    @property
    def keys(self) -> list[str]:
        """The settings that differ between trials."""
        return [*self.grid, *self.space]

    def trial_command(self, overrides: dict[str, Any], seed: int) -> str:
        """The command that trains one trial again, outside the sweep."""
        words = ["python", "-m", f"training.{self.script}", "--preset", PRESET]
        words += ["--seed", str(seed), "--agent", self.agent]
        for name, value in {**self.fixed, **overrides}.items():
            words += as_flag(name, tuple(value) if isinstance(value, list) else value).split(" ")
        return shlex.join(words)


def plain(value: Any) -> Any:
    """A JSON-friendly value (tuples as lists)."""
    return list(value) if isinstance(value, tuple) else value


def describe(overrides: dict[str, Any]) -> str:
    """``key=value`` pairs, as a sweep prints and a user types them (tuples as 64x64)."""
    return " ".join(
        f"{k}={'x'.join(map(str, v)) if isinstance(v, list | tuple) else v}"
        for k, v in overrides.items()
    )


def short(overrides: dict[str, Any]) -> dict[str, Any]:
    """Sampled floats to 3 significant digits, so a search's lines stay readable."""
    return {k: float(f"{v:.3g}") if isinstance(v, float) else v for k, v in overrides.items()}


def grid_position(plan: Plan, result: Any, values: dict[str, Any]) -> tuple:
    """Where a trial sits in the grid: its values in the order given, then its seed."""
    place = [list(map(plain, plan.grid[k])).index(plain(values[k])) for k in plan.grid]
    return (*place, result.config["seed"])


def decode(script: Any, config: dict[str, Any]) -> dict[str, Any]:
    """A trial's config as the settings take it: Python scalars, tuples (from lists or the
    64x64 text Optuna's choices carry), no seed."""
    kinds, values = typing.get_type_hints(script.settings_class), {}
    for key, value in ((k, v) for k, v in config.items() if k != "seed"):
        value = value.item() if hasattr(value, "item") else value
        if typing.get_origin(kinds[key]) is tuple and type(value) is not tuple:
            value = tuple(map(int, value.split("x")) if isinstance(value, str) else value)
        values[key] = value
    return values


def objective(
    solved: bool, seconds: float, score: float | None, budget: float, threshold: float
) -> float:
    """Seconds to solve; an unsolved trial counts ``budget * (2 - score / threshold)`` with the
    score clipped to [0, threshold]: after every solved trial, then by score. With no time
    budget the trial's own training time stands in for it."""
    if solved:
        return float(seconds)
    budget = budget if budget > 0 else float(seconds)
    fraction = 0.0 if score is None or math.isnan(score) else score / threshold
    return budget * (2.0 - min(max(fraction, 0.0), 1.0))


# --- rows from Tune's results ------------------------------------------------------------------
def error_message(error: BaseException) -> str:
    """A failed trial's own exception as ``Type: message``, without Ray's coloured header."""
    own = getattr(error, "cause", None)
    if not isinstance(own, BaseException):  # Ray's text: its last line names the exception
        lines = [line.strip() for line in ANSI_CODES.sub("", str(error)).splitlines()]
        return ([line for line in lines if line] or [type(error).__name__])[-1]
    text = ANSI_CODES.sub("", str(own)).strip()
    return f"{type(own).__name__}: {text}" if text else type(own).__name__


def trial_row(index: int, result: Any, values: dict, plan: Plan, out: Path, stopped: str | None):
    """One summary row from a Tune Result. A trial that neither finished nor failed was
    pruned by the scheduler, or stopped with the whole sweep by a signal."""
    metrics = result.metrics or {}
    status = "pruned" if plan.scheduler != "none" and not stopped else "stopped"
    status = "finished" if metrics.get("finished") else status
    status = "error" if result.error is not None else status
    solved = status == "finished" and bool(metrics["solved"])
    run_dir = metrics.get("run_dir")
    if run_dir and Path(run_dir).is_relative_to(out):  # summaries stay valid when out moves
        run_dir = str(Path(run_dir).relative_to(out))
    reasons = {"finished": metrics.get("stop_reason"), "stopped": stopped or "stopped", "error": 0}
    score, objective = metrics.get("greedy_score"), metrics.get("objective")  # NaN: none
    return {
        "trial": index,
        "overrides": {key: plain(values[key]) for key in plan.keys},
        "seed": int(result.config["seed"]),
        "status": status,
        "solved": solved,
        "stop_reason": reasons.get(status, f"pruned ({plan.scheduler})") or None,
        "time_to_solve": metrics["wall_time"] if solved else None,
        "steps_to_solve": int(metrics["env_steps"]) if solved else None,
        "episodes": int(metrics["episodes"]) if "episodes" in metrics else None,
        "train_seconds": metrics.get("wall_time"),
        "final_greedy_score": score if status == "finished" and score == score else None,
        "objective": objective if status != "error" and objective == objective else None,
        "run_dir": run_dir,
        "error": None if result.error is None else error_message(result.error),
    }


def reported_curve(result: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """(env steps, running reward) as the trial reported them to Tune."""
    frame = result.metrics_dataframe
    if frame is None or frame.empty or "env_steps" not in frame:
        return None
    return frame["env_steps"].to_numpy(float), frame["running_reward"].to_numpy(float)


def trial_line(values: dict, seed: int, metrics: dict | None, plan: Plan) -> str:
    """A finished trial in one line, as the sweep prints it."""
    metrics = metrics or {}
    outcome = f"pruned ({plan.scheduler})" if plan.scheduler != "none" else "stopped"
    if metrics.get("finished"):
        outcome = f"{metrics['stop_reason']}, greedy {_fmt(metrics['greedy_score'], '.1f')}"
    if metrics.get("solved"):
        outcome = f"solved in {metrics['wall_time']:.1f} s, {metrics['env_steps']:,} env steps"
    return f"{describe(short(values))} seed={seed}: {outcome}".lstrip()


# --- the summary ---------------------------------------------------------------------------------
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


def best_trial(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The trial with the smallest objective (failed trials have none), or None."""
    ranked = [row for row in summary["trials"] if row.get("objective") is not None]
    return min(ranked, key=lambda row: row["objective"]) if ranked else None


def best_solved_trial(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The solved trial with the shortest training time to solve, or None."""
    solved = [row for row in summary["trials"] if row["solved"]]
    return min(solved, key=lambda row: row["time_to_solve"]) if solved else None


def summarise(plan: Plan, trials: list[dict[str, Any]], wall: float, command: str) -> dict:
    """Solve rate and median time to solve (overall and per grid setting), the best trial
    with its ready-to-run command, and every trial's row."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in trials if plan.search == "grid" else []:
        groups.setdefault(json.dumps(row["overrides"]), []).append(row)
    summary: dict[str, Any] = {
        **{"agent": plan.agent, "script": plan.script, "preset": PRESET, "command": command},
        **{"search": plan.search, "scheduler": plan.scheduler, "samples": plan.samples or None},
        "space": plan.space,
        "grid": {key: [plain(v) for v in values] for key, values in plan.grid.items()},
        "fixed": {key: plain(value) for key, value in plan.fixed.items()},
        "seeds": sorted({row["seed"] for row in trials}),
        **{"budget_seconds": plan.budget, "solve_threshold": plan.threshold},
        **{"objective": OBJECTIVE_TEXT, "sweep_wall_seconds": wall},
        **rates(trials),
        "error_count": sum(row["status"] == "error" for row in trials),
        "groups": [{"overrides": json.loads(k), **rates(rows)} for k, rows in groups.items()],
        "trials": trials,
        "best": None,
    }
    if (best := best_trial(summary)) is not None:
        keys = ("trial", "seed", "overrides", "solved", "objective", "time_to_solve")
        summary["best"] = {key: best[key] for key in keys}
        summary["best"]["final_greedy_score"] = best["final_greedy_score"]
        summary["best"]["command"] = plan.trial_command(best["overrides"], best["seed"])
    return summary


def publish(plan: Plan, pairs: list, out: Path, command: str, wall: float, **run: Any) -> dict:
    """The summary of Tune's (Result, config) pairs: summary.json, the figures (drawn once,
    for the whole sweep) and the table."""
    rows = [
        trial_row(n, *pair, plan, out.resolve(), run["stopped_by"]) for n, pair in enumerate(pairs)
    ]
    summary = summarise(plan, rows, wall, command)
    summary.update(run, tensorboard=f"tensorboard --logdir {out}/runs")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    curves = [reported_curve(result) for result, _ in pairs]
    figures = ", ".join(map(str, draw_figures(summary, curves, out)))
    print(f"\n{format_table(summary)}\nsummary: {out / 'summary.json'}; figures: {figures}")
    print(f"TensorBoard: {summary['tensorboard']}", flush=True)
    return summary


def close(summary: dict, status: int, promote: tuple | None = None) -> int:
    """The sweep's last lines (after promoting, with --promote: out, weights dir, overwrite) and
    its exit status."""
    if status > 128:
        print(f"sweep: stopped by {summary['stopped_by']}; stopped trials keep their run folders")
    elif promote is not None:
        status = max(status, promote_best(summary, *promote))
    print("\n".join(best_lines(summary)))
    return status


def promote_best(summary: dict, out: Path, weights_dir: Path | None, overwrite: bool) -> int:
    """Ship the fastest solved trial through tools.promote (which refuses to replace weights
    unless ``overwrite``); 1 when there is nothing to ship."""
    from tools import promote

    if (best := best_solved_trial(summary)) is None:
        print("--promote: no trial solved; weights left unchanged", file=sys.stderr)
        return 1
    weights_dir = weights_dir or promote.DEFAULT_WEIGHTS_DIR
    try:
        record = promote.promote_run(out.resolve() / best["run_dir"], weights_dir, overwrite)
    except promote.PromotionError as error:
        print(f"--promote: {error}", file=sys.stderr)
        return 1
    print(f"promoted trial {best['trial']} (seed {best['seed']}) to {weights_dir}")
    summary["promoted"] = {"trial": best["trial"], "record": record}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


# --- the table -----------------------------------------------------------------------------------
def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None or value != value else format(value, spec)  # None, NaN: -


def rate_text(counts: dict[str, Any]) -> str:
    solved, trials, rate = counts["solved_count"], counts["trial_count"], counts["solve_rate"]
    text = f"solve rate {solved}/{trials} ({100 * rate:.0f}%)"
    if (median := counts["median_time_to_solve"]) is not None:
        steps = counts["median_steps_to_solve"]
        text += f", median time to solve {median:.1f} s ({steps:,.0f} env steps)"
    return text


def format_table(summary: dict[str, Any]) -> str:
    """One row per trial, then the rates, as printed at the end of a sweep."""
    header = (
        f"{'trial':>5} {'seed':>5}  {'solved':<7}{'time s':>8} {'steps':>10} {'greedy':>8} "
        f"{'objective':>10}  {'stop':<14} settings"
    )
    lines = [header, "-" * len(header)]
    for row in summary["trials"]:
        outcome = {"error": "ERROR", "pruned": "pruned", "stopped": "stopped"}.get(row["status"])
        outcome = outcome or ("yes" if row["solved"] else "no")
        lines.append(
            f"{row['trial']:>5} {row['seed']:>5}  {outcome:<7}"
            f"{_fmt(row['time_to_solve'], '.1f'):>8} {_fmt(row['steps_to_solve'], ','):>10} "
            f"{_fmt(row['final_greedy_score'], '.1f'):>8} {_fmt(row['objective'], '.1f'):>10}"
            f"  {row['stop_reason'] or '-':<14} {describe(short(row['overrides'])) or '-'}"
        )
        lines += [f"{'':>6}error: {row['error']}"] if row["status"] == "error" else []
    if len(summary["groups"]) > 1:
        lines += ["", *(f"{describe(g['overrides'])}: {rate_text(g)}" for g in summary["groups"])]
    lines += ["", f"all trials: {rate_text(summary)}"]
    if summary["error_count"]:
        lines.append(f"{summary['error_count']} trial(s) failed: see the error lines above")
    return "\n".join([*lines, f"sweep wall time {summary['sweep_wall_seconds']:.1f} s"])


def best_lines(summary: dict[str, Any]) -> list[str]:
    """The closing ``best:`` line and the best trial's ready-to-run command."""
    if (best := summary["best"]) is None:
        return ["best: none (no trial reported a result)"]
    outcome = f"not solved (greedy {_fmt(best['final_greedy_score'], '.1f')})"
    outcome = f"solved in {best['time_to_solve']:.1f} s" if best["solved"] else outcome
    settings = describe(best["overrides"]) or "the fast preset"
    return [
        f"best: trial {best['trial']} (seed {best['seed']}) {outcome}, "
        f"objective {best['objective']:.1f}, with {settings}",
        best["command"],
    ]


# --- figures -------------------------------------------------------------------------------------
def interpolate_curves(
    curves: list[tuple[np.ndarray, np.ndarray]], points: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """Curves resampled from 0 to the longest run's last x; a run that stopped early holds
    its final value afterwards, so every point averages all seeds."""
    axis = np.linspace(0.0, max(float(x[-1]) for x, _ in curves), points)
    return axis, np.stack([np.interp(axis, x, y, left=y[0], right=y[-1]) for x, y in curves])


def _outcome(row: dict[str, Any]) -> str:
    if row["status"] in ("pruned", "stopped"):
        return "pruned"
    return "solved" if row["solved"] else "unsolved"


def draw_figures(summary: dict[str, Any], curves: list[Any], out: Path) -> list[Path]:
    """learning_curves.png (grid: mean +/- std over seeds per setting; search: one line per
    trial) and, when settings vary, settings.png (each setting against the objective)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8.0, 4.5))
    pairs = [(r, c) for r, c in zip(summary["trials"], curves, strict=True) if c and len(c[0])]
    groups: dict[str, list[Any]] = {}
    for row, curve in pairs:
        if summary["search"] != "grid":
            axes.plot(*curve, lw=1.0, alpha=0.7, color=COLOURS[_outcome(row)])
        groups.setdefault(describe(row["overrides"]) or "fast preset", []).append(curve)
    for label, members in groups.items() if summary["search"] == "grid" else ():
        axis, values = interpolate_curves(members)
        mean, std = values.mean(axis=0), values.std(axis=0)
        (line,) = axes.plot(axis, mean, lw=1.8, label=f"{label} ({len(members)} seeds)")
        axes.fill_between(axis, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    for kind, colour in COLOURS.items() if summary["search"] != "grid" else ():
        axes.plot([], [], color=colour, label=kind)
    threshold = summary["solve_threshold"]
    axes.axhline(threshold, color="grey", ls="--", lw=1, label=f"solve threshold ({threshold:g})")
    title = f"{summary['agent']} ({summary['script']}): running reward (stopped runs hold theirs)"
    axes.set(xlabel="environment steps", ylabel="running reward", title=title)
    axes.legend(loc="lower right", fontsize="small")
    figure.tight_layout()
    figure.savefig(out / "learning_curves.png", dpi=100)
    plt.close(figure)
    keys = list(summary["space"]) or [k for k, v in summary["grid"].items() if len(v) > 1]
    rows = [row for row in summary["trials"] if row["objective"] is not None]
    if not (keys and rows):
        return [out / "learning_curves.png"]
    figure, panels = plt.subplots(1, len(keys), figsize=(4.0 * len(keys), 3.4), squeeze=False)
    for axes, key in zip(panels[0], keys, strict=True):
        values = [json.dumps(row["overrides"][key]) for row in rows]
        numeric = all(isinstance(row["overrides"][key], int | float) for row in rows)
        labels = sorted(set(values))
        for value, row in zip(values, rows, strict=True):
            x = float(value) if numeric else labels.index(value)
            axes.scatter(x, row["objective"], color=COLOURS[_outcome(row)], s=24)
        if not numeric:
            axes.set_xticks(range(len(labels)), [label.strip('"') for label in labels])
        axes.set_xscale("log" if summary["space"].get(key, "").startswith("log") else "linear")
        axes.set(xlabel=key, ylabel="objective (s; above the dashed budget: unsolved)")
        axes.axhline(summary["budget_seconds"], color="grey", ls="--", lw=1)
    for kind, colour in COLOURS.items():
        panels[0][0].scatter([], [], color=colour, label=kind)
    panels[0][0].legend(fontsize="small")
    figure.suptitle(f"{summary['agent']} ({summary['script']}): each setting vs the objective")
    figure.tight_layout()
    figure.savefig(out / "settings.png", dpi=100)
    plt.close(figure)
    return [out / "learning_curves.png", out / "settings.png"]
