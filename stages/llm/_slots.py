"""
`Slots`: the server's places for requests at once (a llama.cpp server's slots, or
``--llm-concurrency``), given to the waiting calls best rank first, not first come.

With the calls of every stage queueing for two slots first come first served, the
correct calls of the pages begun later held both slots while the first page's structure
call waited: after 7 minutes no page was written.  Ranked by stage (later first), then
by page (earlier first), the pages begun first finish first and are written in order.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

import anyio
import anyio.lowlevel

__all__ = ["Rank", "Slots"]

Rank = tuple[int, ...]
"""A waiter's place in the queue: the lowest goes first, and equal ranks by arrival."""


@dataclass(order=True)
class _Waiter:
    rank: Rank
    arrival: int
    granted: bool = field(default=False, compare=False)
    event: anyio.Event = field(default_factory=anyio.Event, compare=False)


class Slots:
    """
    At most ``total`` holders at once; the others wait, and a freed slot goes to the
    waiter of the lowest rank (the earliest of equal ranks).

    A waiter cancelled before its turn leaves the queue; one cancelled just after it was
    handed a slot passes the slot on, so no slot is lost.

    Args:
        total: how many may hold a slot at once (at least 1).
    """

    def __init__(self, total: int) -> None:
        if total < 1:
            raise ValueError(f"total must be at least 1, got {total}")
        self.total = total
        self._free = total
        self._queue: list[_Waiter] = []
        self._arrivals = itertools.count()

    @property
    def free(self) -> int:
        """How many slots nobody holds."""
        return self._free

    @property
    def waiting(self) -> int:
        """How many wait for a slot."""
        return len(self._queue)

    async def acquire(self, rank: Rank) -> None:
        """Wait for a slot: at once when one is free and nobody waits."""
        await anyio.lowlevel.checkpoint_if_cancelled()
        if self._free > 0 and not self._queue:
            self._free -= 1
            return
        waiter = _Waiter(rank, next(self._arrivals))
        heapq.heappush(self._queue, waiter)
        try:
            await waiter.event.wait()
        except BaseException:
            if waiter.granted:
                self.release()  # handed a slot as it was cancelled: pass it on
            else:
                self._queue.remove(waiter)
                heapq.heapify(self._queue)
            raise

    def release(self) -> None:
        """Give a slot back: to the best waiter, if any."""
        if self._queue:
            waiter = heapq.heappop(self._queue)
            waiter.granted = True
            waiter.event.set()
        else:
            self._free += 1
