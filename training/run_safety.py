"""Nothing lost in a run folder: one writer at a time, atomic writes, damaged files named.

The lock is ``fcntl.flock`` on ``RUN/.lock``. The kernel releases it when its holder ends in
any way (exit, crash, SIGKILL, and with the machine itself), so a lock never outlives its
process and no timeout is needed. The file also records the holder's pid and host: a second
writer is told who holds the folder, and a holder that ended without releasing the lock
(killed) is named when the next writer takes it over. The lock is per open file, so a second
writer in the same process is refused too. On a file system without ``flock`` the recorded
pid is checked instead (a process alive on this host holds the folder).

Writes that replace a file go through a temporary file in the same folder, flushed and
fsynced before the rename, and the folder is fsynced after it: a crash or a full disk leaves
the previous file whole. Files a damaged or foreign folder holds are reported by
:class:`DamagedRunFileError`, one line naming the file and what to do.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import json
import os
import re
import secrets
import socket
import time
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

LOCK_FILE = ".lock"
#: The pid ``held_by`` returns for a held folder whose holder has not recorded its pid yet.
UNKNOWN_PID = -1
#: A lock held for an instant by ``held_by`` (or a holder recording its pid) is waited for.
LOCK_RETRY_SECONDS = 0.2
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}
#: Temporary files a killed writer leaves: ours (``.{name}.{pid}.{hex}.tmp``, and the older
#: ``.{name}.tmp[.npz]``) and the agents' (``.{stem}.{hex}.tmp.keras`` / ``.tmp.config``).
_LEFTOVER = re.compile(r"\..+\.tmp(\.npz|\.keras|\.config)?")


class RunFolderHeldError(RuntimeError):
    """Another process (or another writer in this one) holds the run folder's lock."""

    def __init__(self, folder: Path, pid: int, host: str | None = None) -> None:
        self.folder, self.pid, self.host = Path(folder), pid, host
        if pid == UNKNOWN_PID:
            who = "another process (it is starting: its pid is not recorded yet)"
            then = "wait for it to finish"
        else:
            where = "" if host in (None, socket.gethostname()) else f" on {host}"
            who = f"process {pid}{where}"
            then = f"wait for it to finish or stop it (kill {pid})"
        super().__init__(
            f"{folder}: the run folder is in use by {who}, which is writing to it; "
            f"{then}, then resume"
        )


class DamagedRunFileError(ValueError):
    """A file of a run folder is missing, cut short or not what it should be."""

    def __init__(self, path: Path, problem: str, advice: str) -> None:
        self.path, self.problem, self.advice = Path(path), one_line(problem), one_line(advice)
        super().__init__(f"{path}: {self.problem}; {self.advice}")


def one_line(text: str) -> str:
    """``text`` with its line breaks and runs of spaces made single spaces."""
    return " ".join(str(text).split())


# --- the lock --------------------------------------------------------------------------------
def _holder_record() -> bytes:
    since = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since}).encode()


def _read_holder(fd: int) -> dict[str, Any] | None:
    """The pid and host a lock file records, or None when it is empty or unreadable."""
    try:
        record = json.loads(os.pread(fd, 4096, 0) or b"null")
    except (OSError, ValueError):
        return None
    if isinstance(record, dict) and isinstance(record.get("pid"), int):
        return record
    return None


