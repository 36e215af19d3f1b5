"""A run's folder: settings, progress, TensorBoard, checkpoints, resume state (docs/training.md)."""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import math
import re
import socket
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from training.run_safety import (
    DamagedRunFileError,
    atomic_write,
    kept_progress_rows,
    lock_folder,
    remove_leftovers,
)

PROGRESS_COLUMNS = (
    *("episode", "update", "reward", "length", "running_reward"),
    *("actor_loss", "critic_loss", "entropy", "env_steps", "wall_time"),
)
SCALAR_COLUMNS = PROGRESS_COLUMNS[1:]  # the TensorBoard scalars: the episode is their step
POSITION_KEYS = ("update", "episode", "wall_time")  # when an evaluation ran, not a figure
MAX_SAME_SECOND_RUNS = 1000  # runs of one name started in one second get -2, -3, ...
STATE_FILE = "resume_state.npz"
COUNTER_PREFIX = "counter/"
CHECKPOINT_FOLDER = "checkpoints"


def checkpoint_name(episodes: int, naming: str) -> str:
    """The checkpoint after ``episodes`` episodes: the course's ``199`` or ``episode_000200``."""
    return str(episodes - 1) if naming == "course" else f"episode_{episodes:06d}"


def checkpoint_episodes(stem: str) -> int | None:
    """Episodes trained at a checkpoint named ``stem`` (either naming); None for other files."""
    if match := re.fullmatch(r"(\d+)|episode_(\d+)", stem):
        return int(match[1]) + 1 if match[1] else int(match[2])
    return None


def checkpoints_of(run_dir: Path) -> list[tuple[int, Path]]:
    """(episodes trained, prefix) of every complete checkpoint pair in a run, oldest first."""
    models = (Path(run_dir) / CHECKPOINT_FOLDER).glob("*.keras")
    pairs = [model.with_suffix("") for model in models if model.with_suffix(".config").is_file()]
    found = [(checkpoint_episodes(prefix.name), prefix) for prefix in pairs]
    return sorted((n, prefix) for n, prefix in found if n is not None)


def early_and_later(run_dir: Path) -> tuple[Path, Path]:
    """The course's early-vs-later pair: the first and last trained checkpoints, or, with at
    most one (a run that solved early), the untrained policy and that one or the final agent."""
    found = checkpoints_of(run_dir)
    trained = [prefix for episodes, prefix in found if episodes > 0]
    if len(trained) >= 2:
        return trained[0], trained[-1]
    final = Path(run_dir) / "final"
    later = trained[-1] if trained else final if final.with_suffix(".keras").is_file() else None
    if found and later is not None and found[0][1] != later:
        return found[0][1], later
    raise ValueError(
        f"{run_dir}: an early-vs-later comparison needs an early agent beside the later one "
        f"(two checkpoints, or a checkpoint and final) in {CHECKPOINT_FOLDER}/, found "
        f"{len(found)} checkpoint(s)"
    )


def resume_problem(path: Path) -> str | None:
    """Why the folder ``path`` cannot be resumed (the end of a one-line error), or None."""
    path = Path(path)
    if not path.exists():
        return "no such folder"
    if not path.is_dir():
        return "not a folder: give a run folder, such as runs/<script>-seed<seed>-<time>"
    if not (path / "settings.json").is_file():
        return "not a run folder (it has no settings.json)"
    if not (path / STATE_FILE).is_file():
        return (
            f"the run has no resume state ({STATE_FILE}): it stopped before saving any; "
            "start a new run"
        )
    return None


