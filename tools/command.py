"""How every command here (submit.py and the tools) fails: one line for a user's mistake.

A mistake on the command line or a path that does not work is one line on stderr naming the
flag or path and the fix, and a non-zero exit; `--debug` shows the traceback instead, and a
bug (any other exception) always does. Ctrl-C and SIGTERM end a command with one line and the
shell's statuses, as the training scripts do. Statuses: 0 done; 1 a check or a file failed;
2 a mistake on the command line (including an output folder that cannot be created);
4 the scores were printed but recording the videos failed; 130 Ctrl-C; 143 SIGTERM.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents import AGENT_CLASSES, AgentFileError, UncheckedFilesWarning, agent_name_of
from training.exits import (
    EXIT_FAILED,
    EXIT_RECORDING_FAILED,
    EXIT_USAGE,
    OneLineParser,
    describe_error,
    stop_status,
    terminate_as_interrupt,
)

__all__ = ["EXIT_FAILED", "EXIT_RECORDING_FAILED", "EXIT_USAGE", "OneLineParser"]
WEIGHTS_FIX = (
    "pass the prefix of an agent's files (PREFIX for PREFIX.keras, with the PREFIX.config "
    "Agent.save writes beside it), saved again if they are damaged"
)
#: The course-file notes already printed by this process: each is said once.
_NOTED: set[str] = set()


class CommandError(Exception):
    """A user's mistake found while the command runs: one line, and the exit status to use."""

    def __init__(self, message: str, status: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.status = status


def output_folder_problem(flag: str, folder: Path) -> str | None:
    """Why an output folder cannot be created (checked before any work starts), or None."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = "a file is in the way" if folder.is_file() else error.strerror or str(error)
        return f"{flag} {folder}: cannot create it ({reason}); pick a folder you can write to"
    return None


def check_output_folders(folders: dict[str, Path | None]) -> None:
    """Create every output folder given (flag -> folder) or raise a usage `CommandError`."""
    for flag, folder in folders.items():
        if folder is not None and (problem := output_folder_problem(flag, folder)):
            raise CommandError(problem, EXIT_USAGE)


def agent_of(agent: str | None, prefix: Path | None, flag: str) -> str:
    """The task: `--agent` if given, else the one the files name (config, or model shape)."""
    if agent is not None:
        return agent
    if prefix is None:
        raise CommandError(f"pass --agent {{{','.join(AGENT_CLASSES)}}} or {flag}", EXIT_USAGE)
    if (name := agent_name_of(prefix)) is not None:
        return name
    load_agent(next(iter(AGENT_CLASSES)), prefix, flag)  # says why the files cannot be used
    raise CommandError(
        f"{flag} {prefix}: cannot tell which task these files are for; pass "
        f"--agent {{{','.join(AGENT_CLASSES)}}}",
        EXIT_USAGE,
    )


def load_agent(agent: str, prefix: Path, flag: str, command: str = "") -> Any:
    """Load a saved agent, or raise a `CommandError` naming the flag its prefix came from.

    Course-style files carry no hash: that is said once per file, as one plain line on
    stderr (`{command}: note: ...`), never as a raw warning with a source line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UncheckedFilesWarning)
        try:
            loaded = AGENT_CLASSES[agent].load(prefix)
        except AgentFileError as error:
            fix = "" if error.names_fix else f"; {WEIGHTS_FIX}"
            raise CommandError(f"{flag} {prefix}: {error}{fix}") from error
    for warning in caught:
        if not issubclass(warning.category, UncheckedFilesWarning):
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
        elif (note := str(warning.message)) not in _NOTED:
            _NOTED.add(note)
            print(f"{command}: note: {note}" if command else f"note: {note}", file=sys.stderr)
    return loaded


def run_command(name: str, body: Callable[[], int], debug: bool, stopped: str = "") -> int:
    """Run a command's work and turn a user's mistake or a stop signal into one line.

    `stopped` is appended to the Ctrl-C/SIGTERM line (e.g. what was, or was not, written)."""
    try:
        with terminate_as_interrupt(), warnings.catch_warnings():
            # load_agent says once, in one line, that course files carry no hash; the loads
            # after it (filming, re-scoring) would repeat it as raw warnings.
            warnings.simplefilter("ignore", UncheckedFilesWarning)
            return body()
    except KeyboardInterrupt as stop:
        signal_name, status = stop_status(stop)
        print(f"{name}: stopped by {signal_name}{stopped}", file=sys.stderr)
        return status
    except (CommandError, OSError) as error:
        if debug:
            raise
        print(f"{name}: error: {describe_error(error)}", file=sys.stderr)
        return error.status if isinstance(error, CommandError) else EXIT_FAILED


def command_parser(name: str, description: str) -> OneLineParser:
    """An argument parser whose mistakes are one line, with the shared `--debug` flag."""
    parser = OneLineParser(prog=f"python -m tools.{name}", name=name, description=description)
    parser.add_argument("--debug", action="store_true", help="show a traceback on any error")
    return parser