def _alive_here(record: dict[str, Any] | None) -> bool:
    """Whether the recorded holder is a live process on this host (the check without flock)."""
    if record is None or record.get("host") != socket.gethostname():
        return False
    try:
        os.kill(record["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _try_flock(fd: int, operation: int) -> bool | None:
    """True if the lock was taken, False if another open file holds it, None without flock.

    A conflict is retried for :data:`LOCK_RETRY_SECONDS`, so a ``held_by`` probe that holds
    the lock for an instant does not refuse a writer."""
    deadline = time.monotonic() + LOCK_RETRY_SECONDS
    while True:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        except OSError as error:
            if error.errno in _NO_FLOCK:
                return None
            raise


def _held_record(fd: int) -> dict[str, Any]:
    """The holder's record, waiting briefly for one that has just taken the lock."""
    deadline = time.monotonic() + LOCK_RETRY_SECONDS
    while (record := _read_holder(fd)) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return record or {"pid": UNKNOWN_PID}


def _release(fd: int) -> None:
    """Empty the lock file (a clean release leaves no name behind), unlock and close it."""
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


class FolderLock:
    """The writer's lock on one run folder, held until :meth:`release` or the process ends.

    ``notice`` is one line when the lock was taken over from a holder that ended without
    releasing it (killed, or the machine stopped), else None. The lock file is never deleted:
    deleting a flock'ed file lets two writers lock two different files of one name.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        fd = os.open(self.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            taken = _try_flock(fd, fcntl.LOCK_EX)
            previous = _read_holder(fd)
            if taken is False:
                record = _held_record(fd)
                raise RunFolderHeldError(self.folder, record["pid"], record.get("host"))
            if taken is None and _alive_here(previous):
                raise RunFolderHeldError(self.folder, previous["pid"], previous.get("host"))
            os.ftruncate(fd, 0)
            os.pwrite(fd, _holder_record(), 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self.notice: str | None = None
        if previous is not None:
            self.notice = (
                f"{self.folder}: took over the lock left by process {previous['pid']} on "
                f"{previous.get('host', 'an unknown host')}, which ended without releasing it "
                "(killed, or the machine stopped); continuing from the last saved state"
            )
        # Released by release(), when the lock is collected, or at interpreter exit; the
        # kernel releases it in every other case (os._exit, SIGKILL).
        self._finalizer = weakref.finalize(self, _release, fd)

    @property
    def held(self) -> bool:
        return self._finalizer.alive

    def release(self) -> None:
        self._finalizer()


def held_by(folder: Path) -> int | None:
    """The pid of the process that holds the run folder ``folder`` (:data:`UNKNOWN_PID` if it
    has not recorded one yet), or None when no writer holds it. Sweeps and tools call this
    before writing into a folder; compare the result with None (-1 is a holder too)."""
    try:
        fd = os.open(Path(folder) / LOCK_FILE, os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        taken = _try_flock(fd, fcntl.LOCK_SH)
        if taken:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        if taken is None:
            record = _read_holder(fd)
            return record["pid"] if _alive_here(record) else None
        return _held_record(fd)["pid"]
    finally:
        os.close(fd)


# --- atomic writes ---------------------------------------------------------------------------
def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (file systems that cannot fsync a folder skip it)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
            raise
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Replace ``path`` with what ``write(stream)`` writes, or leave it as it was.

    The temporary file is in the same folder (so the rename is atomic), named after this
    process (a killed writer's leftovers are removed by :func:`remove_leftovers`). An OSError
    without a file name (a full disk inside ``write``) is raised again naming ``path``.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with temporary.open("xb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
        fsync_folder(path.parent)
    except BaseException as error:
        with contextlib.suppress(OSError):
            temporary.unlink()
        if isinstance(error, OSError) and error.filename is None and error.errno:
            raise OSError(error.errno, os.strerror(error.errno), str(path)) from error
        raise


def remove_leftovers(*folders: Path) -> list[Path]:
    """Delete the temporary files killed writers left in ``folders`` (call it holding the
    lock: then no live writer owns one); returns what was removed."""
    removed = []
    for folder in folders:
        if not Path(folder).is_dir():
            continue
        for path in Path(folder).iterdir():
            if _LEFTOVER.fullmatch(path.name) and path.is_file():
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
    return removed


# --- settings.json ---------------------------------------------------------------------------
def read_settings_json(path: Path) -> dict[str, Any]:
    """The settings a run folder ``path`` (or its settings.json) holds; DamagedRunFileError when
    the file is missing, unreadable, not JSON or not an object."""
    path = Path(path)
    folder, file = (path, path / "settings.json") if path.is_dir() else (path.parent, path)
    advice = "restore it, or start a new run" + (
        " (command.txt holds the command that started this one)"
        if (folder / "command.txt").is_file()
        else ""
    )
    try:
        text = file.read_text()
    except FileNotFoundError:
        raise DamagedRunFileError(file, "missing", advice) from None
    except (OSError, UnicodeDecodeError) as error:
        problem = error.strerror if isinstance(error, OSError) else "not text"
        raise DamagedRunFileError(file, f"unreadable ({problem})", advice) from error
    try:
        settings = json.loads(text)
    except ValueError as error:
        problem = "empty" if not text.strip() else f"not valid JSON ({error})"
        raise DamagedRunFileError(file, f"damaged or incomplete: {problem}", advice) from error
    if not isinstance(settings, dict):
        raise DamagedRunFileError(
            file, f"damaged: holds a JSON {type(settings).__name__}, not the run's settings", advice
        )
    return settings


# --- progress.csv ----------------------------------------------------------------------------
PROGRESS_ADVICE = (
    "the resume state is intact but the episode history is not: restore the file, or start "
    "a new run"
)


def kept_progress_rows(path: Path, columns: tuple[str, ...], keep: int) -> list[list[str]]:
    """The rows of progress.csv for episodes 1 to ``keep`` (the resumed state's), in order.

    Rows after ``keep`` (a killed run logged them after its last saved state) and a last line
    cut short by a kill are dropped; DamagedRunFileError if the file is missing, its header
    is not ``columns``, or the rows up to ``keep`` are not each episode once, in order,
    as complete rows of numbers."""
    if keep == 0:
        return []
    try:
        text = Path(path).read_bytes().decode()
    except FileNotFoundError:
        raise DamagedRunFileError(
            path, f"missing, but the resume state is at episode {keep}", PROGRESS_ADVICE
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        problem = error.strerror if isinstance(error, OSError) else "not text"
        raise DamagedRunFileError(path, f"unreadable ({problem})", PROGRESS_ADVICE) from error
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines.pop()  # the row being written when the run was killed
    rows = list(csv.reader(lines))
    if not rows or tuple(rows[0]) != columns:
        raise DamagedRunFileError(
            path, "damaged: its first line is not progress.csv's header", PROGRESS_ADVICE
        )
    kept: list[list[str]] = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(columns) or not all(map(_is_number, row)):
            raise DamagedRunFileError(
                path, f"damaged: line {line} is not a complete row of numbers", PROGRESS_ADVICE
            )
        episode = float(row[0])
        if episode > keep:
            continue
        if episode != len(kept) + 1:
            raise DamagedRunFileError(
                path,
                f"damaged: line {line} holds episode {row[0]}, expected {len(kept) + 1}",
                PROGRESS_ADVICE,
            )
        kept.append(row)
    if len(kept) != keep:
        raise DamagedRunFileError(
            path,
            f"incomplete: it holds episodes 1 to {len(kept)}, the resume state is at "
            f"episode {keep}",
            PROGRESS_ADVICE,
        )
    return kept


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --- checkpoints -----------------------------------------------------------------------------
def check_newest_checkpoint(
    folder: Path,
    episodes_of: Callable[[str], int | None],
    agent_class: Any,
    advice: Callable[[Path], str],
) -> Path | None:
    """Load the newest checkpoint in ``folder`` (by ``episodes_of`` its stem) with
    ``agent_class.load``; DamagedRunFileError naming the file if half of the pair is missing
    (a save cut short) or it does not load. Returns its prefix, or None if there is none."""
    stems = {
        path.stem: episodes
        for path in Path(folder).glob("*")
        if path.suffix in (".keras", ".config") and (episodes := episodes_of(path.stem)) is not None
    }
    if not stems:
        return None
    prefix = Path(folder) / max(stems, key=stems.__getitem__)
    files = [prefix.with_name(prefix.name + suffix) for suffix in (".keras", ".config")]
    for file in files:
        if not file.is_file():
            problem = "missing: the checkpoint's save was cut short"
            raise DamagedRunFileError(file, problem, advice(prefix))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a checked pair never warns; a damaged one raises
            agent_class.load(prefix)
    except (ValueError, OSError) as error:
        message, path = one_line(error), files[0]
        for file in files:
            if message.startswith(f"{file}: "):
                message, path = message[len(f"{file}: ") :], file
        raise DamagedRunFileError(path, f"damaged: {message}", advice(prefix)) from error
    return prefix
