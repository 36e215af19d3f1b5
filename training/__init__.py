"""Training scripts for the cartpole and pendulum agents, on a small shared core.

Each algorithm reads top to bottom in its own script: reinforce.py (the course's variants
1-4), gaussian_actor_critic.py (variant 5) and ppo.py. The core under them: tasks, settings
(and the command line), runs (the run folder), loop, run_state and solve_check, rollouts, returns
and distributions. docs/architecture.md shows the layers.
"""

from training.startup import set_quiet_environment

# Before NumPy loads (OpenBLAS reads its thread count then) and before TensorFlow does. The
# display is left alone: whoever imports this may want a real window.
set_quiet_environment(headless=False)
