"""Score a saved agent with seeded greedy episodes, as the evaluator would run it.

    python -m tools.evaluate --agent pendulum --episodes 100 --seed 0
    python -m tools.evaluate --agent pendulum --max-steps 500 --json
    python -m tools.evaluate --weights runs/x/final --record videos/   # the files name the task
    python -m tools.evaluate --weights reinforce/999.keras             # a course checkpoint

Episode i is reset with seed `seed + i`; the agent is loaded through `Agent.load` and driven
one `act(observation, info)` per step. An action outside the action space stops the run with
exit code 1. `--record DIR` then films the first `--record-episodes` scored episodes again
(same seeds, the same greedy agent: the same episodes), one MP4 each, in this process (the
agents never load TensorFlow, which would crash the renderer; headless: MuJoCo through EGL,
CartPole through pygame's dummy video driver). The scores are printed before anything is
recorded, so a recording that fails loses nothing: it is reported on its own line, exit 4.
`--agent` may be left out with `--weights`: the config (or else the model's shape) names the
task. The course's own files (a lone `.keras` checkpoint, a `{'seed': N}` config) are scored
too, after one line saying they carry no hash.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym

from agents import AGENT_CLASSES
from agents.agent_files import agent_prefix
from agents.evaluation import EvaluationResult, InvalidActionError, evaluate
from tools.command import (
    EXIT_RECORDING_FAILED,
    CommandError,
    agent_of,
    check_output_folders,
    command_parser,
    load_agent,
    run_command,
)
from training.startup import set_quiet_environment
from training.tasks import AGENT_NAMES, TASKS

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EPISODES = 100
DEFAULT_SEED = 0
DEFAULT_RECORD_EPISODES = 1


class VideoPerSeed(gym.wrappers.RecordVideo):
    """`RecordVideo` naming each episode's MP4 after its reset seed: `{prefix}-seed{seed}-...`."""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._episode_seed = seed
        return super().reset(seed=seed, options=options)

    def start_recording(self, video_name: str) -> None:
        super().start_recording(f"{self.name_prefix}-seed{self._episode_seed}-episode-0")


def describe(result: EvaluationResult) -> str:
    """A readable one-paragraph summary of an evaluation."""
    cap = "" if result.max_steps is None else f", capped at {result.max_steps} steps"
    return (
        f"{result.env_id}: {result.episodes} greedy episodes, seeds {result.seed}.."
        f"{result.seed + result.episodes - 1}{cap}\n"
        f"  mean {result.mean:.1f}  std {result.std:.1f}  min {result.min:.1f}  "
        f"max {result.max:.1f}\n"
        f"  act latency p50 {result.act_p50_us:.1f} us, p99 {result.act_p99_us:.1f} us; "
        "every action inside the action space"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = command_parser("evaluate", __doc__.split("\n")[0])
    parser.add_argument(
        "--agent", choices=AGENT_NAMES, help="task (default: the one --weights names)"
    )
    parser.add_argument("--weights", type=Path, help="weights prefix (default weights/<agent>)")
    parser.add_argument("--episodes", type=int, default=DEFAULT_EPISODES, help="episodes")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of episode 0")
    parser.add_argument("--max-steps", type=int, help="cut episodes short, as an evaluator may")
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.add_argument("--record", type=Path, metavar="DIR", help="also write MP4s here")
    parser.add_argument(
        "--record-episodes",
        type=int,
        default=DEFAULT_RECORD_EPISODES,
        help="how many of the scored episodes (from the first seed) to record with --record",
    )
    args = parser.parse_args(argv)
    if args.episodes < 1 or args.record_episodes < 1:
        parser.error("--episodes and --record-episodes must be at least 1")
    if args.record is not None and args.record_episodes > args.episodes:
        parser.error("--record-episodes records scored episodes: at most --episodes")
    if args.max_steps is not None and args.max_steps < 1:
        parser.error("--max-steps must be at least 1")
    if args.agent is None and args.weights is None:
        parser.error("pass --agent {cartpole,pendulum} (for the shipped weights) or --weights")
    return args


def record(args: argparse.Namespace, prefix: Path, scored: EvaluationResult) -> None:
    """Film the first `--record-episodes` scored episodes again, one MP4 each."""
    agent_class = AGENT_CLASSES[args.agent]

    def film(env: gym.Env) -> gym.Env:
        # Several runs may share one folder on purpose; gymnasium would warn each time. A
        # failed recording is reported once, not again when the wrapper is collected.
        warnings.filterwarnings("ignore", message=".*Overwriting existing videos.*")
        warnings.filterwarnings("ignore", message=".*Unable to save last video.*")
        return VideoPerSeed(
            env,
            str(args.record),
            episode_trigger=lambda episode: True,
            name_prefix=args.agent,
            disable_logger=True,
        )

    filmed = evaluate(
        agent_class.load(prefix),
        agent_class.env_id,
        args.record_episodes,
        args.seed,
        args.max_steps,
        render_mode="rgb_array",
        wrap_env=film,
    )
    if filmed.returns != scored.returns[: args.record_episodes]:
        raise RuntimeError(
            f"the filmed episodes scored {filmed.returns}, the scored ones "
            f"{scored.returns[: args.record_episodes]}: the agent does not act deterministically"
        )


def main(argv: list[str] | None = None) -> int:
    set_quiet_environment()  # headless: before MuJoCo loads or pygame opens a display
    args = parse_args(argv)
    return run_command("evaluate", lambda: evaluate_and_record(args), args.debug)


def evaluate_and_record(args: argparse.Namespace) -> int:
    args.agent = agent_of(args.agent, args.weights, "--weights")
    agent_class = AGENT_CLASSES[args.agent]
    prefix = agent_prefix(args.weights or REPO_ROOT / TASKS[args.agent].weights_prefix)
    check_output_folders({"--record": args.record})
    agent = load_agent(args.agent, prefix, "--weights", "evaluate")
    try:
        result = evaluate(agent, agent_class.env_id, args.episodes, args.seed, args.max_steps)
    except InvalidActionError as error:
        raise CommandError(f"--weights {prefix}: {error}") from error
    if args.json:
        print(json.dumps({"weights": str(prefix), **result.summary()}, indent=2))
    else:
        print(f"{agent_class.__name__} from {prefix}")
        print(describe(result))
    if args.record is None:
        return 0
    sys.stdout.flush()  # the scores are out before anything can go wrong while filming
    try:
        record(args, prefix, result)
    except Exception as error:  # reported on its own line, after the scores: nothing is lost
        if args.debug:
            raise
        lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [""]
        reason = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
        print(
            f"evaluate: error: recording to --record {args.record} failed "
            f"({type(error).__name__}: {reason}); the scores above stand; fix the cause and run "
            "again with --record",
            file=sys.stderr,
        )
        return EXIT_RECORDING_FAILED
    if not args.json:
        print(f"  videos of {args.record_episodes} episode(s) in {args.record}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
