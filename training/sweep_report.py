"""A sweep's results without Ray: the objective, a row per trial from its Tune Result,
summary.json, the table (pandas) and the learning curves, drawn once at the end."""

from __future__ import annotations

import json
import math
import re
import shlex
import statistics
from argparse import Namespace
from pathlib import Path
from typing import Any

from training.settings import as_flag

PRESET = "fast"  # every trial starts from its script's fast preset
#: What summary.json keeps of a trial's last report to Tune.
KEPT = ("solved", "stop_reason", "wall_time", "env_steps", "episodes", "greedy_score", "objective")
OBJECTIVE = "seconds to solve; unsolved: budget x (2 - greedy score / solve threshold)"
ANSI_CODES = re.compile(r"\x1b\[[0-9;]*m")


def describe(overrides: dict[str, Any]) -> str:
    """``key=value`` as a user types them (tuples as 64x64; sampled floats to 4 digits)."""

    def typed(value: Any) -> str:
        if isinstance(value, list | tuple):
            return "x".join(map(str, value))
        return format(value, ".4g") if isinstance(value, float) else str(value)

    return " ".join(f"{key}={typed(value)}" for key, value in overrides.items())


def objective(solved: bool, seconds: float, score: float, budget: float, threshold: float) -> float:
    """Seconds to solve; an unsolved trial counts ``budget * (2 - score / threshold)`` with the
    score clipped to [0, threshold] (NaN: 0), so it ranks after every solved trial, then by
    score. With no time budget the trial's own training time stands in for it."""
    if solved:
        return float(seconds)
    fraction = 0.0 if math.isnan(score) else min(max(score / threshold, 0.0), 1.0)
    return (budget if budget > 0 else float(seconds)) * (2.0 - fraction)


def error_message(error: BaseException) -> str:
    """A failed trial's own exception as ``Type: message``, without Ray's coloured header."""
    own = error.cause if isinstance(getattr(error, "cause", None), BaseException) else error
    lines = ANSI_CODES.sub("", str(own)).strip().splitlines()
    return f"{type(own).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def trial_row(result: Any, values: dict[str, Any], plan: Namespace, stop: Any) -> dict:
    """A trial from its Tune Result: its last report, and how it ended. One that neither
    finished nor failed was stopped by a signal (``stop``) or else pruned by the scheduler."""
    metrics = {k: v for k, v in (result.metrics or {}).items() if v == v}  # NaN: not measured
    status = "finished" if metrics.get("finished") else "stopped" if stop else "pruned"
    row = {"overrides": {key: values[key] for key in plan.keys}, "seed": result.config["seed"]}
    row |= {"status": "error" if result.error else status, **{k: metrics.get(k) for k in KEPT}}
    row["solved"] = row["status"] == "finished" and bool(row["solved"])
    error = result.error and error_message(result.error)
    return {**row, "run_dir": metrics.get("run_dir"), "error": error}


def summarise(plan: Namespace, rows: list[dict], out: Path, **run: Any) -> dict:
    """The plan, the rates, every trial, the best trial with its ready-to-run command, and
    the command that ships the fastest solved trial."""
    ranked = [row for row in rows if row["objective"] is not None and not row["error"]]
    best = min(ranked, key=lambda row: row["objective"], default=None)
    if best is not None:  # the script's own command line, with the trial's settings
        words = ["python", "-m", f"training.{plan.script}", "--preset", PRESET, "--seed"]
        words += [str(best["seed"]), "--agent", plan.agent]
        for name, value in {**plan.fixed, **best["overrides"]}.items():
            words += as_flag(name, tuple(value) if isinstance(value, list) else value).split()
        best = {**best, "command": shlex.join(words)}
    solved = [row for row in rows if row["solved"]]
    times, steps = [row["wall_time"] for row in solved], [row["env_steps"] for row in solved]
    fastest = min(solved, key=lambda row: row["wall_time"], default=None)
    ship = fastest and f"python -m tools.promote {shlex.quote(str(out / fastest['run_dir']))}"
    return {
        **{"agent": plan.agent, "script": plan.script, "preset": PRESET, "search": plan.search},
        **{"scheduler": plan.scheduler, "samples": plan.samples, "space": plan.space},
        **{"grid": plan.grid, "fixed": plan.fixed, "seeds": sorted({r["seed"] for r in rows})},
        **{"budget_seconds": plan.budget, "solve_threshold": plan.threshold},
        **{"objective": OBJECTIVE, **run, "trial_count": len(rows), "solved_count": len(solved)},
        "solve_rate": len(solved) / max(len(rows), 1),
        "median_time_to_solve": statistics.median(times) if solved else None,
        "median_steps_to_solve": statistics.median(steps) if solved else None,
        "error_count": sum(row["status"] == "error" for row in rows),
        **{"trials": rows, "best": best, "promote": ship and f"{ship} --overwrite"},
        "tensorboard": f"tensorboard --logdir {out}/runs",
    }


