"""
`Slots`: the server's places for requests, given to the best-ranked waiter, and what a
cancelled waiter does with its place in the queue, or with a slot it was just handed.
"""

from __future__ import annotations

import anyio
import pytest
from anyio import wait_all_tasks_blocked

from stages.llm._slots import Rank, Slots


async def _take(slots: Slots, name: str, rank: Rank, got: list[str]) -> None:
    """Acquire, note it, and hold the slot until the test releases it."""
    await slots.acquire(rank)
    got.append(name)


async def test_a_free_slot_is_taken_at_once() -> None:
    slots = Slots(2)
    await slots.acquire((0, 0))
    await slots.acquire((5, 5))
    assert (slots.free, slots.waiting) == (0, 0)
    slots.release()
    assert slots.free == 1


async def test_waiters_go_by_rank_then_arrival() -> None:
    """A later stage first, then the earlier page; equal ranks in the order they came."""
    slots = Slots(1)
    await slots.acquire((0, 0))
    got: list[str] = []
    async with anyio.create_task_group() as tg:
        for name, rank in [
            ("correct 2", (0, 2)),
            ("structure 0", (-2, 0)),
            ("fix 1", (-1, 1)),
            ("structure 0 again", (-2, 0)),
        ]:
            tg.start_soon(_take, slots, name, rank, got)
            await wait_all_tasks_blocked()
        for _ in range(4):
            slots.release()
            await wait_all_tasks_blocked()
    assert got == ["structure 0", "structure 0 again", "fix 1", "correct 2"]
    assert (slots.free, slots.waiting) == (0, 0)  # the last one holds it still


async def test_a_waiter_cancelled_before_its_turn_leaves_the_queue() -> None:
    slots = Slots(1)
    await slots.acquire((0, 0))
    got: list[str] = []
    cancelled = anyio.CancelScope()

    async def cancellable() -> None:
        with cancelled:
            await _take(slots, "cancelled", (-1, 0), got)

    async with anyio.create_task_group() as tg:
        tg.start_soon(cancellable)
        tg.start_soon(_take, slots, "next", (0, 1), got)
        await wait_all_tasks_blocked()
        assert slots.waiting == 2
        cancelled.cancel()
        await wait_all_tasks_blocked()
        assert slots.waiting == 1
        slots.release()
        await wait_all_tasks_blocked()
    assert got == ["next"]
    slots.release()
    assert (slots.free, slots.waiting) == (1, 0)


async def test_a_waiter_cancelled_as_it_is_handed_a_slot_passes_it_on() -> None:
    """Handed the slot in the same step as its cancellation: the next waiter gets it,
    and no slot is lost."""
    slots = Slots(1)
    await slots.acquire((0, 0))
    got: list[str] = []
    cancelled = anyio.CancelScope()
    raised: list[BaseException] = []

    async def cancellable() -> None:
        with cancelled:
            try:
                await _take(slots, "cancelled", (-1, 0), got)
            except BaseException as exc:
                raised.append(exc)
                raise

    async with anyio.create_task_group() as tg:
        tg.start_soon(cancellable)
        tg.start_soon(_take, slots, "next", (0, 1), got)
        await wait_all_tasks_blocked()
        cancelled.cancel()
        slots.release()  # to the best waiter: the one being cancelled
        await wait_all_tasks_blocked()
    assert raised and isinstance(raised[0], anyio.get_cancelled_exc_class())
    assert got == ["next"]
    slots.release()
    assert (slots.free, slots.waiting) == (1, 0)


def test_at_least_one_slot() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Slots(0)
