"""Validate an agent the way the evaluator will run it, then bundle it into one verified zip.

    python submit.py --agent pendulum                  # shipped weights/pendulum -> dist/
    python submit.py --agent cartpole --weights runs/x/final --episodes 50 --json
    python submit.py --verify dist/pendulum.zip        # re-check any bundle

Steps: (1) the weight files load safely and are for this task, and the agents' NumPy pass
equals Keras's own output for the model; (2) in a fresh, isolated Python whose import path
holds only the staged bundle, the agent class imports from the bundle, loads, acts inside the
action space, deterministically, fast enough, without importing TensorFlow or Keras, and scores
at least the bar over seeded greedy episodes; (3) a reproducible zip with a hashed manifest is
written to a temporary file; (4) that zip is extracted (refusing unsafe entries), its hashes
checked, and the agent loaded and run again from there; only then is it renamed into place,
replacing this command's previous bundle there in one step.
Exit 0 only if all passed (1 a check failed, 2 a mistake on the command line, 130 Ctrl-C,
143 SIGTERM: a stopped run leaves no bundle and no temporary files). `--weights` is a prefix;
a trailing `.keras` or `.config` is dropped, the same rule `Agent.load` uses, and every step
uses that one prefix. `--out` is the zip's path if it ends in `.zip`, else the folder for
`<agent>.zip`. Temporary files that a killed run left behind are removed by the next run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
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
#: Inputs the NumPy pass is compared with Keras on: seeded, spread wider than real observations.
KERAS_CHECK_INPUTS = 256
KERAS_CHECK_SEED = 20_240_601
BUNDLE_MODE = 0o644
STAGE_TITLES = {
    "files": "weight files (this process, safe loaders):",
    "staged": "staged bundle, in a fresh isolated Python:",
    "zip": "the finished zip, extracted and re-run in a fresh isolated Python:",
}
#: How to fix each kind of failure, shown with the error.
FIXES = {
    "weights": "check --weights (a prefix: PREFIX.keras + PREFIX.config written by Agent.save); "
    "re-save or retrain the agent (see README, Training)",
    "import": "every module the agents package imports must be inside it (--agents-dir); "
    "do not rely on files outside the package",
    "kymnasium.Agent": "agent classes must subclass kymnasium.Agent",
    "keras": "the agents' NumPy pass disagrees with Keras on this model: report it with the "
    ".keras file, and do not submit it",
    "load": "the files must load with the agent class being bundled",
    "act": "act(observation, info) must return an action env.step accepts for every observation",
    "actions": "CartPole: return an int; the pendulum: a float32 ndarray of shape (1,) in [-3, 3]",
    "deterministic": "evaluation must be greedy: no sampling in act()",
    "runtime": "load() and act() must not import tensorflow or keras (read the .keras file "
    "with h5py, act in NumPy; import Keras only inside save())",
    "latency": "act() must stay cheap (no Keras call per step) or raise --max-p99-us",
    "score": "train longer or choose a better checkpoint (--weights); --min-score sets the bar",
    "probe": "read the traceback above; the agent crashed in a fresh Python",
    "bundle": "the zip differs from what was validated (disk or tampering): build it again",
}


def _print_check(check: dict[str, Any]) -> None:
    mark = "ok  " if check["ok"] else "FAIL"
    print(f"  {mark} {check['name']:<15} {check['detail']}")


def _print_checks(checks: list[dict[str, Any]]) -> None:
    stage = None
    for check in checks:
        if check.get("stage") != stage:
            stage = check.get("stage")
            print(STAGE_TITLES.get(stage, stage))
        _print_check(check)


class CheckFailedError(Exception):
    """A check failed: the report says which, what was found and how to fix it."""

    def __init__(self, check: str, detail: str) -> None:
        super().__init__(f"{check}: {detail}")
        self.check, self.detail = check, detail


def static_check(agent_name: str, prefix: Path) -> tuple[Any, str, bool]:
    """Load the pair in this process (safe loaders only) before anything else runs.

    Returns the agent, a line for the report, and whether the files carry a hash (course
    files do not: the bundle then gets a config that records the model's SHA-256).
    """
    from agents import AGENT_CLASSES, AgentFileError, UncheckedFilesWarning

    agent_class = AGENT_CLASSES[agent_name]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UncheckedFilesWarning)
        try:
            agent = agent_class.load(prefix)
        except AgentFileError as error:
            raise CheckFailedError("weights", str(error)) from error
    unchecked = any(issubclass(warning.category, UncheckedFilesWarning) for warning in caught)
    detail = f"{prefix}.keras + .config load safely as {agent_class.__name__}"
    if unchecked:
        detail += (
            "; course-format files carry no hash, so the bundle gets a config recording "
            "the model's SHA-256"
        )
    return agent, detail, not unchecked


def keras_check(agent: Any) -> str:
    """Compare the agent's NumPy pass with Keras's own output for its file (Keras is fine here)."""
    import numpy as np

    from agents.numpy_forward import KERAS_TOLERANCE
    from training.startup import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras

    batch = (
        np.random.default_rng(KERAS_CHECK_SEED)
        .normal(scale=2.0, size=(KERAS_CHECK_INPUTS, *agent.observation_shape))
        .astype(np.float32)
    )
    try:
        model = agent.model  # the same bytes, loaded by Keras in safe mode
    except Exception as error:  # Keras refusing what the runtime accepts is the finding
        raise CheckFailedError(
            "keras", f"Keras cannot load the model in safe mode: {error}"
        ) from error
    expected = model(batch)
    expected = expected if isinstance(expected, (list, tuple)) else [expected]
    difference = max(
        float(np.max(np.abs(ours - keras.ops.convert_to_numpy(theirs))))
        for ours, theirs in zip(agent.outputs(batch), expected, strict=True)
    )
    if not difference <= KERAS_TOLERANCE:
        raise CheckFailedError(
            "keras",
            f"the NumPy pass differs from Keras by {difference:.3g} (limit {KERAS_TOLERANCE:g})",
        )
    return (
        f"NumPy pass equals Keras (safe mode) within {difference:.1e} on {KERAS_CHECK_INPUTS} "
        f"inputs, every output (limit {KERAS_TOLERANCE:g})"
    )


def probe_or_fail(
    bundle: Path, settings: Any, checks: list[dict[str, Any]], stage: str
) -> dict[str, Any]:
    from submission.bundle import run_probe

    report = run_probe(bundle, settings)
    checks.extend({**check, "stage": stage} for check in report["checks"])
    if not report["ok"]:
        failed = next(check for check in report["checks"] if not check["ok"])
        raise CheckFailedError(failed["name"], failed["detail"])
    return report


def verify_zip(
    zip_path: Path, checks: list[dict[str, Any]], shown_as: str | None = None
) -> dict[str, Any]:
    """Extract safely, check every hash, then load and run the agent from the extracted copy."""
    from submission.bundle import (
        BundleError,
        ProbeSettings,
        check_extracted,
        safe_extract,
        temporary_folder,
    )

    with temporary_folder("verify") as folder:
        root = Path(folder)
        try:
            names = safe_extract(zip_path, root)
            manifest = check_extracted(root, names)
            settings = ProbeSettings(**manifest["validation"]["settings"])
        except (BundleError, KeyError, TypeError) as error:
            raise CheckFailedError("bundle", f"{zip_path}: {error}") from error
        checks.append(
            {
                "name": "bundle",
                "stage": "zip",
                "ok": True,
                "detail": f"{shown_as or zip_path.name}: {len(names)} entries inside the folder, "
                f"{len(manifest['files'])} SHA-256 hashes match the manifest",
            }
        )
        report = probe_or_fail(root, settings, checks, "zip")
    scores = {check["name"]: check for check in report["checks"]}["score"]
    recorded = manifest["validation"]["score"]
    if (scores["mean"], scores["min"]) != (recorded["mean"], recorded["min"]):
        raise CheckFailedError("bundle", f"scores from the zip {scores} differ from the manifest's")
    return manifest


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
    from training.exits import deferred_interrupt

    agent_name = args.agent
    agent_class = AGENT_CLASSES[agent_name]
    prefix = agent_prefix(args.weights or REPO_ROOT / TASKS[agent_name].weights_prefix)
    agent, detail, hashed = static_check(agent_name, prefix)
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
            verify_zip(temporary, checks, shown_as=target.name)
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
    parser.add_argument("--agent", choices=AGENT_NAMES, help="which task's agent")
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
    parser.add_argument("--json", action="store_true", help="print a JSON report instead")
    parser.add_argument("--debug", action="store_true", help="show a traceback on any error")
    args = parser.parse_args(argv)
    if args.verify is None and args.agent is None:
        parser.error("pass --agent {cartpole,pendulum} to build, or --verify ZIP")
    if args.episodes < 1:
        parser.error("--episodes must be at least 1")
    if args.max_steps is not None and args.max_steps < 1:
        parser.error("--max-steps must be at least 1")
    return args


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
        return
    target = bundle_path(args.out, args.agent)
    if problem := output_folder_problem("--out", target.parent):
        raise CommandError(problem, EXIT_USAGE)
    if target.exists() and not (target.is_file() and is_bundle(target)):
        which = "" if target == args.out else f" {target}"
        raise CommandError(
            f"--out {args.out}:{which} exists and is not a bundle from this command, so it is "
            "not replaced; move it away or choose another --out",
            EXIT_USAGE,
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
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

    check_paths(args)
    folders = [] if args.verify else [bundle_path(args.out, args.agent).parent]
    for path in remove_leftovers(folders, AGENT_NAMES):
        print(f"submit: removed {path}, left by an interrupted run", file=sys.stderr)
    checks: list[dict[str, Any]] = []
    bundle: Path | None = None
    failure: CheckFailedError | None = None
    try:
        if args.verify is not None:
            verify_zip(args.verify, checks)
            bundle = args.verify
        else:
            bundle = build(args, checks)
    except CheckFailedError as error:
        failure = error
    if args.json:
        report = {
            "ok": failure is None,
            "bundle": str(bundle) if failure is None else None,
            "checks": checks,
        }
        if failure is not None:
            report["error"] = {"check": failure.check, "detail": failure.detail}
            report["fix"] = FIXES.get(failure.check, "")
        print(json.dumps(report, indent=2))
    else:
        title = f"verify {args.verify}" if args.verify else f"submit {args.agent}"
        print(title)
        _print_checks(checks)
        if failure is None:
            print(f"PASSED: {bundle} is verified and ready to submit")
        else:
            if not any(not check["ok"] for check in checks):
                _print_check({"name": failure.check, "ok": False, "detail": failure.detail})
            print(f"FAILED at '{failure.check}'. How to fix: {FIXES.get(failure.check, '')}")
            if args.verify is None:
                earlier = bundle_path(args.out, args.agent)
                note = f" ({earlier} is from an earlier run, untouched)" if earlier.exists() else ""
                print(f"No bundle was written{note}.")
    return 0 if failure is None else EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
