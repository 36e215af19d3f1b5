"""Sweeps on Ray Tune: many seeds, a grid of settings or an Optuna search, here or on a cluster.

A trial is one ``training.loop.train`` on a script's fast preset, reporting to Tune after every
update; Tune does the rest, reusing actors so TensorFlow loads once per worker. Trials'
settings are built before Ray starts: a mistake is one line."""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import itertools
import logging
import math
import os
import shlex
import signal
import socket
import sys
import threading
import time
import typing
import warnings
from argparse import Namespace
from pathlib import Path
from typing import Any

from training import sweep_report as report
from training.exits import EXIT_FAILED, OneLineParser, describe_error
from training.settings import RunSettings, Script, SettingError
from training.startup import exit_now

PROG = "python -m training.sweep"
DEFAULT_SCRIPT = "ppo"  # the fastest script for both agents
RESERVED = frozenset({"agent", "seed", "runs_dir", "progress_bar", "threads"})  # set by the sweep
#: What a trial reports after every update, and at its end (the last four).
REPORTED = ("running_reward", "greedy_score", "env_steps", "wall_time", "episodes", "updates")
REPORTED += ("solved", "stop_reason", "run_dir", "finished")
ASHA_FACTOR = 4  # ASHA's rungs at budget / 16 and budget / 4
#: A lean, quiet Ray and Tune (values already set win): no usage report, no console boxes, no
#: TensorBoard logger beside the runs' own, Ctrl-C left to us, a refusing cluster given up soon.
RAY_ENVIRONMENT = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AIR_NEW_OUTPUT": "0"}
RAY_ENVIRONMENT |= {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "TUNE_DISABLE_SIGINT_HANDLER": "1"}
RAY_ENVIRONMENT |= {"RAY_gcs_server_port_wait_time_s": "5"}
# Tune starts its trials' actors in workers of their own: idle ones started ahead only take CPU.
RAY_ENVIRONMENT |= {"RAY_prestart_worker_first_driver": "0"}
RAY_ENVIRONMENT |= dict.fromkeys(
    ("RAY_CLIENT_INITIAL_CONNECTION_TIMEOUT_S", "RAY_CLIENT_MAX_CONNECTION_TIMEOUT_S"), "3"
)
_SIGNALS: list[int] = []  # SIGINT or SIGTERM received: Tune's stopper reads it
WARM: dict[str, Any] = {}  # in a worker: per script, the last trial's algorithm (traced update)


class SweepError(Exception):
    """A flag or value that cannot work: one usage line, exit 2."""


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog=PROG, name=PROG, description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--agent", choices=("cartpole", "pendulum"), required=True)
    add("--script", default=DEFAULT_SCRIPT, help="trials run python -m training.SCRIPT [ppo]")
    add("--seeds", type=int, default=1, help="seeds per grid setting [1]")
    add("--first-seed", type=int, default=1, help="the first seed; a search trains it [1]")
    grid_help = "a setting's values (repeatable: the grid is their product; tuples as 64x64)"
    add("--grid", action="append", default=[], metavar="KEY=V1,V2", help=grid_help)
    search_help = "optuna: --samples settings from the script's search_space() [grid: each x seed]"
    add("--search", choices=("grid", "optuna"), default="grid", help=search_help)
    add("--samples", type=int, help="with --search optuna: how many trials")
    prune_help = "stop trials whose running reward lags at equal training time [none]"
    add("--scheduler", choices=("none", "asha", "median"), default="none", help=prune_help)
    add("--address", help="local, auto, HOST:PORT or ray://HOST:PORT [RAY_ADDRESS, else local]")
    add("--cpus", type=int, help="CPUs of a private Ray, one trial each [all]")
    add("--max-seconds", type=float, help="training-time budget per trial [the preset's]")
    add("--out", type=Path, help="sweep folder [runs/sweep-AGENT-TIME]")
    add("--worker-logs", action="store_true", help="show what the trials print")
    return parser


