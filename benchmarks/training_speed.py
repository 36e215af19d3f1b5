"""Training speed, measured side by side in one run: two comparisons, each as subprocesses.

- ``fast``: our fast presets of the course family against the course's own loop (one Keras
  call per environment step, one update per episode), reimplemented faithfully below and run
  under a time cap; reports wall time to solve and environment steps per second.
- ``ppo``: ``training.ppo`` against Stable-Baselines3's PPO with the RL Zoo's settings
  (``benchmarks/sb3_ppo.py``, run by the Python given with ``--sb3-python``: a separate virtual
  environment with stable-baselines3, CPU torch and gymnasium[mujoco]), and against a bare
  ``python -c "import tensorflow"``, the floor no TensorFlow program goes below. The three
  alternate seed by seed so that all see the same machine load; reports wall and CPU time and
  env steps to solve, and each run's time as a multiple of the bare import.

Wall time runs from the subprocess's start to its end, Python start-up and imports included.
Solved means a greedy evaluation averages >= 475 (CartPole) / >= 950 (pendulum) over 20
episodes.

    python benchmarks/training_speed.py                  # both suites and agents, seeds 1 2 3
    python benchmarks/training_speed.py --suite ppo --seeds 1 2 3 4 5 \
        --sb3-python /work/sb3-venv/bin/python
    python benchmarks/training_speed.py --agent pendulum --seeds 42 --cap 30
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from training.tasks import TASKS  # noqa: E402 - the repository root first

#: Per agent: our fast-preset script of the course family, and the course variant it faces.
FAST_SCRIPTS = {
    "cartpole": ("reinforce_normalised", "variant 4"),
    "pendulum": ("gaussian_actor_critic", "variant 5"),
}
SB3_SCRIPT = ROOT / "benchmarks" / "sb3_ppo.py"
COURSE_SCRIPT = ROOT / "benchmarks" / "course_loop.py"
SUITES = ("fast", "ppo")
DEFAULT_SEEDS = (1, 2, 3, 4, 5)
DEFAULT_CAP = 60.0
ENV = {
    **os.environ,
    "MUJOCO_GL": "egl",
    "SDL_VIDEODRIVER": "dummy",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "PYTHONPATH": str(ROOT),
}


# --- ours ----------------------------------------------------------------------------------
def run_ours(script: str, agent: str, seed: int, budget: float) -> dict:
    """One run of ``training.<script>`` (its default preset) as a subprocess; wall time
    measured from outside."""
    with tempfile.TemporaryDirectory() as runs:
        start, cpu = time.perf_counter(), children_cpu_seconds()
        subprocess.run(
            [
                sys.executable,
                "-m",
                f"training.{script}",
                *(["--agent", agent] if script == "ppo" else ["--preset", "fast"]),
                "--seed",
                str(seed),
                "--runs-dir",
                runs,
                "--no-progress-bar",
                "--max-seconds",
                str(budget),
            ],
            cwd=ROOT,
            env=ENV,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wall, cpu = time.perf_counter() - start, children_cpu_seconds() - cpu
        (run,) = Path(runs).iterdir()
        summary = json.loads((run / "summary.json").read_text())
    return {
        "seed": seed,
        "wall": wall,
        "cpu": cpu,
        "solved": summary["solved"],
        "env_steps": summary["env_steps"],
        "steps_per_second": summary["steps_per_second"],
        "train_seconds": summary["train_seconds"],
        "episodes": summary["episodes"],
    }


def timed_report(command: list[str], env: dict[str, str]) -> dict:
    """Run a worker that prints a JSON report as its last line; add its wall time, measured
    from outside (Python start-up and imports included)."""
    start, cpu = time.perf_counter(), children_cpu_seconds()
    output = subprocess.run(
        command, cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout
    result = json.loads(output.strip().splitlines()[-1])
    result["wall"] = time.perf_counter() - start
    result["cpu"] = children_cpu_seconds() - cpu
    return result


def children_cpu_seconds() -> float:
    """User + system CPU time of the finished child processes so far. On a busy machine wall
    times stretch with the load while CPU time mostly does not, so both are reported."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_bare_import() -> dict:
    """``python -c "import tensorflow"`` as a subprocess, timed the same way: what every
    TensorFlow program pays before it does anything."""
    start, cpu = time.perf_counter(), children_cpu_seconds()
    subprocess.run(
        [sys.executable, "-c", "import tensorflow"],
        cwd=ROOT,
        env=ENV,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return {"wall": time.perf_counter() - start, "cpu": children_cpu_seconds() - cpu}


def run_sb3(python: str, agent: str, seed: int) -> dict:
    """One Stable-Baselines3 run (benchmarks/sb3_ppo.py) under ``python``, timed the same way."""
    return timed_report(
        [python, str(SB3_SCRIPT), "--agent", agent, "--seed", str(seed)],
        {key: value for key, value in ENV.items() if key != "PYTHONPATH"},
    )


def run_course(task: str, seed: int, cap: float) -> dict:
    """The course's loop (``benchmarks/course_loop.py``) under the cap, timed from outside."""
    command = [sys.executable, str(COURSE_SCRIPT), "--agent", task]
    return timed_report([*command, "--seed", str(seed), "--cap", str(cap)], ENV)


# --- the report ----------------------------------------------------------------------------
def report(task: str, ours: list[dict], course: dict, cap: float) -> list[str]:
    wall = statistics.median(r["wall"] for r in ours)
    rate = statistics.median(r["steps_per_second"] for r in ours)
    solved = sum(r["solved"] for r in ours)
    script, variant = FAST_SCRIPTS[task]
    lines = [
        f"{task} ({TASKS[task].env_id}), ours = training.{script} --preset fast, "
        f"course = the course's {variant}"
    ]
    for r in ours:
        lines.append(
            f"  ours   seed {r['seed']}: {'solved' if r['solved'] else 'NOT solved'} "
            f"in {r['wall']:.1f} s wall ({r['train_seconds']:.1f} s training, "
            f"{r['episodes']} episodes), {r['steps_per_second']:,.0f} env steps/s"
        )
    lines.append(
        f"  ours   median: {wall:.1f} s wall to solve ({solved}/{len(ours)} solved), "
        f"{rate:,.0f} env steps/s"
    )
    if course["solved_after"] is not None:
        outcome = f"solved after {course['solved_after']:.1f} s of training"
        time_ratio = f"{course['wall'] / wall:.1f}x faster to solve"
    else:
        outcome = (
            f"NOT solved within the {cap:g} s cap: running reward "
            f"{course['running_reward']:.1f} after {course['episodes']} episodes"
        )
        time_ratio = f"> {course['wall'] / wall:.1f}x faster to solve (course unsolved at cap)"
    lines.append(
        f"  course seed {course['seed']}: {outcome}, {course['steps_per_second']:,.0f} env steps/s"
    )
    lines.append(
        f"  ratio: {rate / course['steps_per_second']:,.0f}x the env steps/s; {time_ratio}"
    )
    return lines


def ppo_report(task: str, ours: list[dict], sb3: list[dict], bare: list[dict]) -> list[str]:
    """Per-seed and median wall time and env steps to solve, ours against SB3 and against a
    bare TensorFlow import, and the ratios."""
    lines = [
        f"{task} ({TASKS[task].env_id}), PPO: ours = training.ppo --agent {task}, "
        f"SB3 = benchmarks/sb3_ppo.py (RL Zoo settings)"
    ]
    walls, cpus = {}, {}
    for name, runs in (("ours", ours), ("SB3", sb3)):
        if not runs:
            continue
        for r in runs:
            lines.append(
                f"  {name:4s} seed {r['seed']}: {'solved' if r['solved'] else 'NOT solved'} "
                f"in {r['wall']:.1f} s wall ({r['cpu']:.1f} s CPU), {r['env_steps']:,} env steps"
            )
        walls[name] = statistics.median(r["wall"] for r in runs)
        cpus[name] = statistics.median(r["cpu"] for r in runs)
        steps = statistics.median(r["env_steps"] for r in runs)
        solved = sum(r["solved"] for r in runs)
        lines.append(
            f"  {name:4s} median: {walls[name]:.1f} s wall ({cpus[name]:.1f} s CPU) to solve, "
            f"{steps:,.0f} env steps ({solved}/{len(runs)} solved)"
        )
    if len(walls) == 2:
        lines.append(
            f"  ratio: ours solves {walls['SB3'] / walls['ours']:.2f}x faster than SB3 "
            f"(median wall times; {cpus['SB3'] / cpus['ours']:.2f}x by CPU time)"
        )
    if bare:
        wall = statistics.median(r["wall"] for r in bare)
        cpu = statistics.median(r["cpu"] for r in bare)
        lines.append(
            f"  floor: a bare import tensorflow took {wall:.2f} s wall ({cpu:.2f} s CPU), median "
            f"of {len(bare)}; a whole run of ours is {walls['ours'] / wall:.2f}x that "
            f"({cpus['ours'] / cpu:.2f}x by CPU time)"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agent", choices=(*TASKS, "both"), default="both")
    parser.add_argument(
        "--suite",
        choices=(*SUITES, "all"),
        default="all",
        help="fast: fast presets vs the course loop; ppo: training.ppo vs SB3 [all]",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=list(DEFAULT_SEEDS),
        help="seeds of our and SB3's runs (median reported); the course loop uses the first",
    )
    parser.add_argument(
        "--cap",
        type=float,
        default=DEFAULT_CAP,
        help="training-time cap of the course loop, seconds",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=120.0,
        help="training-time budget of each of our runs, seconds",
    )
    parser.add_argument("--skip-course", action="store_true", help="only time our presets")
    parser.add_argument(
        "--sb3-python",
        metavar="PATH",
        help="Python of a virtual environment with stable-baselines3, CPU torch and "
        "gymnasium[mujoco]: also run SB3's PPO for the ppo suite",
    )
    args = parser.parse_args(argv)
    tasks = list(TASKS) if args.agent == "both" else [args.agent]
    if args.sb3_python and not Path(args.sb3_python).is_file():
        parser.error(f"--sb3-python {args.sb3_python}: no such file")
    suites = SUITES if args.suite == "all" else (args.suite,)
    lines = [f"training speed on {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M')}"]
    for task in tasks:
        if "fast" in suites:
            lines.extend(fast_suite(task, args))
        if "ppo" in suites:
            ours, sb3, bare = [], [], []
            for seed in args.seeds:  # alternate, so that all meet the same machine load
                bare.append(run_bare_import())
                ours.append(run_ours("ppo", task, seed, args.budget))
                print(f"{task} ppo seed {seed}: {ours[-1]}", file=sys.stderr, flush=True)
                if args.sb3_python:
                    sb3.append(run_sb3(args.sb3_python, task, seed))
                    print(f"{task} sb3 seed {seed}: {sb3[-1]}", file=sys.stderr, flush=True)
            lines.extend(ppo_report(task, ours, sb3, bare))
    print("\n".join(lines))
    return 0


def fast_suite(task: str, args: argparse.Namespace) -> list[str]:
    ours = []
    for seed in args.seeds:
        ours.append(run_ours(FAST_SCRIPTS[task][0], task, seed, args.budget))
        print(f"{task} ours seed {seed}: {ours[-1]}", file=sys.stderr, flush=True)
    if args.skip_course:
        wall = statistics.median(r["wall"] for r in ours)
        rate = statistics.median(r["steps_per_second"] for r in ours)
        return [f"{task}: ours median {wall:.1f} s wall to solve, {rate:,.0f} steps/s"]
    course = run_course(task, args.seeds[0], args.cap)
    print(f"{task} course: {course}", file=sys.stderr, flush=True)
    return report(task, ours, course, args.cap)


if __name__ == "__main__":
    raise SystemExit(main())
