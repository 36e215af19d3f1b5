"""Which task an agent's files are for, so that the commands need no `--agent` for them."""

from __future__ import annotations

import os

from agents.agent_files import AgentFileError, agent_paths, read_config
from agents.base import TASK_CLASSES
from agents.keras_file import read_model_file


def agent_name_of(path: str | os.PathLike[str]) -> str | None:
    """The task an agent's files are for: their config's agent, else the one agent the
    model's shape fits; None if that cannot be told (loading then says why)."""
    model_path, config_path = agent_paths(path)
    try:
        config = read_config(config_path) if config_path.exists() else None
        if config is not None and "format" in config:
            name = config.get("agent")
            return name if name in TASK_CLASSES else None
        plan = read_model_file(model_path).plan
    except AgentFileError:
        return None
    fits = [
        name
        for name, agent_class in TASK_CLASSES.items()
        if not agent_class.plan_problem(plan, False)
    ]
    return fits[0] if len(fits) == 1 else None