class RunFolder:
    """One run's folder; create() and open() lock it while the object lives."""

    def __init__(self, path: Path, tensorboard: bool = False, lock: bool = False) -> None:
        self.path = Path(path)
        self.checkpoints = self.path / CHECKPOINT_FOLDER
        self.progress_path = self.path / "progress.csv"
        self.state_path = self.path / STATE_FILE
        self.final_prefix = self.path / "final"
        self.tensorboard = tensorboard
        self._progress_file: Any = None
        self._events: Any = None  # the TensorBoard event file's writer
        self._last_speed_point = (0.0, 0.0)  # (env_steps, wall_time) of the last logged row
        self._first_step = 1  # the first episode this session logs
        self._evaluations_logged = 0
        #: ``notice``: one line when the lock was taken over from a killed holder
        self._unlock, self.notice = lock_folder(self.path, self) if lock else (None, None)

    @classmethod
    def create(
        cls, runs_dir: Path, name: str, settings_json: dict[str, Any], tensorboard: bool
    ) -> RunFolder:
        """A new, uniquely named and locked folder ``{runs_dir}/{name}-{timestamp}``."""
        base = Path(runs_dir) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        for suffix in range(1, MAX_SAME_SECOND_RUNS + 1):
            path = base if suffix == 1 else base.with_name(f"{base.name}-{suffix}")
            with contextlib.suppress(FileExistsError):
                path.mkdir(parents=True)
                break
        else:
            raise FileExistsError(f"{base}: {MAX_SAME_SECOND_RUNS} runs started this second")
        run = cls(path, tensorboard, lock=True)
        try:
            run.write_json("settings.json", settings_json)
        except BaseException:
            run.close()
            raise
        return run

    @classmethod
    def open(cls, path: Path, tensorboard: bool) -> RunFolder:
        """The run ``path``, locked to continue it, without what killed writers left."""
        if not Path(path).is_dir():
            raise FileNotFoundError(errno.ENOENT, "no such run folder", str(path))
        run = cls(path, tensorboard, lock=True)
        remove_leftovers(run.path, run.checkpoints)
        return run

    @property
    def locked(self) -> bool:
        return self._unlock is not None and self._unlock.alive

    def record_command(self, command: str) -> None:
        with (self.path / "command.txt").open("a") as stream:
            stream.write(command + "\n")

    def write_json(self, name: str, data: dict[str, Any]) -> None:
        text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        atomic_write(self.path / name, lambda stream: stream.write(text.encode()))

    def open_progress(self, keep_episodes: int = 0) -> None:
        """Open progress.csv (and an event file) to append after rows 1 to ``keep_episodes``."""
        kept = kept_progress_rows(self.progress_path, PROGRESS_COLUMNS, keep_episodes)
        text = io.StringIO()
        csv.writer(text).writerows([PROGRESS_COLUMNS, *kept])
        atomic_write(self.progress_path, lambda stream: stream.write(text.getvalue().encode()))
        self._progress_file = self.progress_path.open("a", newline="")
        if kept:
            last = dict(zip(PROGRESS_COLUMNS, kept[-1], strict=True))
            self._last_speed_point = (float(last["env_steps"]), float(last["wall_time"]))
        self._first_step = keep_episodes + 1
        if self.tensorboard:
            self._open_events()

    def append_progress(self, rows: list[dict[str, Any]]) -> None:
        """One update's rows, also as ``train/*`` scalars (step = episode) and its steps/s."""
        csv.DictWriter(self._progress_file, PROGRESS_COLUMNS).writerows(rows)
        self._progress_file.flush()
        if self._events is None or not rows:
            return
        for row in rows:
            values = {f"train/{k}": float(row[k]) for k in SCALAR_COLUMNS}
            self._scalars(int(row["episode"]), values)
        steps, wall = float(rows[-1]["env_steps"]), float(rows[-1]["wall_time"])
        previous_steps, previous_wall = self._last_speed_point
        if wall > previous_wall:
            rate = (steps - previous_steps) / (wall - previous_wall)
            self._scalars(int(rows[-1]["episode"]), {"speed/steps_per_second": rate})
        self._last_speed_point = (steps, wall)
        self._events.flush()

    def _open_events(self) -> None:
        """Scalars as TensorBoard Event protos: 2 us a value, tf.summary's 140 (benchmarks/)."""
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2
        from tensorflow.core.util import event_pb2

        self._pb = event_pb2, summary_pb2
        # Nanoseconds in the name: TensorBoard reads files in name order, a resumed run's last.
        name = f"events.out.tfevents.{time.time_ns()}.{socket.gethostname()}"
        self._events = tf.io.TFRecordWriter(str(self.path / name))
        self._event(file_version="brain.Event:2")
        if self._first_step > 1:  # TensorBoard drops older files' steps >= it, as the CSV does
            start = event_pb2.SessionLog(status=event_pb2.SessionLog.START)
            self._event(step=self._first_step, session_log=start)

    def _event(self, **fields: Any) -> None:
        self._events.write(self._pb[0].Event(wall_time=time.time(), **fields).SerializeToString())

    def _scalars(self, step: int, values: dict[str, float]) -> None:
        """One event at ``step`` holding every finite value under its tag."""
        summary = self._pb[1].Summary
        kept = [summary.Value(tag=t, simple_value=v) for t, v in values.items() if math.isfinite(v)]
        self._event(step=step, summary=summary(value=kept))

    def log_evaluations(self, records: list[dict[str, Any]]) -> None:
        """The evaluations this session made, as ``eval/*`` scalars at their episode."""
        if self._events is None:
            return
        for record in records[self._evaluations_logged :]:
            figures = {k: v for k, v in record.items() if isinstance(v, int | float)}
            values = {f"eval/{k}": float(v) for k, v in figures.items() if k not in POSITION_KEYS}
            if record["episode"] >= self._first_step:
                self._scalars(int(record["episode"]), values)
        self._evaluations_logged = len(records)
        self._events.flush()

    def read_progress(self) -> list[dict[str, str]]:
        with self.progress_path.open(newline="") as stream:
            return list(csv.DictReader(stream))

    def close_progress(self) -> None:
        """Close progress.csv and the event file; the lock stays (summary and plot follow)."""
        if self._progress_file is not None:
            self._progress_file.close()
            self._progress_file = None
        if self._events is not None:
            self._events.close()
            self._events = None

    def close(self) -> None:
        """Close the logs and release the lock (twice is harmless)."""
        self.close_progress()
        if self._unlock is not None:
            self._unlock()

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def checkpoint_prefix(self, episodes: int, naming: str) -> Path:
        return self.checkpoints / checkpoint_name(episodes, naming)

    def save_state(self, arrays: dict[str, np.ndarray], counters: dict[str, float]) -> None:
        """Write the resume state atomically: a failed write keeps the previous one."""
        payload = {**arrays, **{COUNTER_PREFIX + k: np.asarray(v) for k, v in counters.items()}}
        atomic_write(self.state_path, lambda stream: np.savez(stream, **payload))

    def load_state(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The algorithm's arrays and the loop's counters; DamagedRunFileError if damaged."""
        found = checkpoints_of(self.path)
        kept = f"; its last checkpoint, {found[-1][1]}, is an agent as it is" if found else ""
        advice = f"the run cannot continue: start a new run{kept}"
        try:
            data = self.state_path.read_bytes()
            if data[:4] != b"PK\x03\x04":  # an npz is a zip archive
                raise ValueError("not an npz archive")
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                arrays = {key: npz[key] for key in npz.files}
        except FileNotFoundError:
            raise DamagedRunFileError(self.state_path, "missing", advice) from None
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            problem = f"damaged or incomplete ({str(reason).split('. ')[0]})"
            raise DamagedRunFileError(self.state_path, problem, advice) from error
        names = [key for key in arrays if key.startswith(COUNTER_PREFIX)]
        counters = {key.removeprefix(COUNTER_PREFIX): arrays.pop(key) for key in names}
        if not counters:
            raise DamagedRunFileError(self.state_path, "damaged: it holds no counters", advice)
        return arrays, counters

    def check_latest_checkpoint(self, agent_class: Any) -> Path | None:
        """The newest checkpoint's prefix (None if none), loaded: DamagedRunFileError if not."""
        stems = {p.stem for p in self.checkpoints.glob("*") if p.suffix in (".keras", ".config")}
        found = [(n, stem) for stem in stems if (n := checkpoint_episodes(stem)) is not None]
        if not found:
            return None
        prefix = self.checkpoints / max(found)[1]
        advice = (
            f"delete {prefix.name}.keras and {prefix.name}.config from {self.checkpoints} and "
            "resume again (the resume state is intact, and the run saves its next checkpoint "
            "from it), or start a new run"
        )
        files = [Path(f"{prefix}.keras"), Path(f"{prefix}.config")]
        if missing := [file for file in files if not file.is_file()]:
            problem = "missing: the checkpoint's save was cut short"
            raise DamagedRunFileError(missing[0], problem, advice)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a checked pair never warns; a damaged one raises
                agent_class.load(prefix)
        except (ValueError, OSError) as error:
            message = str(error)
            path = next((f for f in files if message.startswith(f"{f}: ")), files[0])
            problem = f"damaged: {message.removeprefix(f'{path}: ')}"
            raise DamagedRunFileError(path, problem, advice) from error
        return prefix

    def plot_learning_curve(self, drawer: Any, title: str, threshold: float | None) -> None:
        """learning_curve.png from progress.csv, by a ``training.learning_curve.CurveDrawer``."""
        png = drawer.png(self.read_progress(), title, threshold)
        atomic_write(self.path / "learning_curve.png", lambda stream: stream.write(png))
