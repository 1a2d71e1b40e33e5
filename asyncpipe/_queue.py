"""
A bounded queue with paired ends, the link between two stages.

Why not ``anyio.create_memory_object_stream``?  Its ``send`` and ``receive`` always take
an event-loop checkpoint, even when they could finish at once; measured here, one hop
cost about 8 µs of CPU against about 1 µs for ``asyncio.Queue``.  That is most of the
framework's overhead on cheap stages.  This queue yields only when it has to wait (the
buffer is full, or empty), as ``asyncio.Queue`` does, and it adds what ``asyncio.Queue``
lacks before Python 3.13: closing, so that end-of-input flows down the pipeline.

A queue can also be bounded by weight: give ``weigh`` (an item's cost, e.g. the bytes of
its pixels) and ``max_weight``, and ``send`` also waits while the items in the buffer
weigh too much.  An item is always let into an empty buffer, so one item heavier than
the limit passes alone instead of blocking the pipeline for ever.

It runs on the asyncio backend only (it is built on asyncio's futures), and it is not
thread-safe: like everything on the event loop, it has one owner, the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from ._exceptions import EndOfQueue, QueueBroken, QueueClosed

__all__ = ["QueueStatistics", "ReceiveQueue", "SendQueue", "open_queue"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class QueueStatistics:
    """
    A snapshot of a queue.

    Attributes:
        current_buffer_used: items waiting in the buffer.
        max_buffer_size: the most items the buffer holds before ``send`` waits.
        tasks_waiting_send: senders blocked because the buffer is full.
        tasks_waiting_receive: receivers blocked because the buffer is empty.
        send_closed: whether the sending side has been closed.
        current_weight: the total weight of the items waiting (0 for an unweighted queue).
        max_weight: the weight the buffer holds before ``send`` waits, or ``None``.
    """

    current_buffer_used: int
    max_buffer_size: int
    tasks_waiting_send: int
    tasks_waiting_receive: int
    send_closed: bool
    current_weight: float = 0.0
    max_weight: float | None = None


class _State(Generic[T]):
    __slots__ = (
        "buffer",
        "getters",
        "max_buffer_size",
        "max_weight",
        "putters",
        "receive_closed",
        "send_closed",
        "weigh",
        "weight",
        "weights",
    )

    def __init__(
        self,
        max_buffer_size: int,
        max_weight: float | None = None,
        weigh: Callable[[T], float] | None = None,
    ) -> None:
        self.buffer: deque[T] = deque()
        self.max_buffer_size = max_buffer_size
        # Weighing is off unless both are given; then ``weights`` runs beside ``buffer``.
        self.weigh = weigh if max_weight is not None else None
        self.max_weight = max_weight if weigh is not None else None
        self.weights: deque[float] = deque()
        self.weight = 0.0
        self.getters: deque[asyncio.Future[None]] = deque()
        self.putters: deque[asyncio.Future[None]] = deque()
        self.send_closed = False
        self.receive_closed = False


def _wake_one(waiters: deque[asyncio.Future[None]]) -> None:
    while waiters:
        waiter = waiters.popleft()
        if not waiter.done():
            waiter.set_result(None)
            return


def _wake_all(waiters: deque[asyncio.Future[None]]) -> None:
    while waiters:
        waiter = waiters.popleft()
        if not waiter.done():
            waiter.set_result(None)


async def _wait(
    waiters: deque[asyncio.Future[None]], wake_next: deque[asyncio.Future[None]]
) -> None:
    waiter = asyncio.get_running_loop().create_future()
    waiters.append(waiter)
    try:
        await waiter
    except BaseException:
        # Cancelled.  If we had already been woken, pass the wake-up on so it is not lost.
        if waiter.done() and not waiter.cancelled():
            _wake_one(wake_next)
        else:
            with contextlib.suppress(ValueError):
                waiters.remove(waiter)
        raise


class SendQueue(Generic[T]):
    """
    The sending end of a queue made by `open_queue`.  Many tasks may share it.
    """

    __slots__ = ("_state",)

    def __init__(self, state: _State[T]) -> None:
        self._state = state

    def send_nowait(self, item: T) -> None:
        """
        Put ``item`` in the buffer without waiting.

        Raises:
            asyncio.QueueFull: the buffer is full (``send`` would wait).
            QueueClosed: this end was closed.
            QueueBroken: the receiving end was closed.
        """
        state = self._state
        if state.weigh is not None:
            self._put_weighed(item, state.weigh(item))
            return
        if state.send_closed:
            raise QueueClosed("send on a closed queue")
        if state.receive_closed:
            raise QueueBroken("the receiving end of the queue is closed")
        if len(state.buffer) >= state.max_buffer_size:
            raise asyncio.QueueFull
        state.buffer.append(item)
        if state.getters:
            _wake_one(state.getters)

    def _put_weighed(self, item: T, weight: float) -> None:
        state = self._state
        if state.send_closed:
            raise QueueClosed("send on a closed queue")
        if state.receive_closed:
            raise QueueBroken("the receiving end of the queue is closed")
        if _full(state, weight):
            raise asyncio.QueueFull
        state.buffer.append(item)
        state.weights.append(weight)
        state.weight += weight
        if state.getters:
            _wake_one(state.getters)

    async def send(self, item: T) -> None:
        """
        Put ``item`` in the buffer, waiting while it is full.

        Finishes without yielding to the event loop when there is room.

        Raises:
            QueueClosed: this end was closed.
            QueueBroken: the receiving end was closed, before or while we waited.
        """
        state = self._state
        buffer = state.buffer
        if (
            len(buffer) < state.max_buffer_size
            and state.weigh is None
            and not (state.send_closed or state.receive_closed)
        ):
            # The hot path, inlined: room, no weighing, both ends open.
            buffer.append(item)
            if state.getters:
                _wake_one(state.getters)
            return
        if state.weigh is not None:
            weight = state.weigh(item)
            while _full(state, weight) and not (state.receive_closed or state.send_closed):
                await _wait(state.putters, state.putters)
            self._put_weighed(item, weight)
            return
        while len(buffer) >= state.max_buffer_size and not (
            state.receive_closed or state.send_closed
        ):
            await _wait(state.putters, state.putters)
        self.send_nowait(item)

    def close(self) -> None:
        """
        Say that no more items will come.  Receivers get `EndOfQueue` once the buffer is
        empty.  Closing twice does nothing.
        """
        state = self._state
        if not state.send_closed:
            state.send_closed = True
            _wake_all(state.getters)
            _wake_all(state.putters)

    def statistics(self) -> QueueStatistics:
        """
        Return a `QueueStatistics` snapshot of the queue.
        """
        return _statistics(self._state)


class ReceiveQueue(Generic[T]):
    """
    The receiving end of a queue made by `open_queue`.  Many tasks may share it.
    """

    __slots__ = ("_state",)

    def __init__(self, state: _State[T]) -> None:
        self._state = state

    def receive_nowait(self) -> T:
        """
        Take the next item without waiting.

        Raises:
            asyncio.QueueEmpty: the buffer is empty but more items may come.
            EndOfQueue: the buffer is empty and the sending end is closed.
            QueueClosed: this end was closed.
        """
        state = self._state
        if state.receive_closed:
            raise QueueClosed("receive on a closed queue")
        if state.buffer:
            item = state.buffer.popleft()
            if state.weigh is not None:
                state.weight -= state.weights.popleft()
                if not state.buffer:
                    state.weight = 0.0  # no drift from float sums
                # A waiting sender may need more room than one item made: let all re-check.
                _wake_all(state.putters)
            elif state.putters:
                _wake_one(state.putters)
            return item
        if state.send_closed:
            raise EndOfQueue
        raise asyncio.QueueEmpty

    def receive_ready(self, limit: int) -> list[T]:
        """
        Take up to ``limit`` items that are ready, without waiting: an empty list when
        none is (then `receive` says whether more will come).

        Raises:
            QueueClosed: this end was closed.
        """
        state = self._state
        if state.receive_closed:
            raise QueueClosed("receive on a closed queue")
        buffer = state.buffer
        count = min(limit, len(buffer))
        if state.weigh is not None:
            return [self.receive_nowait() for _ in range(count)]
        popleft = buffer.popleft
        items = [popleft() for _ in range(count)]
        putters = state.putters
        for _ in range(count):
            if not putters:
                break
            _wake_one(putters)  # one freed place per item taken
        return items

    async def receive(self) -> T:
        """
        Take the next item, waiting while the buffer is empty.

        Finishes without yielding to the event loop when an item is ready.

        Raises:
            EndOfQueue: the sending end is closed and every item has been taken.
            QueueClosed: this end was closed.
        """
        state = self._state
        buffer = state.buffer
        if buffer and state.weigh is None:
            # The hot path, inlined (a closed receiving end has an empty buffer).
            item = buffer.popleft()
            if state.putters:
                _wake_one(state.putters)
            return item
        while not buffer and not (state.send_closed or state.receive_closed):
            await _wait(state.getters, state.getters)
        return self.receive_nowait()

    def close(self) -> None:
        """
        Stop receiving: waiting and later senders get `QueueBroken`.
        """
        state = self._state
        if not state.receive_closed:
            state.receive_closed = True
            state.buffer.clear()
            state.weights.clear()
            state.weight = 0.0
            _wake_all(state.putters)
            _wake_all(state.getters)

    def statistics(self) -> QueueStatistics:
        """
        Return a `QueueStatistics` snapshot of the queue.
        """
        return _statistics(self._state)

    def __aiter__(self) -> ReceiveQueue[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.receive()
        except EndOfQueue:
            raise StopAsyncIteration from None


def _full(state: _State[T], weight: float) -> bool:
    """
    Whether an item of ``weight`` must wait: the buffer is full by count, or it holds
    something and the item would take it over ``max_weight``.
    """
    if len(state.buffer) >= state.max_buffer_size:
        return True
    limit = state.max_weight
    return limit is not None and bool(state.buffer) and state.weight + weight > limit


def _statistics(state: _State[T]) -> QueueStatistics:
    return QueueStatistics(
        current_buffer_used=len(state.buffer),
        max_buffer_size=state.max_buffer_size,
        tasks_waiting_send=sum(1 for w in state.putters if not w.done()),
        tasks_waiting_receive=sum(1 for w in state.getters if not w.done()),
        send_closed=state.send_closed,
        current_weight=state.weight,
        max_weight=state.max_weight,
    )


class open_queue(tuple[SendQueue[T], ReceiveQueue[T]]):
    """
    Make a bounded queue and return its two ends, ``(send, receive)``.

    It is a class only so that it can be subscripted with the item type, as
    ``anyio.create_memory_object_stream`` is: ``send, receive = open_queue[int](16)``.

    Args:
        max_buffer_size: how many items the buffer holds before ``send`` waits (>= 1).
        max_weight: with ``weigh``, the total weight the buffer holds before ``send`` waits
            (> 0).  An empty buffer takes any one item, however heavy.
        weigh: the weight of one item (called once per item, on the event loop: keep it
            cheap, e.g. an array's ``nbytes``).

    .. versionadded:: 0.1
    """

    def __new__(  # type: ignore[misc]
        cls,
        max_buffer_size: int,
        *,
        max_weight: float | None = None,
        weigh: Callable[[T], float] | None = None,
    ) -> tuple[SendQueue[T], ReceiveQueue[T]]:
        if max_buffer_size < 1:
            raise ValueError("max_buffer_size must be at least 1")
        if (max_weight is None) != (weigh is None):
            raise ValueError("max_weight and weigh go together: give both or neither")
        if max_weight is not None and not max_weight > 0:
            raise ValueError("max_weight must be positive")
        state: _State[T] = _State(max_buffer_size, max_weight, weigh)
        return (SendQueue(state), ReceiveQueue(state))
