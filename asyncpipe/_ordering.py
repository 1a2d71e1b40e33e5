"""
Ordered output: a reorder buffer, and the admission window that keeps it bounded.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Generic, Protocol, TypeVar

# Both are internal to the pipeline: nothing here is public API.
__all__: list[str] = []

ItemT = TypeVar("ItemT", bound="Indexed")


class AdmissionWindow:
    """
    At most ``size`` items between admission (at the source) and emission (at the sink).

    When output must follow input order, one slow item holds back every item after it.
    Without a window the items behind it pile up in the reorder buffer without bound;
    with it, the source stops admitting new items once ``size`` are in flight, so memory
    stays flat whatever the input size.  The price is speed when one item is much slower
    than the rest: ``waited`` counts the seconds the source spent waiting for room while
    ``held()`` (the reorder buffer's finished items) filled half the window or more.  A
    wait with the buffer near empty is the sink's or a stage's pace, which a larger
    window would not change, and is not counted.  The collector calls `check` after
    each batch it reorders.
    """

    __slots__ = ("_held", "_in_flight", "_size", "_stalled", "_waiters", "waited")

    def __init__(self, size: int, held: Callable[[], int] | None = None) -> None:
        if size < 1:
            raise ValueError("the admission window must hold at least one item")
        self._size = size
        self._held = held
        self._in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._stalled: float | None = None  # since when the order holds intake back
        self.waited = 0.0

    def check(self) -> None:
        """
        Start or end a stall: the source waiting while finished items fill at least half
        the window, behind a slower one.
        """
        now = time.perf_counter()
        held = self._held is None or 2 * self._held() >= self._size
        if self._waiters and held:
            if self._stalled is None:
                self._stalled = now
        elif self._stalled is not None:
            self.waited += now - self._stalled
            self._stalled = None

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def acquire(self) -> None:
        """
        Wait for room for one more item.  Does not yield when there is room.
        """
        while self._in_flight >= self._size:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            self.check()
            try:
                await waiter
            except BaseException:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                raise
            finally:
                self.check()
        self._in_flight += 1

    def release(self, count: int = 1) -> None:
        """
        ``count`` items have left through the sink.
        """
        self._in_flight -= count
        # Wake every waiter: each checks the room again (there is one, the source).
        while self._waiters and self._in_flight < self._size:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        self.check()


class Indexed(Protocol):
    """
    Anything with its position in the input, as `Item` has.
    """

    @property
    def index(self) -> int: ...


class Reorderer(Generic[ItemT]):
    """
    Puts items back in index order: `push` takes a batch in any order and returns the
    items that are now ready, in order.
    """

    __slots__ = ("_next", "_pending")

    def __init__(self) -> None:
        self._pending: dict[int, ItemT] = {}
        self._next = 0

    def push(self, items: Iterable[ItemT]) -> list[ItemT]:
        ready: list[ItemT] = []
        pending = self._pending
        expected = self._next
        for item in items:
            index = item.index
            if index != expected:
                pending[index] = item
                continue
            ready.append(item)
            expected += 1
            while pending and expected in pending:
                ready.append(pending.pop(expected))
                expected += 1
        self._next = expected
        return ready

    def __len__(self) -> int:
        return len(self._pending)
