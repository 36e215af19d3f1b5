"""The Ray side of a sweep: every trial on Ray Tune, and one row per trial from the results.

A trial is one call of the scripts' training loop in a Ray worker (:func:`run_trial`); Tune
runs the grid or the Optuna search, a scheduler prunes lagging trials, and a signal stops
them all through Tune so what ran is still reported. Reaching Ray is :mod:`.cluster`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.sweep import report
from training.sweep.cluster import ANSI_CODES, connect
from training.sweep.space import (
    SweepPlan,
    build_settings,
    describe,
    parse_value,
    settings_class_for,
    value_text,
)

CPUS_PER_TRIAL = 1
#: Progress keys forwarded to Tune after every update (greedy_score may be None: NaN then).
REPORTED = ("running_reward", "greedy_score", "env_steps", "wall_time", "episodes", "updates")
#: Pruning: trials are compared on their running reward at equal training time.
PRUNE_METRIC = "running_reward"
PRUNE_TIME = "wall_time"
ASHA_REDUCTION_FACTOR = 4
ASHA_RUNGS = 2  # rungs at budget / 4**2 and budget / 4: 7.5 s and 30 s of a 120 s budget
ASHA_BELOW_BUDGET = 1 - 1e-6
MEDIAN_MIN_SAMPLES = 3


# --- one trial (runs in a Ray worker) --------------------------------------------------------
def decode_config(settings_class: type, config: dict[str, Any]) -> dict[str, Any]:
    """A trial's sampled values as the settings want them: Optuna's choices are plain
    scalars, so tuple settings travel as text (``64x64``) and come back here."""
    import typing

    hints = typing.get_type_hints(settings_class)
    values = {}
    for key, value in config.items():
        if key == "seed":
            continue
        if hints[key] == tuple[int, ...] and isinstance(value, str):
            value = parse_value(value, hints[key], key, "--space", settings_class)
        values[key] = value
    return settings_class.typed(values)


def run_trial(config: dict[str, Any], spec: dict[str, Any]) -> None:
    """Tune's function trainable: one training run, reporting progress after every update.

    Every report carries the objective as it stands (Optuna's searcher reads it from each
    result); the last adds how the run ended and the final agent's greedy score.
    """
    from ray import tune

    from training.loop import train

    started = time.perf_counter()
    settings_class = settings_class_for(spec["script"])
    overrides = {**spec["fixed"], **decode_config(settings_class, config)}
    settings = build_settings(settings_class, overrides, int(config["seed"]), spec["runs_dir"])
    budget, threshold = settings.max_seconds, settings.solve_threshold

    def on_update(progress: dict[str, Any]) -> None:
        provisional = report.objective(
            False, progress["wall_time"], progress["running_reward"], budget, threshold
        )
        tune.report({**{key: _number(progress[key]) for key in REPORTED}, "objective": provisional})

    result = train(settings, command=spec["command"], on_update=on_update)
    greedy = final_greedy_score(result, settings)
    tune.report(
        {
            "running_reward": result.running_reward,
            "env_steps": result.env_steps,
            "wall_time": result.train_seconds,
            "episodes": result.episodes,
            "updates": result.updates,
            "greedy_score": greedy,
            "objective": report.objective(
                result.solved, result.train_seconds, greedy, budget, threshold
            ),
            "finished": True,
            "solved": result.solved,
            "stop_reason": result.stop_reason,
            "train_seconds": result.train_seconds,
            "trial_seconds": time.perf_counter() - started,
            "run_dir": str(result.run_dir),
        }
    )


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def final_greedy_score(result: Any, settings: Any) -> float:
    """The final agent's greedy mean over ``eval_episodes``: the solving evaluation's score
    when the run solved (it evaluated exactly this agent), else one evaluation now, so unsolved
    trials are compared on the same footing (NaN when the run saved no final agent)."""
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


# --- the sweep -----------------------------------------------------------------------------------
def param_space(plan: SweepPlan) -> dict[str, Any]:
    """Tune's search space: the grid crossed with the seeds, or Optuna's distributions with
    one seed (every sample trains the same seed, so settings are compared like for like)."""
    from ray import tune

    if plan.search == "grid":
        space: dict[str, Any] = {key: tune.grid_search(v) for key, v in plan.grid.items()}
        space["seed"] = tune.grid_search(list(plan.seeds))
        return space
    space = {}
    for key, distribution in plan.space.items():
        low, *rest = distribution.values
        if distribution.kind == "loguniform":
            space[key] = tune.loguniform(low, rest[0])
        elif distribution.kind == "uniform":
            space[key] = tune.uniform(low, rest[0])
        elif distribution.kind == "int":
            space[key] = tune.randint(low, rest[0] + 1)  # randint excludes its upper bound
        else:
            space[key] = tune.choice(
                [value_text(v) if isinstance(v, tuple) else v for v in distribution.values]
            )
    space["seed"] = plan.seeds[0]
    return space


def tune_config(plan: SweepPlan) -> Any:
    """The searcher (Optuna minimising the objective) and the scheduler that prunes trials
    whose running reward lags the others' at the same training time."""
    from ray import tune

    searcher = None
    if plan.search == "optuna":
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per study otherwise
        searcher = OptunaSearch(metric="objective", mode="min", seed=plan.seeds[0])
    grace = plan.budget / ASHA_REDUCTION_FACTOR**ASHA_RUNGS
    scheduler = None
    if plan.scheduler == "asha":
        from ray.tune.schedulers import ASHAScheduler

        scheduler = ASHAScheduler(
            time_attr=PRUNE_TIME,
            metric=PRUNE_METRIC,
            mode="max",
            # ASHA puts a rung at every grace * 4^k up to max_t; one at the budget itself would
            # stop trials as they end, before their final report: max_t stays just below it.
            max_t=plan.budget * ASHA_BELOW_BUDGET,
            grace_period=grace,
            reduction_factor=ASHA_REDUCTION_FACTOR,
            # a trial past the last rung runs to its own end (its final report matters)
            stop_last_trials=False,
        )
    elif plan.scheduler == "median":
        from ray.tune.schedulers import MedianStoppingRule

        scheduler = MedianStoppingRule(
            time_attr=PRUNE_TIME,
            metric=PRUNE_METRIC,
            mode="max",
            grace_period=grace,
            min_samples_required=MEDIAN_MIN_SAMPLES,
        )
    return tune.TuneConfig(
        search_alg=searcher,
        scheduler=scheduler,
        num_samples=plan.samples if plan.search == "optuna" else 1,
    )


