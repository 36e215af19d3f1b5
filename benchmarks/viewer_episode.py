"""One episode in kymnasium's own viewer (`kymnasium.evaluate`, render_mode="human"), scored.

    python benchmarks/viewer_episode.py --agent pendulum              # a window opens
    xvfb-run -a python benchmarks/viewer_episode.py --agent cartpole  # no screen: Xvfb (Mesa)

The agent is loaded and acts in this process while kymnasium renders, which is exactly what
crashes when TensorFlow is loaded (Mesa OpenGL). kymnasium polls pygame events after every
step, even for MuJoCo, so pygame's display is initialised first. After the episode kymnasium
waits for the window to be closed; this script closes it itself (a pygame QUIT event) and
prints the score, read from gymnasium's RecordEpisodeStatistics around the environment
kymnasium makes. Nothing else about kymnasium's evaluation changes. Without a display (Linux,
DISPLAY and WAYLAND_DISPLAY unset) it says in one line to run under `xvfb-run -a` (exit 2),
before any window is opened: MuJoCo's GLFW viewer would abort with a C assertion.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gymnasium as gym
import kymnasium
import pygame

from agents import AGENT_CLASSES
from training.tasks import TASKS

REPO_ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN_MODULES = ("tensorflow", "keras")
EXIT_USAGE = 2


def display_problem(argv: list[str]) -> str | None:
    """Why no viewer window can open here (with the command to use instead), or None.

    Checked before the window opens: without a display, MuJoCo's GLFW viewer aborts the
    process with a C assertion (`glfwGetVideoMode: Assertion 'monitor != NULL'`, exit 134)."""
    if not sys.platform.startswith("linux"):
        return None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    command = shlex.join(["xvfb-run", "-a", "python", "benchmarks/viewer_episode.py", *argv])
    return (
        "viewer_episode: error: no display (DISPLAY and WAYLAND_DISPLAY are unset) for "
        f"kymnasium's viewer window; run it on a virtual screen: {command}"
    )


def viewer_episode(kind: str, prefix: Path, seed: int, max_steps: int | None) -> dict:
    """Run `kymnasium.evaluate` once with the saved agent; return its score and timings."""
    start = time.perf_counter()
    pygame.display.init()
    evaluate_module = sys.modules["kymnasium.commons.evaluate"]
    make, wait_for_close = gym.make, evaluate_module.wait_for_close
    made: list[gym.wrappers.RecordEpisodeStatistics] = []

    def make_scored(*args, **kwargs) -> gym.Env:
        made.append(gym.wrappers.RecordEpisodeStatistics(make(*args, **kwargs)))
        return made[-1]

    def close_when_done(env: gym.Env) -> None:
        pygame.event.post(pygame.event.Event(pygame.QUIT))
        wait_for_close(env)

    evaluate_module.gym.make = make_scored
    evaluate_module.wait_for_close = close_when_done
    agent_class = AGENT_CLASSES[kind]
    agent = agent_class.load(prefix)
    kwargs = {} if max_steps is None else {"max_episode_steps": max_steps}
    kymnasium.evaluate(agent_class.env_id, agent, seed=seed, **kwargs)
    return {
        "agent": kind,
        "env_id": agent_class.env_id,
        "seed": seed,
        "return": float(made[0].return_queue[-1]),
        "steps": int(made[0].length_queue[-1]),
        "seconds": round(time.perf_counter() - start, 2),
        "forbidden_modules_loaded": sorted(
            {name.split(".")[0] for name in sys.modules} & set(FORBIDDEN_MODULES)
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agent", required=True, choices=sorted(AGENT_CLASSES), help="task")
    parser.add_argument("--weights", type=Path, help="weights prefix (default weights/<agent>)")
    parser.add_argument("--seed", type=int, default=0, help="the episode's reset seed")
    parser.add_argument("--max-steps", type=int, help="cut the episode short (tests do)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a line")
    args = parser.parse_args(argv)
    if problem := display_problem(sys.argv[1:] if argv is None else argv):
        print(problem, file=sys.stderr)
        return EXIT_USAGE
    prefix = args.weights or REPO_ROOT / TASKS[args.agent].weights_prefix
    result = viewer_episode(args.agent, prefix, args.seed, args.max_steps)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['env_id']} in kymnasium's viewer: return {result['return']:g} over "
            f"{result['steps']} steps (seed {result['seed']}), {result['seconds']} s; "
            f"TensorFlow/Keras loaded: {result['forbidden_modules_loaded'] or 'no'}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
