"""Validate an agent the way the evaluator will run it, then bundle it into one verified zip.

    python submit.py --agent pendulum                  # shipped weights/pendulum -> dist/
    python submit.py --agent cartpole --weights runs/x/final --episodes 50 --json
    python submit.py --verify dist/pendulum.zip        # re-check any bundle (see below)

Steps: (1) the weight files load safely and are for this task, and the agents' NumPy pass
equals Keras's own output for the model; (2) in a fresh, isolated Python whose import path
holds only the staged bundle, the agent class imports from the bundle, loads, acts inside the
action space, deterministically, fast enough, without importing TensorFlow or Keras, and scores
at least the bar over seeded greedy episodes; (3) a reproducible zip with a hashed manifest is
written to a temporary file; (4) that zip is extracted (refusing unsafe entries), its hashes
checked, its runtime code compared with this project's `agents` package, and the agent loaded
and run again from there; only then is it renamed into place, replacing this command's
previous bundle there in one step. `--verify ZIP` does step (4) for any bundle, and runs its
code only when that code is this project's own or `--trust-code` says to (docs/submitting.md).
`--agent` may be left out when the files name their task (their config, or their model's shape).
Exit 0 only if all passed (1 a check failed, 2 a mistake on the command line, 130 Ctrl-C,
143 SIGTERM: a stopped run leaves no bundle and no temporary files). `--weights` is a prefix;
a trailing `.keras` or `.config` is dropped, the same rule `Agent.load` uses, and every step
uses that one prefix. `--out` is the zip's path if it ends in `.zip`, else the folder for
`<agent>.zip`. Temporary files that a killed run left behind are removed by the next run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from training.startup import set_quiet_environment
from training.tasks import AGENT_NAMES, TASKS

set_quiet_environment()

from tools.command import (  # noqa: E402 - after the environment is set
    EXIT_FAILED,
    EXIT_USAGE,
    CommandError,
    OneLineParser,
    output_folder_problem,
    run_command,
)

REPO_ROOT = Path(__file__).resolve().parent
DEFAULT_OUT = REPO_ROOT / "dist"
DEFAULT_EPISODES = 20
DEFAULT_SEED = 0
#: Our agents act in ~10-20 us; a p99 over this means a Keras call per step or worse.
DEFAULT_MAX_P99_US = 500.0
BUNDLE_MODE = 0o644


def bundle_path(out: Path, agent_name: str) -> Path:
    """Where `--out` puts the bundle: the path itself if it names a zip, else a file in it."""
    return out if out.suffix == ".zip" else out / f"{agent_name}.zip"


def build(args: argparse.Namespace, checks: list[dict[str, Any]]) -> Path:
    """Validate, bundle and verify; returns the final zip path."""
    from agents import AGENT_CLASSES
    from agents.agent_files import agent_paths, agent_prefix
    from agents.base import library_versions, runtime_requirements
    from submission.bundle import (
        BundleError,
        ProbeSettings,
        stage_bundle,
        temporary_folder,
        temporary_zip,
        write_manifest,
        write_reproducible_zip,
    )
    from submission.checks import CheckFailedError, keras_check, static_check
    from submission.runtime_code import build_record
    from submission.verify import probe_or_fail, verify_zip
    from training.exits import deferred_interrupt

    agent_name = args.agent
    agent_class = AGENT_CLASSES[agent_name]
    prefix = agent_prefix(args.weights or REPO_ROOT / TASKS[agent_name].weights_prefix)
    agent, detail, hashed = static_check(agent_name, prefix)
    if args.agent_told:
        detail += f"; --agent {agent_name}, as the files say"
    checks.append({"name": "weights", "stage": "files", "ok": True, "detail": detail})
    checks.append({"name": "keras", "stage": "files", "ok": True, "detail": keras_check(agent)})
    settings = ProbeSettings(
        agent_class=f"agents:{agent_class.__name__}",
        weights=agent_name,
        env_id=agent_class.env_id,
        episodes=args.episodes,
        seed=args.seed,
        min_score=TASKS[agent_name].solve_score if args.min_score is None else args.min_score,
        max_p99_us=args.max_p99_us,
        max_steps=args.max_steps,
    )
    target = bundle_path(args.out, agent_name)
    with temporary_folder("stage") as folder:
        model_path, config_path = agent_paths(prefix)
        if not hashed:  # the loaded agent writes its model's bytes back beside a hashed config
            model_path, config_path = agent_paths(Path(folder) / "hashed" / agent_name)
            agent.save(model_path.with_suffix(""))
        stage = Path(folder) / "bundle"
        weight_files = {f"{agent_name}.keras": model_path, f"{agent_name}.config": config_path}
        try:
            stage_bundle(stage, args.agents_dir, weight_files)
        except BundleError as error:
            raise CheckFailedError("import", str(error)) from error
        report = probe_or_fail(stage, settings, checks, "staged")
        score = next(check for check in report["checks"] if check["name"] == "score")
        write_manifest(
            stage,
            {
                "agent": agent_name,
                "agent_class": settings.agent_class,
                "weights": agent_name,
                "env_id": settings.env_id,
                "built_by": build_record(),
                "versions": library_versions(),
                "runtime_requirements": runtime_requirements(),
                "validation": {
                    "settings": asdict(settings),
                    "passed": [check["name"] for check in report["checks"]],
                    "score": {key: score[key] for key in ("mean", "std", "min", "max")},
                },
            },
        )
        temporary = temporary_zip(target.parent, agent_name)
        try:
            write_reproducible_zip(stage, temporary)
            verify_zip(temporary, checks, shown_as=target.name, building=True)
            with deferred_interrupt(reraise=False):  # once verified, it is ready: finish
                temporary.chmod(BUNDLE_MODE)
                os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
    return target


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(
        name="submit",
        description="Validate an agent the way the evaluator runs it, then bundle it.",
    )
    parser.add_argument(
        "--agent", choices=AGENT_NAMES, help="which task's agent (default: the one --weights names)"
    )
    parser.add_argument("--weights", type=Path, help="weights prefix (default weights/<agent>)")
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="the zip's path if it ends in .zip, else its folder (the zip is <agent>.zip) "
        "[default: dist/]",
    )
    parser.add_argument("--episodes", type=int, default=DEFAULT_EPISODES, help="scored episodes")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of episode 0")
    parser.add_argument("--min-score", type=float, help="lowest mean accepted (475 / 950)")
    parser.add_argument("--max-steps", type=int, help="cap episodes as an evaluator might")
    parser.add_argument(
        "--max-p99-us", type=float, default=DEFAULT_MAX_P99_US, help="p99 act latency limit"
    )
    parser.add_argument(
        "--agents-dir",
        type=Path,
        default=REPO_ROOT / "agents",
        help="the agents package to bundle (default: this repository's)",
    )
    parser.add_argument("--verify", type=Path, metavar="ZIP", help="only verify an existing zip")
    parser.add_argument(
        "--trust-code",
        action="store_true",
        help="with --verify: run the bundle's code even if it is not this project's agents",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON report instead")
    parser.add_argument("--debug", action="store_true", help="show a traceback on any error")
    args = parser.parse_args(argv)
    if args.verify is None and args.agent is None and args.weights is None:
        parser.error(
            "pass --agent {cartpole,pendulum} (or --weights PREFIX) to build, or --verify ZIP"
        )
    if args.trust_code and args.verify is None:
        parser.error("--trust-code goes with --verify ZIP (a build runs the --agents-dir given)")
    if args.episodes < 1:
        parser.error("--episodes must be at least 1")
    if args.max_steps is not None and args.max_steps < 1:
        parser.error("--max-steps must be at least 1")
    args.agent_told = False
    return args


def resolve_agent(args: argparse.Namespace) -> int:
    """Without --agent, take the task the --weights files name; if they name none, say why
    no agent can use them, or ask for --agent."""
    from agents import AGENT_CLASSES, AgentFileError, agent_name_of
    from agents.agent_files import agent_prefix
    from submission.checks import FIXES, weights_fix

    if args.verify is not None or args.agent is not None:
        return 0
    prefix = agent_prefix(args.weights)
    args.agent = agent_name_of(prefix)
    args.agent_told = args.agent is not None
    if args.agent is not None:
        return 0
    if prefix.is_dir():
        raise CommandError(f"--weights {prefix}: is a folder; {weights_fix(prefix, '')}")
    refusals: dict[str, AgentFileError] = {}
    for name, agent_class in AGENT_CLASSES.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a course file's note: it loaded, told nothing
                agent_class.load(prefix)
        except AgentFileError as error:
            refusals[name] = error
    if len(refusals) == len(AGENT_CLASSES) and len({str(e) for e in refusals.values()}) == 1:
        error = next(iter(refusals.values()))  # what is wrong is not the task: say it
        raise CommandError(
            f"--weights {prefix}: {error}" + ("" if error.names_fix else f"; {FIXES['weights']}")
        )
    raise CommandError(
        f"--weights {prefix}: cannot tell which task these files are for; pass "
        f"--agent {' or --agent '.join(AGENT_NAMES)}",
        EXIT_USAGE,
    )


def not_a_bundle(path: Path) -> str:
    """The one line for a `--verify` file that is no bundle: the build command it needs."""
    from agents import agent_name_of
    from agents.agent_files import agent_prefix

    prefix = agent_prefix(path)
    agent = agent_name_of(prefix)
    command = (
        f"--agent {agent} --weights {prefix}"
        if agent
        else "--agent {cartpole,pendulum} --weights PREFIX"
    )
    return (
        f"--verify {path}: this is not a bundle (a zip with the manifest.json submit.py writes); "
        f"build one with python submit.py {command}"
    )


def writable_problem(folder: Path) -> str | None:
    """Why no file can be written in `folder` (tried with a nameless temporary file), or None."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return None
    except OSError as error:
        return error.strerror or str(error)


