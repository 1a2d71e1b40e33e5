"""
The hand-off of `Pipeline.stream`: the run's sink gives finished items to the code
iterating over the stream, and an item counts as done (is journaled) only once that
code has finished with it.

"Finished with it" is known by the consumer coming back: asking for the next item, or
leaving the ``async with`` block without an error.  The item is journaled right then, in
the consumer's task.  Several tasks may share the stream (workers in a task group inside
the block): each item is held by the task that took it, and a task coming back finishes
only its own items, not those the others still hold.  Leaving the block without an
error finishes every item still held (the tasks inside it have ended by then).

The items handed over wait in a bounded buffer, as they wait between stages, and are
not done until a task has taken them and come back; the run ends only once the consumer
has finished with the last.  An item taken but never come back from (its task raised,
or the process died) is not done, nor is any in the buffer (or dropped from it by
``close``), and a resume delivers them again: the stream is at-least-once for its
consumer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import anyio

from ._exceptions import QueueBroken
from ._queue import ReceiveQueue, open_queue
from ._sink import Sink
from ._stage import Item

# Internal to `Pipeline.stream`: nothing here is public API.
__all__: list[str] = []

# Which task takes an item.  The asyncio task itself (the queue runs on asyncio only):
# anyio's ``get_current_task`` builds a `TaskInfo` on every call, which a single
# consumer would pay per item.
_current_task = asyncio.current_task


class StreamItems(ReceiveQueue[Item]):
    """
    The consumer's end of a stream: a `ReceiveQueue` whose every call first tells the
    sink that the items the calling task took before it are finished with, then records
    what it hands that task.
    """

    __slots__ = ("_sink",)

    def __init__(self, receive: ReceiveQueue[Item], sink: StreamSink) -> None:
        super().__init__(receive._state)
        self._sink = sink

    def receive_nowait(self) -> Item:
        sink = self._sink
        task = sink.came_back()
        item = super().receive_nowait()
        sink.held[task] = [item]
        return item

    def receive_ready(self, limit: int) -> list[Item]:
        sink = self._sink
        task = sink.came_back()
        items = super().receive_ready(limit)
        if items:
            sink.held[task] = items.copy()  # the caller owns the list it gets
        return items

    async def receive(self) -> Item:
        # `came_back`, inlined: this is the per-item path of ``async for``.
        sink = self._sink
        task = _current_task()
        held = sink.held
        items = held.pop(task, None)
        if items is not None:
            sink.done(items)
            if sink.draining:
                sink.wake()
        item = await ReceiveQueue.receive(self)
        held[task] = [item]
        return item

    def close(self) -> None:
        # The items dropped from the buffer were never handed over: they stay not done.
        super().close()
        self._sink.wake()  # a `write` waiting for this consumer gives up


class StreamSink(Sink):
    """
    The sink of a stream's run.  `write` puts items in the consumer's buffer (waiting
    while it is full, as any queue of the pipeline does); ``done`` (set by the run) is
    called with the items the consumer has finished with, as it finishes with them.

    Args:
        max_buffer_size: how many items wait for the consumer.
    """

    def __init__(self, max_buffer_size: int) -> None:
        self._send, receive = open_queue[Item](max_buffer_size)
        self.items = StreamItems(receive, self)
        # Handed over, not yet finished with, by the task that took them: counted as
        # they are handed over, so neither other tasks nor a ``close`` that empties the
        # buffer changes what a task coming back finishes.
        self.held: dict[asyncio.Task[object] | None, list[Item]] = {}
        self.draining = False
        self._drained = anyio.Event()
        self.done: Callable[[list[Item]], None] = _ignore

    def came_back(self) -> asyncio.Task[object] | None:
        """
        The calling task asks for more: every item it has taken is finished with (not
        those other tasks hold).  Return the task, for the items it takes next.
        """
        task = _current_task()
        items = self.held.pop(task, None)
        if items is not None:
            self.done(items)
            if self.draining:
                self._drained.set()
        return task

    def left(self) -> None:
        """
        The consumer left the block without an error: every item still held, by any of
        its tasks, is finished with.
        """
        held = self.held
        if held:
            items = [item for items in held.values() for item in items]
            held.clear()
            self.done(items)
            self._drained.set()

    def wake(self) -> None:
        """Wake a `drained` waiting for the consumer."""
        self._drained.set()

    async def write(self, items: Sequence[Item]) -> None:
        send = self._send
        for item in items:
            await send.send(item)

    async def drained(self) -> None:
        """
        Wait until the consumer has finished with every item handed over: the run ends
        (and closes its journal) only then.
        """
        state = self.items._state
        self.draining = True  # from now on each task coming back wakes this check
        while state.buffer or self.held:
            if state.receive_closed:
                raise QueueBroken("the stream's consumer closed its end")
            self._drained = anyio.Event()
            await self._drained.wait()

    async def aclose(self) -> None:
        # The run is closing its journal: what the consumer finishes with from now on
        # (after a failed run; a clean one waited for it, `drained`) is not journaled.
        self.done = _ignore

    def end(self) -> None:
        """
        The run is over: the consumer gets the end of the items once it has taken those
        handed over.
        """
        self._send.close()


def _ignore(items: list[Item]) -> None:
    pass
