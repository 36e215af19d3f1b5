"""Videos of agents on a machine without a screen: one per agent, and early-vs-later side by side.

    python -m training.videos --agent pendulum --early weights/early/pendulum --out videos/
    python -m training.videos --run runs/gaussian_actor_critic-seed42-<time>   # 199 vs 999
    python -m training.videos --agent cartpole --early weights/early/cartpole \
        --gif docs/cartpole.gif --strip docs/cartpole_strip.png

Each agent plays one seeded greedy episode here (through `Agent.load` and `act`); the episode
is then replayed in a process without TensorFlow (see `training.rendering`) that writes the MP4
with `RecordVideo`. The course judges agents by such an early-vs-later comparison; the side by
side MP4, a small GIF and a strip of frames for the README are made from the replayed frames.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import imageio.v2 as imageio
import numpy as np
from PIL import Image, ImageDraw

from agents import AGENT_CLASSES
from agents.evaluation import EvaluationResult, evaluate
from training.runs import early_and_later

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


def trace_of(
    result: EvaluationResult, episode: int, trained_episodes: int = -1
) -> dict[str, object]:
    """What a replay needs of one episode of an evaluation run with `keep_trajectories`."""
    observations, actions = result.trajectories[episode]
    return {
        "env_id": np.array(result.env_id),
        "seed": np.array(result.seed + episode),
        "max_steps": np.array(result.max_steps or 0),
        "observations": observations,
        "actions": actions,
        "score": np.array(result.returns[episode]),
        "trained_episodes": np.array(trained_episodes),
    }


def record_trace(prefix: Path, kind: str, seed: int, max_steps: int | None) -> dict[str, object]:
    """Play one greedy episode with the saved agent; return what a replay needs."""
    agent_class = AGENT_CLASSES[kind]
    agent = agent_class.load(prefix)
    result = evaluate(agent, agent_class.env_id, 1, seed, max_steps, keep_trajectories=True)
    return trace_of(result, 0, agent.extra_config.get("training", {}).get("episodes", -1))


def render(
    trace: dict[str, object], video_folder: Path, name: str, stride: int | None = None
) -> np.ndarray | None:
    """Replay a trace in a fresh process (no TensorFlow) that writes the MP4.

    With a `stride`, also return every stride-th frame, resized to the panel width.
    """
    with tempfile.TemporaryDirectory(prefix="render-") as folder:
        trace_path, frames_path = Path(folder) / "trace.npz", Path(folder) / "frames.npz"
        np.savez(trace_path, **trace)
        command = [
            sys.executable,
            "-m",
            "training.rendering",
            "--trace",
            str(trace_path),
            "--video-folder",
            str(video_folder),
            "--name-prefix",
            name,
        ]
        if stride is not None:
            command += ["--frames-out", str(frames_path), "--frame-stride", str(stride)]
            command += ["--frame-width", str(PANEL_WIDTH)]
        subprocess.run(command, check=True, cwd=REPO_ROOT)
        if stride is None:
            return None
        with np.load(frames_path) as data:
            return data["frames"]


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agent", choices=sorted(AGENT_CLASSES), help="task (default: the run's)")
    parser.add_argument(
        "--run",
        type=Path,
        help="a training run folder: its first checkpoint (early) against its last (later), "
        "checkpoints 199 and 999 for a course run",
    )
    parser.add_argument("--later", type=Path, help="weights prefix (default weights/<agent>)")
    parser.add_argument("--early", type=Path, help="an earlier checkpoint to show beside it")
    parser.add_argument("--seed", type=int, default=0, help="the episode's reset seed")
    parser.add_argument("--max-steps", type=int, help="cap the episode")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "videos", help="MP4 folder")
    parser.add_argument("--gif", type=Path, help="also write a small side-by-side GIF here")
    parser.add_argument("--strip", type=Path, help="also write a PNG strip of the later agent")
    args = parser.parse_args(argv)
    if args.run is not None:
        try:
            args.early, args.later = early_and_later(args.run)
            args.agent = args.agent or json.loads((args.run / "settings.json").read_text())["agent"]
        except (OSError, ValueError, KeyError) as error:
            parser.error(f"--run: {error}")
    if args.agent is None:
        parser.error("--agent is required (or --run RUN_DIR)")
    later = args.later or REPO_ROOT / "weights" / args.agent
    clips = []
    for name, prefix in (("early", args.early), ("later", later)):
        if prefix is None:
            continue
        trace = record_trace(prefix, args.agent, args.seed, args.max_steps)
        frames = render(trace, args.out, f"{args.agent}-{name}", PANEL_STRIDE)
        trained = int(trace["trained_episodes"])
        when = f"after {trained} episodes" if trained >= 0 else prefix.name
        label = f"{name}: {when}, score {float(trace['score']):.0f}"
        clips.append(labelled(frames, label))
        print(f"{name}: {prefix} scored {float(trace['score']):.0f}; MP4 in {args.out}")
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
