"""The Ray side of a sweep: reach a Ray cluster (or start one here), run every trial on Tune.

Where the trials run:

- no ``--address``: a Ray instance started in this process, sized by ``--cpus``; but if Ray is
  already running on this machine (``ray start``, or ``RAY_ADDRESS`` as inside ``ray job
  submit``) the sweep joins it and says so in one line;
- ``--address local``: always a private instance in this process;
- ``--address auto``, ``HOST:PORT`` or ``ray://HOST:PORT``: an existing cluster. The project's
  packages are shipped to its workers as folders (Ray Client cannot pickle module objects);
  the nodes' Python needs the project's dependencies.

A cluster that cannot be reached fails within CONNECT_TIMEOUT_S with one line naming the
address and the likely fix, instead of Ray's minutes of retries.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import math
import os
import re
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.sweep import report
from training.sweep.space import (
    SweepPlan,
    build_settings,
    describe,
    parse_value,
    settings_class_for,
    value_text,
)

CPUS_PER_TRIAL = 1
#: Headless rendering and quiet TensorFlow in every Ray worker, local or remote.
WORKER_ENV = {"MUJOCO_GL": "egl", "SDL_VIDEODRIVER": "dummy", "TF_CPP_MIN_LOG_LEVEL": "2"}
#: The project's packages a trial imports, shipped to a cluster's workers as folders.
PROJECT_PACKAGES = ("agents", "training")
SHIPPING_EXCLUDES = ["__pycache__", "*.pyc"]
PROBE_TIMEOUT_S = 5.0  # a TCP connection to the address, before Ray's own retries
CONNECT_TIMEOUT_S = 20.0  # all of connecting, so a dead cluster fails within 30 s
WATCH_INTERVAL_S = 0.5  # how often the connection watcher reads Ray's messages
EXIT_CONNECT = 1
#: What Ray says when a cluster refuses a client's token (GCS, and Ray Client at debug level).
AUTH_MARKERS = (
    "InvalidAuthToken",
    "Unauthenticated",
    "AuthenticationError",
    "authentication token",
)
DEFAULT_CLIENT_PORT = 10001  # Ray Client's port on a head started without --ray-client-server-port
#: Progress keys forwarded to Tune after every update (greedy_score may be None: NaN then).
REPORTED = ("running_reward", "greedy_score", "env_steps", "wall_time", "episodes", "updates")
#: Pruning: trials are compared on their running reward at equal training time.
PRUNE_METRIC = "running_reward"
PRUNE_TIME = "wall_time"
ASHA_REDUCTION_FACTOR = 4
ASHA_RUNGS = 2  # rungs at budget / 4**2 and budget / 4: 7.5 s and 30 s of a 120 s budget
MEDIAN_MIN_SAMPLES = 3
ANSI_CODES = re.compile(r"\x1b\[[0-9;]*m")
TOKEN_FILE = "~/.ray/auth_token"
AUTH_FIX = (
    f"Ray 2.5x heads require a token: run with RAY_AUTH_MODE=token and the head's token in "
    f"{TOKEN_FILE} (print it on the head with `ray get-auth-token`)"
)


class ClusterError(RuntimeError):
    """Ray cannot be reached or started; the message is the one line the user sees."""


# --- connecting ------------------------------------------------------------------------------
def _package_folders() -> list[str]:
    return [
        str(Path(importlib.util.find_spec(name).origin).parent)  # type: ignore[union-attr]
        for name in PROJECT_PACKAGES
    ]


def running_instance() -> str | None:
    """The address of a Ray instance this machine already runs (``RAY_ADDRESS``, or the one
    ``ray start`` recorded), which a plain ``ray.init()`` would join; else None."""
    if os.environ.get("RAY_ADDRESS"):
        return os.environ["RAY_ADDRESS"]
    try:  # where `ray start` records its address: Ray's own lookup, not a public API
        from ray._private.utils import read_ray_address
    except ImportError:
        return None
    return read_ray_address()


def connect(address: str | None, cpus: int | None) -> str:
    """Reach Ray as the module docstring describes; returns where the trials run."""
    import ray

    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address is None:
        existing = running_instance()
        if existing is not None:
            if cpus is not None:
                raise ClusterError(
                    f"--cpus sizes a private Ray, but Ray is already running on this machine "
                    f"at {existing}: drop --cpus to join it, or add --address local"
                )
            source = "RAY_ADDRESS" if os.environ.get("RAY_ADDRESS") else "`ray start`"
            print(
                f"sweep: joining the Ray instance already running at {existing} (from {source}; "
                "--address local starts a private one instead)",
                flush=True,
            )
            label = f"the Ray instance at {existing} (from {source})"
            try:
                return _join(existing, "auto", quiet, label)
            except ClusterError as error:
                raise ClusterError(
                    f"{error}; if that Ray is gone, unset RAY_ADDRESS or run `ray stop`, or pass "
                    "--address local"
                ) from None
        address = "local"
    if address == "local":
        count = cpus or os.cpu_count() or 1
        ray.init(
            address="local",
            num_cpus=count,
            include_dashboard=False,
            runtime_env={"env_vars": WORKER_ENV},
            **quiet,
        )
        return f"a private Ray in this process, {count} CPUs"
    return _join(address, address, quiet, f"--address {address}")


def _join(shown: str, address: str, quiet: dict[str, Any], label: str) -> str:
    """Connect to the cluster at ``shown`` (``address`` as ray.init takes it) within
    CONNECT_TIMEOUT_S, or raise a one-line error that starts with ``label``."""
    import ray

    _probe(shown, label)
    runtime_env = {
        "env_vars": WORKER_ENV,
        "py_modules": _package_folders(),
        "excludes": SHIPPING_EXCLUDES,
    }
    with _ConnectionLog() as log, _deadline(shown, label, log):
        try:
            ray.init(address=address, runtime_env=runtime_env, **quiet)
        except Exception as error:  # noqa: BLE001 - every failure becomes one line
            raise ClusterError(_connect_failure(shown, label, error, log.text())) from None
    resources = ray.cluster_resources()
    return f"the Ray cluster at {shown}, {int(resources.get('CPU', 0))} CPUs"


def _probe(address: str, label: str) -> None:
    """A plain TCP connection first: a wrong host or port fails in seconds, not minutes."""
    target = address.removeprefix("ray://")
    if target in ("auto", ""):
        return
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"{label}: expected HOST:PORT, ray://HOST:PORT or auto")
    try:
        socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S).close()
    except OSError as error:
        what = error.strerror or type(error).__name__
        if address.startswith("ray://"):
            hint = (
                "check that the head runs (`ray start --head`) and that this is its Ray "
                f"Client port (--ray-client-server-port, default {DEFAULT_CLIENT_PORT})"
            )
        else:
            hint = (
                "check that the head runs (`ray start --head`) and that this is its "
                "GCS port (--port, default 6379)"
            )
        raise ClusterError(f"{label}: cannot connect ({what}); {hint}") from None


def _connect_failure(address: str, label: str, error: Exception | None, log: str) -> str:
    """The one line for a failed connection (``error`` None: it timed out), from the error
    and what Ray logged while trying."""
    text = f"{error} {log}"
    if _refused(text):
        if os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
            return (
                f"{label}: the cluster refused this machine's token; copy the "
                f"head's token (`ray get-auth-token` there) into {TOKEN_FILE}"
            )
        return f"{label}: the cluster asks for authentication; {AUTH_FIX}"
    if "Could not find any running Ray instance" in text:
        return (
            f"{label}: no Ray instance runs on this machine; start one with "
            "`ray start --head`, or leave out --address"
        )
    if error is None:
        what = f"no answer from Ray within {CONNECT_TIMEOUT_S:.0f} s"
    else:
        lines = ANSI_CODES.sub("", str(error)).strip().splitlines()
        what = lines[0] if lines else type(error).__name__
    port = "Ray Client port" if address.startswith("ray://") else "GCS port (--port on the head)"
    return f"{label}: {what}; check that it is the head's {port}; {AUTH_FIX}"


def _refused(log: str) -> bool:
    """Whether Ray's messages say the cluster refused this client's token (or lack of one)."""
    return any(marker in log for marker in AUTH_MARKERS)


class _Messages(logging.Handler):
    """Keeps the messages of the logger it is attached to."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


