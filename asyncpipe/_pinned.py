"""
One thread for each worker of a thread stage that has a per-worker resource: the worker's
resource is built, used and closed on that thread alone.

`anyio.to_thread.run_sync` hands each call to whichever thread of its pool is idle, so the
calls of one worker would land on several threads in turn.  An engine bound to the thread
that made it (a sqlite3 connection by default, a library that keeps state per thread)
then fails or misbehaves.  A `PinnedThread` holds one of anyio's worker threads for the
worker's whole life (`serve`, under a limiter of its own, so it never takes a token of
anyio's shared pool) and runs every call of its worker there, one at a time.  Being an
anyio worker thread, it lets the calls use `anyio.from_thread`, and each call runs in a
copy of its caller's context variables, as `anyio.to_thread.run_sync` does.
"""

from __future__ import annotations

import contextlib
import contextvars
import queue
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread

# Internal to the run: nothing here is public API.
__all__: list[str] = []

T = TypeVar("T")

_Outcome = tuple[Any, BaseException | None]
_Job = tuple[contextvars.Context, Callable[..., Any], tuple[Any, ...], Callable[[_Outcome], None]]


def _soon(token: anyio.lowlevel.EventLoopToken) -> Callable[[Callable[[], object]], object]:
    """
    How a thread asks the event loop of ``token`` to run a callback soon, without waiting
    for it: asyncio's ``loop.call_soon_threadsafe`` or trio's ``run_sync_soon``, as
    anyio's own thread pool does; else anyio's `anyio.from_thread.run_sync`, which waits
    (a pinned worker's calls then cost about twice as much overhead).
    """
    native = token.native_token
    for name in ("call_soon_threadsafe", "run_sync_soon"):
        soon = getattr(native, name, None)
        if callable(soon):
            return soon  # type: ignore[no-any-return]
    return lambda callback: anyio.from_thread.run_sync(callback, token=token)


class PinnedThread:
    """
    A thread of its own for one worker: start `serve` in a task, `run` calls on it, and
    `stop` it when the worker is done.

    Like `anyio.to_thread.run_sync`, a call once started cannot be abandoned: a task
    cancelled while it runs waits for it to return, then is cancelled.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()

    async def serve(self) -> None:
        """Hold one worker thread and run the calls given to it, until `stop`."""
        await anyio.to_thread.run_sync(self._serve, limiter=anyio.CapacityLimiter(1))

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on this thread; return what it returns, or raise what it raises."""
        # A cancelled run starts no call (the queues that feed a worker do not always
        # check): as anyio.to_thread.run_sync, which checks first.
        await anyio.lowlevel.checkpoint_if_cancelled()
        soon = _soon(anyio.lowlevel.current_token())
        done = anyio.Event()
        outcomes: list[_Outcome] = []

        def report(outcome: _Outcome) -> None:
            outcomes.append(outcome)
            # The event loop may be closed (a third Ctrl-C): then nobody waits any more.
            with contextlib.suppress(RuntimeError):
                soon(done.set)

        self._jobs.put((contextvars.copy_context(), fn, args, report))
        with anyio.CancelScope(shield=True):
            await done.wait()
        value, error = outcomes[0]
        if error is not None:
            raise error
        return value  # type: ignore[no-any-return]

    def stop(self) -> None:
        """Let the thread go once it has run the calls it was given."""
        self._jobs.put(None)

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            context, fn, args, report = job
            try:
                outcome: _Outcome = (context.run(fn, *args), None)
            except BaseException as exc:
                outcome = (None, exc)
            report(outcome)
            del job, context, fn, args, report, outcome  # hold no value between calls
