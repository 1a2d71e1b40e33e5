"""
The hand-off of `Pipeline.stream`: the run's sink gives each finished item to the code
iterating over the stream, and the item counts as done (is journaled) only once that
code has finished with it.

"Finished with it" is known by the consumer coming back: asking for the next item, or
leaving the ``async with`` block without an error.  Until then the sink's ``write`` does
not return, so the run neither journals the item nor hands over the next; the items
behind it wait in the pipeline's own bounded queues, which keep the stages busy.  An
item the consumer took but never came back from (it raised, or the process died) is not
done, and a resume delivers it again: the stream is at-least-once for its consumer.
"""

from __future__ import annotations

from collections.abc import Sequence

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
        self._sink.changed()  # a `write` waiting for this consumer gives up


class StreamSink(Sink):
    """
    The sink of a stream's run.  `write` returns once the consumer has come back for
    the next item after the last one written; the run writes one item at a time to it
    (`Run`), so each is journaled as soon as the consumer is done with it, and no sooner.
    """

    def __init__(self) -> None:
        self._send, receive = open_queue[Item](1)
        self.items = StreamItems(receive, self)
        self._handed = 0  # items put in the hand-off
        self._finished = 0  # items the consumer has come back from
        self._returned = 0  # items whose `write` has returned
        self._ended = False  # the run is over: nothing more will be written
        self._changed = anyio.Event()

    def changed(self) -> None:
        """Wake whoever waits for the counts above."""
        self._changed.set()
        self._changed = anyio.Event()

    def came_back(self) -> None:
        """
        The consumer asks for more: every item it has taken is finished with.
        """
        taken = self._handed - len(self.items._state.buffer)
        if taken > self._finished:
            self._finished = taken
            self.changed()

    async def write(self, items: Sequence[Item]) -> None:
        state = self.items._state
        for item in items:
            await self._send.send(item)
            self._handed += 1
            while self._finished < self._handed:
                if state.receive_closed:
                    raise QueueBroken("the stream's consumer closed its end")
                await self._changed.wait()
        self._returned = self._handed
        self.changed()

    async def settle(self) -> None:
        """
        The consumer left without an error: count the items it took as finished, and
        wait until the run has journaled them (or has ended).
        """
        self.came_back()
        while self._returned < self._finished and not self._ended:
            await self._changed.wait()

    def end(self) -> None:
        """
        The run is over: the consumer gets the end of the items once it has taken those
        handed over.
        """
        self._ended = True
        self._send.close()
        self.changed()
