"""Load and run an agent from a bundle folder the way the evaluator will: run as a fresh process.

    python -I probe.py request.json

    request.json: {"bundle": DIR, "result": OUT_JSON, "agent_class": "agents:InvertedPendulumAgent",
                   "weights": "pendulum", "env_id": "InvertedPendulum-v5", "episodes": 20,
                   "seed": 0, "min_score": 950, "max_p99_us": 500, "max_steps": null}

`submit.py` starts this file with `python -I` (no script folder, no PYTHONPATH, no user site)
from an empty working folder, and puts only the bundle on the import path, so an import that
works only inside the developer's checkout fails here as it would at the evaluator. It uses
only the standard library, the installed libraries and the bundle's own `agents` package.
After loading and acting it checks that neither TensorFlow nor Keras was imported: the
evaluator may render in this process, and rendering crashes where TensorFlow is loaded.
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

#: Real observations acted on twice (two separate loads) to check that acting is deterministic.
DETERMINISM_OBSERVATIONS = 300
#: Modules the agents must never import while loading or acting.
FORBIDDEN_MODULES = ("tensorflow", "keras")


@dataclass(frozen=True)
class ProbeSettings:
    """What the fresh-process probe loads and how strictly it judges it."""

    #: `module:Class` to import from the bundle.
    agent_class: str
    #: The weights prefix inside the bundle.
    weights: str
    env_id: str
    #: Seeded greedy episodes to score, the first reset with `seed`.
    episodes: int
    seed: int
    #: The lowest mean score accepted.
    min_score: float
    #: The highest p99 `act` latency accepted, in microseconds.
    max_p99_us: float
    #: Episode step cap, as an evaluator might set it.
    max_steps: int | None = None

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> ProbeSettings:
        """The settings out of a JSON object (extra keys, such as `bundle`, are ignored)."""
        names = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in document.items() if key in names})


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
    """What the evaluator's contract promises: a Python int, or a float32 array of shape (1,)."""
    import numpy as np

    if isinstance(action, np.ndarray):
        return action.dtype == np.float32 and action.shape == (1,)
    return type(action) is int


def loaded_forbidden_modules() -> list[str]:
    """The forbidden top-level packages that are in `sys.modules` now."""
    return sorted({name.split(".")[0] for name in sys.modules} & set(FORBIDDEN_MODULES))


def probe(bundle: Path, settings: ProbeSettings, checks: Checks) -> None:
    bundle = bundle.resolve()
    sys.path.insert(0, str(bundle))
    module_name, _, class_name = settings.agent_class.partition(":")
    try:
        agent_class = getattr(importlib.import_module(module_name), class_name)
    except Exception as error:  # noqa: BLE001 - the agent's failure is the finding, reported
        checks.add(
            "import", False, f"cannot import {settings.agent_class} from the bundle: {error!r}"
        )
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
        f"{settings.agent_class} subclasses kymnasium.Agent",
    ):
        return
    try:
        agent = agent_class.load(str(bundle / settings.weights))
        twin = agent_class.load(str(bundle / settings.weights))
    except Exception as error:  # noqa: BLE001 - the agent's failure is the finding, reported
        checks.add("load", False, f"{agent_class.__name__}.load failed: {error}")
        return
    checks.add("load", True, f"{agent_class.__name__}.load({settings.weights!r}) works")

    from agents.evaluation import collect_observations, evaluate

    try:
        observations = collect_observations(
            agent, settings.env_id, DETERMINISM_OBSERVATIONS, settings.seed
        )
        first = [agent.act(observation, {}) for observation in observations]
        second = [twin.act(observation, {}) for observation in observations]
        result = evaluate(
            agent, settings.env_id, settings.episodes, settings.seed, settings.max_steps
        )
    except Exception as error:  # noqa: BLE001 - the agent's failure is the finding, reported
        checks.add("act", False, f"acting failed: {error}")
        return
    forbidden = loaded_forbidden_modules()
    checks.add(
        "runtime",
        not forbidden,
        "loading and acting imported neither TensorFlow nor Keras"
        if not forbidden
        else f"loading and acting imported {', '.join(forbidden)}: the evaluator's viewer "
        "crashes in such a process (Mesa OpenGL), so the agent must read its .keras file "
        "with h5py and act in NumPy",
    )
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
        result.act_p99_us <= settings.max_p99_us,
        f"act p99 {result.act_p99_us:.1f} us (limit {settings.max_p99_us:g} us)",
        p50_us=round(result.act_p50_us, 1),
        p99_us=round(result.act_p99_us, 1),
    )
    checks.add(
        "score",
        result.mean >= settings.min_score,
        f"mean {result.mean:.1f} +/- {result.std:.1f} (min {result.min:.0f}, max "
        f"{result.max:.0f}) over {result.episodes} episodes, seeds {settings.seed}.."
        f"{settings.seed + result.episodes - 1}; bar {settings.min_score:g}",
        mean=result.mean,
        std=result.std,
        min=result.min,
        max=result.max,
        episodes=result.episodes,
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -I probe.py REQUEST.json (see the module docstring)", file=sys.stderr)
        return 2
    request = json.loads(Path(argv[0]).read_text())
    checks = Checks()
    try:
        probe(Path(request["bundle"]), ProbeSettings.from_json(request), checks)
    except Exception:  # noqa: BLE001 - the crash itself is reported as the failed check
        checks.add("probe", False, traceback.format_exc(limit=4))
    Path(request["result"]).write_text(
        json.dumps({"ok": checks.ok, "checks": checks.items}, indent=2)
    )
    return 0 if checks.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