def load_script(name: str) -> Script:
    found = name.isidentifier() and importlib.util.find_spec(f"training.{name}")
    module = importlib.import_module(f"training.{name}") if found else None
    if not isinstance(getattr(module, "SCRIPT", None), Script):
        raise SweepError(f"--script {name}: training.{name} is not a training script")
    return module.SCRIPT


def convert(value: Any, kind: Any, where: str) -> Any:
    """A value as typed (or as Tune drew it) in the field's type; the settings check the rest."""
    words = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
    try:
        if not isinstance(value, str):  # drawn by Tune: a NumPy scalar, or a list for a tuple
            return (
                tuple(value) if isinstance(value, list) else getattr(value, "item", lambda: value)()
            )
        if kind is bool:
            return words[value.strip().lower()]
        if typing.get_origin(kind) is tuple:
            return tuple(int(part) for part in value.split("x"))
        return kind(value) if kind in (int, float) else value.strip()
    except (KeyError, ValueError):
        expected = {bool: "true or false", int: "a whole number", float: "a number"}
        raise SweepError(f"{where}: expected {expected.get(kind, 'numbers as 64x64')}") from None


def parse_grid(items: list[str], script: Script) -> dict[str, list[Any]]:
    """``KEY=V1,V2`` items as {field: values in its type}; keys may use dashes."""
    kinds = typing.get_type_hints(script.settings_class)
    valid = [f.name for f in dataclasses.fields(script.settings_class) if f.name not in RESERVED]
    grid: dict[str, list[Any]] = {}
    for key, _, text in (item.partition("=") for item in items):
        if not text.strip() or (name := key.strip().replace("-", "_")) in grid:
            raise SweepError(f"--grid {key!r}: expected GRID KEY=..., once per key")
        if name not in valid:
            why = "is set by the sweep" if name in RESERVED else "is not a setting"
            raise SweepError(f"--grid {name} {why}; valid keys: {', '.join(valid)}")
        grid[name] = [convert(v, kinds[name], f"--grid {name}={v}") for v in text.split(",")]
    return grid


def ends(domain: Any) -> list[Any]:
    """A Tune distribution's choices, or its lowest and highest values (checked before Ray)."""
    from ray.tune.search.sample import Categorical, Integer

    if isinstance(domain, Categorical):
        return list(domain.categories)
    return [domain.lower, domain.upper - isinstance(domain, Integer)]  # randint leaves out upper


def decode(script: Script, config: dict[str, Any]) -> dict[str, Any]:
    """A trial's config (texts as typed, values as Tune drew them) as its settings take it."""
    kinds = typing.get_type_hints(script.settings_class)
    return {k: convert(v, kinds[k], f"--grid {k}={v}") for k, v in config.items() if k != "seed"}


def trial_settings(script: Script, plan: Namespace, config: dict, runs_dir: str = ".") -> Any:
    """A trial's settings: the script's fast preset, the plan's and the trial's values."""
    values = {**plan.fixed, **decode(script, config), "agent": plan.agent, "runs_dir": runs_dir}
    values.update(seed=int(config["seed"]), progress_bar=False, threads=1)
    return script.preset(report.PRESET, **values)


def check_trials(script: Script, plan: Namespace, space: dict[str, Any]) -> RunSettings:
    """Every grid setting's settings, and each distribution's bounds or choices (alone and all
    together), built with the first and last seed: what the settings refuse fails here."""
    cases = [dict(zip(plan.grid, v, strict=True)) for v in itertools.product(*plan.grid.values())]
    spans = {name: ends(domain) for name, domain in space.items()}
    cases += [{name: value} for name, values in spans.items() for value in values]
    cases += [{name: values[end] for name, values in spans.items()} for end in (0, -1)]
    for case, seed in itertools.product(cases, sorted({plan.seeds[0], plan.seeds[-1]})):
        try:
            settings = trial_settings(script, plan, {**case, "seed": seed})
        except SettingError as error:
            name, value = error.name, {**plan.fixed, **case}.get(error.name)
            where = f"--grid {report.describe({name: value} if value is not None else case)}"
            where = where if value is not None or case else f"--script {script.name}"
            if name in space:
                where = f"training.{script.name}.search_space() {name} (at {value})"
            raise SweepError(f"{where}: {error}") from None
    return settings