def publish(plan: Namespace, pairs: list, out: Path, stop: str | None, **run: Any):
    """Tune's (Result, decoded config) pairs as summary.json, the learning curves and the
    table, ending with the best trial and its ready-to-run command."""
    rows = [{"trial": n, **trial_row(*pair, plan, stop)} for n, pair in enumerate(pairs)]
    for row in rows:  # run folders relative to out: it may move
        if row["run_dir"] and Path(row["run_dir"]).is_relative_to(out.resolve()):
            row["run_dir"] = str(Path(row["run_dir"]).relative_to(out.resolve()))
    summary = summarise(plan, rows, out, stopped_by=stop, **run)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    draw_curves(summary, [result.metrics_dataframe for result, _ in pairs], out)
    print(f"\n{table(summary)}\nsummary: {out / 'summary.json'}, {out / 'learning_curves.png'}")
    print(f"TensorBoard: {summary['tensorboard']}")
    if stop:
        print(f"sweep: stopped by {stop}; stopped trials keep their run folders")
    if summary["promote"]:
        print(f"ship the fastest solved trial: {summary['promote']}")
    if (best := summary["best"]) is None:
        print("best: none (no trial reported a result)")
        return summary
    outcome = f"solved in {best['wall_time']:.1f} s" if best["solved"] else "not solved"
    settings = describe(best["overrides"]) or "the fast preset"
    print(f"best: trial {best['trial']} (seed {best['seed']}) {outcome}, ", end="")
    print(f"objective {best['objective']:.1f}, with {settings}\n{best['command']}", flush=True)
    return summary


def table(summary: dict[str, Any]) -> str:
    """One row per trial (pandas), each trial's error, the rates."""
    import pandas as pd

    frame = pd.DataFrame(summary["trials"], columns=["trial", "seed", "status", *KEPT])
    frame["env_steps"] = frame["env_steps"].astype("Int64")
    frame["settings"] = [describe(row["overrides"]) for row in summary["trials"]]
    lines = [frame.to_string(index=False, na_rep="-", float_format="{:.1f}".format), ""]
    lines += [f"trial {r['trial']} error: {r['error']}" for r in summary["trials"] if r["error"]]
    solved, trials, rate = summary["solved_count"], summary["trial_count"], summary["solve_rate"]
    lines.append(f"all trials: solve rate {solved}/{trials} ({100 * rate:.0f}%)")
    if (median := summary["median_time_to_solve"]) is not None:
        steps = summary["median_steps_to_solve"]
        lines[-1] += f", median time to solve {median:.1f} s ({steps:,.0f} env steps)"
    return "\n".join([*lines, f"sweep wall time {summary['sweep_wall_seconds']:.1f} s"])


def draw_curves(summary: dict[str, Any], frames: list[Any], out: Path) -> None:
    """learning_curves.png from what the trials reported to Tune: running reward against env
    steps, a line per trial, a colour per grid setting (a search: one colour)."""
    from matplotlib.figure import Figure

    axes, colours = (figure := Figure(figsize=(8.0, 4.5), layout="tight")).subplots(), {}
    for row, frame in zip(summary["trials"], frames, strict=True):
        if frame is not None and "env_steps" in frame:
            label = describe(row["overrides"]) if summary["search"] == "grid" else "a trial"
            new = (label := label or "fast preset") not in colours
            colour = colours.setdefault(label, f"C{len(colours) % 10}")
            style = {"color": colour, "lw": 1.0, "alpha": 0.8, "label": label if new else None}
            axes.plot(frame["env_steps"], frame["running_reward"], **style)
    threshold = summary["solve_threshold"]
    axes.axhline(threshold, color="grey", ls="--", lw=1, label=f"solve threshold ({threshold:g})")
    title = f"{summary['agent']} ({summary['script']}): running reward of each trial"
    axes.set(xlabel="environment steps", ylabel="running reward", title=title)
    axes.legend(loc="lower right", fontsize="small")
    figure.savefig(out / "learning_curves.png", dpi=100)
