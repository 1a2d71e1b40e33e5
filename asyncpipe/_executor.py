"""
Executors: where a ``thread`` stage's calls run, when not in local threads.

The default path (no executor) offloads each call with ``anyio.to_thread.run_sync``
under the stage's `anyio.CapacityLimiter`.  An executor replaces only that: rate
limits, retries, statistics, ordering and the journal stay on the event loop of the
driver, and an item is journaled only once its awaited result is back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from ._stats import WorkerLosses

if TYPE_CHECKING:
    from ._stage import Stage

__all__ = ["Executor", "StageCall"]

StageCall = Callable[[Any], Awaitable[Any]]


class Executor:
    """
    Base class for executors.  Subclass it and override `open`.

    An executor whose workers can be lost (a remote process, a machine) also overrides
    `losses`: the run reports what changed in it in ``RunSummary.worker_losses``, under
    ``name``.

    .. versionadded:: 0.1
    """

    #: What the run's summary calls this executor (e.g. ``"ray"``).
    name: str = "executor"

    #: How a call's result is serialised to travel back from the worker (Ray's
    #: ``cloudpickle.dumps``), or ``None`` when it does not travel (in-process).  A fused
    #: chain that failed part-way sends back the failed stage's input only if it does,
    #: so that the retry starts there.
    serialize: Callable[[Any], bytes] | None = None

    def open(self, stage: Stage) -> AbstractAsyncContextManager[StageCall]:
        """
        Get ready to run ``stage`` (e.g. start ``stage.workers`` remote workers, each
        building ``stage.resource`` once) and yield an ``async def call(value)`` that runs
        ``stage.fn`` on one value and returns its result.

        ``call`` is awaited by up to ``stage.workers`` tasks at once.  Leaving the context
        releases everything the executor made.
        """
        raise NotImplementedError

    def losses(self) -> WorkerLosses:
        """
        The workers lost so far, and the calls run again, counted since the executor was
        made (the run reports the difference between its start and its end).  Default:
        none (local threads are never lost).
        """
        return WorkerLosses()
