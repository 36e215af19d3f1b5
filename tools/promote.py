"""Ship a training run's final agent as the package's weights, with a record of how it was made.

    python -m tools.promote runs/reinforce_normalised-seed7-20261126-050000 [--overwrite]

Copies `final.{keras,config}` to `weights/<agent>.{keras,config}` and the run's first
checkpoint to `weights/early/<agent>.*` (the early agent of the side-by-side videos), the
learning curve to `docs/<agent>_learning_curve.png` (with `--weights-dir`, beside the weights
unless `--docs-dir` says otherwise: promotion writes only where it is told), and writes
`weights/<agent>.json`: the
exact command, seed, settings, library versions, training time, file hashes and the greedy
evaluation over 100 seeded episodes (seeds 0..99; for the pendulum also with the 500-step cap
the course's benchmark uses). Existing weights are replaced only with `--overwrite`.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from training.startup import set_quiet_environment

set_quiet_environment()

from agents import AGENT_CLASSES, AgentFileError  # noqa: E402 - after the environment is set
from agents.agent_files import agent_paths, sha256_of  # noqa: E402
from agents.base import library_versions  # noqa: E402
from agents.evaluation import evaluate  # noqa: E402
from tools.command import (  # noqa: E402
    EXIT_USAGE,
    WEIGHTS_FIX,
    CommandError,
    check_output_folders,
    command_parser,
    run_command,
)
from training.runs import checkpoints_of, early_and_later  # noqa: E402
from training.tasks import TASKS  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WEIGHTS_DIR = REPO_ROOT / "weights"
DEFAULT_DOCS_DIR = REPO_ROOT / "docs"
EVALUATION_EPISODES = 100
EVALUATION_SEED = 0


class PromotionError(CommandError):
    """The run cannot be shipped (missing files, or weights would be overwritten)."""


def _copy_pair(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    for source_file, target_file in zip(agent_paths(source), agent_paths(target), strict=True):
        shutil.copyfile(source_file, target_file)


def early_agent(run_dir: Path) -> tuple[int, Path] | None:
    """(episodes, prefix) of the run's early agent, the one ``tools.videos --run`` compares
    with the final one: its first trained checkpoint (199 for a course run), or its untrained
    policy where it saved only one after training, or its only checkpoint (a run saved before
    the untrained policy was kept)."""
    found = checkpoints_of(run_dir)
    if not found:
        return None
    try:
        prefix = early_and_later(run_dir)[0]
    except ValueError:
        return found[0]
    return next(item for item in found if item[1] == prefix)


def evaluate_shipped(agent: str, prefix: Path) -> dict[str, Any]:
    """The greedy evaluations recorded beside shipped weights, keyed by step cap."""
    agent_class = AGENT_CLASSES[agent]
    results = {}
    for cap in TASKS[agent].evaluation_caps:
        result = evaluate(
            agent_class.load(prefix), agent_class.env_id, EVALUATION_EPISODES, EVALUATION_SEED, cap
        )
        summary = result.summary()
        del summary["returns"], summary["lengths"]
        results["env_cap" if cap is None else f"cap_{cap}"] = summary
    return results


def promote_run(
    run_dir: Path,
    weights_dir: Path = DEFAULT_WEIGHTS_DIR,
    overwrite: bool = False,
    docs_dir: Path | None = None,
) -> dict[str, Any]:
    """Copy a finished run into `weights_dir` and write its record; returns the record.

    The learning curve goes to `docs_dir`; by default that is the repository's docs/ when
    promoting into its weights/, and `weights_dir` itself otherwise."""
    if docs_dir is None:
        docs_dir = DEFAULT_DOCS_DIR if weights_dir == DEFAULT_WEIGHTS_DIR else weights_dir
    run_dir = Path(run_dir)
    needed = [run_dir / name for name in ("settings.json", "summary.json", "command.txt")]
    needed += list(agent_paths(run_dir / "final"))
    if not run_dir.is_dir():
        if agent_paths(run_dir)[0].is_file() and (run_dir.parent / "settings.json").is_file():
            raise PromotionError(
                f"RUN_DIR {run_dir}: an agent's prefix, not a run folder; pass its run folder "
                f"{run_dir.parent}",
                EXIT_USAGE,
            )
        raise PromotionError(f"RUN_DIR {run_dir}: no such folder; pass a training run's folder")
    if missing := [str(path) for path in needed if not path.is_file()]:
        raise PromotionError(
            f"RUN_DIR {run_dir}: not a finished run, missing {missing}; finish it with "
            "--resume (or pass a run whose training ended)"
        )
    settings = json.loads((run_dir / "settings.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    agent_name = settings["agent"]
    agent_class = AGENT_CLASSES[agent_name]
    try:  # a broken or foreign pair is refused before anything is copied
        agent_class.load(run_dir / "final")
    except AgentFileError as error:
        fix = "" if error.names_fix else f"; {WEIGHTS_FIX}"
        raise PromotionError(f"RUN_DIR {run_dir}: {error}{fix}") from error
    target = weights_dir / agent_name
    if agent_paths(target)[0].exists() and not overwrite:
        raise PromotionError(f"{target}.keras exists: pass --overwrite to replace it")
    _copy_pair(run_dir / "final", target)
    early, first = None, early_agent(run_dir)
    if first is not None:
        early = weights_dir / "early" / agent_name
        _copy_pair(first[1], early)
    curve = None
    if (run_dir / "learning_curve.png").is_file():
        docs_dir.mkdir(parents=True, exist_ok=True)
        curve = docs_dir / f"{agent_name}_learning_curve.png"
        shutil.copyfile(run_dir / "learning_curve.png", curve)
    commands = (run_dir / "command.txt").read_text().splitlines()

    def shown(path: Path | None) -> str | None:
        if path is None:
            return None
        path = path.resolve()
        return str(path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path)

    record = {
        "agent": agent_name,
        "agent_class": f"agents.{agent_class.__name__}",
        "env_id": agent_class.env_id,
        "weights": shown(target),
        "sha256": {path.name: sha256_of(path) for path in agent_paths(target)},
        "command": commands[0],
        "resumed_with": commands[1:],
        "seed": settings["seed"],
        "script": settings["script"],
        "settings": settings,
        "versions": library_versions(),
        "training": {
            key: summary[key]
            for key in (
                "stop_reason",
                "episodes",
                "updates",
                "env_steps",
                "train_seconds",
                "steps_per_second",
                "solved",
            )
        },
        "training_evaluations": summary.get("evaluations", []),
        "evaluation": evaluate_shipped(agent_name, target),
        "early_checkpoint": shown(early),
        "early_checkpoint_episode": None if first is None else first[0],
        "learning_curve": shown(curve),
        "source_run": run_dir.name,
    }
    (weights_dir / f"{agent_name}.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = command_parser("promote", __doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path, help="a finished run folder")
    parser.add_argument("--weights-dir", type=Path, default=DEFAULT_WEIGHTS_DIR, help="target")
    parser.add_argument(
        "--docs-dir",
        type=Path,
        help="where the learning curve goes [docs/ for the default --weights-dir, else the "
        "weights dir]",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing weights")
    args = parser.parse_args(argv)
    return run_command("promote", lambda: promote(args), args.debug)


def promote(args: argparse.Namespace) -> int:
    check_output_folders({"--weights-dir": args.weights_dir, "--docs-dir": args.docs_dir})
    record = promote_run(args.run_dir, args.weights_dir, args.overwrite, args.docs_dir)
    print(f"{record['agent']}: shipped {record['weights']} from {record['source_run']}")
    for cap, result in record["evaluation"].items():
        print(
            f"  {cap}: mean {result['mean']:.1f} std {result['std']:.1f} "
            f"min {result['min']:.0f} max {result['max']:.0f} over {result['episodes']} episodes"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
