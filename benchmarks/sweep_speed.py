"""A seeds sweep against a shell loop: the same runs, side by side in one run.

Times ``python -m training.sweep --agent AGENT --seeds N`` (Ray Tune, workers reused across
trials) and the same N ``python -m training.ppo --agent AGENT --seed S`` commands under
``xargs -P <cpus>`` (one process per run), alternating which goes first over ``--rounds``, and
prints both wall times, their ratio (xargs / sweep: above 1 means the sweep is faster) and
both solve rates. Measure on a quiet machine: the two compete for the same cores.

    python benchmarks/sweep_speed.py                       # cartpole, seeds 1..10
    python benchmarks/sweep_speed.py --agent pendulum
    python benchmarks/sweep_speed.py --seeds 3 --rounds 1  # a quick check
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
ENV = {**os.environ, "MUJOCO_GL": "egl", "SDL_VIDEODRIVER": "dummy", "TF_CPP_MIN_LOG_LEVEL": "3"}


def run_sweep(agent: str, seeds: int, folder: Path) -> tuple[float, int]:
    """Wall seconds of the whole sweep command, and how many trials solved."""
    out = folder / "sweep"
    command = [sys.executable, "-m", "training.sweep", "--agent", agent, "--seeds", str(seeds)]
    started = time.perf_counter()
    subprocess.run(
        [*command, "--out", str(out)], cwd=ROOT, env=ENV, check=True, capture_output=True
    )
    seconds = time.perf_counter() - started
    return seconds, json.loads((out / "summary.json").read_text())["solved_count"]


def run_xargs(agent: str, seeds: int, cpus: int, folder: Path) -> tuple[float, int]:
    """Wall seconds of the same runs, one ``python -m training.ppo`` each under xargs."""
    runs = folder / "xargs"
    command = [sys.executable, "-m", "training.ppo", "--agent", agent, "--seed", "{}"]
    command += ["--runs-dir", str(runs), "--no-progress-bar"]
    started = time.perf_counter()
    subprocess.run(
        ["xargs", "-P", str(cpus), "-I{}", *command],
        input="".join(f"{seed}\n" for seed in range(1, seeds + 1)),
        text=True,
        cwd=ROOT,
        env=ENV,
        check=True,
        capture_output=True,
    )
    seconds = time.perf_counter() - started
    summaries = [json.loads(path.read_text()) for path in runs.glob("*/summary.json")]
    return seconds, sum(bool(summary["solved"]) for summary in summaries)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--agent", choices=("cartpole", "pendulum"), default="cartpole")
    parser.add_argument("--seeds", type=int, default=10, help="seeds 1..N [10]")
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 1, help="xargs -P [all]")
    parser.add_argument("--rounds", type=int, default=1, help="sweep/xargs pairs [1]")
    args = parser.parse_args(argv)
    times: dict[str, list[float]] = {"sweep": [], "xargs": []}
    for round_ in range(args.rounds):
        order = ("sweep", "xargs") if round_ % 2 == 0 else ("xargs", "sweep")
        for kind in order:
            with tempfile.TemporaryDirectory() as folder:
                if kind == "sweep":
                    seconds, solved = run_sweep(args.agent, args.seeds, Path(folder))
                else:
                    seconds, solved = run_xargs(args.agent, args.seeds, args.cpus, Path(folder))
            times[kind].append(seconds)
            print(f"{kind:>5}: {seconds:6.1f} s, solved {solved}/{args.seeds}", flush=True)
    sweep, xargs = statistics.median(times["sweep"]), statistics.median(times["xargs"])
    print(
        f"{args.agent}, seeds 1..{args.seeds}, {args.cpus} CPUs: sweep {sweep:.1f} s, "
        f"xargs -P {args.cpus} {xargs:.1f} s (medians of {args.rounds}): the sweep is "
        f"{xargs / sweep:.2f}x as fast"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
