"""Competition agents for CartPole-v1 and InvertedPendulum-v5 (`kymnasium.Agent` subclasses).

The evaluator does `AgentClass.load(path).act(observation, info)`; `path` is a prefix naming
`{path}.keras` (the Keras model) and `{path}.config` (a pickled plain dict of settings).
The course's own files load too: a lone `.keras` checkpoint, or one with a `{'seed': N}`
config (`agents.course_files`).
Importing this package, loading and acting need NumPy and h5py, never TensorFlow or Keras.
"""

from agents.agent_files import AgentFileError
from agents.base import PolicyAgent
from agents.cartpole import CartPoleAgent
from agents.course_files import UncheckedFilesWarning
from agents.identify import agent_name_of
from agents.inverted_pendulum import InvertedPendulumAgent

#: Agent classes by the short task name used on every command line.
AGENT_CLASSES: dict[str, type[PolicyAgent]] = {
    CartPoleAgent.agent: CartPoleAgent,
    InvertedPendulumAgent.agent: InvertedPendulumAgent,
}

__all__ = [
    "AGENT_CLASSES",
    "AgentFileError",
    "CartPoleAgent",
    "InvertedPendulumAgent",
    "PolicyAgent",
    "UncheckedFilesWarning",
    "agent_name_of",
]
