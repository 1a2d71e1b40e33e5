"""
The Ray executor: run a ``thread`` stage's calls on Ray actors instead of local threads.

Each of the stage's ``workers`` becomes one actor that builds the stage's per-worker
resource (e.g. an OCR engine) once and then runs ``stage.fn`` on one value at a time.
The driver keeps everything else (rate limits, retries, statistics, ordering and the
journal) and awaits the actors from its event loop, one call in flight per actor.

This module holds `RayExecutor` and its calls: which idle actor runs a call, and what
happens when an actor is lost (the call runs again elsewhere, the actor is taken back
once Ray restarted it, or replaced).  Connecting to a cluster is `_ray_connect`'s part,
starting and stopping a stage's actors `_ray_actors`'.

Ray is imported lazily: ``import asyncpipe`` never imports it, and without it installed
`RayExecutor` raises a `ConfigError` that says which extra to install.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import pickle
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from ._exceptions import ConfigError, RetryableError, StopIntake
from ._executor import Executor, StageCall
from ._fuse import stage_label
from ._ray_actors import (
    Raised,
    Slot,
    actor_class,
    check_cpus,
    cloudpickled,
    start_actors,
    stop_actors,
)
from ._ray_connect import INSTALL_HINT, QUIET_DRIVER_ENV, RayConnection, import_ray
from ._stats import WorkerLosses
from ._stopping import move_on_stop_between_calls

if TYPE_CHECKING:
    from anyio.abc import TaskGroup
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    from ._stage import Stage

__all__ = ["RayExecutor"]

log = logging.getLogger("asyncpipe.ray")

#: Seconds before a lost actor is first asked whether it is up again; the pause doubles
#: with each further look, up to 30 s.
RERUN_PAUSE = 2.0

#: Seconds a lost actor is kept out of the idle pool while Ray restarts it.  Its calls go
#: to the other actors meanwhile; after this it takes calls again even if it never
#: answered (a call on it then fails at once, and so counts against the item's
#: ``max_call_retries``), so that a run whose actors are all gone ends.
REVIVE_TIMEOUT = 60.0


async def _left_for_resume(value: Any) -> Any:
    """The call of a stage whose actors a stop kept from starting: no call runs."""
    raise StopIntake("the run stopped before the stage's Ray actors started")


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
    serialize = staticmethod(cloudpickled)

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
        self._connection = RayConnection()
        self._actor_class: Any = None
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
        ray = await anyio.to_thread.run_sync(import_ray)
        async with self._lock:
            # A stop with a journal while Ray starts (or connects) ends the wait for it,
            # as for the actors below.
            connected = False
            with move_on_stop_between_calls():
                await self._connection.connect(
                    ray,
                    address=self.address,
                    init_options=self.init_options,
                    driver_settings=self.driver_settings,
                )
                connected = True
            if not connected:
                yield _left_for_resume
                return
            if self._connection.users == 1:
                self._actor_class = None  # a new connection: perhaps to another cluster
        try:
            # One stage at a time checks the free CPUs and starts its actors, so that two
            # stages cannot both count the same free CPUs.
            slots: list[Slot] | None = None
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
            send, receive = anyio.create_memory_object_stream[Slot](len(slots))
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
                    await stop_actors(
                        ray, slots, close=stage.resource is not None, label=stage_label(stage)
                    )
        finally:
            with anyio.CancelScope(shield=True):
                async with self._lock:
                    await self._connection.disconnect(ray)

    # -- actors --------------------------------------------------------------------------

    async def _start(self, ray: ModuleType, stage: Stage) -> list[Slot]:
        if self.check_resources:
            await check_cpus(ray, stage, self.num_cpus)
        return await start_actors(
            ray, stage, lambda: self._make_actor(ray, stage), start_timeout=self.start_timeout
        )

    def _make_actor(self, ray: ModuleType, stage: Stage) -> Any:
        """
        Create one actor of ``stage`` (blocking: run it in a thread).
        """
        if self._actor_class is None:
            # One actor class for every stage: Ray pickles and exports a class once.
            self._actor_class = actor_class(
                ray,
                num_cpus=self.num_cpus,
                max_restarts=self.max_restarts,
                max_task_retries=self.max_task_retries,
            )
        return self._actor_class.remote(stage.fn, stage.resource)

    # -- calls ---------------------------------------------------------------------------

    def _caller(
        self,
        ray: ModuleType,
        stage: Stage,
        send: MemoryObjectSendStream[Slot],
        receive: MemoryObjectReceiveStream[Slot],
        revivals: TaskGroup,
    ) -> StageCall:
        actor_error = ray.exceptions.RayActorError
        task_error = ray.exceptions.RayTaskError
        label = stage_label(stage)

        async def revive(slot: Slot) -> None:
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
                    if isinstance(cause, Raised):
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
                        slot.actor = await anyio.to_thread.run_sync(self._make_actor, ray, stage)
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
