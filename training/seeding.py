"""One place that makes a run reproducible."""

from __future__ import annotations

import random

import numpy as np


def seed_everything(seed: int, threads: int | None = None) -> None:
    """Seed Python, NumPy, Keras and TensorFlow, and make TensorFlow ops deterministic.

    Rollouts draw from their own per-update generators (see ``training.loop``); this covers
    everything else (initialisers, any library randomness). ``threads`` pins TensorFlow's
    thread pools, which must happen before TensorFlow runs its first op.
    """
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
