"""The InvertedPendulum-v5 agent: a Gaussian policy acting with its mean."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from agents.base import PolicyAgent

#: The environment's action bounds (gymnasium's InvertedPendulum-v5: Box(-3, 3, (1,))).
ACTION_LOW = -3.0
ACTION_HIGH = 3.0


class InvertedPendulumAgent(PolicyAgent):
    """Pushes the cart with the Gaussian policy's mean force, clipped to [-3, 3].

    The model maps observations (None, 4) to `[mean (None, 1), log_std (None, 1)]`; acting
    uses the mean only (the evaluation rule of the course), so it never computes the log-std
    head. The course's pendulum agent saves no config; a lone `.keras` file loads (unchecked).
    """

    agent: ClassVar[str] = "pendulum"
    env_id: ClassVar[str] = "InvertedPendulum-v5"

    @classmethod
    def expected_output_shape(cls) -> tuple[int, ...]:
        return (1,)

    @classmethod
    def action_space_config(cls) -> dict[str, Any]:
        return {"type": "box", "low": [ACTION_LOW], "high": [ACTION_HIGH], "shape": [1]}

    def _action(self, output: np.ndarray) -> np.ndarray:
        # minimum(maximum()) is np.clip at half the cost on one value; NaN stays NaN.
        return np.minimum(np.maximum(output, ACTION_LOW), ACTION_HIGH).astype(
            np.float32, copy=False
        )

    _actions = _action  # elementwise: a batch of outputs is clipped the same way
