from __future__ import annotations

import asyncio
import contextlib

import anyio
import pytest

from asyncpipe import EndOfQueue, QueueBroken, QueueClosed, QueueStatistics, open_queue


class TestFastPath:
    """send and receive finish without an event-loop checkpoint when they can."""

    async def test_send_and_receive_do_not_yield(self) -> None:
        """Another task does not get to run during a send into room or a receive of a ready item."""
        send, receive = open_queue[int](4)
        ran = False

        async def other() -> None:
            nonlocal ran
            ran = True

        async with anyio.create_task_group() as tg:
            tg.start_soon(other)
            for i in range(4):
                await send.send(i)
            assert not ran
            assert [await receive.receive() for _ in range(4)] == [0, 1, 2, 3]
            assert not ran  # anyio's memory object streams would have run `other` by now
        assert ran

    async def test_nowait_twins(self) -> None:
        """send_nowait raises QueueFull when full; receive_nowait raises QueueEmpty when empty."""
        send, receive = open_queue[str](2)
        with pytest.raises(asyncio.QueueEmpty):
            receive.receive_nowait()
        send.send_nowait("a")
        send.send_nowait("b")
        with pytest.raises(asyncio.QueueFull):
            send.send_nowait("c")
        assert receive.receive_nowait() == "a"
        send.send_nowait("c")
        assert [receive.receive_nowait(), receive.receive_nowait()] == ["b", "c"]

    async def test_receive_ready_takes_a_batch_and_wakes_senders(self) -> None:
        """receive_ready takes at most `limit` ready items and wakes a blocked sender per item."""
        send, receive = open_queue[int](2)
        assert receive.receive_ready(8) == []
        send.send_nowait(0)
        send.send_nowait(1)
        async with anyio.create_task_group() as tg:
            tg.start_soon(send.send, 2)
            tg.start_soon(send.send, 3)
            await anyio.wait_all_tasks_blocked()
            assert send.statistics().tasks_waiting_send == 2
            assert receive.receive_ready(1) == [0]
            assert receive.receive_ready(8) == [1]
            await anyio.wait_all_tasks_blocked()
        assert receive.receive_ready(8) == [2, 3]
        send.close()
        assert receive.receive_ready(8) == []
        with pytest.raises(EndOfQueue):
            await receive.receive()
        receive.close()
        with pytest.raises(QueueClosed):
            receive.receive_ready(8)

    async def test_receive_ready_keeps_the_weight(self) -> None:
        """On a weighed queue receive_ready takes the weight of what it took off the buffer."""
        send, receive = open_queue[int](4, max_weight=10.0, weigh=float)
        for value in (1, 2, 3):
            send.send_nowait(value)
        assert send.statistics().current_weight == 6.0
        assert receive.receive_ready(2) == [1, 2]
        assert send.statistics().current_weight == 3.0
        assert receive.receive_ready(2) == [3]
        assert send.statistics().current_weight == 0.0

    def test_size_must_be_positive(self) -> None:
        """A queue needs room for at least one item."""
        with pytest.raises(ValueError, match="at least 1"):
            open_queue[int](0)


