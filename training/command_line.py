"""A script's command line: ``--preset``, ``--resume`` and ``--debug``, then one flag per
settings field (tyro), checked before anything starts.

A mistake exits 2 with one line naming the flag; a damaged settings.json of a run to resume
exits 1 naming the file.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path

from training.exits import EXIT_FAILED, OneLineParser
from training.runs import DamagedRunFileError, read_settings_json, resume_problem
from training.settings import RunSettings, Script, SettingError, as_flag, flag_of
from training.tasks import TASKS


@dataclass(frozen=True)
class Command:
    """What the command line asked for: settings, the run folder to resume (if any), and
    whether errors should show their traceback."""

    settings: RunSettings
    resume: Path | None
    debug: bool = False


def parse_command(script: Script, argv: list[str] | None = None) -> Command:
    """``--preset``, ``--resume`` and ``--debug``, then one flag per settings field (tyro),
    checked before anything starts: a mistake exits 2 with one line naming the flag.

    Flags override the preset. With ``--resume`` the run keeps its settings.json: only the
    fields in ``RESUMABLE`` may change (e.g. ``--max-episodes`` to train longer)."""
    import tyro

    args = list(sys.argv[1:] if argv is None else argv)
    prog = f"python -m training.{script.name}"
    front = OneLineParser(prog=prog, name=script.name, add_help=False)
    front.add_argument("--preset", choices=tuple(script.presets), default=None)
    front.add_argument("--resume", type=Path, default=None)
    front.add_argument("--debug", action="store_true")
    known, rest = front.parse_known_args(args)
    description = (
        f"{inspect.cleandoc(script.description or script.settings_class.__doc__ or '')}\n\n"
        f"--preset NAME (default {script.default_preset}):\n\n{script.describe_presets()}\n\n"
        "--resume RUN_DIR: continue a run with its settings (only "
        f"{', '.join(map(flag_of, script.settings_class.RESUMABLE))} may change); "
        "--debug: show a traceback on any error"
    )
    try:
        if known.resume is None:
            agent = _agent_given(rest)
            defaults = script.preset(known.preset, **({"agent": agent} if agent else {}))
        else:
            if known.preset is not None:
                front.error("--preset cannot be combined with --resume: a run keeps its settings")
            defaults = stored_settings(front, script, known.resume)
        settings = tyro.cli(
            script.settings_class, default=defaults, args=rest, prog=prog, description=description
        )
    except SettingError as error:
        front.error(str(error))
    if known.resume is not None:
        _refuse_locked_changes(front, defaults, settings)
    return Command(settings, known.resume, known.debug)


def _agent_given(args: list[str]) -> str | None:
    """The ``--agent`` value on the command line, if any: the preset depends on it."""
    for i, word in enumerate(args):
        if word == "--agent" and i + 1 < len(args):
            return args[i + 1] if args[i + 1] in TASKS else None
        if word.startswith("--agent="):
            return word.split("=", 1)[1] if word.split("=", 1)[1] in TASKS else None
    return None


def _refuse_locked_changes(parser: OneLineParser, stored: RunSettings, given: RunSettings) -> None:
    changed = [
        f.name
        for f in dataclasses.fields(stored)
        if getattr(given, f.name) != getattr(stored, f.name) and f.name not in stored.RESUMABLE
    ]
    if changed:
        differences = ", ".join(
            f"{as_flag(name, getattr(given, name))} (the run has "
            f"{as_flag(name, getattr(stored, name))})"
            for name in changed
        )
        parser.error(
            f"--resume keeps the run's settings, refused: {differences}; drop "
            f"{'it' if len(changed) == 1 else 'them'} or start a new run (a resume may change "
            f"only {', '.join(map(flag_of, stored.RESUMABLE))})"
        )


def stored_settings(parser: OneLineParser, script: Script, resume: Path) -> RunSettings:
    """The settings of the run in ``resume``, or a one-line error saying why it cannot go on
    (exit 2 for a wrong path, 1 for a damaged settings.json)."""
    if problem := resume_problem(resume):
        parser.error(f"--resume {resume}: {problem}")
    try:
        stored = read_settings_json(resume)
    except DamagedRunFileError as error:
        parser.exit(EXIT_FAILED, f"{script.name}: error: {error}\n")
    if not isinstance(stored, dict) or stored.get("script") != script.name:
        name = stored.get("script") if isinstance(stored, dict) else None
        parser.error(
            f"--resume {resume}: a run of {name}, not {script.name}: resume it with "
            f"python -m training.{name}"
        )
    try:
        return script.settings_class.from_json(stored)
    except (SettingError, TypeError) as error:
        parser.exit(
            EXIT_FAILED,
            f"{script.name}: error: {resume / 'settings.json'}: not valid ({error}); "
            "start a new run\n",
        )


def runs_dir_problem(settings: RunSettings) -> str | None:
    """Why the folder for new runs cannot be created (checked before TensorFlow loads)."""
    try:
        Path(settings.runs_dir).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return (
            f"--runs-dir {settings.runs_dir}: cannot create it ({error.strerror}); "
            "pick a folder you can write to"
        )
    return None
