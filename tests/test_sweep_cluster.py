"""training.sweep against a real Ray head, as a cluster user runs it.

The fixture starts ``ray start --head --block`` on free ports in a temporary folder, with
token authentication and its own token file, and stops it through that one process (SIGTERM
makes it stop everything it started): no ``ray stop``, nothing that could touch another Ray
instance on the machine. Each sweep runs as a separate command, as a user would type it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from training.reinforce_normalised import SCRIPT as NORMALISED

pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parent.parent
HEAD_CPUS = 2
HEAD_START_TIMEOUT_S = 90.0
HEAD_STOP_TIMEOUT_S = 30.0
SWEEP_TIMEOUT_S = 300.0
#: The connection to a refusing cluster must fail within this.
REFUSAL_BOUND_S = 20.0
#: Ports `ray start --head` would otherwise take at fixed defaults (shared by every Ray
#: instance on the machine); each gets a free one.
PORT_FLAGS = (
    "--port",
    "--ray-client-server-port",
    "--node-manager-port",
    "--object-manager-port",
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--runtime-env-agent-port",
    "--metrics-export-port",
)


@dataclass
class Head:
    address: str  # HOST:PORT of the GCS
    client_address: str  # ray://HOST:PORT of the Ray Client server
    env: dict[str, str]  # what a client needs: token mode and the token file


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + HEAD_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"ray start --head exited {process.returncode}:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"port {port} of the Ray head did not open:\n{log.read_text()}")


@pytest.fixture(scope="module")
def head(tmp_path_factory) -> Iterator[Head]:
    folder = tmp_path_factory.mktemp("ray-head")
    token = folder / "auth_token"
    token.write_text(uuid.uuid4().hex)
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    env.pop("RAY_ADDRESS", None)
    ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True))
    ray_command = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
    command = [ray_command, "start", "--head", "--block", f"--num-cpus={HEAD_CPUS}"]
    command += [f"{flag}={port}" for flag, port in ports.items()]
    # Ray's sockets live under its temp dir, and a Unix socket path has at most 107 bytes:
    # pytest's own temp paths (longer under pytest-xdist) leave too little, so a short one.
    ray_dir = Path(tempfile.mkdtemp(prefix="ray-head-", dir="/tmp"))
    command += ["--include-dashboard=false", f"--temp-dir={ray_dir}"]
    log = folder / "head.log"
    with log.open("w") as stream:
        process = subprocess.Popen(
            command, env=env, stdout=stream, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for_port(ports["--port"], process, log)
        wait_for_port(ports["--ray-client-server-port"], process, log)
        yield Head(
            address=f"127.0.0.1:{ports['--port']}",
            client_address=f"ray://127.0.0.1:{ports['--ray-client-server-port']}",
            env=env,
        )
    finally:
        process.send_signal(signal.SIGTERM)  # the head stops what it started
        try:
            process.wait(timeout=HEAD_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: only what it started
            process.wait()
        shutil.rmtree(ray_dir, ignore_errors=True)


def sweep(address: str, out: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """A 2-seed sweep with a tiny budget, run as its own command from the repository."""
    command = [sys.executable, "-m", "training.sweep", "--agent", "cartpole", "--seeds", "2"]
    # An episodic script stops at exactly --max-episodes (PPO's rollouts overshoot it).
    command += ["--script", "reinforce_normalised", "--grid", "max_episodes=32"]
    command += ["--address", address, "--out", str(out)]
    return subprocess.run(
        command,
        cwd=ROOT,
        env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=SWEEP_TIMEOUT_S,
        check=False,
    )


@pytest.mark.parametrize("kind", ["address", "client_address"])
def test_a_two_seed_sweep_on_the_cluster(head: Head, tmp_path: Path, kind: str) -> None:
    address = getattr(head, kind)
    completed = sweep(address, tmp_path / "sweep", head.env)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert f"trials on the Ray cluster at {address}, {HEAD_CPUS} CPUs" in completed.stdout
    assert "all trials: solve rate " in completed.stdout
    assert "Traceback" not in completed.stdout + completed.stderr
    summary = json.loads((tmp_path / "sweep" / "summary.json").read_text())
    assert summary["ran_on"].startswith(f"the Ray cluster at {address}")
    assert {trial["seed"] for trial in summary["trials"]} == {1, 2}
    for trial in summary["trials"]:
        assert trial["status"] == "finished", trial
        assert trial["episodes"] == 32
        run_dir = tmp_path / "sweep" / trial["run_dir"]
        # The workers ran this checkout's code, shipped with the job: its settings carry
        # every field of this checkout's settings class.
        settings = json.loads((run_dir / "settings.json").read_text())
        fields = {field.name for field in dataclasses.fields(NORMALISED.settings_class)}
        assert set(settings) >= fields


@pytest.mark.parametrize("kind", ["address", "client_address"])
@pytest.mark.parametrize(
    ("auth", "message"),
    [
        ({"RAY_AUTH_MODE": "disabled"}, "or it asks for a token: run with RAY_AUTH_MODE=token"),
        ({"RAY_AUTH_TOKEN": "0" * 32}, "or it refused this machine's token"),
    ],
)
def test_a_refused_connection_is_one_line_within_the_bound(
    head: Head, tmp_path: Path, kind: str, auth: dict[str, str], message: str
) -> None:
    """Ray's own retries are cut short by its settings (RAY_gcs_server_port_wait_time_s, the
    Ray Client timeouts); the sweep's last line names the address and the fixes. Ray's C++
    client may log its retries above it."""
    address = getattr(head, kind)
    started = time.monotonic()
    completed = sweep(address, tmp_path / "sweep", {**head.env, **auth})
    elapsed = time.monotonic() - started
    assert completed.returncode == 1
    assert elapsed < REFUSAL_BOUND_S
    last = completed.stderr.strip().splitlines()[-1]
    assert last.startswith(f"python -m training.sweep: error: --address {address}: ")
    assert message in last
    assert "`ray get-auth-token` there" in last  # the fix
    assert "Traceback" not in completed.stderr
