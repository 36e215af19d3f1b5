"""Videos of agents on a machine without a screen: one per agent, and early-vs-later side by side.

    python -m tools.videos --agent pendulum --early weights/early/pendulum --out videos/
    python -m tools.videos --run runs/ppo-seed42-<time>        # first checkpoint vs final
    python -m tools.videos --early reinforce/199 --later reinforce/999   # course checkpoints
    python -m tools.videos --agent cartpole --early weights/early/cartpole \
        --gif docs/cartpole.gif --strip docs/cartpole_strip.png

Each agent plays one seeded greedy episode (through `Agent.load` and `act`) that `RecordVideo`
films in this same process: the agents never load TensorFlow, which would crash the renderer
(MuJoCo through EGL, CartPole through pygame's dummy video driver). The course judges agents by
such an early-vs-later comparison. Written: one MP4 per agent and, with two agents, the
side-by-side MP4, all in `--out`; a small side-by-side GIF only with `--gif`, and a strip of the
later agent's frames only with `--strip`. `--run RUN` compares the run's first checkpoint (the
untrained policy, for runs that save it) with its final agent (its last checkpoint if it has
no final one). `--agent` may be left out: the run, or the files' config or model, names it.
"""

from __future__ import annotations

import argparse
import json
import math
import warnings
from pathlib import Path

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
from PIL import Image, ImageDraw

from agents import AGENT_CLASSES
from agents.evaluation import evaluate
from tools.command import (
    EXIT_USAGE,
    CommandError,
    agent_of,
    check_output_folders,
    command_parser,
    load_agent,
    run_command,
)
from training.runs import early_and_later
from training.startup import set_quiet_environment
from training.tasks import AGENT_NAMES, TASKS

REPO_ROOT = Path(__file__).resolve().parent.parent
VIDEO_FPS = 50
#: Side-by-side frames: every second environment step, each panel this wide.
PANEL_STRIDE = 2
PANEL_WIDTH = 240
LABEL_HEIGHT = 22
#: The README's GIF stays small: at most this many frames, at this delay.
GIF_MAX_FRAMES = 60
GIF_FRAME_MS = 80
STRIP_FRAMES = 6
STRIP_WIDTH = 160


class PanelFrames(gym.Wrapper):
    """Keeps every `stride`-th frame rendered through it, resized to `width` pixels wide."""

    def __init__(self, env: gym.Env, stride: int, width: int) -> None:
        super().__init__(env)
        self.stride, self.width = stride, width
        self.frames: list[np.ndarray] = []
        self._rendered = 0

    def render(self) -> np.ndarray:
        frame = self.env.render()
        if self._rendered % self.stride == 0:
            height = round(frame.shape[0] * self.width / frame.shape[1])
            self.frames.append(np.asarray(Image.fromarray(frame).resize((self.width, height))))
        self._rendered += 1
        return frame


def film(
    prefix: Path, kind: str, seed: int, max_steps: int | None, out: Path, name: str
) -> tuple[np.ndarray, float, int]:
    """One greedy episode of the saved agent, written to `out/{name}-episode-0.mp4`.

    Returns the panel frames (every `PANEL_STRIDE`-th, `PANEL_WIDTH` wide), the score and
    how many episodes the agent was trained for (-1 if its config does not say).
    """
    agent_class = AGENT_CLASSES[kind]
    agent = agent_class.load(prefix)
    panels: list[PanelFrames] = []

    def record(env: gym.Env) -> gym.Env:
        # Several clips share one folder on purpose; gymnasium would warn on each one.
        warnings.filterwarnings("ignore", message=".*Overwriting existing videos.*")
        panels.append(PanelFrames(env, PANEL_STRIDE, PANEL_WIDTH))
        return gym.wrappers.RecordVideo(
            panels[-1],
            str(out),
            episode_trigger=lambda _: True,
            name_prefix=name,
            disable_logger=True,
        )

    result = evaluate(
        agent, agent_class.env_id, 1, seed, max_steps, render_mode="rgb_array", wrap_env=record
    )
    trained = agent.extra_config.get("training", {}).get("episodes", -1)
    return np.stack(panels[0].frames), result.returns[0], trained


