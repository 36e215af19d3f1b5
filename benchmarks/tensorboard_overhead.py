"""What TensorBoard logging costs: the same run with --tensorboard and --no-tensorboard, side by
side in one run, and the writer's cost per progress row.

Each pair trains the agent's sweep-default script (fast preset, one seed) twice as
subprocesses, once with and once without TensorBoard, alternating which goes first. The same
seed gives the same episodes, so the difference in the training loop's own time (summary.json's
train_seconds) is the logging plus noise. The row cost is measured in-process on RunFolder.

    python benchmarks/tensorboard_overhead.py                      # cartpole, seed 1, 3 pairs
    python benchmarks/tensorboard_overhead.py --agent pendulum --pairs 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training.sweep import DEFAULT_SCRIPT  # noqa: E402 - after the path is set

ENV = {**os.environ, "MUJOCO_GL": "egl", "SDL_VIDEODRIVER": "dummy", "TF_CPP_MIN_LOG_LEVEL": "3"}
ROWS_PER_UPDATE = 16  # the CartPole fast preset's batch
MICRO_UPDATES = 2000


def train_once(script: str, agent: str, seed: int, tensorboard: bool) -> dict:
    flag = "--tensorboard" if tensorboard else "--no-tensorboard"
    command = [sys.executable, "-m", f"training.{script}", "--preset", "fast", "--seed", str(seed)]
    command += ["--agent", agent]
    with tempfile.TemporaryDirectory() as runs:
        subprocess.run(
            [*command, "--runs-dir", runs, "--no-progress-bar", flag],
            cwd=ROOT,
            env=ENV,
            check=True,
            capture_output=True,
        )
        (run,) = Path(runs).iterdir()
        summary = json.loads((run / "summary.json").read_text())
        events = sum(path.stat().st_size for path in run.glob("events.out.tfevents.*"))
    return {**summary, "event_bytes": events}


def row_cost(tensorboard: bool) -> float:
    """Microseconds per progress row appended (CSV alone, or CSV and TensorBoard)."""
    from training.runs import PROGRESS_COLUMNS, RunFolder

    with tempfile.TemporaryDirectory() as folder:
        run = RunFolder(Path(folder), tensorboard=tensorboard)
        run.open_progress()
        batches = [
            [
                {column: float(update * ROWS_PER_UPDATE + i) for column in PROGRESS_COLUMNS}
                | {"episode": update * ROWS_PER_UPDATE + i + 1, "wall_time": 0.01 * update + 1}
                for i in range(ROWS_PER_UPDATE)
            ]
            for update in range(MICRO_UPDATES)
        ]
        started = time.perf_counter()
        for rows in batches:
            run.append_progress(rows)
        elapsed = time.perf_counter() - started
        run.close()
    return elapsed / (MICRO_UPDATES * ROWS_PER_UPDATE) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", choices=("cartpole", "pendulum"), default="cartpole")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    script = DEFAULT_SCRIPT

    on_rows, off_rows = row_cost(True), row_cost(False)
    print(
        f"per progress row: {off_rows:.1f} us CSV only, {on_rows:.1f} us CSV + TensorBoard "
        f"(+{on_rows - off_rows:.1f} us a row)"
    )
    times: dict[bool, list[float]] = {True: [], False: []}
    for pair in range(args.pairs):
        order = (True, False) if pair % 2 == 0 else (False, True)
        results = {
            tensorboard: train_once(script, args.agent, args.seed, tensorboard)
            for tensorboard in order
        }
        on, off = results[True], results[False]
        assert (on["episodes"], on["env_steps"]) == (off["episodes"], off["env_steps"]), (
            "the same seed must train the same episodes"
        )
        for tensorboard, result in results.items():
            times[tensorboard].append(result["train_seconds"])
        print(
            f"pair {pair + 1}: {on['episodes']} episodes, {on['updates']} updates; training "
            f"{on['train_seconds']:.2f} s with TensorBoard, {off['train_seconds']:.2f} s without; "
            f"event file {on['event_bytes'] / 1e3:.0f} kB",
            flush=True,
        )
    on_median, off_median = statistics.median(times[True]), statistics.median(times[False])
    print(
        f"{script} --preset fast --seed {args.seed}, median of {args.pairs}: "
        f"{on_median:.2f} s with TensorBoard, {off_median:.2f} s without: "
        f"ratio {on_median / off_median:.3f} ({100 * (on_median / off_median - 1):+.1f}%)"
    )
    added = on["episodes"] * (on_rows - off_rows) / 1e6
    print(
        f"expected from the row cost: {on['episodes']} rows x {on_rows - off_rows:.1f} us = "
        f"{1e3 * added:.0f} ms, {100 * added / off_median:.2f}% of the run"
    )


if __name__ == "__main__":
    main()
