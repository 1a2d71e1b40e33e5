"""
The Ray executor: run a ``thread`` stage's calls on Ray actors instead of local threads.

Each of the stage's ``workers`` becomes one actor that builds the stage's per-worker
resource (e.g. an OCR engine) once and then runs ``stage.fn`` on one value at a time.
The driver keeps everything else (rate limits, retries, statistics, ordering and the
journal) and awaits the actors from its event loop, one call in flight per actor.

Ray is imported lazily: ``import asyncpipe`` never imports it, and without it installed
`RayExecutor` raises a `ConfigError` that says which extra to install.

Ray 2.60 turns token authentication on for a local cluster that ``ray.init()`` starts
(it sets ``RAY_AUTH_MODE=token`` in the driver and writes ``~/.ray/auth_token`` if no
token exists).  A driver that connects to a separately started head must use the same
mode and token as the head: export the same ``RAY_AUTH_MODE`` (and ``RAY_AUTH_TOKEN`` or
``RAY_AUTH_TOKEN_PATH``) for ``ray start`` and for ``asyncpipe run``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import pickle
import signal
import socket
import threading
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from ._exceptions import ConfigError, RetryableError, StageError, StopIntake
from ._executor import Executor, StageCall
from ._fuse import shippable, stage_label
from ._pinned import PinnedThread
from ._stats import WorkerLosses
from ._stopping import move_on_stop_between_calls

if TYPE_CHECKING:
    from anyio.abc import TaskGroup
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    from ._stage import Stage

# QUIET_DRIVER_ENV and driver_env are for the benchmark, not public API.
__all__ = ["RayExecutor"]

log = logging.getLogger("asyncpipe.ray")

INSTALL_HINT = "pip install 'asyncpipe[ray]'"

#: Seconds a head's address may take to accept a TCP connection before ``ray.init``, and
#: then again to answer as a gRPC server does (`_probe`).
CONNECT_TIMEOUT = 5.0

#: Seconds the actors of a stage with a resource may take to close it when the stage
#: ends.  A close waits behind the call the actor is running (a run cancelled mid-call):
#: after this the actors are killed with their resources open.
CLOSE_TIMEOUT = 10.0

#: Seconds before a lost actor is first asked whether it is up again; the pause doubles
#: with each further look, up to 30 s.
RERUN_PAUSE = 2.0

#: Seconds a lost actor is kept out of the idle pool while Ray restarts it.  Its calls go
#: to the other actors meanwhile; after this it takes calls again even if it never
#: answered (a call on it then fails at once, and so counts against the item's
#: ``max_call_retries``), so that a run whose actors are all gone ends.
REVIVE_TIMEOUT = 60.0

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


def _probe(address: str, timeout: float) -> None:
    """
    Raise `ConfigError` unless a gRPC server answers at the host and port of ``address``
    within ``timeout`` seconds (blocking: run it in a thread).

    ``ray.init`` with a head's address where nothing listens, or where something else
    listens (a silent socket, a web server), retries for many minutes in a call that
    cannot be interrupted; this look fails in at most twice ``timeout``.  With
    ``RAY_USE_TLS`` only the TCP connection is checked.
    """
    endpoint = _endpoint(address)
    if endpoint is None:
        return
    where = f"{endpoint[0]}:{endpoint[1]}"
    hint = (
        "Is the head running (`ray start --head`), and is this its GCS address (port 6379 "
        "by default) or, with ray://, its Ray Client server (port 10001)?"
    )
    try:
        connection = socket.create_connection(endpoint, timeout=timeout)
    except OSError as exc:
        why = f"no answer in {timeout:g} s" if isinstance(exc, TimeoutError) else exc.strerror
        raise ConfigError(
            f"cannot connect to the Ray cluster at {address!r}: nothing accepts a connection "
            f"at {where} ({why or exc}).  {hint}"
        ) from exc
    with connection:
        if _tls():
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
        f"cannot connect to the Ray cluster at {address!r}: something at {where} accepts a "
        f"connection but is no Ray head: {why}, where a Ray head (gRPC) answers with HTTP/2 "
        f"settings.  {hint}"
    )


async def _left_for_resume(value: Any) -> Any:
    """The call of a stage whose actors a stop kept from starting: no call runs."""
    raise StopIntake("the run stopped before the stage's Ray actors started")


def _cloudpickled(value: object) -> bytes:
    """``value`` as Ray ships a call's result back (its ``cloudpickle``)."""
    from ray import cloudpickle

    return cloudpickle.dumps(value)  # type: ignore[no-any-return,no-untyped-call]


