"""
`Pipeline.stream` with a journal: an item counts as done only once the consumer is done
with it, so a resume delivers again what the consumer had not finished.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from asyncpipe import Item, Journal, Pipeline, Stage

APP = Path(__file__).with_name("streamapp.py")


async def double(value: int) -> int:
    return value * 2


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


class TestStreamKill:
    def test_kill_then_resume_loses_nothing(self, tmp_path: Path) -> None:
        """SIGKILL a slow consumer: only handled items are journaled; a resume delivers the rest."""
        journal, consumed = tmp_path / "j", tmp_path / "consumed"

        def start(*extra: str) -> subprocess.Popen[bytes]:
            args = [sys.executable, str(APP), "--items", "200", "--pause", "0.02"]
            args += ["--journal", str(journal), "--consumed", str(consumed), *extra]
            return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        proc = start()
        deadline = time.monotonic() + 60
        while not consumed.exists() or consumed.read_bytes().count(b"\n") < 20:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        assert proc.returncode == -signal.SIGKILL
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