def make_plan(args: Namespace) -> tuple[Script, dict[str, Any]]:
    """The flags checked with every trial's settings; ``args`` becomes the plan (``grid``,
    ``space`` as summary.json shows it, ``fixed``: what all trials share, ``keys``: what varies,
    ``seeds``, ``budget`` and ``threshold``). Returns the script and Tune's search space."""
    optuna, cluster = args.search == "optuna", args.address or os.environ.get("RAY_ADDRESS")
    for problem, message in [
        (args.seeds < 1 or (args.cpus or 1) < 1, "--seeds and --cpus must be at least 1"),
        (args.cpus and cluster not in (None, "local"), "--cpus sizes a private Ray, not a "
         "cluster: add --address local"),
        (optuna and (args.samples or 0) < 1, "--search optuna needs --samples N (N >= 1)"),
        (not optuna and args.samples, "--samples needs --search optuna"),
        (optuna and args.seeds != 1, "--search optuna trains one seed per sample (--first-seed)"),
    ]:  # fmt: skip
        if problem:
            raise SweepError(message)
    script = load_script(args.script)
    grid = parse_grid(args.grid, script)
    args.fixed = {} if args.max_seconds is None else {"max_seconds": args.max_seconds}
    space: dict[str, Any] = {}
    if optuna:
        if many := [key for key, values in grid.items() if len(values) > 1]:
            raise SweepError(f"--grid {many[0]}: one value with --search optuna")
        args.fixed, grid = {**args.fixed, **{key: values[0] for key, values in grid.items()}}, {}
        space = script.search_space() if script.search_space else {}  # less what --grid fixes
        if not (space := {name: d for name, d in space.items() if name not in args.fixed}):
            why = "has nothing that --grid does not fix"
            raise SweepError(f"--search optuna: training.{script.name}.search_space() {why}")
    args.seeds = tuple(range(args.first_seed, args.first_seed + args.seeds))
    args.grid, args.space = grid, {k: f"{type(d).__name__} {ends(d)}" for k, d in space.items()}
    args.keys = [*args.grid, *args.space]
    first = check_trials(script, args, space)
    if (optuna or args.scheduler != "none") and first.max_seconds <= 0:
        raise SweepError("--search and --scheduler compare trials in time: give --max-seconds")
    args.budget, args.threshold = first.max_seconds, first.solve_threshold
    return script, space


def connect(address: str | None, cpus: int | None, logs: bool) -> str:
    """A private, lean Ray here, or the cluster at ``address`` or RAY_ADDRESS (as inside ``ray
    job submit``): where the trials run. No cluster: one line, exit 1 (SystemExit)."""
    import ray

    target = address or os.environ.get("RAY_ADDRESS") or "local"
    if target == "local":  # a private instance's token warning is noise: errors only
        count, lean = cpus or os.cpu_count() or 1, {"include_dashboard": False}
        ray.init("local", num_cpus=count, logging_level=logging.ERROR, log_to_driver=logs, **lean)
        return f"a private Ray in this process, {count} CPUs"
    label = f"--address {target}" if address else f"RAY_ADDRESS {target}"
    port = "Ray Client port" if target.startswith("ray://") else "GCS port (--port)"
    fix = f"check that the head runs (`ray start --head`) and that this is its {port}"
    host, _, number = target.removeprefix("ray://").rpartition(":")
    if number.isdigit():  # a wrong host or port: one line at once, not after Ray's retries
        try:
            socket.create_connection((host, int(number)), timeout=5).close()
        except OSError as error:
            why = error.strerror or str(error) or type(error).__name__
            raise SystemExit(f"{PROG}: error: {label}: cannot connect ({why}); {fix}") from None
    folders = [str(Path(importlib.util.find_spec(p).origin).parent) for p in ("agents", "training")]
    try:  # inside `ray job submit` the job's own runtime env (its working dir) serves
        warnings.filterwarnings("ignore", "Ray Client connection timed out")  # said below
        runtime_env = {"py_modules": folders, "excludes": ["__pycache__"]} if address else None
        ray.init(target, runtime_env=runtime_env, logging_level=logging.WARNING, log_to_driver=logs)
    except Exception as error:  # noqa: BLE001 - any failure to connect is one line
        auth = "it refused this machine's token: copy the head's token"
        if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
            auth = "it asks for a token: run with RAY_AUTH_MODE=token and the head's token"
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        why = f"{first}; check that it is the head's {port}, or {auth} (`ray get-auth-token`"
        raise SystemExit(f"{PROG}: error: {label}: {why} there) into ~/.ray/auth_token") from None
    return f"the Ray cluster at {target}, {int(ray.cluster_resources().get('CPU', 0))} CPUs"


