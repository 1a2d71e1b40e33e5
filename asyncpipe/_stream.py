"""
The hand-off of `Pipeline.stream`: the run's sink gives finished items to the code
iterating over the stream, and an item counts as done (is journaled) only once that
code has finished with it.

"Finished with it" is known by the consumer coming back: asking for the next item, or
leaving the ``async with`` block without an error.  The item is journaled right then, in
the consumer's task.  The items handed over wait in a bounded buffer, as they wait
between stages, and are not done until then; the run ends only once the consumer has
finished with the last.  An item the consumer took but never came back from (it
raised, or the process died) is not done, nor is any in the buffer, and a resume
delivers them again: the stream is at-least-once for its consumer.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

import anyio

from ._exceptions import QueueBroken
from ._queue import ReceiveQueue, open_queue
from ._sink import Sink
from ._stage import Item

# Internal to `Pipeline.stream`: nothing here is public API.
__all__: list[str] = []


class StreamItems(ReceiveQueue[Item]):
    """
    The consumer's end of a stream: a `ReceiveQueue` whose every call first tells the
    sink that the items taken before it are finished with.
    """

    __slots__ = ("_sink",)

    def __init__(self, receive: ReceiveQueue[Item], sink: StreamSink) -> None:
        super().__init__(receive._state)
        self._sink = sink

    def receive_nowait(self) -> Item:
        self._sink.came_back()
        return super().receive_nowait()

    def receive_ready(self, limit: int) -> list[Item]:
        self._sink.came_back()
        return super().receive_ready(limit)

    async def receive(self) -> Item:
        self._sink.came_back()
        return await super().receive()

    def close(self) -> None:
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
        # Handed over, not yet finished with: those taken, then those in the buffer.
        self._pending: deque[Item] = deque()
        self._drained = anyio.Event()
        self.done: Callable[[list[Item]], None] = _ignore

    def came_back(self) -> None:
        """
        The consumer asks for more: every item it has taken is finished with.
        """
        pending = self._pending
        taken = len(pending) - len(self.items._state.buffer)
        if taken:
            if taken == 1:
                self.done([pending.popleft()])
            else:
                self.done([pending.popleft() for _ in range(taken)])
            if not pending:
                self._drained.set()

    def wake(self) -> None:
        """Wake a `drained` waiting for the consumer."""
        self._drained.set()

    async def write(self, items: Sequence[Item]) -> None:
        send, pending = self._send, self._pending
        for item in items:
            await send.send(item)
            pending.append(item)  # (``send`` put it in the buffer and did not yield since)

    async def drained(self) -> None:
        """
        Wait until the consumer has finished with every item handed over: the run ends
        (and closes its journal) only then.
        """
        while self._pending:
            if self.items._state.receive_closed:
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
