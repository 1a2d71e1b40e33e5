"""
`RayExecutor()` on its own: the local cluster it starts, and the cluster it cannot reach.

Each test runs a driver in a subprocess, so that it starts (or fails to reach) a cluster
of its own, apart from the session cluster of `tests/test_ray.py`.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from netns import require_loopback_namespace

require_loopback_namespace()

pytest.importorskip("ray", reason="the Ray tests need ray: pip install 'asyncpipe[ray]'")

__all__: list[str] = []

ROOT = Path(__file__).resolve().parents[1]

# A pipeline on RayExecutor() beside other to_thread work, with anyio retiring a worker
# thread idle for half a second (10 s by default): each round of three calls at once
# leaves idle threads behind, and the next call retires those idle the longest, among
# them the one that ran ray.init if ray.init ran on one of anyio's threads.
LOCAL_CLUSTER_DRIVER = """
import contextlib
import http.server
import os
import signal
import socket
import subprocess
import time

import anyio
import anyio.to_thread
from anyio._backends._asyncio import WorkerThread

from asyncpipe import Pipeline, RayExecutor, Stage

WorkerThread.MAX_IDLE_TIME = 0.5


def slow(value):
    time.sleep(0.25)
    return value


def cluster_alive():
    names = subprocess.run(
        ["ps", "--ppid", str(os.getpid()), "-o", "stat=,comm="],
        capture_output=True, text=True, check=True,
    ).stdout.split("\\n")
    live = [line.split()[1] for line in names if line.split() and line.split()[0][0] != "Z"]
    return "gcs_server" in live and "raylet" in live


async def other_work():
    while True:
        async with anyio.create_task_group() as tg:
            for pause in (0.05, 0.1, 0.15):
                tg.start_soon(anyio.to_thread.run_sync, time.sleep, pause)
        await anyio.sleep(0.6)
        await anyio.to_thread.run_sync(time.sleep, 0)


async def main():
    done = []

    async def sink(item):
        done.append(item)
        if len(done) == 40:
            print("cluster alive at the end:", cluster_alive(), flush=True)

    executor = RayExecutor(init_options={"num_cpus": 2}, object_store_memory=100 * 1024**2)
    stage = Stage("slow", slow, kind="thread", workers=2, executor=executor)
    async with anyio.create_task_group() as tg:
        tg.start_soon(other_work)
        summary = await Pipeline([stage]).run(range(40), sink=sink)
        tg.cancel_scope.cancel()
    print("ok", summary.ok, "failed", summary.failed, flush=True)


anyio.run(main)
"""


# A journaled run on RayExecutor() whose one call takes 6 s; the call makes the file
# named on the command line as it starts.
SLOW_CALL_DRIVER = """
import pathlib
import sys
import time

import anyio

from asyncpipe import Journal, Pipeline, RayExecutor, Stage

MARKER = sys.argv[1]


def slow(value):
    pathlib.Path(MARKER).touch()
    time.sleep(6)
    return value


async def drop(item):
    pass


async def main():
    executor = RayExecutor(init_options={"num_cpus": 2}, object_store_memory=100 * 1024**2)
    stage = Stage("slow", slow, kind="thread", workers=1, executor=executor)
    summary = await Pipeline([stage]).run(
        ["a"],
        sink=drop,
        journal=Journal("run.journal"),
        key=str,
        stop_on_signals=True,
    )
    print("interrupted by", summary.interrupted, "ok", summary.ok, flush=True)


anyio.run(main)
"""


# A journaled run on RayExecutor() whose actor takes an hour to build its resource (an
# OCR engine loading its models takes a while); it makes the file named on the command
# line as it starts building.
SLOW_START_DRIVER = """
import pathlib
import sys
import time

import anyio

from asyncpipe import Journal, Pipeline, RayExecutor, Stage

MARKER = sys.argv[1]


def engine():
    pathlib.Path(MARKER).touch()
    time.sleep(3600)
    return "engine"


def read(engine, value):
    return value


async def drop(item):
    pass


async def main():
    executor = RayExecutor(init_options={"num_cpus": 2}, object_store_memory=100 * 1024**2)
    stage = Stage("ocr", read, kind="thread", workers=1, resource=engine, executor=executor)
    summary = await Pipeline([stage]).run(
        ["a", "b"],
        sink=drop,
        journal=Journal("run.journal"),
        key=str,
        stop_on_signals=True,
    )
    print("interrupted by", summary.interrupted, "ok", summary.ok, flush=True)