class TestBlocking:
    """send waits while the buffer is full, receive while it is empty."""

    async def test_send_waits_for_room(self) -> None:
        """A send into a full buffer waits until a receive makes room, in FIFO order."""
        send, receive = open_queue[int](1)
        send.send_nowait(0)
        async with anyio.create_task_group() as tg:
            tg.start_soon(send.send, 1)
            await anyio.wait_all_tasks_blocked()
            assert send.statistics().tasks_waiting_send == 1
            assert receive.receive_nowait() == 0
            assert await receive.receive() == 1
        assert send.statistics().tasks_waiting_send == 0

    async def test_receive_waits_for_an_item(self) -> None:
        """A receive on an empty buffer waits for the next send."""
        send, receive = open_queue[int](1)
        got: list[int] = []

        async def get() -> None:
            got.append(await receive.receive())

        async with anyio.create_task_group() as tg:
            tg.start_soon(get)
            await anyio.wait_all_tasks_blocked()
            assert receive.statistics().tasks_waiting_receive == 1
            await send.send(7)
        assert got == [7]

    async def test_many_senders_and_receivers(self) -> None:
        """Every item sent by several producers is received exactly once by several consumers."""
        send, receive = open_queue[int](3)
        got: list[int] = []

        async def produce(start: int) -> None:
            for i in range(start, start + 250):
                await send.send(i)

        async def consume() -> None:
            async for value in receive:
                got.append(value)
                if value % 7 == 0:
                    await anyio.lowlevel.checkpoint()

        async with anyio.create_task_group() as outer:
            for _ in range(3):
                outer.start_soon(consume)
            async with anyio.create_task_group() as producers:
                for p in range(4):
                    producers.start_soon(produce, p * 1000)
            send.close()
        assert sorted(got) == sorted(i + p * 1000 for p in range(4) for i in range(250))


class TestClosing:
    """Closing either end: EndOfQueue, QueueClosed and QueueBroken."""

    async def test_end_of_queue_after_drain(self) -> None:
        """Items sent before close are still received; then every receive says EndOfQueue."""
        send, receive = open_queue[int](4)
        await send.send(1)
        await send.send(2)
        send.close()
        send.close()  # closing twice does nothing
        assert await receive.receive() == 1
        assert receive.receive_nowait() == 2
        with pytest.raises(EndOfQueue):
            await receive.receive()
        with pytest.raises(EndOfQueue):
            receive.receive_nowait()

    async def test_use_after_close(self) -> None:
        """Using an end after closing it raises QueueClosed."""
        send, receive = open_queue[int](4)
        send.close()
        with pytest.raises(QueueClosed):
            await send.send(1)
        with pytest.raises(QueueClosed):
            send.send_nowait(1)
        receive.close()
        with pytest.raises(QueueClosed):
            await receive.receive()
        with pytest.raises(QueueClosed):
            receive.receive_nowait()

    async def test_send_after_receiver_closed(self) -> None:
        """Sending to a queue whose receiving end is closed raises QueueBroken."""
        send, receive = open_queue[int](4)
        await send.send(1)
        receive.close()
        with pytest.raises(QueueBroken):
            await send.send(2)
        with pytest.raises(QueueBroken):
            send.send_nowait(2)
        assert send.statistics().current_buffer_used == 0  # the buffer was dropped

    async def test_blocked_sender_woken_when_receiver_closes(self) -> None:
        """A sender waiting on a full buffer gets QueueBroken when the receiver closes."""
        send, receive = open_queue[int](1)
        send.send_nowait(0)
        errors: list[BaseException] = []

        async def blocked_send() -> None:
            try:
                await send.send(1)
            except QueueBroken as exc:
                errors.append(exc)

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(blocked_send)
                await anyio.wait_all_tasks_blocked()
                receive.close()
        assert len(errors) == 1

    async def test_blocked_sender_woken_when_sender_closes(self) -> None:
        """A sender waiting on a full buffer gets QueueClosed when its end is closed."""
        send, _receive = open_queue[int](1)
        send.send_nowait(0)
        errors: list[BaseException] = []

        async def blocked_send() -> None:
            try:
                await send.send(1)
            except QueueClosed as exc:
                errors.append(exc)

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(blocked_send)
                await anyio.wait_all_tasks_blocked()
                send.close()
        assert len(errors) == 1

    async def test_blocked_receivers_woken_by_close(self) -> None:
        """Every receiver waiting on an empty buffer gets EndOfQueue when the sender closes."""
        send, receive = open_queue[int](1)
        ends = 0

        async def blocked_receive() -> None:
            nonlocal ends
            with pytest.raises(EndOfQueue):
                await receive.receive()
            ends += 1

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                for _ in range(3):
                    tg.start_soon(blocked_receive)
                await anyio.wait_all_tasks_blocked()
                assert receive.statistics().tasks_waiting_receive == 3
                send.close()
        assert ends == 3

    async def test_async_for(self) -> None:
        """`async for` yields every item and stops at the end of the queue."""
        send, receive = open_queue[int](2)

        async def produce() -> None:
            for i in range(10):
                await send.send(i)
            send.close()

        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            got = [value async for value in receive]
        assert got == list(range(10))


