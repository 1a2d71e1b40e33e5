"""
One thread for each worker of a thread stage that has a per-worker resource: the worker's
resource is built, used and closed on that thread alone.

`anyio.to_thread.run_sync` hands each call to whichever thread of its pool is idle, so the
calls of one worker would land on several threads in turn.  An engine bound to the thread
that made it (a sqlite3 connection by default, a library that keeps state per thread)
then fails or misbehaves.  A `PinnedThread` runs every call of its worker on one thread of
its own, one at a time, as anyio's worker threads run theirs: each call in a copy of its
caller's context variables, and able to use `anyio.from_thread`.

The thread starts when the object is made, not in a task of its own: a task can be
cancelled before it first runs, and a call queued for a thread that never started would
be waited for for ever.
"""

from __future__ import annotations

import contextlib
import contextvars
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel

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


@contextlib.contextmanager
def _as_anyio_worker(token: anyio.lowlevel.EventLoopToken) -> Iterator[None]:
    """
    This thread taken for one of anyio's worker threads of the loop of ``token``, so that
    `anyio.from_thread` works in it without a token, as in a `to_thread` call.  anyio
    does this for its own threads with a helper it does not export: without it (another
    anyio), the calls must pass ``token=`` themselves.
    """
    try:
        from anyio._core._eventloop import claim_worker_thread
    except ImportError:
        yield
        return
    with claim_worker_thread(token.backend_class, token.native_token):
        yield


class PinnedThread:
    """
    A thread of its own for one worker: `run` runs a call on it, and `stop` lets it end.

    Like `anyio.to_thread.run_sync`, a call once started cannot be abandoned: a task
    cancelled while it runs waits for it to return, then is cancelled.
    """

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        token = anyio.lowlevel.current_token()
        self._soon = _soon(token)
        self._thread = threading.Thread(target=self._serve, args=(token,), name=name, daemon=True)
        self._thread.start()

    async def run(self, fn: Callable[..., T], *args: Any, abandon_on_cancel: bool = False) -> T:
        """
        Run ``fn(*args)`` on this thread; return what it returns, or raise what it raises.

        With ``abandon_on_cancel``, a task cancelled while the call runs stops waiting for
        it (as `anyio.to_thread.run_sync`'s flag of that name): the call runs on, and what
        it returns is dropped.
        """
        # A cancelled run starts no call (the queues that feed a worker do not always
        # check): as anyio.to_thread.run_sync, which checks first.
        await anyio.lowlevel.checkpoint_if_cancelled()
        soon = self._soon
        done = anyio.Event()
        outcomes: list[_Outcome] = []

        def report(outcome: _Outcome) -> None:
            outcomes.append(outcome)
            # The event loop may be closed (a third Ctrl-C): then nobody waits any more.
            with contextlib.suppress(RuntimeError):
                soon(done.set)

        self._jobs.put((contextvars.copy_context(), fn, args, report))
        with anyio.CancelScope(shield=not abandon_on_cancel):
            await done.wait()
        value, error = outcomes[0]
        if error is not None:
            raise error
        return value  # type: ignore[no-any-return]

    def stop(self) -> None:
        """Let the thread end once it has run the calls it was given."""
        self._jobs.put(None)

    def _serve(self, token: anyio.lowlevel.EventLoopToken) -> None:
        with _as_anyio_worker(token):
            while (job := self._jobs.get()) is not None:
                context, fn, args, report = job
                try:
                    outcome: _Outcome = (context.run(fn, *args), None)
                except BaseException as exc:
                    outcome = (None, exc)
                report(outcome)
                del job, context, fn, args, report, outcome  # hold no value between calls
