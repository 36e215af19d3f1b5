"""`act` latency: our agent against the course's per-step Keras call, same weights, one run.

    python benchmarks/act_latency.py                    # both shipped agents
    python benchmarks/act_latency.py --agent pendulum --weights runs/x/final --steps 5000

Both paths load the same `.keras` file and act on the same real observations (collected by
running the agent in its environment); the ratio is course p50 / ours p50. The two paths'
actions are compared too, so a fast but wrong agent cannot win.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras
import numpy as np

from agents import AGENT_CLASSES
from agents.agent_files import agent_paths
from agents.evaluation import collect_observations

DEFAULT_STEPS = 3000
WARMUP_CALLS = 50
OBSERVATION_SEED = 0
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class LatencyRow:
    agent: str
    path: str
    calls: int
    p50_us: float
    p99_us: float


def course_act(model: keras.Model, kind: str) -> Callable[[np.ndarray], object]:
    """The course's way: call the Keras model on a batch of one every step."""
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


def benchmark(kind: str, prefix: Path, steps: int) -> tuple[LatencyRow, LatencyRow, int]:
    agent = AGENT_CLASSES[kind].load(prefix)
    observations = collect_observations(agent, agent.env_id, steps, OBSERVATION_SEED)
    model = keras.models.load_model(agent_paths(prefix)[0], compile=False, safe_mode=True)
    slow = course_act(model, kind)
    disagreements = sum(
        not np.allclose(agent.act(observation, None), slow(observation), atol=1e-5)
        for observation in observations[:500]
    )
    rows = []
    for name, act in (("ours", lambda o: agent.act(o, None)), ("course (Keras per step)", slow)):
        times = time_calls(act, observations)
        p50, p99 = np.percentile(times, [50, 99])
        rows.append(LatencyRow(kind, name, len(observations), float(p50), float(p99)))
    return rows[0], rows[1], disagreements


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
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if args.weights is not None and len(args.agent) != 1:
        parser.error("--weights names one agent's files: pass exactly one --agent")
    results = []
    for kind in args.agent:
        prefix = args.weights or REPO_ROOT / "weights" / kind
        ours, course, disagreements = benchmark(kind, prefix, args.steps)
        results.append(
            {
                "ours": asdict(ours),
                "course": asdict(course),
                "speedup_p50": course.p50_us / ours.p50_us,
                "action_disagreements_in_500": disagreements,
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