class TestCancellation:
    """A cancelled waiter never swallows the wake-up (or the item) meant for another."""

    async def test_receiver_cancelled_after_wakeup_passes_it_on(self) -> None:
        """Of two receivers, the woken one is cancelled before it runs: the other gets it."""
        send, receive = open_queue[int](1)
        # anyio never cancels a task whose wake-up has already fired (it delivers the
        # cancellation at the next checkpoint), so use asyncio's own cancel, as
        # ``asyncio.timeout`` or ``wait_for`` around a receive would.
        first = asyncio.ensure_future(receive.receive())
        await anyio.wait_all_tasks_blocked()
        second = asyncio.ensure_future(receive.receive())
        await anyio.wait_all_tasks_blocked()
        send.send_nowait(42)  # wakes `first`, the oldest waiter...
        first.cancel()  # ...which is cancelled before it runs
        with anyio.fail_after(5):
            assert await second == 42
        assert first.cancelled()
        assert receive.statistics().tasks_waiting_receive == 0

    async def test_sender_cancelled_after_wakeup_passes_it_on(self) -> None:
        """Of two blocked senders, the one woken by a receive is cancelled: the other sends."""
        send, receive = open_queue[int](1)
        send.send_nowait(0)
        first = asyncio.ensure_future(send.send(1))
        await anyio.wait_all_tasks_blocked()
        second = asyncio.ensure_future(send.send(2))
        await anyio.wait_all_tasks_blocked()
        assert receive.receive_nowait() == 0  # wakes `first`...
        first.cancel()  # ...which is cancelled before it runs
        with anyio.fail_after(5):
            await second
        assert first.cancelled()
        assert receive.receive_nowait() == 2
        assert send.statistics().tasks_waiting_send == 0

    async def test_anyio_cancel_after_wakeup_loses_no_item(self) -> None:
        """An anyio scope cancelled right after the wake-up does not lose the item."""
        send, receive = open_queue[int](1)
        got: list[int] = []
        first_scope = anyio.CancelScope()

        async def waiter(scope: anyio.CancelScope) -> None:
            with scope, contextlib.suppress(EndOfQueue):
                got.append(await receive.receive())

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(waiter, first_scope)
                await anyio.wait_all_tasks_blocked()
                tg.start_soon(waiter, anyio.CancelScope())
                await anyio.wait_all_tasks_blocked()
                send.send_nowait(42)
                first_scope.cancel()
                await anyio.wait_all_tasks_blocked()
                assert got == [42]
                send.close()  # lets the other waiter finish
        assert got == [42]

    async def test_waiter_cancelled_before_wakeup(self) -> None:
        """Of two blocked receivers, cancel one: the other still gets the next item."""
        send, receive = open_queue[int](1)
        got: list[int] = []
        first_scope = anyio.CancelScope()

        async def first() -> None:
            with first_scope:
                got.append(await receive.receive())

        async def second() -> None:
            got.append(await receive.receive())

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(first)
                await anyio.wait_all_tasks_blocked()
                tg.start_soon(second)
                await anyio.wait_all_tasks_blocked()
                first_scope.cancel()
                await anyio.wait_all_tasks_blocked()
                assert receive.statistics().tasks_waiting_receive == 1
                await send.send(7)
        assert first_scope.cancelled_caught
        assert got == [7]

    async def test_cancelled_waiter_leaves_no_trace(self) -> None:
        """A receiver cancelled while waiting is no longer counted as waiting."""
        send, receive = open_queue[int](1)
        with anyio.move_on_after(0.01):
            await receive.receive()
        assert receive.statistics().tasks_waiting_receive == 0
        await send.send(1)
        assert await receive.receive() == 1


