"""Load and run an agent from a bundle folder the way the evaluator will: run as a fresh process.

    python -I probe.py --bundle DIR --agent-class agents:InvertedPendulumAgent --weights pendulum
        --env-id InvertedPendulum-v5 --episodes 20 --seed 0 --min-score 950 --result out.json

`submit.py` starts this file with `python -I` (no script folder, no PYTHONPATH, no user site)
from an empty working folder, and puts only the bundle on the import path, so an import that
works only inside the developer's checkout fails here as it would at the evaluator. It uses
only the standard library, the installed libraries and the bundle's own `agents` package.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

#: Real observations acted on twice (two separate loads) to check that acting is deterministic.
DETERMINISM_OBSERVATIONS = 300


class Checks:
    """An ordered list of named checks, each passed or failed with a detail line."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, name: str, ok: bool, detail: str, **figures: Any) -> bool:
        self.items.append({"name": name, "ok": bool(ok), "detail": detail, **figures})
        return bool(ok)

    @property
    def ok(self) -> bool:
        return bool(self.items) and all(item["ok"] for item in self.items)


def foreign_agent_modules(bundle: Path) -> list[str]:
    """Modules of the `agents` package that were imported from outside the bundle."""
    root = bundle.resolve()
    foreign = []
    for name, module in sorted(sys.modules.items()):
        if name != "agents" and not name.startswith("agents."):
            continue
        origin = getattr(module, "__file__", None)
        if origin is None or not Path(origin).resolve().is_relative_to(root):
            foreign.append(f"{name} from {origin}")
    return foreign


def same_action(first: Any, second: Any) -> bool:
    import numpy as np

    return type(first) is type(second) and bool(np.array_equal(first, second))


def is_exact_type(action: Any) -> bool:
    """What SPEC section 2 promises: a Python int, or a float32 array of shape (1,)."""
    import numpy as np

    if isinstance(action, np.ndarray):
        return action.dtype == np.float32 and action.shape == (1,)
    return type(action) is int


def probe(args: argparse.Namespace, checks: Checks) -> None:
    bundle = args.bundle.resolve()
    sys.path.insert(0, str(bundle))
    module_name, _, class_name = args.agent_class.partition(":")
    try:
        agent_class = getattr(importlib.import_module(module_name), class_name)
    except Exception as error:  # noqa: BLE001 - the agent's failure is the finding, reported
        checks.add("import", False, f"cannot import {args.agent_class} from the bundle: {error!r}")
        return
    foreign = foreign_agent_modules(bundle)
    if not checks.add(
        "import",
        not foreign,
        "agents package imported from the bundle only"
        if not foreign
        else f"imported from outside the bundle (missing from it?): {', '.join(foreign)}",
    ):
        return
    import kymnasium

    if not checks.add(
        "kymnasium.Agent",
        isinstance(agent_class, type) and issubclass(agent_class, kymnasium.Agent),
        f"{args.agent_class} subclasses kymnasium.Agent",
    ):
        return
    try:
        agent = agent_class.load(str(bundle / args.weights))
        twin = agent_class.load(str(bundle / args.weights))
    except Exception as error:  # noqa: BLE001 - the agent's failure is the finding, reported
        checks.add("load", False, f"{agent_class.__name__}.load failed: {error}")
        return
    checks.add("load", True, f"{agent_class.__name__}.load({args.weights!r}) works")

    from agents.evaluation import collect_observations, evaluate

    try:
        observations = collect_observations(
            agent, args.env_id, DETERMINISM_OBSERVATIONS, args.seed
        )
        first = [agent.act(observation, {}) for observation in observations]
        second = [twin.act(observation, {}) for observation in observations]
        result = evaluate(agent, args.env_id, args.episodes, args.seed, args.max_steps)
    except Exception as error:  # noqa: BLE001 - the agent's failure is the finding, reported
        checks.add("act", False, f"acting failed: {error}")
        return
    mismatches = sum(not same_action(a, b) for a, b in zip(first, second, strict=True))
    wrong_types = sorted({repr(type(action)) for action in first if not is_exact_type(action)})
    checks.add(
        "actions",
        not wrong_types,
        f"{result.episodes} episodes, {sum(result.lengths)} actions, all in the action space"
        if not wrong_types
        else f"actions of the wrong type {wrong_types}: CartPole needs int, the pendulum a "
        "float32 ndarray of shape (1,)",
    )
    checks.add(
        "deterministic",
        mismatches == 0,
        f"two loads gave the same action on {len(observations) - mismatches}/"
        f"{len(observations)} real observations",
    )
    checks.add(
        "latency",
        result.act_p99_us <= args.max_p99_us,
        f"act p99 {result.act_p99_us:.1f} us (limit {args.max_p99_us:g} us)",
        p50_us=round(result.act_p50_us, 1),
        p99_us=round(result.act_p99_us, 1),
    )
    checks.add(
        "score",
        result.mean >= args.min_score,
        f"mean {result.mean:.1f} +/- {result.std:.1f} (min {result.min:.0f}, max "
        f"{result.max:.0f}) over {result.episodes} episodes, seeds {args.seed}.."
        f"{args.seed + result.episodes - 1}; bar {args.min_score:g}",
        mean=result.mean,
        std=result.std,
        min=result.min,
        max=result.max,
        episodes=result.episodes,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, required=True, help="bundle root folder")
    parser.add_argument("--agent-class", required=True, help="module:Class to import")
    parser.add_argument("--weights", required=True, help="weights prefix inside the bundle")
    parser.add_argument("--env-id", required=True, help="gymnasium environment id")
    parser.add_argument("--episodes", type=int, required=True, help="greedy episodes to score")
    parser.add_argument("--seed", type=int, required=True, help="seed of the first episode")
    parser.add_argument("--max-steps", type=int, default=None, help="episode step cap")
    parser.add_argument("--min-score", type=float, required=True, help="lowest mean accepted")
    parser.add_argument("--max-p99-us", type=float, required=True, help="p99 act limit")
    parser.add_argument("--result", type=Path, required=True, help="where to write the JSON")
    args = parser.parse_args(argv)
    checks = Checks()
    try:
        probe(args, checks)
    except Exception:  # noqa: BLE001 - the crash itself is reported as the failed check
        checks.add("probe", False, traceback.format_exc(limit=4))
    args.result.write_text(json.dumps({"ok": checks.ok, "checks": checks.items}, indent=2))
    return 0 if checks.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