def labelled(frames: np.ndarray, label: str) -> np.ndarray:
    """Frames with a white caption bar on top."""
    count, _, width, _ = frames.shape
    bar = Image.new("RGB", (width, LABEL_HEIGHT), "white")
    ImageDraw.Draw(bar).text((6, 5), label, fill="black")
    caption = np.broadcast_to(np.asarray(bar), (count, LABEL_HEIGHT, width, 3))
    return np.concatenate([caption, frames], axis=1)


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Two clips next to each other; the shorter one holds its last frame (the episode ended)."""
    length = max(len(left), len(right))

    def padded(frames: np.ndarray) -> np.ndarray:
        return np.concatenate([frames, np.repeat(frames[-1:], length - len(frames), axis=0)])

    return np.concatenate([padded(left), padded(right)], axis=2)


def write_gif(frames: np.ndarray, path: Path) -> None:
    stride = max(1, math.ceil(len(frames) / GIF_MAX_FRAMES))
    images = [Image.fromarray(frame) for frame in frames[::stride]]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(
        path,
        save_all=True,
        append_images=images[1:],
        duration=GIF_FRAME_MS,
        loop=0,
        optimize=True,
    )


def write_strip(frames: np.ndarray, path: Path) -> None:
    """Evenly spaced frames of one clip in a row, for a still picture of the episode."""
    picks = np.linspace(0, len(frames) - 1, STRIP_FRAMES).round().astype(int)
    height = round(frames.shape[1] * STRIP_WIDTH / frames.shape[2])
    row = [np.asarray(Image.fromarray(frames[i]).resize((STRIP_WIDTH, height))) for i in picks]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(row, axis=1)).save(path, optimize=True)


def early_and_final(run: Path) -> tuple[Path, Path]:
    """The course's comparison for a run (``training.runs.early_and_later``): its first and
    last trained checkpoints (199 and 999 for a course run), or its untrained policy and its
    last checkpoint, the final agent, where it stopped early."""
    if not (run / "settings.json").is_file():
        problem = "no such folder" if not run.exists() else "not a run folder (no settings.json)"
        raise CommandError(f"--run {run}: {problem}; pass a training run's folder", EXIT_USAGE)
    try:
        return early_and_later(run)
    except ValueError as error:
        raise CommandError(
            f"--run {error}; pass --early PREFIX --later PREFIX, or train again (the scripts "
            "save the untrained policy as the first checkpoint)",
            EXIT_USAGE,
        ) from error


def main(argv: list[str] | None = None) -> int:
    set_quiet_environment()  # headless: before MuJoCo loads or pygame opens a display
    parser = command_parser("videos", __doc__.split("\n")[0])
    parser.add_argument("--agent", choices=AGENT_NAMES, help="task (default: what the files say)")
    parser.add_argument(
        "--run",
        type=Path,
        help="a training run folder: its first checkpoint (early) against its final agent",
    )
    parser.add_argument("--later", type=Path, help="weights prefix (default weights/<agent>)")
    parser.add_argument("--early", type=Path, help="an earlier checkpoint to show beside it")
    parser.add_argument("--seed", type=int, default=0, help="the episode's reset seed")
    parser.add_argument("--max-steps", type=int, help="cap the episode")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "videos", help="MP4 folder")
    parser.add_argument("--gif", type=Path, help="also write a small side-by-side GIF here")
    parser.add_argument("--strip", type=Path, help="also write a PNG strip of the later agent")
    args = parser.parse_args(argv)
    if args.run is not None and (args.early or args.later):
        parser.error("--run picks the early and later agents: leave out --early and --later")
    if args.run is None and args.agent is None and args.later is None and args.early is None:
        parser.error("pass --agent {cartpole,pendulum}, --later PREFIX or --run RUN")
    return run_command("videos", lambda: make_videos(args), args.debug)


def run_agent(run: Path) -> str | None:
    """The task a run's settings.json names, if it names one."""
    try:
        agent = json.loads((run / "settings.json").read_text()).get("agent")
    except (OSError, ValueError, AttributeError):
        return None
    return agent if agent in AGENT_NAMES else None


def make_videos(args: argparse.Namespace) -> int:
    if args.run is not None:
        args.early, args.later = early_and_final(args.run)
        args.agent = args.agent or run_agent(args.run)
    named = ("--later", args.later) if args.later is not None else ("--early", args.early)
    args.agent = agent_of(args.agent, named[1], named[0])
    later = args.later or REPO_ROOT / TASKS[args.agent].weights_prefix
    chosen = [("early", "--early", args.early), ("later", "--later", later)]
    chosen = [(name, flag, prefix) for name, flag, prefix in chosen if prefix is not None]
    for _, flag, prefix in chosen:  # every path is checked before anything is filmed
        load_agent(args.agent, prefix, flag, "videos")
    check_output_folders(
        {
            "--out": args.out,
            "--gif": args.gif and args.gif.parent,
            "--strip": args.strip and args.strip.parent,
        }
    )
    clips = []
    for name, _, prefix in chosen:
        frames, score, trained = film(
            prefix, args.agent, args.seed, args.max_steps, args.out, f"{args.agent}-{name}"
        )
        when = {-1: prefix.name, 0: "untrained"}.get(trained, f"after {trained} episodes")
        clips.append(labelled(frames, f"{name}: {when}, score {score:.0f}"))
        print(f"{name}: {prefix} scored {score:.0f}; MP4 in {args.out}")
    combined = clips[0] if len(clips) == 1 else side_by_side(*clips)
    if len(clips) == 2:
        path = args.out / f"{args.agent}-early-vs-later.mp4"
        imageio.mimwrite(path, list(combined), fps=VIDEO_FPS // PANEL_STRIDE, macro_block_size=1)
        print(f"side by side: {path}")
    if args.gif is not None:
        write_gif(combined, args.gif)
        print(f"GIF: {args.gif} ({args.gif.stat().st_size // 1024} KiB)")
    if args.strip is not None:
        write_strip(clips[-1][:, LABEL_HEIGHT:], args.strip)
        print(f"strip: {args.strip}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