anyio.run(main)
"""


def _driver(
    tmp_path: Path, source: str, *args: str, timeout: float
) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(source))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ADDRESS", None)
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class TestLocalCluster:
    """The throwaway cluster that RayExecutor() starts."""

    @pytest.mark.timeout(240)
    def test_cluster_outlives_anyio_idle_threads(self, tmp_path: Path) -> None:
        """The cluster's gcs_server and raylet die with the thread that started them
        (PR_SET_PDEATHSIG): it lives as long as the executor, not as an anyio worker."""
        done = _driver(tmp_path, LOCAL_CLUSTER_DRIVER, timeout=200)
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-4000:]
        assert "cluster alive at the end: True" in done.stdout, output[-4000:]
        assert "ok 40 failed 0" in done.stdout, output[-4000:]


def _terminated_once(
    tmp_path: Path, source: str, *, timeout: float
) -> subprocess.CompletedProcess[str]:
    """
    Run the driver ``source`` with a marker file's path as its argument, send it SIGTERM
    once the file exists, and wait at most ``timeout`` seconds for it to end.
    """
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(source))
    marker = tmp_path / "marker"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ADDRESS", None)
    with subprocess.Popen(
        [sys.executable, str(script), str(marker)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as driver:
        try:
            while not marker.exists() and driver.poll() is None:
                time.sleep(0.1)
            driver.send_signal(signal.SIGTERM)
            out, err = driver.communicate(timeout=timeout)
        finally:
            if driver.poll() is None:
                driver.kill()
                driver.communicate()
    return subprocess.CompletedProcess(driver.args, driver.returncode, out, err)


class TestSigterm:
    """A SIGTERM to a run on the local cluster it started."""

    @pytest.mark.timeout(240)
    def test_sigterm_mid_call_finishes_the_call(self, tmp_path: Path) -> None:
        """A SIGTERM while an actor runs a 6 s call stops the run as on threads: the call
        finishes, the run returns its summary.  Ray's crash handler aborted the driver
        3 s after the signal (exit -6, no summary)."""
        done = _terminated_once(tmp_path, SLOW_CALL_DRIVER, timeout=120)
        assert done.returncode == 0, done.stderr[-4000:]
        assert "interrupted by SIGTERM ok 1" in done.stdout, done.stderr[-4000:]

    @pytest.mark.timeout(240)
    def test_sigterm_while_the_actors_start_stops_at_once(self, tmp_path: Path) -> None:
        """A SIGTERM while the actors build their resource ends a journaled run without
        waiting for them (its items wait for --resume); it waited for every actor's
        resource, up to `start_timeout` (600 s)."""
        done = _terminated_once(tmp_path, SLOW_START_DRIVER, timeout=90)
        assert done.returncode == 0, done.stderr[-4000:]
        assert "interrupted by SIGTERM ok 0" in done.stdout, done.stderr[-4000:]


def _free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _no_ray_head(server: str) -> Iterator[int]:
    """
    The port of something on 127.0.0.1 that accepts TCP connections but is no Ray head:
    ``"silent"``, a socket that listens and says nothing; ``"web"``, an HTTP/1 server.
    """
    if server == "silent":
        # A listening socket completes TCP connections without accepting them.
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            yield int(listener.getsockname()[1])
        return
    with http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler
    ) as web:
        threading.Thread(target=web.serve_forever, daemon=True).start()
        try:
            yield int(web.server_address[1])
        finally:
            web.shutdown()


def _run_on(tmp_path: Path, address: str, *, timeout: float) -> subprocess.CompletedProcess[str]:
    """``asyncpipe run`` of one page with ``--ray-address address``."""
    page = tmp_path / "page.txt"
    page.write_text("a page\n")
    cmd = [sys.executable, "-m", "asyncpipe", "run", str(page), "--out", "out.jsonl"]
    cmd += ["--executor", "ray", "--ray-address", address, "--progress", "none"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


class TestUnreachableCluster:
    """An address where no Ray head answers."""

    @pytest.mark.timeout(120)
    @pytest.mark.parametrize("scheme", ["", "ray://"])
    def test_wrong_address_fails_at_once(self, tmp_path: Path, scheme: str) -> None:
        """``--ray-address`` where nothing listens exits 2 with a message naming it; Ray's
        own ray.init retried for more than ten minutes, deaf to SIGTERM."""
        address = f"{scheme}127.0.0.1:{_free_port()}"
        done = _run_on(tmp_path, address, timeout=100)
        assert done.returncode == 2, done.stderr[-3000:]
        assert f"cannot connect to the Ray cluster at {address!r}" in done.stderr, done.stderr
        assert "nothing accepts a connection" in done.stderr, done.stderr

    @pytest.mark.timeout(150)
    @pytest.mark.parametrize("scheme", ["", "ray://"])
    @pytest.mark.parametrize("server", ["silent", "web"])
    def test_a_port_that_is_no_ray_head_fails_at_once(
        self, tmp_path: Path, scheme: str, server: str
    ) -> None:
        """``--ray-address`` where something accepts connections but is no Ray head (a
        socket that says nothing, a web server) exits 2 naming it, within seconds; the TCP
        look passed it, and ray.init retried for over ten minutes."""
        with _no_ray_head(server) as port:
            address = f"{scheme}127.0.0.1:{port}"
            done = _run_on(tmp_path, address, timeout=90)
        assert done.returncode == 2, done.stderr[-3000:]
        assert f"cannot connect to the Ray cluster at {address!r}" in done.stderr, done.stderr
        assert "accepts a connection but is no Ray head" in done.stderr, done.stderr
