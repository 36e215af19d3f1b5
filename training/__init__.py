"""Training scripts and their shared core for the cartpole and pendulum agents.

Five standalone scripts reproduce the course's variants (SPEC section 3) and offer a fast preset;
they share one core: returns, distributions, networks, vectorised rollouts, the update steps,
one training loop and the run folder.
"""

import os

# The rollouts multiply small matrices (a few rows by 256) once per environment step; a
# multi-threaded BLAS only adds contention there (measured: 1.5 ms a call against 20 us on a
# busy 2-core machine). This must happen before NumPy loads, hence here; an explicit setting
# in the environment wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