def _import_ray() -> ModuleType:
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


class _Raised(Exception):
    """
    What a stage raised on an actor, wrapped so that the driver can tell it from Ray's own
    failures (a result that cannot be pickled back comes as a bare ``TypeError``).
    """

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


class _Worker:
    """
    The body of one actor: it builds the stage's resource once and calls the stage on values.
    """

    def __init__(self, fn: Callable[..., Any], factory: Callable[[], Any] | None) -> None:
        self._fn = fn
        self._has_resource = factory is not None
        self._resource = None
        # A factory that raises is reported by `ready`, not raised here: an actor whose
        # constructor raises dies, and Ray would restart it and build the resource again.
        self._failed: Exception | None = None
        if factory is not None:
            try:
                self._resource = factory()
            except Exception as exc:
                self._failed = shippable(exc, _cloudpickled)

    def ready(self) -> Exception | None:
        """
        Return once the constructor (and so the resource) is done: ``None``, or what the
        resource factory raised.
        """
        return self._failed

    def call(self, value: Any) -> tuple[int, Any]:
        """
        Run the stage on one value; return this process's id with the result, so the
        driver can tell when Ray restarted the actor (a new process) behind its back.
        """
        if self._failed is not None:
            # Restarted after a loss, the actor could not build its resource again: the
            # item fails with the factory's error, not with the stage given no resource.
            raise _Raised(self._failed)
        try:
            if self._has_resource:
                return os.getpid(), self._fn(self._resource, value)
            return os.getpid(), self._fn(value)
        except Exception as exc:
            error = shippable(exc, _cloudpickled)
            # The traceback stays in this process: its text goes back as a note, which the
            # DEBUG log of the item's failure shows (the error record keeps type and message).
            frames = "".join(traceback.format_tb(exc.__traceback__))
            error.add_note(f"Traceback on the Ray actor (pid {os.getpid()}):\n{frames.rstrip()}")
            raise _Raised(error) from None

    def close(self) -> None:
        """Close the resource if it has a ``close()`` method."""
        resource, self._resource = self._resource, None
        if resource is not None and hasattr(resource, "close"):
            resource.close()


@dataclass
class _Slot:
    """
    One actor, how often calls on it ended with the actor gone, the process id its last
    call ran in, and whether a loss was counted that its next answer will confirm.
    """

    actor: Any
    deaths: int = 0
    pid: int | None = None
    lost: bool = False


