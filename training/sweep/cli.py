"""The sweep's command line: parse and check everything, run the trials, report, promote.

Exit status: 0 when every trial ran (solved or not), 1 when a trial failed, Ray could not be
reached or promotion did not happen, 2 for a mistake on the command line (one usage line),
130 after Ctrl-C and 143 after SIGTERM (the summary of what ran is written either way).
"""

from __future__ import annotations

import argparse
import importlib.util
import shlex
import signal
import sys
import time
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training.sweep import cluster, driver, report
from training.sweep.space import (
    DEFAULT_SCRIPTS,
    FIRST_SEED,
    TUPLE_SEPARATOR,
    SweepError,
    SweepPlan,
    check_script_trains,
    check_trials,
    default_space_items,
    parse_grid,
    parse_space,
    settings_class_for,
    trains_any_agent,
)

PROG = "python -m training.sweep"
SEARCHES = ("grid", "optuna")
SCHEDULERS = ("none", "asha", "median")
EXIT_FAILED = 1
EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a mistake costs one line (what is wrong, and where help is), not the
    whole usage block."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description="Train a script's fast preset over many seeds, a grid of settings or an "
        "Optuna search on Ray Tune; report solve rate, time to solve and the best settings.",
    )
    parser.add_argument("--agent", choices=tuple(DEFAULT_SCRIPTS), required=True)
    parser.add_argument(
        "--script",
        help="the training script whose fast preset the trials run (python -m training."
        f"SCRIPT) [the agent's fastest: {DEFAULT_SCRIPTS}]",
    )
    parser.add_argument("--seeds", type=int, default=1, help="seeds per grid setting [1]")
    parser.add_argument(
        "--first-seed",
        type=int,
        default=FIRST_SEED,
        help=f"seeds start here; a search trains this seed only [{FIRST_SEED}]",
    )
    parser.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a settings field and its values (repeatable: the grid is their product; tuples "
        f"as 64{TUPLE_SEPARATOR}64); with --search optuna one value each, fixed for all trials",
    )
    parser.add_argument(
        "--search",
        choices=SEARCHES,
        default="grid",
        help="grid: every grid combination x every seed; optuna: --samples settings sampled "
        "from --space by Optuna (TPE), minimising the objective [grid]",
    )
    parser.add_argument("--samples", type=int, help="with --search optuna: how many trials")
    parser.add_argument(
        "--space",
        action="append",
        default=[],
        metavar="KEY=DIST",
        help="with --search optuna: a setting and its distribution, loguniform:1e-4:1e-2, "
        "uniform:A:B, int:A:B (both included) or choice:A,B,C (repeatable) "
        "[the script's default space]",
    )
    parser.add_argument(
        "--scheduler",
        choices=SCHEDULERS,
        default="none",
        help="stop trials whose running reward lags the others' at the same training time: "
        "asha (asynchronous successive halving) or median [none]",
    )
    parser.add_argument(
        "--address",
        help="local (a private Ray here), auto, HOST:PORT or ray://HOST:PORT [a Ray already "
        "running on this machine, else a private one]",
    )
    parser.add_argument(
        "--cpus", type=int, help="CPUs for a private Ray, one trial each [this machine's count]"
    )
    parser.add_argument(
        "--max-seconds", type=float, help="training-time budget per trial [the preset's]"
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
    return parser


def parse_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, SweepPlan]:
    """The arguments and the checked plan; any mistake exits 2 with one usage line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        plan = make_plan(args)
    except SweepError as error:
        parser.error(str(error))
    return args, plan


def make_plan(args: argparse.Namespace) -> SweepPlan:
    """Check the flags together and build every trial's settings once (SweepError if not)."""
    if args.seeds < 1:
        raise SweepError("--seeds must be at least 1")
    if args.cpus is not None and args.address not in (None, "local"):
        raise SweepError("--cpus sizes a private Ray; a cluster given by --address has its own")
    if args.cpus is not None and args.cpus < driver.CPUS_PER_TRIAL:
        raise SweepError(f"--cpus must be at least {driver.CPUS_PER_TRIAL}")
    searching = args.search == "optuna"
    if searching and (args.samples is None or args.samples < 1):
        raise SweepError("--search optuna needs --samples N (N >= 1)")
    if not searching and (args.samples is not None or args.space):
        raise SweepError("--samples and --space need --search optuna")
    if searching and args.seeds != 1:
        raise SweepError(
            "--search optuna trains one seed per sample (--first-seed); compare seeds "
            "afterwards with a grid sweep of the best settings"
        )
    script = args.script or DEFAULT_SCRIPTS[args.agent]
    settings_class = settings_class_for(script)
    check_script_trains(settings_class, args.agent)
    grid = parse_grid(args.grid, settings_class)
    fixed: dict[str, Any] = {}
    if searching:
        for key, values in grid.items():
            if len(values) != 1:
                raise SweepError(
                    f"--grid {key}: with --search optuna give one value (fixed for every "
                    f"trial); search it with --space {key}=choice:..."
                )
            fixed[key] = values[0]
        grid = {}
    if trains_any_agent(settings_class):  # the script's presets are per agent: say which
        fixed["agent"] = args.agent
    if args.max_seconds is not None:
        fixed["max_seconds"] = args.max_seconds
    space = {}
    if searching:
        space = parse_space(args.space or default_space_items(settings_class), settings_class)
        if not space:
            raise SweepError(f"--search optuna: give --space (no default space for {script})")
        clash = set(space) & set(fixed)
        if clash:
            raise SweepError(f"--space {sorted(clash)[0]} is also fixed by --grid/--max-seconds")
    seeds = tuple(range(args.first_seed, args.first_seed + args.seeds))
    first = check_trials(settings_class, fixed, seeds, grid, space)
    if (searching or args.scheduler != "none") and first.max_seconds <= 0:
        raise SweepError(
            f"--search/--scheduler rank trials by training time: {script}'s fast preset has no "
            "time budget; pass --max-seconds"
        )
    return SweepPlan(
        agent=args.agent,
        script=script,
        seeds=seeds,
        fixed=fixed,
        grid=grid,
        space=space,
        search=args.search,
        samples=args.samples or 0,
        scheduler=args.scheduler,
        budget=first.max_seconds,
        solve_threshold=first.solve_threshold,
    )


