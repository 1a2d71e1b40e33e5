"""
Finding and connecting to a Ray cluster: importing ray, looking at a head's address
before ``ray.init`` (an HTTP/2 probe), the driver's settings around ``ray.init``, and a
throwaway local cluster started and shut down on a thread of its own.

Ray 2.60 turns token authentication on for a local cluster that ``ray.init()`` starts
(it sets ``RAY_AUTH_MODE=token`` in the driver and writes ``~/.ray/auth_token`` if no
token exists).  A driver that connects to a separately started head must use the same
mode and token as the head: export the same ``RAY_AUTH_MODE`` (and ``RAY_AUTH_TOKEN`` or
``RAY_AUTH_TOKEN_PATH``) for ``ray start`` and for ``asyncpipe run``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any

import anyio
import anyio.to_thread

from ._exceptions import ConfigError
from ._pinned import PinnedThread

# Internal to the Ray executor: nothing here is public API.  QUIET_DRIVER_ENV and
# driver_env are for the benchmark too.
__all__: list[str] = []

log = logging.getLogger("asyncpipe.ray")

INSTALL_HINT = "pip install 'asyncpipe[ray]'"

#: Seconds a head's address may take to accept a TCP connection before ``ray.init``, and
#: then again to answer as a gRPC server does (`_probe`).
CONNECT_TIMEOUT = 5.0

#: Ray settings for the driver process that only turn observability off: task events
#: (``ray list tasks``, the dashboard's task table), the driver's metrics export, the
#: event loops' handler statistics and their lag probe.  Nothing the run depends on
#: (scheduling, actor restarts, object transfer) reads them.  An idle driver's own CPU
#: drops by about a tenth with them (``benchmarks/ray_driver.py --idle-only``); most of
#: what is left are Ray's fixed timers and gRPC polling threads.  Stretching the core
#: worker's other timers as well (``core_worker_internal_heartbeat_ms``,
#: ``report_worker_backlog_interval_ms``,
#: ``grpc_client_check_connection_status_interval_milliseconds``,
#: ``raylet_death_check_interval_milliseconds``, ``io_context_monitor_probe_interval_ms``,
#: ``ray_events_report_interval_ms``), or another gRPC poll strategy, moved it by less
#: than its noise, so nothing that fault handling might read is touched: per thread,
#: the idle driver's CPU goes to gRPC's client completion-queue threads (four, each
#: waking every 250 ms, a constant in Ray's ``client_call.cc``) and the core worker's
#: io_context (about 11 wake-ups a second).
QUIET_DRIVER_ENV: Mapping[str, str] = {
    "RAY_task_events_report_interval_ms": "0",
    "RAY_enable_metrics_collection": "0",
    "RAY_event_stats": "0",
    "RAY_io_context_event_loop_lag_collection_interval_ms": "-1",
}


@contextlib.contextmanager
def driver_env(settings: Mapping[str, str]) -> Iterator[None]:
    """
    Set ``settings`` in ``os.environ`` for the duration (around ``ray.init``, which reads
    them once), unless the user set a variable already: the user's value wins.

    A local cluster that ``ray.init`` starts inherits them too; a running cluster does not.
    """
    added = {name: value for name, value in settings.items() if name not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


@contextlib.contextmanager
def _sigterm_kept() -> Iterator[None]:
    """
    Keep this process's SIGTERM handler across ``ray.init`` (the block).

    ``ray.init`` installs Ray's crash handler (abseil's) for SIGTERM: it prints a stack
    trace, calls the handler that was there, and arms an alarm that aborts the process
    3 s later (ray-project/ray#64830).  A run that a SIGTERM stops finishes the calls
    running and closes its journal, which takes longer: it died of SIGABRT, its summary
    unwritten.  Setting the Python handler again puts Python's own in place of Ray's.
    Only the main thread sets handlers (and runs Python's): elsewhere this does nothing.
    """
    main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGTERM) if main else None
    try:
        yield
    finally:
        if handler is not None:
            signal.signal(signal.SIGTERM, handler)


def _endpoint(address: str) -> tuple[str, int] | None:
    """
    The host and port that ``address`` (``"host:6379"``, ``"ray://host:10001"``) names, or
    ``None`` for one that names none (``"auto"``, ``"local"``).
    """
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    if not colon or not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


#: What a client sends first on an HTTP/2 connection: the preface and an empty SETTINGS
#: frame.  A gRPC server (a Ray head's GCS, its Ray Client server) answers with a SETTINGS
#: frame of its own (RFC 9113, section 3.4).
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])

#: The type of an HTTP/2 SETTINGS frame (the fourth byte of its 9-byte header).
_H2_SETTINGS = 4


def _tls() -> bool:
    """Whether Ray talks TLS (``RAY_USE_TLS``), which a plain HTTP/2 preface cannot reach."""
    return os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true")


def _first_frame(connection: socket.socket, timeout: float) -> bytes:
    """
    Send the HTTP/2 preface and return the first 9 bytes the server answers (fewer if it
    closes the connection); a `TimeoutError` when they take over ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    connection.sendall(_H2_PREFACE)
    answer = b""
    while len(answer) < 9:
        connection.settimeout(max(deadline - time.monotonic(), 0.001))
        chunk = connection.recv(9 - len(answer))
        if not chunk:
            break
        answer += chunk
    return answer


#: What ends the message when no Ray head answers at an address.
_HINT = (
    "Is the head running (`ray start --head`), and is this its GCS address (port 6379 "
    "by default) or, with ray://, its Ray Client server (port 10001)?"
)

#: What ends the message when the address that ``ray start`` recorded does not answer.
_STALE_HINT = (
    "A cluster that stopped leaves its address recorded there: start one with "
    "`ray start --head`, or give its address with --ray-address."
)


def _ray_temp_dir(init_options: Mapping[str, Any]) -> str:
    """
    The directory where ``ray start`` records its cluster's address, as Ray 2.60 finds it
    (``ray._common.utils.get_default_ray_temp_dir``): ``_temp_dir`` given to ``ray.init``,
    else ``$RAY_TMPDIR/ray``, else ``$TMPDIR/ray``, else ``/tmp/ray``.
    """
    given = init_options.get("_temp_dir")
    if given:
        return str(given)
    system = os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp"
    return os.path.join(system, "ray")


def _running_gcs_addresses() -> frozenset[str]:
    """
    The GCS addresses that the raylets running on this machine name (``--gcs-address=``
    in their command lines), found as Ray's ``services.find_gcs_addresses`` finds them and
    in the same order, so that the one picked first is the one ``ray.init`` picks.
    """
    import psutil  # a dependency of ray

    found: set[str] = set()
    for process in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            cmdline = process.info["cmdline"]
            if not cmdline or "raylet" not in os.path.basename(cmdline[0]):
                continue
            for argument in " ".join(cmdline).split(" "):
                if argument.startswith("--gcs-address="):
                    value = argument.split("=")[1]
                    if value not in ("", "None"):
                        found.add(value)
    return frozenset(found)


def _auto_address(init_options: Mapping[str, Any]) -> tuple[str, str, str]:
    """
    The address ``ray.init(address="auto")`` connects to, where it comes from and what to
    say if it does not answer, found
    as Ray 2.60 finds it (``services.get_ray_address_from_environment``): ``$RAY_ADDRESS``;
    else, with several raylets running here, the address that the last ``ray start``
    recorded; else a running raylet's head; else the recorded address.

    Raises:
        ConfigError: none of them names a cluster (Ray says only that it found none).
    """
    variable = os.environ.get("RAY_ADDRESS", "")
    if variable and variable != "auto":
        return variable, "from $RAY_ADDRESS", _HINT
    record = os.path.join(_ray_temp_dir(init_options), "ray_current_cluster")
    try:
        with open(record, encoding="utf-8") as file:
            recorded = file.read().strip() or None
    except FileNotFoundError:
        recorded = None
    running = _running_gcs_addresses()
    if recorded is not None and len(running) != 1:
        return recorded, f"recorded in {record} by the last `ray start` here", _STALE_HINT
    if running:
        return next(iter(running)), "the head of a raylet running on this machine", _HINT
    raise ConfigError(
        "cannot connect to the Ray cluster at 'auto': no Ray cluster found on this machine: "
        f"$RAY_ADDRESS is not set, {record} does not exist (`ray start` writes it there; "
        "$RAY_TMPDIR moves it), and no raylet runs here.  Start a cluster with `ray start "
        "--head`, give its address (--ray-address HOST:6379 or ray://HOST:10001), or give "
        "--executor ray without an address for a local cluster of this run's own."
    )


def _probe(address: str, timeout: float, *, named: str | None = None, hint: str = _HINT) -> None:
    """
    Raise `ConfigError` unless a gRPC server answers at the host and port of ``address``
    within ``timeout`` seconds (blocking: run it in a thread).  ``named`` is how the
    message names the address, when it is not what the user gave; ``hint`` ends it.

    ``ray.init`` with a head's address where nothing listens, or where something else
    listens (a silent socket, a web server), retries for many minutes in a call that
    cannot be interrupted; this look fails in at most twice ``timeout``.  With
    ``RAY_USE_TLS`` only the TCP connection is checked, and a warning says so.
    """
    endpoint = _endpoint(address)
    if endpoint is None:
        return
    where = f"{endpoint[0]}:{endpoint[1]}"
    address = named or repr(address)
    try:
        connection = socket.create_connection(endpoint, timeout=timeout)
    except OSError as exc:
        why = f"no answer in {timeout:g} s" if isinstance(exc, TimeoutError) else exc.strerror
        raise ConfigError(
            f"cannot connect to the Ray cluster at {address}: nothing accepts a connection "
            f"at {where} ({why or exc}).  {hint}"
        ) from exc
    with connection:
        if _tls():
            # A TLS head answers HTTP/2 only after a TLS handshake with Ray's certificates,
            # which this look does not make: anything that accepts a connection passes.
            log.warning(
                "ray: RAY_USE_TLS is set: the head at %s is checked for a TCP connection "
                "only, not that it is a Ray head; if ray.init then waits for minutes, "
                "check the address",
                where,
            )
            return
        try:
            answer = _first_frame(connection, timeout)
        except TimeoutError:
            why = f"it says nothing to an HTTP/2 connection in {timeout:g} s"
        except OSError as exc:
            why = f"the connection failed: {exc.strerror or exc}"
        else:
            if len(answer) == 9 and answer[3] == _H2_SETTINGS:
                return
            why = f"it answers {answer[:16]!r}" if answer else "it closes the connection"
    raise ConfigError(
        f"cannot connect to the Ray cluster at {address}: something at {where} accepts a "
        f"connection but is no Ray head: {why}, where a Ray head (gRPC) answers with HTTP/2 "
        f"settings.  {hint}"
    )


def _look_before_init(address: str, init_options: Mapping[str, Any]) -> None:
    """
    Probe the head that ``ray.init(address=address)`` will connect to (blocking: run it in
    a thread).  For ``"auto"``, that is the head Ray finds: ``ray.init`` given one that
    is gone (the address a stopped cluster left recorded) retries for many minutes, deaf
    to SIGTERM.

    Raises:
        ConfigError: no head is found, or it does not answer as a Ray head.
    """
    if address != "auto":
        _probe(address, CONNECT_TIMEOUT)
        return
    found, origin, hint = _auto_address(init_options)
    log.info("ray: 'auto' is %s (%s)", found, origin)
    _probe(found, CONNECT_TIMEOUT, named=f"'auto' ({found}, {origin})", hint=hint)


def _kill_local_cluster(ray: ModuleType) -> None:
    """
    Kill the Ray processes this process started (the children that run a program of
    ray's package: gcs_server, raylet, log monitor) and every process under them.
    """
    import psutil  # a dependency of ray

    package = os.path.dirname(str(ray.__file__)) + os.sep  # not a sibling, as raydp
    doomed: list[psutil.Process] = []
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if any(part.startswith(package) for part in child.cmdline()[:3]):
                doomed += [child, *child.children(recursive=True)]
    for process in doomed:
        with contextlib.suppress(psutil.Error):
            process.kill()


def import_ray() -> ModuleType:
    """
    Import ray, or raise the `ConfigError` that says how to install it.
    """
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(
            f"the Ray executor needs ray, which is not installed: {INSTALL_HINT}"
        ) from exc
    return ray


class RayConnection:
    """
    One executor's use of the Ray runtime, shared by its open stages: the first of them
    connects to a cluster (or starts a local one), the last one disconnects (and shuts
    down a cluster that the first started).  Ray set up by someone else (the application,
    a test) is used and left alone.

    The caller holds a lock around `connect` and `disconnect`.
    """

    def __init__(self) -> None:
        self.users = 0
        self._initialized_here = False
        # The thread that started the local cluster, kept until ray.shutdown (see connect).
        self._home: PinnedThread | None = None

    async def connect(
        self,
        ray: ModuleType,
        *,
        address: str | None,
        init_options: Mapping[str, Any],
        driver_settings: Mapping[str, str],
    ) -> None:
        """
        Count one more user; the first one connects to the cluster at ``address`` (or,
        with ``None``, starts a new local one) unless Ray is set up already.

        Raises:
            ConfigError: nothing at ``address`` answers as a Ray head, or ``ray.init``
                failed (a token that does not match, other versions of ray or Python).
        """
        # A user is counted once connected, so a connect that fails leaves the next open
        # to try again.
        if self.users:
            self.users += 1
            return
        if ray.is_initialized():
            # Someone else (the application, a test) set Ray up: use it, leave it alone.
            self._initialized_here = False
            self.users = 1
            return
        started = anyio.current_time()
        if address is not None:
            await anyio.to_thread.run_sync(
                _look_before_init, address, init_options, abandon_on_cancel=True
            )

        abandoned = threading.Event()

        def init() -> None:
            with driver_env(driver_settings):
                # "local" always starts a new cluster: a bare ray.init() would join one
                # that `ray start` left running on this machine, or fail on a stale one.
                ray.init(address=address or "local", **init_options)
            if abandoned.is_set():
                # The run stopped while Ray started, and left: nobody uses this cluster.
                ray.shutdown()

        # Ray starts a local cluster's gcs_server and raylet with PR_SET_PDEATHSIG, which
        # the kernel ties to the *thread* that started them: they are killed when it ends.
        # anyio retires a worker thread idle for 10 s, so ray.init (and ray.shutdown) run
        # on a thread of the connection's own, kept as long as the cluster.
        home = PinnedThread("asyncpipe ray")
        log.info(
            "ray: %s",
            "starting a local cluster" if address is None else f"connecting to {address}",
        )
        try:
            with _sigterm_kept():
                # A stop (a SIGTERM) while Ray starts leaves the start to finish alone:
                # a local cluster takes seconds to start and as long to shut down.
                await home.run(init, abandon_on_cancel=True)
        except BaseException as exc:
            abandoned.set()
            home.stop()
            if address is None and isinstance(exc, anyio.get_cancelled_exc_class()):
                # The local cluster is half started.  The kernel ends its gcs_server and
                # raylet with the thread that started them, but not the raylet's own
                # children (its agents, its workers): they would outlive the run.
                _kill_local_cluster(ray)
            if not isinstance(
                exc, ConnectionError | RuntimeError | ValueError | ray.exceptions.RayError
            ):
                raise
            where = (
                "start a local Ray cluster"
                if address is None
                else f"connect to the Ray cluster at {address!r}"
            )
            hint = (
                "A head started with `ray start --head` must share this driver's "
                "RAY_AUTH_MODE and token, and the same ray and Python versions"
            )
            if (address or "").startswith("ray://"):
                # Ray Client says nothing of a token it did not get: it times out.
                hint += (
                    "; through Ray Client a missing token shows only as a timeout: "
                    "export RAY_AUTH_MODE=token for `ray start` and for this command"
                )
            raise ConfigError(f"cannot {where}: {exc}  ({hint})") from exc
        self._home = home
        self._initialized_here = True
        self.users = 1
        log.info(
            "ray: %s in %.1f s",
            "started a local cluster" if address is None else f"connected to {address}",
            anyio.current_time() - started,
        )

    async def disconnect(self, ray: ModuleType) -> None:
        """
        Count one user less; the last one shuts down Ray if `connect` set it up.
        """
        self.users -= 1
        if self.users == 0 and self._initialized_here:
            # ray.shutdown stops a local cluster that ray.init started, and only drops the
            # driver's connection to a cluster given by address: that one keeps running.
            home, self._home = self._home, None
            assert home is not None
            try:
                await home.run(ray.shutdown)
            finally:
                home.stop()
            self._initialized_here = False
