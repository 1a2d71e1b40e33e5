"""
`Pipeline.stream` with a journal: an item counts as done only once the consumer is done
with it, so a resume delivers again what the consumer had not finished.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from killing import kill_when

from asyncpipe import Item, Journal, Pipeline, QueueBroken, ReceiveQueue, Stage

APP = Path(__file__).with_name("streamapp.py")
WORKERS_APP = Path(__file__).with_name("streamworkersapp.py")


async def double(value: int) -> int:
    return value * 2


def lines(path: Path) -> int:
    """How many lines ``path`` holds (0 before it exists)."""
    return path.read_bytes().count(b"\n") if path.exists() else 0


def pipeline() -> Pipeline:
    return Pipeline([Stage("double", double, workers=4, checkpoint=True)])


async def done_keys(path: Path) -> set[str]:
    return set((await Journal.read(path)).done)


class TestStreamJournal:
    async def test_break_then_resume_delivers_the_rest(self, tmp_path: Path) -> None:
        """After a break, the journal holds the items taken, and a resume delivers the rest."""
        journal = tmp_path / "j"
        first: list[str] = []
        async with pipeline().stream(range(50), key=str, journal=Journal(journal)) as items:
            async for item in items:
                first.append(item.key)
                if len(first) == 10:
                    break
        assert first == [str(n) for n in range(10)]
        # The tenth was handled (the block was left without an error); the items in the
        # pipeline's queues were not handed over.
        assert await done_keys(journal) == set(first)
        async with pipeline().stream(
            range(50), key=str, journal=Journal(journal), resume=True
        ) as items:
            rest = [item.key async for item in items]
        assert rest == [str(n) for n in range(10, 50)]
        assert await done_keys(journal) == {str(n) for n in range(50)}

    async def test_raise_then_resume_delivers_the_item_again(self, tmp_path: Path) -> None:
        """The item being handled when the consumer raises is delivered again by a resume."""
        journal = tmp_path / "j"
        handled: list[str] = []
        with pytest.raises(ConnectionError):
            async with pipeline().stream(range(30), key=str, journal=Journal(journal)) as items:
                async for item in items:
                    if item.key == "7":
                        raise ConnectionError("the database went away")
                    handled.append(item.key)
        assert await done_keys(journal) == set(handled) == {str(n) for n in range(7)}
        async with pipeline().stream(
            range(30), key=str, journal=Journal(journal), resume=True
        ) as items:
            rest = [item.key async for item in items]
        assert rest == [str(n) for n in range(7, 30)]

    async def test_stages_work_while_the_consumer_holds_an_item(self) -> None:
        """While the consumer holds an item, the stages go on filling the queues behind it."""
        done: list[int] = []
        enough = anyio.Event()

        async def work(value: int) -> int:
            done.append(value)
            # More than the item held and one full queue (8) behind it.
            if len(done) == 11:
                enough.set()
            return value

        stream = Pipeline([Stage("work", work, workers=2)], max_buffer_size=8).stream(range(100))
        async with stream as items:
            first: Item = await items.receive()
            with anyio.fail_after(10):
                await enough.wait()
            assert first.key == "0"
            values = [first.value] + [item.value async for item in items]
        assert values == list(range(100))

    async def test_close_then_resume_delivers_every_item_not_taken(self, tmp_path: Path) -> None:
        """Items dropped from the buffer by ``close`` are not done: a resume delivers them."""
        journal = tmp_path / "j"
        taken: list[str] = []
        stream = Pipeline(
            [Stage("double", double, workers=4, checkpoint=True)], max_buffer_size=8
        ).stream(range(50), key=str, journal=Journal(journal))
        try:
            async with stream as items:
                async for item in items:
                    taken.append(item.key)
                    if len(taken) == 3:
                        # Let the stages fill the buffer (no event says it is full).
                        with anyio.fail_after(10):
                            while items.statistics().current_buffer_used < 8:  # noqa: ASYNC110
                                await anyio.sleep(0.005)
                        items.close()
                        break
        except* QueueBroken:
            pass  # the run's write to the closed end
        assert taken == ["0", "1", "2"]
        assert await done_keys(journal) == set(taken)
        async with pipeline().stream(
            range(50), key=str, journal=Journal(journal), resume=True
        ) as items:
            rest = [item.key async for item in items]
        assert rest == [str(n) for n in range(3, 50)]


class TestStreamWorkers:
    async def test_a_task_coming_back_finishes_only_its_own_items(self, tmp_path: Path) -> None:
        """One task holds an item while another consumes: the held item is not done."""
        journal = tmp_path / "j"
        held: list[str] = []
        handled: list[str] = []
        holding = anyio.Event()

        async def hold(items: ReceiveQueue[Item]) -> None:
            held.append((await items.receive()).key)
            holding.set()
            await anyio.sleep_forever()

        async def handle(items: ReceiveQueue[Item]) -> None:
            await holding.wait()
            async for item in items:
                if len(handled) == 20:
                    raise ConnectionError("the database went away")
                handled.append(item.key)

        with pytest.raises(ExceptionGroup):
            async with (
                pipeline().stream(range(50), key=str, journal=Journal(journal)) as items,
                anyio.create_task_group() as tg,
            ):
                tg.start_soon(hold, items)
                tg.start_soon(handle, items)
        assert held == ["0"]
        assert await done_keys(journal) == set(handled)
        async with pipeline().stream(
            range(50), key=str, journal=Journal(journal), resume=True
        ) as items:
            rest = [item.key async for item in items]
        assert rest[0] == "0"
        assert set(rest) | set(handled) == {str(n) for n in range(50)}

    async def test_leaving_the_block_finishes_every_task_s_items(self, tmp_path: Path) -> None:
        """Leaving the block without an error finishes the items each task still holds."""
        journal = tmp_path / "j"
        taken: list[str] = []

        async def take_two(items: ReceiveQueue[Item]) -> None:
            taken.append((await items.receive()).key)
            taken.append((await items.receive()).key)

        async with (
            pipeline().stream(range(50), key=str, journal=Journal(journal)) as items,
            anyio.create_task_group() as tg,
        ):
            for _ in range(3):
                tg.start_soon(take_two, items)
        assert sorted(taken, key=int) == [str(n) for n in range(6)]
        assert await done_keys(journal) == set(taken)

    def test_kill_while_a_task_holds_an_item_then_resume(self, tmp_path: Path) -> None:
        """SIGKILL while one task holds an item and another consumes: a resume delivers it."""
        journal, consumed, held = tmp_path / "j", tmp_path / "consumed", tmp_path / "held"

        def start(*extra: str) -> subprocess.Popen[bytes]:
            args = [sys.executable, str(WORKERS_APP), "--items", "200", "--pause", "0.01"]
            args += ["--journal", str(journal), "--consumed", str(consumed), *extra]
            return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        proc = start("--hold", "--held", str(held))
        kill_when(proc, lambda: held.exists() and lines(consumed) >= 20)
        key = held.read_text()
        handled = set(consumed.read_text().split())
        journaled = anyio.run(done_keys, journal)
        assert key not in handled
        assert 20 <= len(handled) < 199
        # Journaled done means handled: the other task's coming back did not finish it.
        assert journaled <= handled
        proc = start("--resume")
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        delivered = consumed.read_text().split()
        assert key in delivered
        assert set(delivered) == {str(n) for n in range(200)}


class TestStreamKill:
    def test_kill_then_resume_loses_nothing(self, tmp_path: Path) -> None:
        """SIGKILL a slow consumer: only handled items are journaled; a resume delivers the rest."""
        journal, consumed = tmp_path / "j", tmp_path / "consumed"

        def start(*extra: str) -> subprocess.Popen[bytes]:
            args = [sys.executable, str(APP), "--items", "200", "--pause", "0.02"]
            args += ["--journal", str(journal), "--consumed", str(consumed), *extra]
            return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        proc = start()
        kill_when(proc, lambda: lines(consumed) >= 20)
        handled = set(consumed.read_text().split())
        journaled = anyio.run(done_keys, journal)
        assert 20 <= len(handled) < 200
        # Journaled done means handled: the resume skips nothing the consumer missed.
        assert journaled <= handled
        proc = start("--resume")
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        delivered = consumed.read_text().split()
        assert set(delivered) == {str(n) for n in range(200)}
        # At-least-once, but only what was handled and not yet journaled comes twice.
        assert len(delivered) - 200 <= len(handled - journaled)
