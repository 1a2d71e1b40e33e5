"""
Start the test server as a subprocess on a free port, for tests and benchmarks.

Example::

    from stages.testing.llm_server.testing import run_server

    with run_server(latency=0.01, faults={"500": 1.0}, fault_limit=1) as server:
        client = LlmClient(server.url, "asyncpipe-test", ...)
        ...
        records = server.read_log()

`start_server` and `run_server` are synchronous (they spawn, poll and wait): call them
from a pytest fixture or plain code.  In async code use `open_server`, which does the
same work in a worker thread so the event loop never blocks.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson

from ._options import ServerOptions

__all__ = ["ServerHandle", "open_server", "run_server", "start_server"]

_ROOT = Path(__file__).resolve().parents[3]


class ServerHandle:
    """
    A running test server subprocess.

    Attributes:
        port: the TCP port on 127.0.0.1.
        url: the OpenAI base URL, ``http://127.0.0.1:PORT/v1``.
        root_url: ``http://127.0.0.1:PORT``.
        log_path: the JSON-lines request log.
        options: the options it runs with.

    Use `stop` and `start` to make the port refuse connections for a while: the port is
    unbound in between, so clients see connection errors, and `start` binds it again.
    """

    def __init__(self, options: ServerOptions, workdir: Path, own_workdir: bool) -> None:
        self.options = options
        self.log_path = Path(options.log_path) if options.log_path else workdir / "requests.jsonl"
        self._workdir = workdir
        self._own_workdir = own_workdir
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr_path = workdir / "server.stderr"
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, timeout: float = 15.0) -> None:
        """
        Spawn the server (on the same port as before, if it ran already) and wait for it.

        Args:
            timeout: seconds to wait for ``/health`` to answer.

        Raises:
            RuntimeError: it is running already, exited early or did not answer in time.
        """
        if self._process is not None:
            raise RuntimeError("the server is running already")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", self.port))
            sock.listen(128)
            self.port = sock.getsockname()[1]
            options = {**self.options.to_mapping(), "log_path": str(self.log_path)}
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(_ROOT), env.get("PYTHONPATH", "")) if p
            )
            with open(self._stderr_path, "ab") as stderr:
                self._process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "stages.testing.llm_server",
                        "--fd",
                        str(sock.fileno()),
                        "--config-json",
                        orjson.dumps(options).decode(),
                    ],
                    pass_fds=[sock.fileno()],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    env=env,
                )
        finally:
            # The child holds its own copy of the socket now.
            sock.close()
        self._wait_healthy(timeout)

    def _wait_healthy(self, timeout: float) -> None:
        assert self._process is not None
        give_up = time.monotonic() + timeout
        with httpx.Client(timeout=1.0) as client:
            while True:
                if self._process.poll() is not None:
                    self._reap()
                    raise RuntimeError(f"the test server exited early:\n{self.stderr()}")
                try:
                    if client.get(f"{self.root_url}/health").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > give_up:
                    self.stop()
                    raise RuntimeError(
                        f"the test server did not start in {timeout}s:\n{self.stderr()}"
                    )
                time.sleep(0.02)

    def stop(self, *, timeout: float = 5.0) -> None:
        """
        Terminate the server (SIGTERM, then SIGKILL after ``timeout``); the port is freed.

        Args:
            timeout: seconds to wait after SIGTERM.
        """
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
        self._reap()

    def _reap(self) -> None:
        if self._process is not None:
            self._process.wait()
            self._process = None

    @property
    def running(self) -> bool:
        """Whether the subprocess is alive."""
        return self._process is not None and self._process.poll() is None

    def close(self) -> None:
        """
        Stop the server and remove its temporary folder (if `start_server` made one).
        """
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)

    def stderr(self) -> str:
        """
        Returns:
            What the server wrote to stderr so far.
        """
        try:
            return self._stderr_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def read_log(self) -> list[dict[str, Any]]:
        """
        Read the request log.

        Returns:
            One dict per chat request, in the order the server finished deciding them:
            ``ts`` (arrival, ``time.time()``), ``ts_end``, ``id``, ``item``, ``attempt``,
            ``task``, ``status`` (``None`` for a hang), ``fault`` and, with an API key
            configured, ``auth`` (``ok``/``missing``/``wrong``; never the header).
        """
        try:
            lines = self.log_path.read_bytes().splitlines()
        except FileNotFoundError:
            return []
        return [orjson.loads(line) for line in lines if line.strip()]

    def __repr__(self) -> str:
        return f"ServerHandle(url={self.url!r}, running={self.running})"


def start_server(*, workdir: Path | None = None, **options: Any) -> ServerHandle:
    """
    Start a test server subprocess and wait until it answers ``/health``.

    Call `ServerHandle.close` when done (or use `run_server`).

    Args:
        workdir: where the log and stderr go, created if missing (default: a new temporary
            folder, removed by `ServerHandle.close`).
        **options: `ServerOptions` fields, e.g. ``latency=0.05``,
            ``faults={"hang": 0.1}``, ``rate_limit=10, rate_period=1``.

    Returns:
        The handle of the running server.
    """
    server_options = ServerOptions.from_mapping(options)
    own = workdir is None
    folder = Path(tempfile.mkdtemp(prefix="llm-server-")) if workdir is None else workdir
    folder.mkdir(parents=True, exist_ok=True)
    handle = ServerHandle(server_options, folder, own)
    try:
        handle.start()
    except BaseException:
        handle.close()
        raise
    return handle


@contextlib.contextmanager
def run_server(*, workdir: Path | None = None, **options: Any) -> Iterator[ServerHandle]:
    """
    Run a test server for the duration of a ``with`` block.

    Args:
        workdir: see `start_server`.
        **options: `ServerOptions` fields.

    Yields:
        The handle of the running server; it is stopped (then killed) on exit.
    """
    handle = start_server(workdir=workdir, **options)
    try:
        yield handle
    finally:
        handle.close()


@contextlib.asynccontextmanager
async def open_server(
    *, workdir: Path | None = None, **options: Any
) -> AsyncIterator[ServerHandle]:
    """
    `run_server` for async code: start and stop happen in a worker thread.

    Args:
        workdir: see `start_server`.
        **options: `ServerOptions` fields.

    Yields:
        The handle of the running server.  Read its log with
        ``await anyio.to_thread.run_sync(handle.read_log)``.
    """
    handle = await anyio.to_thread.run_sync(
        functools.partial(start_server, workdir=workdir, **options)
    )
    try:
        yield handle
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(handle.close)
