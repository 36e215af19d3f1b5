"""The checks `submit.py` runs in its own process, and how every check's outcome is reported.

The weight files are loaded here with the agents' safe loaders, and the agents' NumPy pass is
compared with Keras's own output for the model (Keras is fine in this process: it never acts
in the evaluator's). A failed check names what was found and the fix, shaped by what the
files say they are: the task they were saved for, or the run folder they sit in.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

#: Inputs the NumPy pass is compared with Keras on: seeded, spread wider than real observations.
KERAS_CHECK_INPUTS = 256
KERAS_CHECK_SEED = 20_240_601
STAGE_TITLES = {
    "files": "weight files (this process, safe loaders):",
    "staged": "staged bundle, in a fresh isolated Python:",
    "zip": "the finished zip, extracted and re-run in a fresh isolated Python:",
}
#: How to fix each kind of failure, shown with the error (unless the error brings its own).
FIXES = {
    "weights": "check --weights (a prefix: PREFIX.keras, with the PREFIX.config Agent.save "
    "writes beside it); re-save or retrain the agent (see README, Training)",
    "import": "every module the agents package imports must be inside it (--agents-dir); "
    "do not rely on files outside the package",
    "kymnasium.Agent": "agent classes must subclass kymnasium.Agent",
    "keras": "the agents' NumPy pass disagrees with Keras on this model: report it with the "
    ".keras file, and do not submit it",
    "load": "the files must load with the agent class being bundled",
    "act": "act(observation, info) must return an action env.step accepts for every observation",
    "actions": "CartPole: return an int; the pendulum: a float32 ndarray of shape (1,) in [-3, 3]",
    "deterministic": "evaluation must be greedy: no sampling in act()",
    "runtime": "load() and act() must not import tensorflow or keras (read the .keras file "
    "with h5py, act in NumPy; import Keras only inside save())",
    "latency": "act() must stay cheap (no Keras call per step) or raise --max-p99-us",
    "score": "train longer or choose a better checkpoint (--weights); --min-score sets the bar",
    "probe": "read the traceback above; the agent crashed in a fresh Python",
    "bundle": "the zip differs from what was validated (disk or tampering): build it again",
}
#: Said once when course-format files are bundled.
NO_HASH_NOTE = (
    "course-format files carry no hash, so the bundle gets a config recording the model's SHA-256"
)


class CheckFailedError(Exception):
    """A check failed: the report says which, what was found and how to fix it."""

    def __init__(self, check: str, detail: str, fix: str | None = None) -> None:
        super().__init__(f"{check}: {detail}")
        self.check, self.detail = check, detail
        self.fix = fix if fix is not None else FIXES.get(check, "")


def weights_fix(prefix: Path, agent_name: str, names_fix: bool = False) -> str:
    """The fix for weights that did not load: the run's final agent for a run folder, the
    other `--agent` for the other task's files, else the error's own advice (`names_fix`:
    the agents' message already says what to use instead) or the general one."""
    from agents import agent_name_of
    from agents.agent_files import agent_paths

    if prefix.is_dir() and not agent_paths(prefix)[0].exists():
        final = prefix / "final"
        if agent_paths(final)[0].is_file():
            return f"pass --weights {final} (the run's final agent)"
        return "pass --weights PREFIX for one agent's files in that folder (PREFIX.keras)"
    told = agent_name_of(prefix)
    if told is not None and told != agent_name:
        return f"these files are for {told}: use --agent {told} (or leave --agent out)"
    return "do what the error says: it names what to use instead" if names_fix else FIXES["weights"]


def static_check(agent_name: str, prefix: Path) -> tuple[Any, str, bool]:
    """Load the files in this process (safe loaders only) before anything else runs.

    Returns the agent, a line for the report saying what was loaded, and whether the files
    carry a hash (course files do not: the bundle then gets a config that records it).
    """
    from agents import AGENT_CLASSES, AgentFileError, UncheckedFilesWarning
    from agents.agent_files import agent_paths, read_config

    agent_class = AGENT_CLASSES[agent_name]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UncheckedFilesWarning)
        try:
            agent = agent_class.load(prefix)
        except AgentFileError as error:
            fix = weights_fix(prefix, agent_name, error.names_fix)
            raise CheckFailedError("weights", str(error), fix) from error
    unchecked = any(issubclass(warning.category, UncheckedFilesWarning) for warning in caught)
    model_path, config_path = agent_paths(prefix)
    name = agent_class.__name__
    if not unchecked:
        return agent, f"{model_path} + {config_path.name} load safely as {name}", True
    if config_path.exists():
        loaded = f"{model_path} + {config_path.name} (the course's {read_config(config_path)!r})"
        verb = "load"
    else:
        loaded = f"{model_path} alone (no {config_path.name}, as the course saves it)"
        verb = "loads"
    return agent, f"{loaded} {verb} safely as {name}, seed {agent.seed}; {NO_HASH_NOTE}", False


def keras_check(agent: Any) -> str:
    """Compare the agent's NumPy pass with Keras's own output for its file (Keras is fine here)."""
    import numpy as np

    from agents.numpy_forward import KERAS_TOLERANCE
    from training.startup import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras

    batch = (
        np.random.default_rng(KERAS_CHECK_SEED)
        .normal(scale=2.0, size=(KERAS_CHECK_INPUTS, *agent.observation_shape))
        .astype(np.float32)
    )
    try:
        model = agent.model  # the same bytes, loaded by Keras in safe mode
    except Exception as error:  # Keras refusing what the runtime accepts is the finding
        raise CheckFailedError(
            "keras", f"Keras cannot load the model in safe mode: {error}"
        ) from error
    expected = model(batch)
    expected = expected if isinstance(expected, (list, tuple)) else [expected]
    difference = max(
        float(np.max(np.abs(ours - keras.ops.convert_to_numpy(theirs))))
        for ours, theirs in zip(agent.outputs(batch), expected, strict=True)
    )
    if not difference <= KERAS_TOLERANCE:
        raise CheckFailedError(
            "keras",
            f"the NumPy pass differs from Keras by {difference:.3g} (limit {KERAS_TOLERANCE:g})",
        )
    return (
        f"NumPy pass equals Keras (safe mode) within {difference:.1e} on {KERAS_CHECK_INPUTS} "
        f"inputs, every output (limit {KERAS_TOLERANCE:g})"
    )


def _print_check(check: dict[str, Any]) -> None:
    mark = "ok  " if check["ok"] else "FAIL"
    print(f"  {mark} {check['name']:<15} {check['detail']}")


def print_report(
    title: str,
    checks: list[dict[str, Any]],
    bundle: Path | None,
    failure: CheckFailedError | None,
    as_json: bool,
) -> None:
    """Print every check by stage, then PASSED or what failed and how to fix it (or JSON)."""
    if as_json:
        report: dict[str, Any] = {
            "ok": failure is None,
            "bundle": str(bundle) if failure is None else None,
            "checks": checks,
        }
        if failure is not None:
            report["error"] = {"check": failure.check, "detail": failure.detail}
            report["fix"] = failure.fix
        print(json.dumps(report, indent=2))
        return
    print(title)
    stage = None
    for check in checks:
        if check.get("stage") != stage:
            stage = check.get("stage")
            print(STAGE_TITLES.get(stage, stage))
        _print_check(check)
    if failure is None:
        print(f"PASSED: {bundle} is verified and ready to submit")
        return
    if not any(not check["ok"] for check in checks):
        _print_check({"name": failure.check, "ok": False, "detail": failure.detail})
    print(f"FAILED at '{failure.check}'. How to fix: {failure.fix}")
