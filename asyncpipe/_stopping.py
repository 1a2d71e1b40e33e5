"""
Whether the run the caller works in is stopping: for a stage that waits before it spends.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

__all__ = ["stopping"]

# Set by each run for the tasks it starts (they inherit it): reads whether it is stopping.
_STOPPING: ContextVar[Callable[[], bool]] = ContextVar("asyncpipe_stopping", default=bool)


def stopping() -> bool:
    """
    Whether the run this code works for has stopped and leaves what it has not begun for
    ``--resume``: after a first Ctrl-C, SIGTERM or `StopIntake`, in a run with a journal.
    ``False`` outside a run, and in a run without a journal (which finishes every item).

    A stage call that waits before it spends (for a rate limit, or a server's free slot)
    checks it after the wait and raises `StopIntake` if so: its item is left for
    ``--resume`` too, and nothing is spent on it.  A stop lets the calls running finish,
    and such a call has begun, so only the stage itself can tell that it has not spent
    yet (round 26: after a Ctrl-C, 14 LLM requests went out, one per rate-limit slot, for
    calls that had been waiting for one).

    Example::

        async def call_api(value):
            await limit.acquire()
            if asyncpipe.stopping():
                raise asyncpipe.StopIntake("the run's stop")
            return await client.post(...)

    .. versionadded:: 0.1
    """
    return _STOPPING.get()()