def run_trial(config: dict[str, Any], plan: Namespace) -> None:
    """Tune's trainable: one training run, reporting after every update and at its end."""
    from ray import tune

    from training.loop import Trainer

    script = load_script(plan.script)
    settings = trial_settings(script, plan, config, f"{plan.out}/runs")

    def send(progress: dict[str, Any]) -> None:
        values = {key: progress[key] for key in REPORTED if key in progress}
        greedy = math.nan if values["greedy_score"] is None else float(values["greedy_score"])
        score = values["running_reward"] if math.isnan(greedy) else greedy
        limits = (values["wall_time"], score, settings.max_seconds, settings.solve_threshold)
        objective = report.objective(values.get("solved", False), *limits)
        tune.report({**values, "greedy_score": greedy, "objective": objective})

    with Trainer(settings, script, curve=False, warm=WARM.get(script.name)) as trainer:
        trainer.start(None, plan.command)  # curve=False: the sweep draws its curves at the end
        result = trainer.train(send)
    if "warm" in inspect.signature(script.algorithm_class).parameters:
        WARM[script.name] = trainer.algorithm  # the worker's next trial goes on from its update
    greedy = result.greedy_figure[1] if result.greedy_figure else None
    final = {"wall_time": result.train_seconds, "greedy_score": greedy, "finished": True}
    send({**result.to_json(), **final})


