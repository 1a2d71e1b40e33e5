"""
A SIGTERM while the run starts Ray (``ray.init``): the run stops at once, exits 143 with
its summary and the ``--resume`` advice, and leaves no Ray process behind.

Each run is the first process of a PID namespace of its own, so the processes left after
it are exactly those it started.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from netns import in_own_pid_namespace, require_loopback_namespace

require_loopback_namespace()

pytest.importorskip("ray", reason="the Ray tests need ray: pip install 'asyncpipe[ray]'")

__all__: list[str] = []

ROOT = Path(__file__).resolve().parents[1]

# Runs `asyncpipe run` (argv[2:]), sends it SIGTERM half a second after a process whose
# command line holds argv[1] runs (or, for "log:TEXT", after the run logs TEXT), prints
# as JSON its exit code, the seconds from the signal to its exit, its stderr and the
# processes still running 2 s later (the namespace's own shell and this script aside).
ORCHESTRATOR = """
import json, os, signal, subprocess, sys, time

def others():
    mine = {os.getpid(), os.getppid()}
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) in mine:
            continue
        try:
            found.append(open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\\0", b" ").decode())
        except OSError:
            pass
    return [line for line in found if line]

mark, command = sys.argv[1], sys.argv[2:]
driver = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
if mark.startswith("log:"):
    lines = []
    for line in driver.stderr:
        lines.append(line)
        if mark[4:] in line:
            break
else:
    lines = []
    while driver.poll() is None and not any(mark in line for line in others()):
        time.sleep(0.02)
time.sleep(0.5)
driver.send_signal(signal.SIGTERM)
sent = time.monotonic()
try:
    rest = driver.communicate(timeout=float(os.environ["STOP_TIMEOUT"]))[1]
    code = driver.returncode
except subprocess.TimeoutExpired:
    rest, code = "", None
took = time.monotonic() - sent
time.sleep(2)
print(json.dumps({"code": code, "took": took, "stderr": "".join(lines) + rest, "left": others()}))
"""


# What ray.init logs as it starts to connect to a running cluster.
_CONNECTING = "log:Connecting to existing Ray cluster"


@contextmanager
def _settings_only_server() -> Iterator[int]:
    """
    The port of a server on 127.0.0.1 that answers an HTTP/2 preface with SETTINGS, as a
    Ray head does (so the look before ``ray.init`` passes it), and then says nothing.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            held.append(connection)
            connection.sendall(bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()
        for connection in held:
            connection.close()


def _stopped(tmp_path: Path, mark: str, *options: str, wait: float) -> dict[str, object]:
    """``asyncpipe run`` of three numbers (`tests/cliapp.py`, ``square`` on Ray) with
    ``options``, sent SIGTERM at ``mark`` (see `ORCHESTRATOR`)."""
    (tmp_path / "nums.txt").write_text("1\n2\n3\n")
    (tmp_path / "stop.py").write_text(textwrap.dedent(ORCHESTRATOR))
    run = [sys.executable, "-m", "asyncpipe", "run", "--app", "cliapp:app", "nums.txt"]
    run += ["--out", "out.jsonl", "--side", "side.txt", "--ray-stages", "square"]
    run += ["--progress", "none", *options]
    script = shlex.join([sys.executable, "stop.py", mark, *run])
    with tempfile.TemporaryDirectory(prefix="rt", dir="/tmp") as ray_tmpdir:
        environment = {
            **{name: value for name, value in os.environ.items() if name != "RAY_ADDRESS"},
            "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}",
            "RAY_TMPDIR": ray_tmpdir,
            "STOP_TIMEOUT": str(wait),
        }
        done = subprocess.run(
            in_own_pid_namespace(script),
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=wait + 120,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _check_stopped(result: dict[str, object]) -> None:
    """The run exited 143 with its summary and the advice to resume, and left nothing."""
    stderr = str(result["stderr"])
    assert result["code"] == 143, (result["code"], result["took"], stderr[-3000:])
    assert "interrupted by SIGTERM" in stderr, stderr[-3000:]
    assert "To finish the run:" in stderr and "--resume" in stderr, stderr[-3000:]
    assert result["left"] == [], result["left"]


class TestSigtermWhileRayStarts:
    """A SIGTERM during ``ray.init``."""

    @pytest.mark.timeout(240)
    def test_stops_a_connect_that_hangs(self, tmp_path: Path) -> None:
        """A head that answers the look but never serves Ray (ray.init retries it for
        many minutes): a SIGTERM stops the run within 30 s; it waited for ray.init,
        deaf to the signal, for over ten minutes."""
        with _settings_only_server() as port:
            address = f"127.0.0.1:{port}"
            result = _stopped(tmp_path, _CONNECTING, "--ray-address", address, wait=30)
        _check_stopped(result)

    @pytest.mark.timeout(240)
    def test_stops_a_half_started_local_cluster(self, tmp_path: Path) -> None:
        """A SIGTERM once the local cluster's raylet has started its agents, before
        ray.init returns: the run exits 143 and no Ray process outlives it (the agents
        would: the kernel ends only the gcs_server and the raylet with the driver)."""
        result = _stopped(tmp_path, "dashboard/agent.py", "--executor", "ray", wait=60)
        _check_stopped(result)
        assert "ray: starting a local cluster" in str(result["stderr"])
