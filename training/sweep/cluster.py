"""Reaching Ray for a sweep: a private instance here, the one this machine already runs, or a
cluster at an address.

- no ``--address``: a Ray instance started in this process, sized by ``--cpus``; but if Ray is
  already running on this machine (``ray start``, or ``RAY_ADDRESS`` as inside ``ray job
  submit``) the sweep joins it and says so in one line;
- ``--address local``: always a private instance in this process;
- ``--address auto``, ``HOST:PORT`` or ``ray://HOST:PORT``: an existing cluster. The project's
  packages are shipped to its workers as folders (Ray Client cannot pickle module objects);
  the nodes' Python needs the project's dependencies.

A cluster that cannot be reached, or refuses this client's token, fails within
CONNECT_TIMEOUT_S with one line naming the address and the likely fix, instead of Ray's
minutes of retries and pages of log lines.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: Headless rendering and quiet TensorFlow in every Ray worker, local or remote.
WORKER_ENV = {"MUJOCO_GL": "egl", "SDL_VIDEODRIVER": "dummy", "TF_CPP_MIN_LOG_LEVEL": "2"}
#: The project's packages a trial imports, shipped to a cluster's workers as folders.
PROJECT_PACKAGES = ("agents", "training")
SHIPPING_EXCLUDES = ["__pycache__", "*.pyc"]
PROBE_TIMEOUT_S = 5.0  # a TCP connection to the address, before Ray's own retries
CONNECT_TIMEOUT_S = 20.0  # all of connecting, so a dead cluster fails within 30 s
WATCH_INTERVAL_S = 0.5  # how often the connection watcher reads Ray's messages
EXIT_CONNECT = 1
#: What Ray says when a cluster refuses a client's token (GCS, and Ray Client at debug level).
AUTH_MARKERS = (
    "InvalidAuthToken",
    "Unauthenticated",
    "AuthenticationError",
    "authentication token",
)
DEFAULT_CLIENT_PORT = 10001  # Ray Client's port on a head started without --ray-client-server-port
ANSI_CODES = re.compile(r"\x1b\[[0-9;]*m")
TOKEN_FILE = "~/.ray/auth_token"
AUTH_FIX = (
    f"Ray 2.5x heads require a token: run with RAY_AUTH_MODE=token and the head's token in "
    f"{TOKEN_FILE} (print it on the head with `ray get-auth-token`)"
)


class ClusterError(RuntimeError):
    """Ray cannot be reached or started; the message is the one line the user sees."""


def _package_folders() -> list[str]:
    return [
        str(Path(importlib.util.find_spec(name).origin).parent)  # type: ignore[union-attr]
        for name in PROJECT_PACKAGES
    ]


def running_instance() -> str | None:
    """The address of a Ray instance this machine already runs (``RAY_ADDRESS``, or the one
    ``ray start`` recorded), which a plain ``ray.init()`` would join; else None."""
    if os.environ.get("RAY_ADDRESS"):
        return os.environ["RAY_ADDRESS"]
    try:  # where `ray start` records its address: Ray's own lookup, not a public API
        from ray._private.utils import read_ray_address
    except ImportError:
        return None
    return read_ray_address()


def connect(address: str | None, cpus: int | None) -> str:
    """Reach Ray as the module docstring describes; returns where the trials run."""
    import ray

    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address is None:
        existing = running_instance()
        if existing is not None:
            if cpus is not None:
                raise ClusterError(
                    f"--cpus sizes a private Ray, but Ray is already running on this machine "
                    f"at {existing}: drop --cpus to join it, or add --address local"
                )
            source = "RAY_ADDRESS" if os.environ.get("RAY_ADDRESS") else "`ray start`"
            print(
                f"sweep: joining the Ray instance already running at {existing} (from {source}; "
                "--address local starts a private one instead)",
                flush=True,
            )
            label = f"the Ray instance at {existing} (from {source})"
            try:
                return _join(existing, "auto", quiet, label)
            except ClusterError as error:
                raise ClusterError(
                    f"{error}; if that Ray is gone, unset RAY_ADDRESS or run `ray stop`, or pass "
                    "--address local"
                ) from None
        address = "local"
    if address == "local":
        count = cpus or os.cpu_count() or 1
        ray.init(
            address="local",
            num_cpus=count,
            include_dashboard=False,
            runtime_env={"env_vars": WORKER_ENV},
            **quiet,
        )
        return f"a private Ray in this process, {count} CPUs"
    return _join(address, address, quiet, f"--address {address}")


def _join(shown: str, address: str, quiet: dict[str, Any], label: str) -> str:
    """Connect to the cluster at ``shown`` (``address`` as ray.init takes it) within
    CONNECT_TIMEOUT_S, or raise a one-line error that starts with ``label``."""
    import ray

    _probe(shown, label)
    runtime_env = {
        "env_vars": WORKER_ENV,
        "py_modules": _package_folders(),
        "excludes": SHIPPING_EXCLUDES,
    }
    with _ConnectionLog() as log, _deadline(shown, label, log):
        try:
            ray.init(address=address, runtime_env=runtime_env, **quiet)
        except Exception as error:  # noqa: BLE001 - every failure becomes one line
            raise ClusterError(_connect_failure(shown, label, error, log.text())) from None
    resources = ray.cluster_resources()
    return f"the Ray cluster at {shown}, {int(resources.get('CPU', 0))} CPUs"


def _probe(address: str, label: str) -> None:
    """A plain TCP connection first: a wrong host or port fails in seconds, not minutes."""
    target = address.removeprefix("ray://")
    if target in ("auto", ""):
        return
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"{label}: expected HOST:PORT, ray://HOST:PORT or auto")
    try:
        socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S).close()
    except OSError as error:
        what = error.strerror or type(error).__name__
        if address.startswith("ray://"):
            hint = (
                "check that the head runs (`ray start --head`) and that this is its Ray "
                f"Client port (--ray-client-server-port, default {DEFAULT_CLIENT_PORT})"
            )
        else:
            hint = (
                "check that the head runs (`ray start --head`) and that this is its "
                "GCS port (--port, default 6379)"
            )
        raise ClusterError(f"{label}: cannot connect ({what}); {hint}") from None


def _connect_failure(address: str, label: str, error: Exception | None, log: str) -> str:
    """The one line for a failed connection (``error`` None: it timed out), from the error
    and what Ray logged while trying."""
    text = f"{error} {log}"
    if _refused(text):
        if os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
            return (
                f"{label}: the cluster refused this machine's token; copy the "
                f"head's token (`ray get-auth-token` there) into {TOKEN_FILE}"
            )
        return f"{label}: the cluster asks for authentication; {AUTH_FIX}"
    if "Could not find any running Ray instance" in text:
        return (
            f"{label}: no Ray instance runs on this machine; start one with "
            "`ray start --head`, or leave out --address"
        )
    if error is None:
        what = f"no answer from Ray within {CONNECT_TIMEOUT_S:.0f} s"
    else:
        lines = ANSI_CODES.sub("", str(error)).strip().splitlines()
        what = lines[0] if lines else type(error).__name__
    port = "Ray Client port" if address.startswith("ray://") else "GCS port (--port on the head)"
    return f"{label}: {what}; check that it is the head's {port}; {AUTH_FIX}"


def _refused(log: str) -> bool:
    """Whether Ray's messages say the cluster refused this client's token (or lack of one)."""
    return any(marker in log for marker in AUTH_MARKERS)


class _Messages(logging.Handler):
    """Keeps the messages of the logger it is attached to."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


