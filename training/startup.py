"""How every command starts: quiet, headless and seeded.

TensorFlow reads ``TF_CPP_MIN_LOG_LEVEL`` when it loads, MuJoCo ``MUJOCO_GL`` and pygame
``SDL_VIDEODRIVER`` when they first render, OpenBLAS its thread count when NumPy loads: so this
module imports none of them at the top, and values already in the environment win.
"""

from __future__ import annotations

import gc
import os
import random
import sys
import typing

QUIET_HEADLESS = {
    "TF_CPP_MIN_LOG_LEVEL": "3",  # no TensorFlow C++ start-up logs
    "MUJOCO_GL": "egl",  # render offscreen
    "SDL_VIDEODRIVER": "dummy",  # pygame without a window
    # The rollouts multiply small matrices every step, where a threaded BLAS only adds
    # contention (measured: 1.5 ms a call against 20 us on a busy 2-core machine).
    "OPENBLAS_NUM_THREADS": "1",
}


def set_quiet_environment(headless: bool = True) -> None:
    """Set the defaults above (``headless=False`` leaves rendering to the real display)."""
    for name, value in QUIET_HEADLESS.items():
        if headless or name not in ("MUJOCO_GL", "SDL_VIDEODRIVER"):
            os.environ.setdefault(name, value)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and Keras without the lines their C++ side writes to fd 2 at start-up
    (``TF_CPP_MIN_LOG_LEVEL`` misses them; listing the devices in the block hides "failed call to
    cuInit" and does not start the runtime), hiding the optional imports Keras makes for helpers
    no run uses (still importable later): matplotlib (0.5 s), pandas (0.3 s), IPython and
    OpenCV (0.05 s). The 0.5 M objects the import makes live as long as the process: the
    garbage collector skips them, during the import (0.35 s) and after it (frozen)."""
    if "tensorflow" in sys.modules:
        return
    set_quiet_environment()
    optional = ("matplotlib", "pandas", "cv2", "IPython")
    hidden = [name for name in optional if name not in sys.modules]
    sys.stderr.flush()
    saved, devnull, collecting = os.dup(2), os.open(os.devnull, os.O_WRONLY), gc.isenabled()
    try:
        gc.disable()
        sys.modules.update(dict.fromkeys(hidden))
        os.dup2(devnull, 2)
        import keras  # noqa: F401 - loading is the point
        import tensorflow

        tensorflow.config.list_physical_devices()
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
        for name in hidden:
            del sys.modules[name]
        gc.freeze()
        if collecting:
            gc.enable()


def seed_everything(seed: int, threads: int | None = None) -> None:
    """Seed Python, NumPy, Keras and TensorFlow and make TensorFlow's ops deterministic, for
    all randomness but the rollouts' (per-update generators). ``threads`` pins TensorFlow's
    thread pools, which only works before its first op."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    import keras
    import tensorflow as tf

    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:
            pass  # already initialised in this process (e.g. a second run in the tests)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def exit_now(status: int) -> typing.NoReturn:
    """Exit once the output is flushed, skipping the interpreter's teardown (0.5 s with
    TensorFlow loaded, measured here); only once every file is closed."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
