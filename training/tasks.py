"""The facts about each task, in one table: every command, benchmark and test reads them here.

The agent classes carry their own ``env_id`` too (a submission bundle ships ``agents/`` alone
and cannot import this package); a test checks that the two agree.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    """One task of the competition, named by its agent (the word used on every command line)."""

    agent: str
    env_id: str
    solve_score: float  # gymnasium's "solved" bar: the mean greedy score over evaluation episodes
    max_score: float  # the most an episode can score (one point a step up to the time limit)
    weights_prefix: str  # where the shipped weights live, relative to the repository root
    #: Step caps the shipped agent is scored under: the environment's own (None) and any
    #: shorter one an evaluator is known to use.
    evaluation_caps: tuple[int | None, ...] = (None,)


TASKS: dict[str, Task] = {
    "cartpole": Task("cartpole", "CartPole-v1", 475.0, 500.0, "weights/cartpole"),
    "pendulum": Task(
        "pendulum", "InvertedPendulum-v5", 950.0, 1000.0, "weights/pendulum", (None, 500)
    ),
}
AGENT_NAMES: tuple[str, ...] = tuple(TASKS)
