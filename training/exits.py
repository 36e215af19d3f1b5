"""How every command ends: exit statuses, stop signals and one-line errors, in one light module
so the training scripts, ``tools/`` and ``submit.py`` agree on what a status means."""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
import typing
from typing import Any

EXIT_FAILED = 1  # a check or a file failed, e.g. a damaged or unwritable file
EXIT_USAGE = 2  # a mistake on the command line: a bad flag, an unusable path, a held run folder
EXIT_DIVERGED = 3  # a loss, gradient or weight became NaN or infinite
EXIT_RECORDING_FAILED = 4  # tools.evaluate --record: scores printed, videos not written
EXIT_INTERRUPTED = 130  # the shell's convention for Ctrl-C (128 + SIGINT)
EXIT_TERMINATED = 143  # and for SIGTERM (128 + SIGTERM): timeout, docker stop, schedulers
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM, which ends a command as Ctrl-C does (with its own exit status)."""


def stop_status(stop: KeyboardInterrupt) -> tuple[str, int]:
    """The signal's name as a user knows it, and the exit status it ends a command with."""
    if isinstance(stop, Terminated):
        return "SIGTERM", EXIT_TERMINATED
    return "Ctrl-C", EXIT_INTERRUPTED


@contextlib.contextmanager
def _handling(handlers: dict[signal.Signals, Any]):
    """Install ``handlers`` for the block (only the main thread may)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, handler) for number, handler in handlers.items()}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _raise_terminated(number: int, frame: Any) -> None:
    raise Terminated


def terminate_as_interrupt() -> contextlib.AbstractContextManager:
    """Make SIGTERM raise :class:`Terminated` inside the block, so it saves like Ctrl-C."""
    return _handling({signal.SIGTERM: _raise_terminated})


@contextlib.contextmanager
def deferred_interrupt(reraise: bool = True):
    """Hold Ctrl-C and SIGTERM until the block ends, so a write and its bookkeeping happen
    together; then raise the first of them (unless ``reraise`` is off)."""
    received: list[int] = []
    with _handling({number: lambda n, _: received.append(n) for number in STOP_SIGNALS}):
        yield
    if received and reraise:
        raise Terminated if received[0] == signal.SIGTERM else KeyboardInterrupt


def describe_error(error: BaseException) -> str:
    """An error as one line: an OSError's path and reason, otherwise its message."""
    if isinstance(error, OSError) and error.strerror:
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}{error.strerror}"
    return str(error)


class OneLineParser(argparse.ArgumentParser):
    """argparse whose mistakes are one line naming the flag (not the whole usage), exit 2;
    abbreviated flags are refused (``--episodes`` never means ``--episodes-per-update``)."""

    def __init__(self, *args: Any, name: str, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.name = name

    def error(self, message: str) -> typing.NoReturn:
        self.exit(EXIT_USAGE, f"{self.name}: error: {message}\n")