class _ConnectionLog:
    """What Ray says while connecting, held back: its C++ client logs every retry to file
    descriptor 2, and Ray Client logs why the server refused it only at debug level. Shown
    afterwards if the connection worked; read for the one-line diagnosis if not."""

    CLIENT_LOGGER = "ray.util.client"

    def __enter__(self) -> _ConnectionLog:
        self._client = logging.getLogger(self.CLIENT_LOGGER)
        self._client_state = (self._client.level, self._client.propagate)
        self._messages = _Messages()
        self._client.setLevel(logging.DEBUG)
        self._client.propagate = False
        self._client.addHandler(self._messages)
        sys.stderr.flush()
        self._saved = os.dup(2)
        self._sink = tempfile.TemporaryFile()
        os.dup2(self._sink.fileno(), 2)
        self._holding = True
        return self

    def give_back_stderr(self) -> None:
        """Restore file descriptor 2 (safe to call twice)."""
        if self._holding:
            sys.stderr.flush()
            os.dup2(self._saved, 2)
            os.close(self._saved)
            self._holding = False

    def held_stderr(self) -> str:
        """What went to file descriptor 2 so far (pread: safe while Ray writes)."""
        size = os.fstat(self._sink.fileno()).st_size
        return os.pread(self._sink.fileno(), size, 0).decode(errors="replace")

    def text(self) -> str:
        return self.held_stderr() + "\n".join(self._messages.messages)

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        self.give_back_stderr()
        self._client.removeHandler(self._messages)
        self._client.setLevel(self._client_state[0])
        self._client.propagate = self._client_state[1]
        if kind is None:
            sys.stderr.write(self.held_stderr())
        self._sink.close()