class _ConnectionLog:
    """What Ray says while connecting, held back: its C++ client logs every retry to file
    descriptor 2, and Ray Client logs why the server refused it only at debug level. Shown
    afterwards if the connection worked; read for the one-line diagnosis if not."""

    CLIENT_LOGGER = "ray.util.client"

    def __enter__(self) -> _ConnectionLog:
        self._client = logging.getLogger(self.CLIENT_LOGGER)
        self._client_state = (self._client.level, self._client.propagate)
        self._messages = _Messages()
        self._client.setLevel(logging.DEBUG)
        self._client.propagate = False
        self._client.addHandler(self._messages)
        sys.stderr.flush()
        self._saved = os.dup(2)
        self._sink = tempfile.TemporaryFile()
        os.dup2(self._sink.fileno(), 2)
        self._holding = True
        return self

    def give_back_stderr(self) -> None:
        """Restore file descriptor 2 (safe to call twice)."""
        if self._holding:
            sys.stderr.flush()
            os.dup2(self._saved, 2)
            os.close(self._saved)
            self._holding = False

    def held_stderr(self) -> str:
        """What went to file descriptor 2 so far (pread: safe while Ray writes)."""
        size = os.fstat(self._sink.fileno()).st_size
        return os.pread(self._sink.fileno(), size, 0).decode(errors="replace")

    def text(self) -> str:
        return self.held_stderr() + "\n".join(self._messages.messages)

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        self.give_back_stderr()
        self._client.removeHandler(self._messages)
        self._client.setLevel(self._client_state[0])
        self._client.propagate = self._client_state[1]
        if kind is None:
            sys.stderr.write(self.held_stderr())
        self._sink.close()


@contextlib.contextmanager
def _deadline(address: str, label: str, log: _ConnectionLog) -> Iterator[None]:
    """Give up on connecting as soon as Ray's messages say the token was refused, or after
    CONNECT_TIMEOUT_S: Ray's own retries can take minutes and cannot be interrupted from
    Python, so a watcher thread prints the one line and ends the process."""
    connected = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while not connected.wait(WATCH_INTERVAL_S):
            text = log.text()
            if _refused(text) or time.monotonic() >= deadline:
                log.give_back_stderr()
                message = _connect_failure(address, label, None, text)
                print(f"python -m training.sweep: error: {message}", file=sys.stderr, flush=True)
                os._exit(EXIT_CONNECT)

    watcher = threading.Thread(target=watch, name="ray-connect-deadline", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        connected.set()
        watcher.join()