@dataclass
class SweepRun:
    """What running the trials gave: one row per trial, each trial's reported learning curve
    (or None), the wall time, where it ran, and the signal that stopped it early, if any."""

    rows: list[dict[str, Any]]
    curves: list[tuple[np.ndarray, np.ndarray] | None]
    wall_seconds: float
    where: str
    stopped_by: int | None = None
    never_started: int = 0


#: Set by SIGINT or SIGTERM during a sweep; Tune's stopper below reads it. Module-level so
#: the stopper holds no state (Tune pickles it with the experiment, and an event cannot be).
_STOP_REQUESTED = threading.Event()
_STOP_SIGNAL: list[int] = []


def _request_stop(signum: int, frame: Any) -> None:
    if _STOP_REQUESTED.is_set():  # a second signal: stop at once
        raise KeyboardInterrupt
    _STOP_SIGNAL.append(signum)
    _STOP_REQUESTED.set()
    name = signal.Signals(signum).name
    print(f"sweep: {name}: stopping every trial (again to abort)", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """Ctrl-C and SIGTERM end the sweep through Tune, so the trials that finished are
    reported; Tune's own SIGINT handler is turned off and SIGTERM would otherwise kill the
    driver with nothing written."""
    _STOP_REQUESTED.clear()
    _STOP_SIGNAL.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stopper() -> Any:
    from ray import tune

    class StopOnSignal(tune.Stopper):
        """Stops every trial once SIGINT or SIGTERM arrived."""

        def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
            return False

        def stop_all(self) -> bool:
            # Looked up when called: Tune pickles the stopper, and the event holds a lock.
            from training.sweep import driver

            return driver._STOP_REQUESTED.is_set()

    return StopOnSignal()


#: Tune's new console output prints its own boxes and each failed trial's result whatever the
#: verbosity; the legacy one is silent at verbosity 0, and the trial printer says what matters.
#: Tune's TensorBoard logger would repeat what every run folder logs (its CSV and JSON loggers
#: are added explicitly), and its SIGINT handler would hide Ctrl-C from the sweep.
TUNE_ENVIRONMENT = {
    "RAY_AIR_NEW_OUTPUT": "0",
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "TUNE_DISABLE_SIGINT_HANDLER": "1",
}


@contextlib.contextmanager
def _quiet_tune() -> Iterator[None]:
    """TUNE_ENVIRONMENT (unless the user set those variables), and Tune's logger silenced: it
    logs every failed trial's traceback, while the summary keeps each trial's own message
    and ray/ the tracebacks. Everything is restored afterwards."""
    saved = {name: os.environ.get(name) for name in TUNE_ENVIRONMENT}
    for name, value in TUNE_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    tune_logger = logging.getLogger("ray.tune")
    level = tune_logger.level
    tune_logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        tune_logger.setLevel(level)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _ray_session(address: str | None, cpus: int | None) -> Iterator[str]:
    """Connected to Ray for the block (unless this process already was); yields where the
    trials run. Afterwards Ray is shut down and the SIGTERM handler ray.init installs is
    replaced by the one before it."""
    import ray

    if ray.is_initialized():
        yield "the Ray instance this process joined"
        return
    previous = signal.getsignal(signal.SIGTERM)
    try:
        yield connect(address, cpus)
    finally:
        ray.shutdown()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)