@contextlib.contextmanager
def _deadline(address: str, label: str, log: _ConnectionLog) -> Iterator[None]:
    """Give up on connecting as soon as Ray's messages say the token was refused, or after
    CONNECT_TIMEOUT_S: Ray's own retries can take minutes and cannot be interrupted from
    Python, so a watcher thread prints the one line and ends the process."""
    connected = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while not connected.wait(WATCH_INTERVAL_S):
            text = log.text()
            if _refused(text) or time.monotonic() >= deadline:
                log.give_back_stderr()
                message = _connect_failure(address, label, None, text)
                print(f"python -m training.sweep: error: {message}", file=sys.stderr, flush=True)
                os._exit(EXIT_CONNECT)

    watcher = threading.Thread(target=watch, name="ray-connect-deadline", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        connected.set()
        watcher.join()


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
            max_t=plan.budget,
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


def run_trials(
    plan: SweepPlan, out: Path, address: str | None, cpus: int | None, command: str
) -> SweepRun:
    """Run every trial (``out`` must exist: the caller checked it)."""
    import ray
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    runs_dir = out / "runs"
    spec = {
        "script": plan.script,
        "fixed": plan.fixed,
        "runs_dir": str(runs_dir),
        "command": command,
    }
    started = time.perf_counter()
    owns_ray = not ray.is_initialized()
    where = connect(address, cpus) if owns_ray else "the Ray instance this process joined"
    print(f"sweep: {plan.trial_count} trials on {where}", flush=True)
    # After connecting: with_parameters puts the spec in the object store at once then, where
    # a Ray Client connection (which runs no post-init hooks) would otherwise never see it.
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, spec=spec), {"cpu": CPUS_PER_TRIAL}
    )
    # Tune's new console output prints its own boxes and each failed trial's result whatever
    # the verbosity; the legacy one is silent at verbosity 0, and the printer below says
    # what matters. Tune also logs every failed trial's traceback: the summary keeps each
    # trial's own message, and ray/ the tracebacks. Tune's TensorBoard logger would repeat
    # what every run folder already logs: only its CSV and JSON loggers are kept.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")
    tune_logger = logging.getLogger("ray.tune")
    level = tune_logger.level
    tune_logger.setLevel(logging.CRITICAL)
    try:
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
    finally:
        tune_logger.setLevel(level)
        if owns_ray:
            ray.shutdown()
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
