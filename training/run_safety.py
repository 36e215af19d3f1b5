"""Nothing lost in a run folder: one writer at a time, atomic writes, damaged files named.

The lock is ``fcntl.flock`` on ``RUN/.lock``: the kernel drops it with its holder, so no timeout;
the file names the holder (pid, host) for the messages, and decides where there is no flock."""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import functools
import json
import os
import re
import socket
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

LOCK_FILE = ".lock"
UNKNOWN_PID = -1  # what held_by returns for a holder that has not recorded its pid yet
#: What killed writers leave: atomic_write's, older ``.{name}.tmp[.npz]`` and the agents' files.
_LEFTOVER = re.compile(r"\..+\.tmp(\.npz|\.keras|\.config)?")


class RunFolderHeldError(RuntimeError):
    """Another process (or another writer in this one) holds the run folder's lock."""

    def __init__(self, folder: Path, pid: int, host: str | None = None) -> None:
        self.folder, self.pid, self.host = Path(folder), pid, host
        where = "" if host in (None, socket.gethostname()) else f" on {host}"
        who, then = f"process {pid}{where}", f"wait for it to finish or stop it (kill {pid})"
        if pid == UNKNOWN_PID:
            who = "another process (it is starting: its pid is not recorded yet)"
            then = "wait for it to finish"
        super().__init__(
            f"{folder}: the run folder is in use by {who}, which is writing to it; "
            f"{then}, then resume"
        )


class DamagedRunFileError(ValueError):
    """A run folder's file is missing, cut short or not what it should be: one line says so."""

    def __init__(self, path: Path, problem: str, advice: str) -> None:
        super().__init__(f"{path}: " + " ".join(f"{problem}; {advice}".split()))


def read_run_file(path: Path, advice: str, missing: str = "missing") -> str:
    """The text of a run folder's file; DamagedRunFileError when it is missing or unreadable."""
    try:
        return Path(path).read_bytes().decode()
    except FileNotFoundError:
        raise DamagedRunFileError(path, missing, advice) from None
    except (OSError, UnicodeDecodeError) as error:
        problem = error.strerror if isinstance(error, OSError) else "not text"
        raise DamagedRunFileError(path, f"unreadable ({problem})", advice) from error


def _flock(fd: int, operation: int) -> bool | None:
    """True if locked, False if another open file holds the lock, None without flock."""
    deadline = time.monotonic() + 0.2  # a lock held for an instant (held_by's) is waited for
    while True:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        except OSError as error:
            if error.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                return None
            raise


def _contend(fd: int, operation: int) -> tuple[bool, dict[str, Any]]:
    """Whether the lock was taken, and the pid and host the lock file records ({} if none)."""
    taken = _flock(fd, operation)
    record: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        record = json.loads(os.pread(fd, 4096, 0) or b"{}")
    record = record if isinstance(record, dict) and isinstance(record.get("pid"), int) else {}
    if taken is None:  # no flock: a recorded process alive on this host holds the folder
        taken = True
        if record.get("host") == socket.gethostname():
            try:
                os.kill(record["pid"], 0)
                taken = False
            except OSError as error:
                taken = error.errno != errno.EPERM  # EPERM: alive, another user's
    return taken, record


def _release(fd: int) -> None:
    """Empty the lock file (a clean release names no one), unlock and close it."""
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)  # a forked child sharing the file keeps no lock
    os.close(fd)


def lock_folder(folder: Path, owner: object) -> tuple[weakref.finalize, str | None]:
    """Lock ``folder`` while ``owner`` lives: (the release, a notice if a killed holder's lock
    was taken over); RunFolderHeldError at once if a writer holds it."""
    folder = Path(folder)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        taken, previous = _contend(fd, fcntl.LOCK_EX)
        if not taken:
            raise RunFolderHeldError(folder, previous.get("pid", UNKNOWN_PID), previous.get("host"))
        since = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        record = {"pid": os.getpid(), "host": socket.gethostname(), "since": since}
        os.ftruncate(fd, 0)  # never deleted: two files of one name would take two locks
        os.pwrite(fd, json.dumps(record).encode(), 0)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        raise
    release = weakref.finalize(owner, _release, fd)  # also run with its owner or at exit
    if not previous:
        return release, None
    return release, (
        f"{folder}: took over the lock left by process {previous['pid']} on "
        f"{previous.get('host', 'an unknown host')}, which ended without releasing it "
        "(killed, or the machine stopped); continuing from the last saved state"
    )


