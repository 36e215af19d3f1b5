"""TensorBoard scalars for the run folder, written cheaply (see :class:`ScalarWriter`)."""

from __future__ import annotations

import math
import socket
import time
from pathlib import Path
from typing import Any


class ScalarWriter:
    """TensorBoard scalars in an event file of the run folder, one event per step.

    ``tf.summary.scalar`` needs the tensorboard package and costs about 140 us a value (one
    eager op each); building the same Event protos and writing them through TensorFlow's
    record writer costs about 2 us a value (benchmarks/tensorboard_overhead.py), so logging
    every episode stays cheap.
    """

    def __init__(self, folder: Path, first_step: int) -> None:
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2
        from tensorflow.core.util import event_pb2

        self._event_pb2 = event_pb2
        self._summary_pb2 = summary_pb2
        # Nanoseconds in the name: TensorBoard reads a folder's files in name order, so a
        # resumed run's file must sort after the files it continues.
        name = f"events.out.tfevents.{time.time_ns()}.{socket.gethostname()}"
        self.path = Path(folder) / name
        self._writer = tf.io.TFRecordWriter(str(self.path))
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))
        if first_step > 1:
            # A resumed run: TensorBoard drops the steps >= first_step that older files hold
            # (rows a killed run logged after its last saved state), as progress.csv does.
            start = event_pb2.SessionLog(status=event_pb2.SessionLog.START)
            self._write(event_pb2.Event(wall_time=time.time(), step=first_step, session_log=start))

    def write(self, step: int, values: dict[str, float]) -> None:
        """One event at ``step`` holding every finite value under its tag."""
        summary = self._summary_pb2.Summary(
            value=[
                self._summary_pb2.Summary.Value(tag=tag, simple_value=value)
                for tag, value in values.items()
                if math.isfinite(value)
            ]
        )
        self._write(self._event_pb2.Event(wall_time=time.time(), step=step, summary=summary))

    def _write(self, event: Any) -> None:
        self._writer.write(event.SerializeToString())

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
