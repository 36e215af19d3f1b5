"""How every command starts: quiet and headless, before the heavy imports.

TensorFlow reads ``TF_CPP_MIN_LOG_LEVEL`` when it loads, MuJoCo reads ``MUJOCO_GL`` and pygame
``SDL_VIDEODRIVER`` when they first render, and OpenBLAS its thread count when NumPy loads, so
this must run before those imports. Values already set in the environment win.
"""

from __future__ import annotations

import contextlib
import os
import sys
import typing

QUIET_HEADLESS = {
    # Silence TensorFlow's C++ start-up logs.
    "TF_CPP_MIN_LOG_LEVEL": "3",
    # Render offscreen: MuJoCo through EGL, pygame without a window.
    "MUJOCO_GL": "egl",
    "SDL_VIDEODRIVER": "dummy",
    # The rollouts multiply small matrices once per environment step; a multi-threaded BLAS
    # only adds contention there (measured: 1.5 ms a call against 20 us on a busy 2-core
    # machine).
    "OPENBLAS_NUM_THREADS": "1",
}


def set_quiet_environment(headless: bool = True) -> None:
    """Set the defaults above (``headless=False`` leaves rendering to the real display)."""
    for name, value in QUIET_HEADLESS.items():
        if headless or name not in ("MUJOCO_GL", "SDL_VIDEODRIVER"):
            os.environ.setdefault(name, value)


@contextlib.contextmanager
def _stderr_silenced_at_fd_level():
    """Point file descriptor 2 at /dev/null for the block: C++ code writes there directly."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and Keras without their start-up lines on stderr.

    TensorFlow's C++ side logs through absl before absl is initialised, which
    ``TF_CPP_MIN_LOG_LEVEL`` does not reach (six lines on every start here). The devices are
    listed in the same block: that is when a machine without a GPU logs "failed call to
    cuInit" (an error-level line, shown under the Makefile's TF_CPP_MIN_LOG_LEVEL=2); listing
    them does not start the runtime, so thread settings still apply. An import error still
    raises as usual; only what the libraries write to stderr while loading is dropped.

    Keras' optional image-gallery helpers import ``matplotlib.pyplot`` while Keras loads (about
    0.5 s here) when matplotlib is installed; training never uses them, so matplotlib is hidden
    for the import (a ``None`` in ``sys.modules`` makes ``import`` raise ImportError, which
    Keras treats as "not installed"), and a learning curve imports it for real later.
    """
    if "tensorflow" in sys.modules:
        return
    set_quiet_environment()
    hidden = "matplotlib" not in sys.modules
    if hidden:
        sys.modules["matplotlib"] = None  # type: ignore[assignment]
    try:
        with _stderr_silenced_at_fd_level():
            import keras  # noqa: F401 - loading is the point
            import tensorflow

            tensorflow.config.list_physical_devices()
    finally:
        if hidden:
            del sys.modules["matplotlib"]


def exit_now(status: int) -> typing.NoReturn:
    """End the process with ``status`` once its output is flushed, skipping the interpreter's
    teardown: with TensorFlow loaded that teardown takes about 0.5 s (measured here) and
    does nothing a finished command needs. Call it only when every file has been closed."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
