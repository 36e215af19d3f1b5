"""The run folder: settings, progress CSV, checkpoints, resume state, learning curve.

Layout of ``runs/<script>-seed<seed>-<timestamp>/``::

    settings.json            the resolved settings
    command.txt              the command line that started the run (one line per resume)
    progress.csv             one row per training episode (reward, length, losses, wall time)
    events.out.tfevents.*    the same rows as TensorBoard scalars (step = episode), plus
                             steps per second and the greedy evaluations (``--tensorboard``)
    checkpoints/199.{keras,config}   agent pairs the ``agents`` classes load: the course's
                             names (zero-based index of the last episode: 199, 399, ...) or
                             episode_000200.{keras,config} (episodes trained)
    final.{keras,config}     the agent at the end of the run
    resume_state.npz         weights, optimiser state and counters for ``--resume`` (no pickle)
    learning_curve.png       reward per episode and running reward
    summary.json             how the run ended, steps per second, evaluations
    .lock                    the writer's lock (one writer at a time; see run_safety)
"""

from __future__ import annotations

import csv
import errno
import io
import json
import re
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

# The loop, sweeps and tools import the run folder's errors and checks from here.
from training.run_safety import (
    DamagedRunFileError,
    FolderLock,
    RunFolderHeldError,  # noqa: F401 - re-exported
    atomic_write,
    check_newest_checkpoint,
    held_by,  # noqa: F401 - re-exported
    kept_progress_rows,
    read_settings_json,  # noqa: F401 - re-exported
    remove_leftovers,
)
from training.run_scalars import ScalarWriter

PROGRESS_COLUMNS = (
    "episode",
    "update",
    "reward",
    "length",
    "running_reward",
    "actor_loss",
    "critic_loss",
    "entropy",
    "env_steps",
    "wall_time",
)
#: Runs of one script and seed started in the same second get -2, -3, ... suffixes.
MAX_SAME_SECOND_RUNS = 1000
STATE_FILE = "resume_state.npz"
NPZ_MAGIC = b"PK\x03\x04"  # an npz is a zip archive
COUNTER_PREFIX = "counter/"
CHECKPOINT_FOLDER = "checkpoints"
_COURSE_NAME = re.compile(r"\d+")
_EPISODE_NAME = re.compile(r"episode_(\d+)")


def checkpoint_name(episodes: int, naming: str) -> str:
    """The file stem of the checkpoint taken after ``episodes`` episodes: ``199`` (the course's
    zero-based episode index) or ``episode_000200`` (``naming``: the checkpoint_names setting)."""
    return str(episodes - 1) if naming == "course" else f"episode_{episodes:06d}"


def checkpoint_episodes(stem: str) -> int | None:
    """Episodes trained at a checkpoint named ``stem`` (either naming); None for other files."""
    if _COURSE_NAME.fullmatch(stem):
        return int(stem) + 1
    if match := _EPISODE_NAME.fullmatch(stem):
        return int(match.group(1))
    return None


def checkpoints_of(run_dir: Path) -> list[tuple[int, Path]]:
    """(episodes trained, prefix) of every complete checkpoint pair in a run, oldest first."""
    found = []
    for model in (Path(run_dir) / CHECKPOINT_FOLDER).glob("*.keras"):
        episodes = checkpoint_episodes(model.stem)
        if episodes is not None and model.with_suffix(".config").is_file():
            found.append((episodes, model.with_suffix("")))
    return sorted(found)


def early_and_later(run_dir: Path) -> tuple[Path, Path]:
    """The course's comparison for a run, as prefixes the agent classes load: its first and
    last trained checkpoints (199 and 999 for a full course run), or, where it saved at most
    one after training (a run that solved early), its untrained policy and that one (or its
    final agent)."""
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


#: progress.csv's columns that become TensorBoard scalars (the episode is their step).
SCALAR_COLUMNS = tuple(column for column in PROGRESS_COLUMNS if column != "episode")
#: Evaluation record keys that say when it ran, not what it measured.
EVALUATION_POSITION_KEYS = frozenset({"update", "episode", "wall_time"})