class TestStatistics:
    """statistics() reports the buffer, the waiters and whether the sender closed."""

    async def test_snapshot(self) -> None:
        """Both ends report the same frozen snapshot of the shared state."""
        send, receive = open_queue[int](2)
        assert send.statistics() == QueueStatistics(0, 2, 0, 0, False)
        await send.send(1)
        await send.send(2)
        async with anyio.create_task_group() as tg:
            tg.start_soon(send.send, 3)
            await anyio.wait_all_tasks_blocked()
            stats = receive.statistics()
            assert stats == QueueStatistics(
                current_buffer_used=2,
                max_buffer_size=2,
                tasks_waiting_send=1,
                tasks_waiting_receive=0,
                send_closed=False,
            )
            with pytest.raises(AttributeError):
                stats.current_buffer_used = 0  # type: ignore[misc]
            assert await receive.receive() == 1
        send.close()
        assert receive.statistics() == QueueStatistics(2, 2, 0, 0, True)


class TestWeight:
    """A queue given weigh and max_weight also waits while its items weigh too much."""

    async def test_send_waits_for_weight(self) -> None:
        """A send that would take the buffer over max_weight waits for a receive."""
        send, receive = open_queue[int](10, max_weight=10, weigh=float)
        send.send_nowait(6)
        with pytest.raises(asyncio.QueueFull):
            send.send_nowait(5)
        async with anyio.create_task_group() as tg:
            tg.start_soon(send.send, 5)
            await anyio.wait_all_tasks_blocked()
            stats = send.statistics()
            assert (stats.tasks_waiting_send, stats.current_weight, stats.max_weight) == (1, 6, 10)
            assert receive.receive_nowait() == 6
        assert send.statistics().current_weight == 5
        assert receive.receive_nowait() == 5
        assert send.statistics().current_weight == 0

    async def test_heavy_item_passes_alone(self) -> None:
        """An item heavier than max_weight enters an empty buffer, and nothing joins it."""
        send, receive = open_queue[int](10, max_weight=10, weigh=float)
        send.send_nowait(50)
        with pytest.raises(asyncio.QueueFull):
            send.send_nowait(1)
        assert receive.receive_nowait() == 50
        send.send_nowait(1)

    def test_weigh_and_max_weight_go_together(self) -> None:
        """One without the other, or a non-positive limit, is a ValueError."""
        with pytest.raises(ValueError, match="together"):
            open_queue[int](1, max_weight=10)
        with pytest.raises(ValueError, match="together"):
            open_queue[int](1, weigh=float)
        with pytest.raises(ValueError, match="positive"):
            open_queue[int](1, max_weight=0, weigh=float)

    async def test_weight_bound_never_exceeded_under_load(self) -> None:
        """Many senders of mixed weights: every item arrives, and the limit always holds."""
        send, receive = open_queue[int](100, max_weight=20, weigh=float)
        got: list[int] = []
        heaviest = 0.0

        async def produce(start: int) -> None:
            for i in range(start, start + 200):
                await send.send(1 + i % 9)

        async def consume() -> None:
            nonlocal heaviest
            async for value in receive:
                heaviest = max(heaviest, receive.statistics().current_weight + value)
                got.append(value)
                if len(got) % 5 == 0:
                    await anyio.lowlevel.checkpoint()

        async with anyio.create_task_group() as outer:
            outer.start_soon(consume)
            async with anyio.create_task_group() as producers:
                for start in (0, 200, 400):
                    producers.start_soon(produce, start)
            send.close()
        assert len(got) == 600
        assert sum(got) == sum(1 + i % 9 for i in range(600))
        assert heaviest <= 20
