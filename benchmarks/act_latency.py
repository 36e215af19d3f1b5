"""`act` latency and cold start: our TF-free agent against the Keras path, same weights, one run.

    python benchmarks/act_latency.py                    # both shipped agents
    python benchmarks/act_latency.py --agent pendulum --weights runs/x/final --steps 5000

Latency: both paths act on the same real observations (collected by running the agent in its
environment); the ratio is course p50 / ours p50. The two paths' actions are compared too, so
a fast but wrong agent cannot win. Cold start: each path runs in fresh processes (median of
`--cold-runs`), timing the imports, `load` alone, `load` plus the first action, and the whole
span from process start to the first action. Ours imports `agents` and calls `Agent.load`;
the Keras path imports Keras and calls `keras.models.load_model` (safe mode), as the course does.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from agents import AGENT_CLASSES
from agents.agent_files import agent_paths
from agents.evaluation import collect_observations
from training.startup import import_tensorflow_quietly
from training.tasks import TASKS

DEFAULT_STEPS = 3000
DEFAULT_COLD_RUNS = 5
WARMUP_CALLS = 50
OBSERVATION_SEED = 0
REPO_ROOT = Path(__file__).resolve().parent.parent

#: A fresh process: our agent from import to first action. argv: start time, agent, prefix.
OURS_COLD = """
import sys, time
started, begin = float(sys.argv[1]), time.perf_counter()
import numpy as np
from agents import AGENT_CLASSES
imported = time.perf_counter()
agent = AGENT_CLASSES[sys.argv[2]].load(sys.argv[3])
loaded = time.perf_counter()
agent.act(np.zeros(4, dtype=np.float32), {})
"""
#: A fresh process: the Keras path (the course's), from import to first action.
KERAS_COLD = """
import sys, time
started, begin = float(sys.argv[1]), time.perf_counter()
import numpy as np
import keras
imported = time.perf_counter()
model = keras.models.load_model(sys.argv[3] + ".keras", compile=False, safe_mode=True)
loaded = time.perf_counter()
outputs = model(np.zeros((1, 4), dtype=np.float32))
keras.ops.convert_to_numpy(outputs[0] if isinstance(outputs, list) else outputs)
"""
COLD_REPORT = """
acted, now = time.perf_counter(), time.time()
import json
print(json.dumps({"import_s": imported - begin, "load_s": loaded - imported,
                  "load_and_first_act_s": acted - imported, "start_to_first_act_s": now - started,
                  "tensorflow_loaded": "tensorflow" in sys.modules}))
"""


@dataclass(frozen=True)
class LatencyRow:
    agent: str
    path: str
    calls: int
    p50_us: float
    p99_us: float


def course_act(model: Any, kind: str) -> Callable[[np.ndarray], object]:
    """The course's way: call the Keras model on a batch of one every step."""
    import keras

    if kind == "cartpole":
        return lambda observation: int(np.argmax(model(observation[np.newaxis])[0]))
    return lambda observation: np.clip(
        keras.ops.convert_to_numpy(model(observation[np.newaxis])[0])[0], -3.0, 3.0
    ).astype(np.float32)


def time_calls(act: Callable[[np.ndarray], object], observations: list[np.ndarray]) -> np.ndarray:
    """Per-call wall time in microseconds, after a warm-up (tracing, caches)."""
    for observation in observations[:WARMUP_CALLS]:
        act(observation)
    clock = time.perf_counter_ns
    times = np.empty(len(observations))
    for index, observation in enumerate(observations):
        start = clock()
        act(observation)
        times[index] = clock() - start
    return times / 1e3


def latency_row(kind: str, name: str, act: Callable, observations: list) -> LatencyRow:
    p50, p99 = np.percentile(time_calls(act, observations), [50, 99])
    return LatencyRow(kind, name, len(observations), float(p50), float(p99))


def benchmark(kind: str, prefix: Path, steps: int) -> tuple[LatencyRow, LatencyRow, int]:
    """Act latency of both paths; ours is timed before this process imports TensorFlow."""
    agent = AGENT_CLASSES[kind].load(prefix)
    observations = collect_observations(agent, agent.env_id, steps, OBSERVATION_SEED)
    ours = latency_row(kind, "ours (NumPy)", lambda o: agent.act(o, None), observations)
    import_tensorflow_quietly()
    import keras

    model = keras.models.load_model(agent_paths(prefix)[0], compile=False, safe_mode=True)
    slow = course_act(model, kind)
    course = latency_row(kind, "course (Keras per step)", slow, observations)
    disagreements = sum(
        not np.allclose(agent.act(observation, None), slow(observation), atol=1e-5)
        for observation in observations[:500]
    )
    return ours, course, disagreements