def resume_problem(path: Path) -> str | None:
    """Why the folder ``path`` cannot be resumed (as the end of a one-line error), or None."""
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
    """One run's folder; every write is either append-only or atomic (temp file + rename).

    A writer gets one from :meth:`create` or :meth:`open`, which take the folder's lock for
    the object's lifetime (until :meth:`close`, or the process ends): a second writer is
    refused with :class:`RunFolderHeldError`. Built directly, it reads and writes without the lock.
    """

    def __init__(self, path: Path, tensorboard: bool = False) -> None:
        self.path = Path(path)
        self.checkpoints = self.path / CHECKPOINT_FOLDER
        self.progress_path = self.path / "progress.csv"
        self.tensorboard = tensorboard
        self._progress_file = None
        self._writer: Any = None
        self._scalars: ScalarWriter | None = None
        self._last_speed_point = (0.0, 0.0)  # (env_steps, wall_time) of the last logged row
        self._first_step = 1  # the first episode this session logs
        self._evaluations_logged = 0  # evaluation records already written as scalars
        self._lock: FolderLock | None = None
        #: One line to show the user when the lock was taken over from a killed holder.
        self.notice: str | None = None

    @classmethod
    def create(
        cls, runs_dir: Path, name: str, settings_json: dict[str, Any], tensorboard: bool
    ) -> RunFolder:
        """A new, uniquely named folder ``{runs_dir}/{name}-{timestamp}`` holding
        settings.json, locked for this writer."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = Path(runs_dir) / f"{name}-{stamp}"
        for suffix in range(1, MAX_SAME_SECOND_RUNS + 1):
            path = base if suffix == 1 else base.with_name(f"{base.name}-{suffix}")
            try:
                path.mkdir(parents=True)
                break
            except FileExistsError:
                continue
        else:
            raise FileExistsError(f"{base}: {MAX_SAME_SECOND_RUNS} runs started this second")
        run = cls(path, tensorboard=tensorboard)
        run._take_lock()
        try:
            run.write_json("settings.json", settings_json)
        except BaseException:
            run.close()
            raise
        return run

    @classmethod
    def open(cls, path: Path, tensorboard: bool) -> RunFolder:
        """The existing run folder ``path``, locked for this writer, to continue it
        (``--resume``); RunFolderHeldError at once if another writer holds it. Temporary files a
        killed writer left are removed."""
        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(errno.ENOENT, "no such run folder", str(path))
        run = cls(path, tensorboard=tensorboard)
        run._take_lock()
        remove_leftovers(run.path, run.checkpoints)
        return run

    def _take_lock(self) -> None:
        self._lock = FolderLock(self.path)
        self.notice = self._lock.notice

    @property
    def locked(self) -> bool:
        """Whether this object holds the folder's lock."""
        return self._lock is not None and self._lock.held

    def record_command(self, command: str) -> None:
        """Append the command line that started (or resumed) the run to command.txt."""
        with (self.path / "command.txt").open("a") as stream:
            stream.write(command + "\n")

    def write_json(self, name: str, data: dict[str, Any]) -> None:
        text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        atomic_write(self.path / name, lambda stream: stream.write(text.encode()))

    # --- progress.csv ----------------------------------------------------------------------
    def open_progress(self, keep_episodes: int = 0) -> None:
        """Open the CSV (and with ``tensorboard`` a new event file) for appending, first
        dropping rows after ``keep_episodes`` (rows a killed run wrote after its last saved
        state); DamagedRunFileError if the rows up to it are not episodes 1 to ``keep_episodes``."""
        kept = kept_progress_rows(self.progress_path, PROGRESS_COLUMNS, keep_episodes)
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(PROGRESS_COLUMNS)
        writer.writerows(kept)
        atomic_write(self.progress_path, lambda stream: stream.write(text.getvalue().encode()))
        self._progress_file = self.progress_path.open("a", newline="")
        self._writer = csv.DictWriter(self._progress_file, PROGRESS_COLUMNS)
        if kept:
            last = dict(zip(PROGRESS_COLUMNS, kept[-1], strict=True))
            self._last_speed_point = (float(last["env_steps"]), float(last["wall_time"]))
        self._first_step = keep_episodes + 1
        if self.tensorboard:
            self._scalars = ScalarWriter(self.path, self._first_step)

    def append_progress(self, rows: list[dict[str, Any]]) -> None:
        """Append one update's rows to progress.csv and, with ``tensorboard``, the same
        values as scalars ``train/<column>`` at step = episode, plus the update's
        ``speed/steps_per_second``."""
        self._writer.writerows(rows)
        self._progress_file.flush()
        if self._scalars is None or not rows:
            return
        for row in rows:
            self._scalars.write(
                int(row["episode"]), {f"train/{k}": float(row[k]) for k in SCALAR_COLUMNS}
            )
        last = rows[-1]
        steps, wall = float(last["env_steps"]), float(last["wall_time"])
        previous_steps, previous_wall = self._last_speed_point
        if wall > previous_wall:
            rate = (steps - previous_steps) / (wall - previous_wall)
            self._scalars.write(int(last["episode"]), {"speed/steps_per_second": rate})
        self._last_speed_point = (steps, wall)
        self._scalars.flush()

    def log_evaluations(self, records: list[dict[str, Any]]) -> None:
        """The greedy evaluations not logged yet, as scalars ``eval/<figure>`` at their episode
        (a resumed run's restored evaluations were logged by the session that made them)."""
        if self._scalars is None:
            return
        for record in records[self._evaluations_logged :]:
            if record["episode"] <= self._first_step - 1:
                continue
            values = {
                f"eval/{key}": float(value)
                for key, value in record.items()
                if key not in EVALUATION_POSITION_KEYS and isinstance(value, int | float)
            }
            self._scalars.write(int(record["episode"]), values)
        self._evaluations_logged = len(records)
        self._scalars.flush()

    def read_progress(self) -> list[dict[str, str]]:
        with self.progress_path.open(newline="") as stream:
            return list(csv.DictReader(stream))

    def close_progress(self) -> None:
        """Close progress.csv and the event file; the lock stays (summary and plot follow)."""
        if self._progress_file is not None:
            self._progress_file.close()
            self._progress_file = None
        if self._scalars is not None:
            self._scalars.close()
            self._scalars = None

    def close(self) -> None:
        """Close the logs and release the folder's lock (safe to call twice)."""
        self.close_progress()
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- agents and resume state -------------------------------------------------------------
    def checkpoint_prefix(self, episodes: int, naming: str) -> Path:
        return self.checkpoints / checkpoint_name(episodes, naming)

    @property
    def final_prefix(self) -> Path:
        return self.path / "final"

    @property
    def state_path(self) -> Path:
        return self.path / STATE_FILE

    def save_state(self, arrays: dict[str, np.ndarray], counters: dict[str, float]) -> None:
        """Write the resume state atomically: a failed write keeps the previous one."""
        payload = {**arrays, **{COUNTER_PREFIX + k: np.asarray(v) for k, v in counters.items()}}
        atomic_write(self.state_path, lambda stream: np.savez(stream, **payload))

    def load_state(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The algorithm's arrays and the loop's counters; DamagedRunFileError if the file is
        missing, cut short or not a resume state."""
        advice = self._state_advice()
        try:
            if self.state_path.read_bytes()[:4] != NPZ_MAGIC:
                problem = "damaged or incomplete (not an npz archive)"
                raise DamagedRunFileError(self.state_path, problem, advice)
            with np.load(self.state_path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files if not k.startswith(COUNTER_PREFIX)}
                counters = {
                    k[len(COUNTER_PREFIX) :]: data[k]
                    for k in data.files
                    if k.startswith(COUNTER_PREFIX)
                }
        except FileNotFoundError:
            raise DamagedRunFileError(self.state_path, "missing", advice) from None
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
            if isinstance(error, DamagedRunFileError):
                raise
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            problem = f"damaged or incomplete ({str(reason).split('. ')[0]})"
            raise DamagedRunFileError(self.state_path, problem, advice) from error
        if not counters:
            raise DamagedRunFileError(self.state_path, "damaged: it holds no counters", advice)
        return arrays, counters

    def _state_advice(self) -> str:
        found = checkpoints_of(self.path)
        kept = f"; its last checkpoint, {found[-1][1]}, is an agent as it is" if found else ""
        return f"the run cannot continue: start a new run{kept}"

    def check_latest_checkpoint(self, agent_class: Any) -> Path | None:
        """Load the newest checkpoint with ``agent_class.load`` (what resuming builds on);
        DamagedRunFileError if half of its pair is missing or it does not load. Returns its
        prefix, or None when the run has no checkpoint yet."""
        return check_newest_checkpoint(
            self.checkpoints, checkpoint_episodes, agent_class, self._checkpoint_advice
        )

    def _checkpoint_advice(self, prefix: Path) -> str:
        return (
            f"delete {prefix.name}.keras and {prefix.name}.config from {self.checkpoints} and "
            "resume again (the resume state is intact, and the run saves its next checkpoint "
            "from it), or start a new run"
        )

    # --- learning curve ----------------------------------------------------------------------
    def plot_learning_curve(self, title: str, threshold: float | None = None) -> Path:
        """learning_curve.png from progress.csv: reward per episode and the running reward."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = self.read_progress()
        episodes = [int(r["episode"]) for r in rows]
        figure, axes = plt.subplots(figsize=(8, 4.5))
        axes.plot(
            episodes, [float(r["reward"]) for r in rows], lw=0.6, alpha=0.4, label="episode reward"
        )
        axes.plot(
            episodes, [float(r["running_reward"]) for r in rows], lw=1.8, label="running reward"
        )
        if threshold is not None:
            axes.axhline(threshold, color="grey", ls="--", lw=1, label=f"solved ({threshold:g})")
        axes.set(xlabel="episode", ylabel="reward", title=title)
        axes.legend(loc="upper left")
        figure.tight_layout()
        path = self.path / "learning_curve.png"
        atomic_write(path, lambda stream: figure.savefig(stream, format="png", dpi=100))
        plt.close(figure)
        return path
