"""The CartPole-v1 agent: a softmax policy acting on its most probable action."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from agents.base import PolicyAgent

N_ACTIONS = 2


class CartPoleAgent(PolicyAgent):
    """Pushes the cart left (0) or right (1): the action the policy finds most probable.

    The model maps a batch of observations (None, 4) to action probabilities (None, 2).
    Exact ties, which the evaluator's rules leave to the agent, are broken by the agent's
    random generator, seeded from the saved seed, so a loaded agent replays the same choices.
    """

    agent: ClassVar[str] = "cartpole"
    env_id: ClassVar[str] = "CartPole-v1"

    @classmethod
    def expected_output_shape(cls) -> tuple[int, ...]:
        return (N_ACTIONS,)

    @classmethod
    def action_space_config(cls) -> dict[str, Any]:
        return {"type": "discrete", "n": N_ACTIONS}

    def _action(self, output: np.ndarray) -> int:
        best = int(output.argmax())
        if np.count_nonzero(output == output[best]) == 1:
            return best
        return int(self._rng.choice(np.flatnonzero(output == output[best])))

    def _actions(self, outputs: np.ndarray) -> np.ndarray:
        best = outputs.argmax(axis=1)
        tied = np.count_nonzero(outputs == outputs.max(axis=1, keepdims=True), axis=1) > 1
        for row in np.flatnonzero(tied):  # exact ties: the seeded generator, as act
            best[row] = self._action(outputs[row])
        return best