def cold_start(kind: str, prefix: Path, runs: int) -> dict[str, dict[str, float]]:
    """Median cold-start timings of both paths, each run in a fresh Python process.

    Both paths' processes inherit this one's environment, so they start on equal terms.
    """
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    medians = {}
    for path, script in (("ours", OURS_COLD), ("keras", KERAS_COLD)):
        samples = []
        for _ in range(runs):
            command = [sys.executable, "-c", script + COLD_REPORT, repr(time.time()), kind]
            completed = subprocess.run(
                [*command, str(prefix)], capture_output=True, text=True, check=True,
                cwd=REPO_ROOT, env=environment,
            )  # fmt: skip
            samples.append(json.loads(completed.stdout.strip().splitlines()[-1]))
        medians[path] = {
            key: statistics.median(sample[key] for sample in samples)
            for key in ("import_s", "load_s", "load_and_first_act_s", "start_to_first_act_s")
        }
        medians[path]["tensorflow_loaded"] = any(sample["tensorflow_loaded"] for sample in samples)
    return medians


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--agent",
        choices=sorted(AGENT_CLASSES),
        nargs="+",
        default=sorted(AGENT_CLASSES),
        help="which agents to measure",
    )
    parser.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="weights prefix (one agent only); default weights/<agent>",
    )
    parser.add_argument(
        "--steps", type=int, default=DEFAULT_STEPS, help="real observations to time each path on"
    )
    parser.add_argument(
        "--cold-runs",
        type=int,
        default=DEFAULT_COLD_RUNS,
        help="fresh processes per path for the cold-start timings (0 skips them)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if args.weights is not None and len(args.agent) != 1:
        parser.error("--weights names one agent's files: pass exactly one --agent")
    results = []
    for kind in args.agent:
        prefix = args.weights or REPO_ROOT / TASKS[kind].weights_prefix
        ours, course, disagreements = benchmark(kind, prefix, args.steps)
        results.append(
            {
                "ours": asdict(ours),
                "course": asdict(course),
                "speedup_p50": course.p50_us / ours.p50_us,
                "action_disagreements_in_500": disagreements,
                "cold_start": cold_start(kind, prefix, args.cold_runs) if args.cold_runs else None,
            }
        )
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{'agent':<10} {'path':<24} {'calls':>6} {'p50 us':>9} {'p99 us':>9}")
    for result in results:
        for row in (result["ours"], result["course"]):
            print(
                f"{row['agent']:<10} {row['path']:<24} {row['calls']:>6} "
                f"{row['p50_us']:>9.1f} {row['p99_us']:>9.1f}"
            )
        print(
            f"{result['ours']['agent']:<10} ratio course/ours (p50): "
            f"{result['speedup_p50']:.0f}x   action disagreements: "
            f"{result['action_disagreements_in_500']}/500"
        )
    if args.cold_runs:
        print(
            f"\ncold start, seconds (fresh process, median of {args.cold_runs}):\n"
            f"{'agent':<10} {'path':<24} {'import':>7} {'load':>7} {'load+act':>9} "
            f"{'start->act':>11} {'TF loaded':>10}"
        )
        for result in results:
            kind = result["ours"]["agent"]
            for path, label in (("ours", "ours (NumPy + h5py)"), ("keras", "Keras load_model")):
                row = result["cold_start"][path]
                print(
                    f"{kind:<10} {label:<24} {row['import_s']:>7.3f} {row['load_s']:>7.3f} "
                    f"{row['load_and_first_act_s']:>9.3f} {row['start_to_first_act_s']:>11.3f} "
                    f"{'yes' if row['tensorflow_loaded'] else 'no':>10}"
                )
            ours, slow = result["cold_start"]["ours"], result["cold_start"]["keras"]
            print(
                f"{kind:<10} ratio Keras/ours: load+act "
                f"{slow['load_and_first_act_s'] / ours['load_and_first_act_s']:.0f}x, "
                f"start->act {slow['start_to_first_act_s'] / ours['start_to_first_act_s']:.1f}x"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