class RayExecutor(Executor):
    """
    Run a ``thread`` stage on Ray actors: ``Stage(..., kind="thread", executor=RayExecutor())``.

    Share one instance between the stages that go to Ray: it connects (or starts a local
    cluster) once, and shuts down a cluster it started when the last stage is done.  A
    cluster it connected to is left running.

    Args:
        address: ``None`` uses the Ray runtime this process already set up, or else starts
            a new local cluster (``$RAY_ADDRESS`` is not consulted); ``"auto"`` connects to
            the cluster running on this machine (``ray start --head``); ``"host:6379"``
            connects to a head's GCS; ``"ray://host:10001"`` connects through Ray Client
            (which needs ``ray[client]`` on the driver and on the head).
        num_cpus: CPUs each actor reserves.  Default 1, which matches one ONNX thread per
            OCR engine.  Ray sets ``OMP_NUM_THREADS`` in the actor to this number.
        max_restarts: how often Ray restarts an actor whose process died.  After that
            many deaths the executor replaces the actor with a new one.
        max_task_retries: how often Ray itself re-runs a call that was running on an actor
            that died (on the restarted actor).  When these are used up the call raises
            `RetryableError`, which the stage's `Retry` policy decides on.  Default 1, so
            one lost worker process does not fail an item of a stage that never retries.
        max_call_retries: how often the executor itself runs a call again when the actor
            running it was lost and Ray did not re-run it (a whole node lost answers "the
            task may or may not have been executed").  A lost machine is not the item's
            fault, so this does not spend the stage's own `Retry` attempts; after these
            the call raises `RetryableError`.  Default 3.  The call runs again at once on
            the next idle actor; the lost one takes calls again once Ray has restarted
            it (or after `REVIVE_TIMEOUT` seconds if it never comes back).
            The actors lost, the calls run again and the actors replaced are counted
            (`losses`) and reported in the run's summary (``RunSummary.worker_losses``,
            and a closing line of ``asyncpipe run``).
        include_dashboard: start the dashboard with a local cluster (default off).
        log_to_driver: print the actors' stdout and stderr on the driver.  Default off:
            it costs the driver a third more idle CPU (two more threads), and an actor's
            exception comes back as the item's error anyway; the output stays in the
            cluster's logs (``/tmp/ray/session_latest/logs`` on each node).
        driver_settings: ``RAY_*`` variables set while this executor calls ``ray.init``
            (never over one the user exported); default `QUIET_DRIVER_ENV`, ``{}`` for
            Ray's own defaults.  They do nothing when Ray was set up before.
        object_store_memory: bytes of shared memory for a local cluster's object store;
            ``None`` lets Ray choose (30% of RAM).
        init_options: more keyword arguments for ``ray.init`` (e.g. ``num_cpus`` of a
            local cluster, ``runtime_env``, ``namespace``).
        check_resources: before starting a stage's actors, check that the cluster has
            ``workers * num_cpus`` CPUs available (Ray would otherwise wait for them
            forever).  Turn it off on an autoscaling cluster.
        start_timeout: seconds the actors of one stage may take to start and build their
            resources.

    Raises:
        ConfigError: ray is not installed, or an option is out of range.

    .. versionadded:: 0.1
    """

    name = "ray"
    serialize = staticmethod(_cloudpickled)

    def __init__(
        self,
        *,
        address: str | None = None,
        num_cpus: float = 1,
        max_restarts: int = 3,
        max_task_retries: int = 1,
        max_call_retries: int = 3,
        include_dashboard: bool = False,
        log_to_driver: bool = False,
        driver_settings: Mapping[str, str] | None = None,
        object_store_memory: int | None = None,
        init_options: Mapping[str, Any] | None = None,
        check_resources: bool = True,
        start_timeout: float = 600.0,
    ) -> None:
        if importlib.util.find_spec("ray") is None:
            raise ConfigError(f"the Ray executor needs ray, which is not installed: {INSTALL_HINT}")
        if not num_cpus > 0:
            raise ConfigError(f"RayExecutor: num_cpus must be positive, got {num_cpus}")
        if max_restarts < -1 or max_task_retries < -1:
            raise ConfigError(
                "RayExecutor: max_restarts and max_task_retries must be -1 (no limit) or more"
            )
        if max_call_retries < 0:
            raise ConfigError("RayExecutor: max_call_retries must be 0 or more")
        self.address = address
        self.num_cpus = num_cpus
        self.max_restarts = max_restarts
        self.max_task_retries = max_task_retries
        self.max_call_retries = max_call_retries
        self.check_resources = check_resources
        self.start_timeout = start_timeout
        init = {
            "include_dashboard": include_dashboard,
            "log_to_driver": log_to_driver,
            **(init_options or {}),
        }
        if object_store_memory is not None:
            init["object_store_memory"] = object_store_memory
        self.init_options = init
        self.driver_settings = dict(
            QUIET_DRIVER_ENV if driver_settings is None else driver_settings
        )
        self._lock = anyio.Lock()
        self._users = 0
        self._actor_class: Any = None
        self._initialized_here = False
        # The thread that started the local cluster, kept until ray.shutdown (see _connect).
        self._home: PinnedThread | None = None
        self._lost = 0
        self._rerun = 0
        self._replaced = 0

    def losses(self) -> WorkerLosses:
        """
        The actors lost so far (each loss once: a call that failed with it, or an answer
        from a new process), the calls this executor ran again, and the actors it replaced.

        A call that Ray itself ran again on the restarted actor (``max_task_retries``)
        shows only as the loss: its answer cannot tell whether it ran once or twice.
        """
        return WorkerLosses(self._lost, self._rerun, self._replaced)

    def __repr__(self) -> str:
        return (
            f"RayExecutor(address={self.address!r}, num_cpus={self.num_cpus}, "
            f"max_restarts={self.max_restarts}, max_task_retries={self.max_task_retries})"
        )

    @asynccontextmanager
    async def open(self, stage: Stage) -> AsyncIterator[StageCall]:
        """
        Start ``stage.workers`` actors, yield the call that runs the stage on them, and stop
        them (closing their resources) on the way out.

        Raises:
            ConfigError: ray is missing, or the cluster has too few CPUs for the actors.
            StageError: an actor failed to start (e.g. its resource factory raised).
        """
        # ray.init, actor creation and the resource queries are blocking RPCs (seconds
        # for a new local cluster): they all run in worker threads, never on the loop.
        ray = await anyio.to_thread.run_sync(_import_ray)
        async with self._lock:
            await self._connect(ray)
        try:
            # One stage at a time checks the free CPUs and starts its actors, so that two
            # stages cannot both count the same free CPUs.
            slots: list[_Slot] | None = None
            async with self._lock:
                # A stop with a journal (a first SIGTERM) leaves every item waiting for
                # --resume: no call will run, so it ends the actors' start (a resource
                # such as an OCR engine can take minutes to build) instead of waiting.
                with move_on_stop_between_calls():
                    slots = await self._start(ray, stage)
            if slots is None:
                yield _left_for_resume
                return
            # Idle actors wait in a stream: a call takes one, so at most one call runs on
            # each actor and at most ``workers`` are in flight, without blocking the loop.
            send, receive = anyio.create_memory_object_stream[_Slot](len(slots))
            try:
                # Lost actors wait for their restart in this group's tasks, out of the pool.
                with send, receive:
                    async with anyio.create_task_group() as revivals:
                        for slot in slots:
                            send.send_nowait(slot)
                        yield self._caller(ray, stage, send, receive, revivals)
                        revivals.cancel_scope.cancel()
            finally:
                with anyio.CancelScope(shield=True):
                    await self._stop(
                        ray, slots, close=stage.resource is not None, label=stage_label(stage)
                    )
        finally:
            with anyio.CancelScope(shield=True):
                async with self._lock:
                    await self._disconnect(ray)

    # -- cluster -------------------------------------------------------------------------

    async def _connect(self, ray: ModuleType) -> None:
        # A user is counted once connected, so a connect that fails leaves the next open
        # to try again (the caller holds the lock).
        if self._users:
            self._users += 1
            return
        if ray.is_initialized():
            # Someone else (the application, a test) set Ray up: use it, leave it alone.
            self._initialized_here = False
            self._users = 1
            return
        started = anyio.current_time()
        if self.address is not None:
            await anyio.to_thread.run_sync(
                _probe, self.address, CONNECT_TIMEOUT, abandon_on_cancel=True
            )

        def init() -> None:
            with driver_env(self.driver_settings):
                # "local" always starts a new cluster: a bare ray.init() would join one
                # that `ray start` left running on this machine, or fail on a stale one.
                ray.init(address=self.address or "local", **self.init_options)

        # Ray starts a local cluster's gcs_server and raylet with PR_SET_PDEATHSIG, which
        # the kernel ties to the *thread* that started them: they are killed when it ends.
        # anyio retires a worker thread idle for 10 s, so ray.init (and ray.shutdown) run
        # on a thread of the executor's own, kept as long as the cluster.
        home = PinnedThread("asyncpipe ray")
        try:
            with _sigterm_kept():
                await home.run(init)
        except BaseException as exc:
            home.stop()
            if not isinstance(
                exc, ConnectionError | RuntimeError | ValueError | ray.exceptions.RayError
            ):
                raise
            where = (
                "start a local Ray cluster"
                if self.address is None
                else f"connect to the Ray cluster at {self.address!r}"
            )
            hint = (
                "A head started with `ray start --head` must share this driver's "
                "RAY_AUTH_MODE and token, and the same ray and Python versions"
            )
            if (self.address or "").startswith("ray://"):
                # Ray Client says nothing of a token it did not get: it times out.
                hint += (
                    "; through Ray Client a missing token shows only as a timeout: "
                    "export RAY_AUTH_MODE=token for `ray start` and for this command"
                )
            raise ConfigError(f"cannot {where}: {exc}  ({hint})") from exc
        self._home = home
        self._initialized_here = True
        self._users = 1
        log.info(
            "ray: %s in %.1f s",
            "started a local cluster" if self.address is None else f"connected to {self.address}",
            anyio.current_time() - started,
        )

    async def _disconnect(self, ray: ModuleType) -> None:
        self._users -= 1
        if self._users == 0:
            self._actor_class = None  # the next run may be on another cluster
        if self._users == 0 and self._initialized_here:
            # ray.shutdown stops a local cluster that ray.init started, and only drops the
            # driver's connection to a cluster given by address: that one keeps running.
            home, self._home = self._home, None
            assert home is not None
            try:
                await home.run(ray.shutdown)
            finally:
                home.stop()
            self._initialized_here = False

    # -- actors --------------------------------------------------------------------------

    def _make_actor(self, ray: ModuleType, stage: Stage, payload: Any) -> Any:
        """
        Create one actor (blocking: run it in a thread).
        """
        if self._actor_class is None:
            # One actor class for every stage: Ray pickles and exports a class once.
            self._actor_class = ray.remote(_Worker).options(
                num_cpus=self.num_cpus,
                max_restarts=self.max_restarts,
                max_task_retries=self.max_task_retries,
            )
        fn, factory = payload
        return self._actor_class.remote(fn, factory)

    async def _start(self, ray: ModuleType, stage: Stage) -> list[_Slot]:
        if self.check_resources:
            await self._check_cpus(ray, stage)
        payload = (stage.fn, stage.resource)
        try:
            actors = await anyio.to_thread.run_sync(
                lambda: [self._make_actor(ray, stage, payload) for _ in range(stage.workers)]
            )
        except Exception as exc:
            raise ConfigError(
                f"{stage_label(stage)}: cannot send the stage to Ray ({exc}); its function "
                "and resource factory must pickle with cloudpickle"
            ) from exc
        slots = [_Slot(actor) for actor in actors]
        # The first actor that fails to start stops the others' wait, and its error is
        # raised alone, as the threads raise the first resource that could not be built.
        failed: list[Exception] = []
        try:
            with anyio.fail_after(self.start_timeout):
                async with anyio.create_task_group() as tg:
                    for actor in actors:
                        tg.start_soon(self._wait_ready, ray, stage, actor, failed, tg.cancel_scope)
            if failed:
                raise failed[0]
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._stop(ray, slots)
            raise
        return slots

    @staticmethod
    async def _wait_ready(
        ray: ModuleType,
        stage: Stage,
        actor: Any,
        failed: list[Exception],
        waiting: anyio.CancelScope,
    ) -> None:
        try:
            error = await actor.ready.remote()
        except ray.exceptions.RayActorError as exc:
            failed.append(StageError(f"{stage_label(stage)}: a Ray actor failed to start: {exc}"))
            failed[-1].__cause__ = exc
        else:
            if error is None:
                return
            # As on local threads (`Run._serve_worker`), caused by the factory's error.
            failed.append(
                ConfigError(
                    f"{stage_label(stage)}: a worker's resource could not be built "
                    f"({type(error).__name__}: {error})"
                )
            )
            failed[-1].__cause__ = error
        waiting.cancel()

    async def _check_cpus(self, ray: ModuleType, stage: Stage) -> None:
        needed = stage.workers * self.num_cpus
        total = await anyio.to_thread.run_sync(lambda: ray.cluster_resources().get("CPU", 0.0))
        # Ray frees the CPUs of killed actors (e.g. the previous run's) a moment later,
        # so give it a few seconds before calling the cluster too small; each look is a
        # call to the GCS, so look less and less often.
        deadline = anyio.current_time() + 10
        pause = 0.1
        while True:
            available = await anyio.to_thread.run_sync(
                lambda: ray.available_resources().get("CPU", 0.0)
            )
            if needed <= available or needed > total or anyio.current_time() > deadline:
                break
            await anyio.sleep(pause)
            pause = min(2 * pause, 2.0)
        if needed > available:
            raise ConfigError(
                f"{stage_label(stage)} needs {stage.workers} Ray actors x {self.num_cpus:g} "
                f"CPU = {needed:g} CPUs, but the Ray cluster has {available:g} of "
                f"{total:g} CPUs free; Ray would wait for them forever.  Lower the stage's "
                "workers or num_cpus, or add nodes"
            )

    async def _stop(
        self, ray: ModuleType, slots: list[_Slot], *, close: bool = False, label: str = ""
    ) -> None:
        """
        Kill the actors; with ``close``, first let them close their resources (as local
        workers do), for at most `CLOSE_TIMEOUT` seconds.  A stage without a resource has
        nothing to close: its actors are killed at once, calls running or not.
        """
        if close:
            with anyio.move_on_after(CLOSE_TIMEOUT) as waited:
                async with anyio.create_task_group() as tg:
                    for slot in slots:
                        tg.start_soon(self._close_one, ray, slot.actor)
            if waited.cancelled_caught:
                log.warning(
                    "ray: %s: the actors did not close their resources within %g s "
                    "(a call still running); stopping them with their resources open",
                    label,
                    CLOSE_TIMEOUT,
                )

        def kill() -> None:
            for slot in slots:
                ray.kill(slot.actor, no_restart=True)

        await anyio.to_thread.run_sync(kill)

    @staticmethod
    async def _close_one(ray: ModuleType, actor: Any) -> None:
        try:
            await actor.close.remote()
        except ray.exceptions.RayError as exc:
            log.warning("ray: closing an actor's resource failed: %s", exc)

    # -- calls ---------------------------------------------------------------------------

    def _caller(
        self,
        ray: ModuleType,
        stage: Stage,
        send: MemoryObjectSendStream[_Slot],
        receive: MemoryObjectReceiveStream[_Slot],
        revivals: TaskGroup,
    ) -> StageCall:
        actor_error = ray.exceptions.RayActorError
        task_error = ray.exceptions.RayTaskError
        payload = (stage.fn, stage.resource)
        label = stage_label(stage)

        async def revive(slot: _Slot) -> None:
            """
            Put a lost actor back in the pool once it answers again (Ray restarted it),
            or after `REVIVE_TIMEOUT` seconds.  Ray needs a moment to notice a lost node;
            until then, and while the actor is restarting, ``ready`` fails at once.
            """
            pause = RERUN_PAUSE
            with anyio.move_on_after(REVIVE_TIMEOUT):
                while True:
                    await anyio.sleep(pause)
                    with contextlib.suppress(actor_error):
                        await slot.actor.ready.remote()
                        break
                    pause = min(2 * pause, 30.0)
            send.send_nowait(slot)

        async def call(value: Any) -> Any:
            lost = 0
            while True:
                slot = await receive.receive()
                back = True  # whether the slot goes straight back to the pool
                try:
                    pid, result = await slot.actor.call.remote(value)
                    if slot.lost:
                        slot.lost = False  # a new process, as expected: counted already
                    elif slot.pid is not None and pid != slot.pid:
                        # Ray restarted the actor (its process or its node was lost) behind
                        # our back: while idle, or during this call, which Ray then ran again.
                        self._lost += 1
                        log.warning(
                            "ray: %s: an actor was restarted (its process or node "
                            "was lost); this item's call ran on the new one",
                            label,
                        )
                    slot.pid = pid
                    return result
                except task_error as exc:
                    cause = exc.cause
                    if isinstance(cause, _Raised):
                        # The stage raised: re-raise its own exception, so error records
                        # and the retry predicate see the same type as with local threads.
                        raise cause.error from None
                    if isinstance(cause, TypeError | AttributeError | pickle.PicklingError):
                        # The call returned, and its result could not be pickled back.
                        raise TypeError(
                            f"the result cannot come back from the Ray worker: {cause}"
                        ) from None
                    raise
                except actor_error as exc:
                    # The actor stays out of the pool until it is up again: this item and
                    # the next ones run on the other actors meanwhile.
                    back = False
                    if not slot.lost:
                        # One loss, however many calls fail with it before the restart.
                        slot.lost = True
                        self._lost += 1
                    slot.deaths += 1
                    if self.max_restarts != -1 and slot.deaths > self.max_restarts:
                        # Ray will not restart it again: put a new actor in its place.
                        log.warning(
                            "ray: %s: an actor died %d times; replacing it",
                            label,
                            slot.deaths,
                        )
                        slot.actor = await anyio.to_thread.run_sync(
                            self._make_actor, ray, stage, payload
                        )
                        slot.deaths = 0
                        self._replaced += 1
                    reason = str(exc).splitlines()[0]
                    lost += 1
                    if lost > self.max_call_retries:
                        raise RetryableError(
                            f"the Ray actor running this item died: {reason}"
                        ) from exc
                    if lost == 1:
                        self._rerun += 1
                    log.warning(
                        "ray: %s: the actor running an item was lost (%s); "
                        "running the item again on the next idle actor (%d of %d)",
                        label,
                        reason[:200],
                        lost,
                        self.max_call_retries,
                    )
                finally:
                    if back:
                        send.send_nowait(slot)
                    else:
                        revivals.start_soon(revive, slot)

        return call
