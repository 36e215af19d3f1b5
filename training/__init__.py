"""Training scripts and their shared core for the cartpole and pendulum agents.

Five standalone scripts reproduce the course's variants and offer a fast preset; they share
one core: task facts (tasks), presets, settings, returns, distributions, networks, vectorised
rollouts, the update steps (algorithm), one training loop and the run folder (runs).
"""

from training.startup import set_quiet_environment

# Before NumPy loads (OpenBLAS reads its thread count then) and before TensorFlow does. The
# display is left alone: whoever imports this may want a real window.
set_quiet_environment(headless=False)