def run_trials(
    plan: SweepPlan, out: Path, address: str | None, cpus: int | None, command: str
) -> SweepRun:
    """Run every trial (``out`` must exist: the caller checked it)."""
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    spec = {
        "script": plan.script,
        "fixed": plan.fixed,
        "runs_dir": str(out / "runs"),
        "command": command,
    }
    started = time.perf_counter()
    with _ray_session(address, cpus) as where, _quiet_tune():
        print(f"sweep: {plan.trial_count} trials on {where}", flush=True)
        # After connecting: with_parameters puts the spec in the object store at once then,
        # where a Ray Client connection (which runs no post-init hooks) would never see it.
        trainable = tune.with_resources(
            tune.with_parameters(run_trial, spec=spec), {"cpu": CPUS_PER_TRIAL}
        )
        tuner = tune.Tuner(
            trainable,
            param_space=param_space(plan),
            tune_config=tune_config(plan),
            run_config=tune.RunConfig(
                name="tune",
                storage_path=str(out / "ray"),
                verbose=0,
                stop=_stopper(),
                callbacks=[_TrialPrinter(plan), CSVLoggerCallback(), JsonLoggerCallback()],
            ),
        )
        with _stop_on_signals():
            results = list(tuner.fit())  # in the order the trials were created (sampled)
    started_count = len(results)
    results = [result for result in results if result.config is not None]
    if plan.search == "grid":
        results.sort(
            key=lambda r: ([repr(r.config.get(k)) for k in plan.grid], r.config.get("seed"))
        )
    settings_class = settings_class_for(plan.script)
    stopped_by = _STOP_SIGNAL[0] if _STOP_SIGNAL else None
    rows = [trial_row(i, r, plan, out, settings_class, stopped_by) for i, r in enumerate(results)]
    curves = [_reported_curve(result) for result in results]
    never_started = started_count - len(results)  # a sweep stopped by a signal
    wall = time.perf_counter() - started
    return SweepRun(rows, curves, wall, where, stopped_by, never_started)


