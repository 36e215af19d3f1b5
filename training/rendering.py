"""Render an episode by replaying its actions, in a process that never imports TensorFlow.

MuJoCo's EGL renderer crashes (segmentation fault) in a process that has loaded TensorFlow,
measured here with TF 2.21 and MuJoCo 4.0. The environments are deterministic given the reset
seed and the actions, so the agent plays in the TensorFlow process, and this module replays
the recorded actions in a fresh process with `RecordVideo`, checking at every step that the
replay reproduces the recorded observations. Run as:

    python -m training.rendering --trace trace.npz --video-folder DIR --name-prefix NAME
        [--frames-out frames.npz --frame-stride 4 --frame-width 240]
"""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import gymnasium as gym
import numpy as np
from PIL import Image

#: The replay must match the recorded observations this closely (it is exact in practice).
REPLAY_TOLERANCE = 1e-9


class ReplayDivergedError(RuntimeError):
    """The replayed episode left the recorded trajectory: the video would show another run."""


def replay(
    trace: dict[str, np.ndarray],
    video_folder: Path,
    name_prefix: str,
    frame_stride: int,
    frame_width: int,
) -> np.ndarray:
    """Replay one recorded episode into an MP4; return every `frame_stride`-th frame, resized."""
    env_id = str(trace["env_id"])
    max_steps = int(trace["max_steps"])
    kwargs = {"render_mode": "rgb_array"}
    if max_steps > 0:
        kwargs["max_episode_steps"] = max_steps
    # Several clips share one folder on purpose; gymnasium would warn on each one.
    warnings.filterwarnings("ignore", message=".*Overwriting existing videos.*")
    env = gym.wrappers.RecordVideo(
        gym.make(env_id, **kwargs),
        str(video_folder),
        episode_trigger=lambda _: True,
        name_prefix=name_prefix,
        disable_logger=True,
    )
    observation, _ = env.reset(seed=int(trace["seed"]))
    frames = [env.render()]
    for step, (action, expected) in enumerate(
        zip(trace["actions"], trace["observations"], strict=True)
    ):
        if not np.allclose(observation, expected, rtol=0.0, atol=REPLAY_TOLERANCE):
            env.close()
            raise ReplayDivergedError(f"{env_id}: replay diverged at step {step}")
        action = int(action) if isinstance(env.action_space, gym.spaces.Discrete) else action
        observation, _, terminated, truncated, _ = env.step(action)
        frames.append(env.render())
        if terminated or truncated:
            break
    env.close()
    kept = frames[::frame_stride]
    height = round(kept[0].shape[0] * frame_width / kept[0].shape[1])
    return np.stack(
        [np.asarray(Image.fromarray(frame).resize((frame_width, height))) for frame in kept]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Replay a recorded episode into a video.")
    parser.add_argument("--trace", type=Path, required=True, help="npz from training.videos")
    parser.add_argument("--video-folder", type=Path, required=True, help="where the MP4 goes")
    parser.add_argument("--name-prefix", required=True, help="MP4 file name prefix")
    parser.add_argument("--frames-out", type=Path, help="also save downsized frames here")
    parser.add_argument("--frame-stride", type=int, default=1, help="keep every n-th frame")
    parser.add_argument("--frame-width", type=int, default=240, help="kept frames' width")
    args = parser.parse_args(argv)
    with np.load(args.trace, allow_pickle=False) as data:
        trace = {key: data[key] for key in data.files}
    frames = replay(trace, args.video_folder, args.name_prefix, args.frame_stride, args.frame_width)
    if args.frames_out is not None:
        np.savez_compressed(args.frames_out, frames=frames)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