def tune_config(plan: Namespace) -> Any:
    """Optuna minimising the objective; ASHA or the median rule; actors reused across trials."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, MedianStoppingRule

    searcher, scheduler, grace = None, None, plan.budget / ASHA_FACTOR**2
    if plan.search == "optuna":
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        searcher = OptunaSearch(metric="objective", mode="min", seed=plan.seeds[0])
    prune = {"time_attr": "wall_time", "metric": "running_reward", "mode": "max"}
    if plan.scheduler == "asha":  # the last rung below the budget: final reports count
        rungs = {"max_t": plan.budget * (1 - 1e-6), "reduction_factor": ASHA_FACTOR}
        scheduler = ASHAScheduler(**prune, **rungs, grace_period=grace, stop_last_trials=False)
    elif plan.scheduler == "median":
        scheduler = MedianStoppingRule(**prune, grace_period=grace, min_samples_required=3)
    options = {"search_alg": searcher, "scheduler": scheduler, "reuse_actors": True}
    return tune.TuneConfig(num_samples=plan.samples if searcher else 1, **options)


def _request_stop(signum: int, frame: Any) -> None:
    if _SIGNALS:  # a second signal: stop at once
        raise KeyboardInterrupt
    _SIGNALS.append(signum)
    name = signal.Signals(signum).name
    print(f"sweep: {name}: stopping every trial (again to abort)", file=sys.stderr, flush=True)


def run_trials(plan: Namespace, script: Script, space: dict) -> tuple:
    """Every trial on Tune, in Tune's order: their Results with decoded configs, where they ran,
    and the thread shutting Ray down. A signal stops them all through Tune's stopper."""
    import ray
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback

    class StopOnSignal(tune.Stopper):
        def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
            return False

        def stop_all(self) -> bool:  # the module's list: Tune pickles its stopper
            return bool(importlib.import_module("training.sweep")._SIGNALS)

    class PrintTrial(tune.Callback):  # a line per trial that ends (a failed one's: the table)
        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            last, seed = trial.last_result, {"seed": trial.config["seed"]}
            values = report.describe({**seed, **decode(script, trial.config)})
            outcome = last.get("stop_reason", "pruned or stopped")  # no wall_time: no update
            print(f"  trial {values}: {outcome}, {last.get('wall_time', 0.0):.1f} s", flush=True)

    _SIGNALS.clear()
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    logging.getLogger("ray.tune").setLevel(logging.CRITICAL)  # no failed trial's traceback
    try:
        print(f"sweep: trials on {(where := connect(plan.address, plan.cpus, plan.worker_logs))}")
        seeds = plan.seeds[0] if plan.space else tune.grid_search(list(plan.seeds))
        space = {**space, **{k: tune.grid_search(v) for k, v in plan.grid.items()}, "seed": seeds}
        trainable = tune.with_resources(tune.with_parameters(run_trial, plan=plan), {"cpu": 1})
        hooks = {"stop": StopOnSignal(), "callbacks": [PrintTrial(), CSVLoggerCallback()]}
        run = tune.RunConfig("tune", f"{plan.out}/ray", verbose=0, **hooks)
        tuner = tune.Tuner(
            trainable, param_space=space, tune_config=tune_config(plan), run_config=run
        )
        for number in previous:
            signal.signal(number, _request_stop)
        grid = tuner.fit()
        grid.get_dataframe().to_csv(plan.out / "summary.csv", index=False)  # a row per trial
        pairs = [(result, decode(script, result.config)) for result in grid if result.config]
    finally:  # Ray's shutdown mostly waits (1.1 s) on its processes: the report overlaps it
        stopping = threading.Thread(target=ray.shutdown, name="ray.shutdown")  # joined at exit
        stopping.start()
        for number, handler in previous.items():  # ours, and the one ray.init installed
            signal.signal(number, handler)
    return pairs, where, stopping


def main(argv: list[str] | None = None) -> int:
    """Exit 0: every trial ran; 1: one failed, or no Ray; 2: bad flags; 130/143: stopped."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for package in ["ray"] + (["optuna"] if args.search == "optuna" else []):
        if importlib.util.find_spec(package) is None:
            parser.exit(EXIT_FAILED, f"{PROG}: error: no {package}: pip install '.[sweep]'\n")
    os.environ.update({**RAY_ENVIRONMENT, **os.environ})
    try:
        script, space = make_plan(args)
    except SweepError as error:
        parser.error(str(error))
    args.command = shlex.join([*PROG.split(), *(sys.argv[1:] if argv is None else argv)])
    out = args.out or Path("runs") / f"sweep-{args.agent}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        (out / "runs").mkdir(parents=True, exist_ok=True)
    except OSError as error:
        parser.error(f"--out {out}: cannot create the folder ({describe_error(error)})")
    trials = f"{args.samples} Optuna samples" if args.space else f"{len(args.seeds)} seed(s)"
    print(f"sweep: {args.script} ({args.agent}), {trials} x {args.keys}; outputs in {out}")
    started, args.out = time.perf_counter(), out.resolve()
    pairs, where, stopping = run_trials(args, script, space)  # SystemExit: no Ray
    stop = signal.Signals(_SIGNALS[0]).name if _SIGNALS else None
    run = {"command": args.command, "sweep_wall_seconds": time.perf_counter() - started}
    summary = report.publish(args, pairs, out, stop, **run, ran_on=where)
    stopping.join()
    if stop:  # the shell's statuses: 130 Ctrl-C, 143 SIGTERM
        return 128 + _SIGNALS[0]
    return EXIT_FAILED if summary["error_count"] else 0


if __name__ == "__main__":  # as training.sweep: one signal list, the one Tune's stopper reads
    exit_now(importlib.import_module("training.sweep").main())  # Ray is down: no teardown
