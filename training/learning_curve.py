"""A run's learning_curve.png, drawn by a child process started with the run: its matplotlib
import (0.35 s) then overlaps the training on the core a run leaves free, instead of following
it (benchmarks/training_speed.py measures the whole run)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)


class CurveDrawer:
    """The child: ``png(...)`` sends it the curve and returns the image's bytes."""

    def __init__(self) -> None:
        code = f"import sys; sys.path.insert(0, {ROOT!r}); from {__name__} import serve; serve()"
        pipes = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.child = subprocess.Popen([sys.executable, "-c", code], **pipes)

    def png(self, rows: list[dict[str, str]], title: str, threshold: float | None) -> bytes:
        """Episode rewards and the running reward from progress.csv's rows."""
        columns = {k: [float(r[k]) for r in rows] for k in ("episode", "reward", "running_reward")}
        image, errors = self.child.communicate(json.dumps([columns, title, threshold]).encode())
        if self.child.returncode:  # a bug, not a user's mistake: its traceback
            raise RuntimeError(f"drawing the learning curve failed:\n{errors.decode()}")
        return image

    def close(self) -> None:
        """Stop a child never asked to draw (the run failed first); twice is harmless."""
        if self.child.poll() is None:
            self.child.kill()
            self.child.communicate()


def serve() -> None:
    """The child's side: import matplotlib, then draw the one request on stdin to stdout."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the run's to handle, not ours
    import matplotlib.backends.backend_agg  # noqa: F401 - savefig's canvas, imported ahead
    from matplotlib.figure import Figure  # no pyplot: no backend to choose

    column, title, threshold = json.loads(sys.stdin.buffer.read())  # killed if never asked
    figure = Figure(figsize=(8, 4.5))
    axes = figure.subplots()
    axes.plot(column["episode"], column["reward"], lw=0.6, alpha=0.4, label="episode reward")
    axes.plot(column["episode"], column["running_reward"], lw=1.8, label="running reward")
    if threshold is not None:
        axes.axhline(threshold, color="grey", ls="--", lw=1, label=f"solved ({threshold:g})")
    axes.set(xlabel="episode", ylabel="reward", title=title)
    axes.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(sys.stdout.buffer, format="png", dpi=100)
