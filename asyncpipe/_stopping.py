"""
A stage's view of its run's stop: `stopping` tells whether it has stopped, and
`move_on_stop` ends a wait when it does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar

import anyio

__all__ = ["move_on_stop", "stopping"]


class StopSignal:
    """
    A run's stop, once it leaves what it has not begun for ``--resume``: set once, and
    setting it cancels every `move_on_stop` block open in the run's tasks.
    """

    __slots__ = ("_scopes", "is_set")

    def __init__(self) -> None:
        self.is_set = False
        # Each block open, with the stage call it waits in (`_CALL`), or None for a wait
        # between calls (`move_on_stop_between_calls`) or outside any call.
        self._scopes: dict[anyio.CancelScope, object | None] = {}

    def set(self) -> int:
        """
        Set it, and cancel every block open.

        Returns:
            The number of stage calls whose wait it ended: those calls give up unsent,
            so the stop does not finish them.  A call counts once however many of its
            blocks were open, in its own task or in the tasks it started (it counted
            each task, so a call waiting in three of its own tasks made the stop's word
            two calls short); a block outside the stage calls is none of them.
        """
        self.is_set = True
        for scope in list(self._scopes):
            scope.cancel()
        return len({call for call in self._scopes.values() if call is not None})


# Set by each run for the tasks it starts (they inherit it); None outside a run.
_STOPPING: ContextVar[StopSignal | None] = ContextVar("asyncpipe_stopping", default=None)

# The stage call the code runs for, as `StopSignal.set` counts them: each worker of a stage
# or of a fused chain names itself at its start (`begin_calls`) and makes one call at a
# time, so its name stands for the call it is making; the tasks a call starts inherit it.
# None outside the workers (a stage's own background task, the source).
_CALL: ContextVar[object | None] = ContextVar("asyncpipe_call", default=None)


def begin_calls() -> None:
    """
    Name the current task a worker whose calls `StopSignal.set` counts, one at a time.
    For the run's workers, at their start.
    """
    _CALL.set(object())


def stopping() -> bool:
    """
    Whether the run this code works for has stopped and leaves what it has not begun for
    ``--resume``: after a first Ctrl-C, SIGTERM or `StopIntake`, in a run with a journal.
    ``False`` outside a run, and in a run without a journal (which finishes every item).

    A stage call that waits before it spends (for a rate limit, or a server's free slot)
    checks it after the wait and raises `StopIntake` if so: its item is left for
    ``--resume`` too, and nothing is spent on it.  A stop lets the calls running finish,
    and such a call has begun, so only the stage itself can tell that it has not spent
    yet (without the check, a Ctrl-C lets every call waiting for a rate-limit slot send
    its request as its slot comes).  Wait inside `move_on_stop` so that the stop
    ends the wait too.

    Example::

        async def call_api(value):
            with asyncpipe.move_on_stop():
                await limit.acquire()
            if asyncpipe.stopping():
                raise asyncpipe.StopIntake("the run's stop")
            return await client.post(...)

    .. versionadded:: 0.1
    """
    signal = _STOPPING.get()
    return signal is not None and signal.is_set


def move_on_stop() -> AbstractContextManager[anyio.CancelScope]:
    """
    Cancel the block when the run it works for stops (`stopping`), and go on after it,
    as `anyio.move_on_after` does when its time is up; at once if the run has stopped
    already.  Check `stopping` after the block: it is ``True`` if the block was cut
    short, or if the stop came just as the block ended.

    For a wait before a call spends: a rate limit, a server's free slot, a retry's
    backoff.  Without it, each call waiting for a rate limit waits its turn before it
    gives up, and a stop at 30 calls/min can take half a minute with nothing sent.  Put
    nothing in the block that must finish once begun: a request sent and cancelled
    halfway may still be paid for.  Outside a run, and in a run without a
    journal, nothing cancels the block.

    A call waiting in the block when the run stops gives up, so the stop's word does not
    count its item among those in flight ("1 pages in flight finish the step they are
    in", not 19 with 18 waiting for a rate limit).

    Returns:
        A context manager whose value is the block's `anyio.CancelScope`.

    .. versionadded:: 0.1
    """
    return _move_on(call=True)


def move_on_stop_between_calls() -> AbstractContextManager[anyio.CancelScope]:
    """
    A `move_on_stop` block for the run's own wait between two calls of an item (a
    stage's retry backoff): the stop ends it alike, but no call of the item is running
    to give up, so `StopSignal.set` does not count it.
    """
    return _move_on(call=False)


@contextmanager
def _move_on(*, call: bool) -> Iterator[anyio.CancelScope]:
    signal = _STOPPING.get()
    with anyio.CancelScope() as scope:
        if signal is None:
            yield scope
            return
        if signal.is_set:
            scope.cancel()
        signal._scopes[scope] = _CALL.get() if call else None
        try:
            yield scope
        finally:
            del signal._scopes[scope]