def held_by(folder: Path) -> int | None:
    """The pid of the writer holding the run folder (UNKNOWN_PID while it starts), or None."""
    try:
        fd = os.open(Path(folder) / LOCK_FILE, os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        taken, record = _contend(fd, fcntl.LOCK_SH)  # a shared lock, released by the close
        return None if taken else record.get("pid", UNKNOWN_PID)
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Replace ``path`` with what ``write(stream)`` writes, or leave it whole (temporary file,
    fsync, rename, fsync the folder). An OSError with no file name (a full disk) names ``path``."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        with temporary.open("xb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(folder)
        except OSError as error:  # file systems that cannot fsync a folder skip it
            if error.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
                raise
        finally:
            os.close(folder)
    except BaseException as error:
        with contextlib.suppress(OSError):
            temporary.unlink()
        if isinstance(error, OSError) and error.filename is None and error.errno:
            raise OSError(error.errno, os.strerror(error.errno), str(path)) from error
        raise


def remove_leftovers(*folders: Path) -> None:
    """Delete the temporary files killed writers left (call it holding the lock)."""
    for folder in map(Path, folders):
        for path in folder.iterdir() if folder.is_dir() else ():
            if _LEFTOVER.fullmatch(path.name) and path.is_file():
                path.unlink(missing_ok=True)


def read_settings_json(path: Path) -> dict[str, Any]:
    """The settings of a run folder (or its settings.json); DamagedRunFileError if damaged."""
    path = Path(path)
    folder, file = (path, path / "settings.json") if path.is_dir() else (path.parent, path)
    told = " (command.txt holds the command that started this one)"
    advice = "restore it, or start a new run" + (told if (folder / "command.txt").is_file() else "")
    text = read_run_file(file, advice)
    try:
        settings = json.loads(text)
    except ValueError as error:
        problem = "empty" if not text.strip() else f"not valid JSON ({error})"
        raise DamagedRunFileError(file, f"damaged or incomplete: {problem}", advice) from error
    if not isinstance(settings, dict):
        problem = f"damaged: holds a JSON {type(settings).__name__}, not the run's settings"
        raise DamagedRunFileError(file, problem, advice)
    return settings


def kept_progress_rows(path: Path, columns: tuple[str, ...], keep: int) -> list[list[str]]:
    """Rows 1 to ``keep`` of progress.csv, without a killed run's later rows or cut last line;
    DamagedRunFileError unless they are each episode once, in order, as rows of numbers."""
    if keep == 0:
        return []
    advice = (
        "the resume state is intact but the episode history is not: restore the file, or "
        "start a new run"
    )
    damaged = functools.partial(DamagedRunFileError, path, advice=advice)
    missing = f"missing, but the resume state is at episode {keep}"
    lines = read_run_file(path, advice, missing).splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines.pop()  # the row being written when the run was killed
    rows = list(csv.reader(lines))
    if not rows or tuple(rows[0]) != columns:
        raise damaged("damaged: its first line is not progress.csv's header")
    kept: list[list[str]] = []
    for line, row in enumerate(rows[1:], start=2):
        try:
            numbers = [float(value) for value in row]
        except ValueError:
            numbers = []
        if len(numbers) != len(columns):
            raise damaged(f"damaged: line {line} is not a complete row of numbers")
        if numbers[0] > keep:
            continue
        if numbers[0] != len(kept) + 1:
            raise damaged(f"damaged: line {line} holds episode {row[0]}, expected {len(kept) + 1}")
        kept.append(row)
    if len(kept) != keep:
        raise damaged(
            f"incomplete: it holds episodes 1 to {len(kept)}, the resume state is at episode {keep}"
        )
    return kept
