"""Training scripts for the cartpole and pendulum agents, on a small shared core.

Each algorithm reads top to bottom in its own script: reinforce.py (the course's variants 1-4),
gaussian_actor_critic.py (variant 5) and ppo.py. docs/architecture.md shows the core's layers.
"""

from training.startup import set_quiet_environment

# Before NumPy loads (OpenBLAS reads its thread count then) and before TensorFlow does; the
# display is left alone, as whoever imports this may want a real window.
set_quiet_environment(headless=False)