def check_paths(args: argparse.Namespace) -> None:
    """The paths on the command line, checked before any work: a mistake is one line."""
    from submission.bundle import is_bundle

    if args.verify is not None:
        if not args.verify.is_file():
            problem = "no such file" if not args.verify.exists() else "not a file"
            raise CommandError(
                f"--verify {args.verify}: {problem}; give the path of a zip written by "
                "submit.py --agent",
                EXIT_USAGE,
            )
        damaged = args.verify.suffix == ".zip" and not zipfile.is_zipfile(args.verify)
        if not damaged and not is_bundle(args.verify):  # a damaged zip fails the bundle check
            raise CommandError(not_a_bundle(args.verify), EXIT_USAGE)
        return
    target = bundle_path(args.out, args.agent)
    if problem := output_folder_problem("--out", target.parent):
        raise CommandError(problem, EXIT_USAGE)
    if problem := writable_problem(target.parent):
        raise CommandError(
            f"--out {args.out}: cannot write a file in {target.parent} ({problem}); pick a "
            "folder you can write to",
            EXIT_USAGE,
        )
    if target.exists() and not (target.is_file() and is_bundle(target)):
        which = "" if target == args.out else f" {target}"
        raise CommandError(
            f"--out {args.out}:{which} exists and is not a bundle from this command, so it is "
            "not replaced; move it away or choose another --out",
            EXIT_USAGE,
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if status := run_command("submit", lambda: resolve_agent(args), args.debug):
        return status
    earlier = None if args.verify else bundle_path(args.out, args.agent)
    if earlier is not None and earlier.is_file():
        untouched = f"; {earlier} is from an earlier run, untouched"
    else:
        untouched = ""
    return run_command(
        "submit",
        lambda: submit(args),
        args.debug,
        stopped="" if args.verify else f"; no bundle was written{untouched}",
    )


def submit(args: argparse.Namespace) -> int:
    from submission.bundle import remove_leftovers
    from submission.checks import CheckFailedError, print_report
    from submission.verify import verify_zip

    check_paths(args)
    folders = [] if args.verify else [bundle_path(args.out, args.agent).parent]
    for path in remove_leftovers(folders, AGENT_NAMES):
        print(f"submit: removed {path}, left by an interrupted run", file=sys.stderr)
    checks: list[dict[str, Any]] = []
    bundle: Path | None = None
    failure: CheckFailedError | None = None
    try:
        if args.verify is not None:
            verify_zip(args.verify, checks, trust_code=args.trust_code)
            bundle = args.verify
        else:
            bundle = build(args, checks)
    except CheckFailedError as error:
        failure = error
    title = f"verify {args.verify}" if args.verify else f"submit {args.agent}"
    print_report(title, checks, bundle, failure, args.json)
    if failure is not None and not args.json and args.verify is None:
        earlier = bundle_path(args.out, args.agent)
        note = f" ({earlier} is from an earlier run, untouched)" if earlier.exists() else ""
        print(f"No bundle was written{note}.")
    return 0 if failure is None else EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
