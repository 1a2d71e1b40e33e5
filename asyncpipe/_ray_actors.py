"""
A stage's Ray actors: the actor itself (`_Worker`, which builds the stage's resource once
and runs the stage on one value at a time), starting a stage's actors and waiting until
each has built its resource, and stopping them (their resources closed first).

Which actor runs which call, and what happens when one is lost, is `RayExecutor`'s part.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from ._exceptions import ConfigError, StageError
from ._fuse import shippable, stage_label

if TYPE_CHECKING:
    from ._stage import Stage

# Internal to the Ray executor: nothing here is public API.
__all__: list[str] = []

log = logging.getLogger("asyncpipe.ray")

#: Seconds the actors of a stage with a resource may take to close it when the stage
#: ends.  A close waits behind the call the actor is running (a run cancelled mid-call):
#: after this the actors are killed with their resources open.
CLOSE_TIMEOUT = 10.0


def cloudpickled(value: object) -> bytes:
    """``value`` as Ray ships a call's result back (its ``cloudpickle``)."""
    from ray import cloudpickle

    return cloudpickle.dumps(value)  # type: ignore[no-any-return,no-untyped-call]


class Raised(Exception):
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
                self._failed = shippable(exc, cloudpickled)

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
            raise Raised(self._failed)
        try:
            if self._has_resource:
                return os.getpid(), self._fn(self._resource, value)
            return os.getpid(), self._fn(value)
        except Exception as exc:
            error = shippable(exc, cloudpickled)
            # The traceback stays in this process: its text goes back as a note, which the
            # DEBUG log of the item's failure shows (the error record keeps type and message).
            frames = "".join(traceback.format_tb(exc.__traceback__))
            error.add_note(f"Traceback on the Ray actor (pid {os.getpid()}):\n{frames.rstrip()}")
            raise Raised(error) from None

    def close(self) -> None:
        """Close the resource if it has a ``close()`` method."""
        resource, self._resource = self._resource, None
        if resource is not None and hasattr(resource, "close"):
            resource.close()


@dataclass
class Slot:
    """
    One actor, how often calls on it ended with the actor gone, the process id its last
    call ran in, and whether a loss was counted that its next answer will confirm.
    """

    actor: Any
    deaths: int = 0
    pid: int | None = None
    lost: bool = False


def actor_class(
    ray: ModuleType, *, num_cpus: float, max_restarts: int, max_task_retries: int
) -> Any:
    """
    The Ray actor class of `_Worker` with these options: make it once for every stage,
    as Ray pickles and exports a class once.
    """
    return ray.remote(_Worker).options(
        num_cpus=num_cpus, max_restarts=max_restarts, max_task_retries=max_task_retries
    )


async def start_actors(
    ray: ModuleType, stage: Stage, make_actor: Callable[[], Any], *, start_timeout: float
) -> list[Slot]:
    """
    Create ``stage.workers`` actors with ``make_actor`` (blocking: it runs in a thread)
    and wait, at most ``start_timeout`` seconds, until each has built its resource.

    Raises:
        ConfigError: the stage cannot be sent to Ray, or a resource factory raised.
        StageError: an actor failed to start.
        TimeoutError: the actors took over ``start_timeout`` seconds.
    """
    try:
        actors = await anyio.to_thread.run_sync(
            lambda: [make_actor() for _ in range(stage.workers)]
        )
    except Exception as exc:
        raise ConfigError(
            f"{stage_label(stage)}: cannot send the stage to Ray ({exc}); its function "
            "and resource factory must pickle with cloudpickle"
        ) from exc
    slots = [Slot(actor) for actor in actors]
    # The first actor that fails to start stops the others' wait, and its error is
    # raised alone, as the threads raise the first resource that could not be built.
    failed: list[Exception] = []
    try:
        with anyio.fail_after(start_timeout):
            async with anyio.create_task_group() as tg:
                for actor in actors:
                    tg.start_soon(_wait_ready, ray, stage, actor, failed, tg.cancel_scope)
        if failed:
            raise failed[0]
    except BaseException:
        with anyio.CancelScope(shield=True):
            await stop_actors(ray, slots)
        raise
    return slots


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


async def check_cpus(ray: ModuleType, stage: Stage, num_cpus: float) -> None:
    """
    Raise `ConfigError` unless the cluster has ``stage.workers * num_cpus`` CPUs free.
    """
    needed = stage.workers * num_cpus
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
            f"{stage_label(stage)} needs {stage.workers} Ray actors x {num_cpus:g} "
            f"CPU = {needed:g} CPUs, but the Ray cluster has {available:g} of "
            f"{total:g} CPUs free; Ray would wait for them forever.  Lower the stage's "
            "workers or num_cpus, or add nodes"
        )


async def stop_actors(
    ray: ModuleType, slots: list[Slot], *, close: bool = False, label: str = ""
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
                    tg.start_soon(_close_one, ray, slot.actor)
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


async def _close_one(ray: ModuleType, actor: Any) -> None:
    try:
        await actor.close.remote()
    except ray.exceptions.RayError as exc:
        log.warning("ray: closing an actor's resource failed: %s", exc)