def _TrialPrinter(plan: SweepPlan) -> Any:  # noqa: N802 - builds a Tune callback instance
    """A Tune callback printing one line per finished trial, so a long sweep shows progress."""
    from ray import tune

    settings_class = settings_class_for(plan.script)

    class TrialPrinter(tune.Callback):
        def _what(self, trial: Any) -> str:
            values = decode_config(settings_class, trial.config)
            settings = f"{describe(report._short(values))} " if values else ""
            return f"{settings}seed={trial.config.get('seed')}"

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            metrics = trial.last_result or {}
            if metrics.get("solved"):
                outcome = (
                    f"solved in {metrics['train_seconds']:.1f} s, "
                    f"{int(metrics['env_steps']):,} env steps"
                )
            elif metrics.get("finished"):
                outcome = f"{metrics['stop_reason']}, greedy {metrics['greedy_score']:.1f}"
            else:
                outcome = _stopped_reason(plan)
            print(f"  trial {self._what(trial)}: {outcome}", flush=True)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            print(f"  trial {self._what(trial)}: error: {_trial_error(trial)}", flush=True)

    return TrialPrinter()


def _stopped_reason(plan: SweepPlan) -> str:
    return f"pruned ({plan.scheduler})" if plan.scheduler != "none" else "stopped"


def _trial_error(trial: Any) -> str:
    """The last line of the traceback Tune wrote for the trial: its own exception."""
    try:
        text = Path(trial.error_file).read_text()
    except (OSError, TypeError):  # no file yet: the summary still gets the exception itself
        return "see the summary"
    lines = [line.strip() for line in ANSI_CODES.sub("", text).splitlines() if line.strip()]
    return lines[-1] if lines else "see the summary"


def error_message(error: BaseException) -> str:
    """The trial's own exception as ``Type: message``, without Ray's coloured task header."""
    cause = getattr(error, "cause", None)
    own = cause if isinstance(cause, BaseException) else error
    text = ANSI_CODES.sub("", str(own)).strip()
    if own is error:  # no cause: Ray's text, whose last line names the exception
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return lines[-1] if lines else type(error).__name__
    return f"{type(own).__name__}: {text}" if text else type(own).__name__


def trial_row(
    index: int,
    result: Any,
    plan: SweepPlan,
    out: Path,
    settings_class: type,
    stopped_by: int | None = None,
) -> dict[str, Any]:
    """One summary row from a Tune result (an errored trial keeps its settings and message).

    A trial that neither finished nor failed was pruned by the scheduler, or stopped with
    the whole sweep by a signal (``stopped_by``)."""
    metrics = result.metrics or {}
    finished = result.error is None and bool(metrics.get("finished"))
    if result.error is not None:
        status = "error"
    elif finished:
        status = "finished"
    else:
        status = "stopped" if stopped_by is not None or plan.scheduler == "none" else "pruned"
    solved = finished and bool(metrics.get("solved"))
    run_dir = metrics.get("run_dir")
    score = metrics.get("greedy_score") if finished else None
    overrides = decode_config(settings_class, result.config)
    objective = metrics.get("objective") if status != "error" else None
    stop_reason = {
        "finished": metrics.get("stop_reason"),
        "pruned": _stopped_reason(plan),
        "stopped": signal.Signals(stopped_by).name if stopped_by else "stopped",
    }
    return {
        "trial": index,
        "overrides": {key: report._plain(overrides[key]) for key in plan.keys},
        "seed": int(result.config["seed"]),
        "status": status,
        "solved": solved,
        "stop_reason": stop_reason.get(status),
        "time_to_solve": metrics["train_seconds"] if solved else None,
        "steps_to_solve": int(metrics["env_steps"]) if solved else None,
        "episodes": int(metrics["episodes"]) if "episodes" in metrics else None,
        "train_seconds": metrics.get("train_seconds", metrics.get("wall_time")),
        "trial_seconds": metrics.get("trial_seconds"),
        "final_greedy_score": None if score is None or math.isnan(score) else float(score),
        "objective": None if objective is None or math.isnan(objective) else float(objective),
        "run_dir": _relative(run_dir, out) if run_dir else None,
        "error": None if result.error is None else error_message(result.error),
    }


def _relative(path: str, out: Path) -> str:
    """Run folders relative to the sweep folder, so summaries stay valid when it moves."""
    try:
        return str(Path(path).relative_to(out))
    except ValueError:
        return path


def _reported_curve(result: Any) -> tuple[np.ndarray, np.ndarray] | None:
    frame = result.metrics_dataframe
    if frame is None or frame.empty or "env_steps" not in frame:
        return None
    return frame["env_steps"].to_numpy(float), frame["running_reward"].to_numpy(float)