def _fail(message: str, status: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def _missing_package(plan: SweepPlan) -> str | None:
    needed = ["ray"] + (["optuna"] if plan.search == "optuna" else [])
    for name in needed:
        if importlib.util.find_spec(name) is None:
            return f"{name} is not installed: pip install '.[sweep]' (the sweep extra)"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sweep, print the table and the best trial, write the outputs; promote with
    ``--promote``."""
    args, plan = parse_args(argv)
    words = list(sys.argv[1:] if argv is None else argv)
    command = shlex.join(["python", "-m", "training.sweep", *words])
    out = args.out or Path("runs") / f"sweep-{args.agent}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        (out / "runs").mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return _fail(
            f"--out {out}: cannot create the folder ({error.strerror or error}); "
            "choose a folder you can write to",
            EXIT_USAGE,
        )
    missing = _missing_package(plan)
    if missing:
        return _fail(missing, EXIT_FAILED)
    if plan.search == "optuna":
        what = f"{plan.samples} Optuna samples over {', '.join(plan.space)}"
    else:
        what = f"{len(plan.seeds)} seed(s)" + "".join(f" x {key}" for key in plan.grid)
    pruning = f", {plan.scheduler} pruning" if plan.scheduler != "none" else ""
    print(f"sweep: {plan.script} ({plan.agent}), {what}{pruning}; outputs in {out}", flush=True)
    try:
        run = driver.run_trials(plan, out.resolve(), args.address, args.cpus, command)
    except cluster.ClusterError as error:
        return _fail(str(error), EXIT_FAILED)
    summary = report.summarise(plan, run.rows, run.wall_seconds, command)
    summary["ran_on"] = run.where
    summary["stopped_by"] = signal.Signals(run.stopped_by).name if run.stopped_by else None
    summary["never_started"] = run.never_started
    summary["tensorboard"] = f"tensorboard --logdir {out / 'runs'}"
    report.write_outputs(summary, out)
    curves = [report.progress_curve(r, out, c) for r, c in zip(run.rows, run.curves, strict=True)]
    figures = [report.plot_curves(summary, curves, out / "learning_curves.png")]
    settings_figure = report.plot_settings(summary, out / "settings.png")
    figures += [settings_figure] if settings_figure else []
    print()
    print(report.format_table(summary))
    print(f"summary: {out / 'summary.json'}; figures: {', '.join(map(str, figures))}")
    print(f"TensorBoard: {summary['tensorboard']}")
    status = EXIT_FAILED if summary["error_count"] else 0
    if run.stopped_by is not None:
        print(
            f"sweep: stopped by {summary['stopped_by']}; the stopped trials keep their run "
            f"folders up to their last checkpoint; {run.never_started} trial(s) never started"
        )
        status = 128 + run.stopped_by  # the shell's convention: 130 for Ctrl-C, 143 SIGTERM
    elif args.promote:
        status = max(status, promote_best(summary, out, args.weights_dir, args.overwrite))
    print("\n".join(report.best_lines(summary)))
    return status


def promote_best(
    summary: dict[str, Any], out: Path, weights_dir: Path | None, overwrite: bool
) -> int:
    """Ship the fastest solved trial through tools.promote (which writes the record and
    refuses to replace weights unless ``overwrite``); 1 when there is nothing to ship."""
    from tools import promote

    best = report.best_solved_trial(summary)
    if best is None:
        print("--promote: no trial solved; weights left unchanged", file=sys.stderr)
        return EXIT_FAILED
    weights_dir = weights_dir or promote.DEFAULT_WEIGHTS_DIR
    try:
        record = promote.promote_run(out.resolve() / best["run_dir"], weights_dir, overwrite)
    except promote.PromotionError as error:
        print(f"--promote: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"promoted trial {best['trial']} (seed {best['seed']}) to {weights_dir}")
    summary["promoted"] = {"trial": best["trial"], "record": record}
    report.write_outputs(summary, out)
    return 0
