"""
`StopIntake`: a source or a stage stops the run's intake the way a first Ctrl-C does, and
an item a stage stopped on is left unwritten for ``--resume``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import orjson
import pytest

from asyncpipe import (
    BudgetExceeded,
    Journal,
    JsonlSink,
    Pipeline,
    ProgressReporter,
    ProgressSnapshot,
    RateLimit,
    Retry,
    RetryableError,
    Stage,
    StageError,
    StopIntake,
    move_on_stop,
    stopping,
)

pytestmark = pytest.mark.anyio

KEYS = [f"k{n:02d}" for n in range(40)]


async def written(path: Path) -> list[str]:
    """The keys in a JSON-lines output."""
    data = await anyio.Path(path).read_bytes()
    return [orjson.loads(line)["id"] for line in data.splitlines()]


class Told(ProgressReporter):
    """A progress reporter that keeps what each stop told it: the calls it finishes."""

    interval = 3600.0

    def __init__(self) -> None:
        super().__init__()
        self.in_flight: list[int] = []

    def update(self, snapshot: ProgressSnapshot) -> None:
        pass

    def interrupted(self, snapshot: ProgressSnapshot, in_flight: int) -> None:
        self.in_flight.append(in_flight)


def record(item: object) -> dict[str, object]:
    """The JSON line of an item: its key and status."""
    return {"id": item.key, "ok": item.ok}  # type: ignore[attr-defined]


class TestStopIntake:
    """The run ends as interrupted by the reason, after finishing what it holds."""

    async def test_source_stops_the_intake(self, tmp_path: Path) -> None:
        """A source raising StopIntake after 5 values: those 5 finish, the run says why."""

        async def source() -> AsyncIterator[str]:
            for n, key in enumerate(KEYS):
                if n == 5:
                    raise StopIntake("the cost ceiling", "no more money")
                yield key

        async def upper(key: str) -> str:
            return key.upper()

        out = tmp_path / "out.jsonl"
        pipeline = Pipeline([Stage("upper", upper)])
        summary = await pipeline.run(source(), sink=JsonlSink(out, record=record), key=str)
        assert summary.interrupted == "the cost ceiling"
        assert await written(out) == KEYS[:5] and summary.ok == 5

    @pytest.mark.parametrize("journaled", [True, False], ids=["journal", "no-journal"])
    async def test_stopping_tells_the_calls_waiting(self, tmp_path: Path, journaled: bool) -> None:
        """
        `stopping()` is False outside a run.  In a run with a journal it is True, once the
        run stopped, for calls that had begun and waited: they leave their items for
        --resume unspent, and the resumed run writes every item once.  Without a journal
        it stays False: every item admitted is finished.
        """
        assert not stopping()
        began, seen, stop = [0], {}, {"k00"}
        three = anyio.Event()

        async def spend(key: str) -> str:
            if key in stop:
                with anyio.fail_after(5):
                    await three.wait()  # the other three calls have begun
                raise StopIntake("the test", "stop")
            began[0] += 1
            if began[0] == 3:
                three.set()
            await anyio.sleep(0.2)  # waiting its turn, say for a rate limit
            seen[key] = stopping()
            if seen[key]:
                raise StopIntake("the test", "not spent: the run stopped")
            return key

        out = tmp_path / "out.jsonl"
        pipeline = Pipeline([Stage("spend", spend, workers=4)], max_buffer_size=1)
        # Unordered: in input order every item after k00 would wait for it.
        journal = Journal(tmp_path / "journal") if journaled else None
        summary = await pipeline.run(
            KEYS, sink=JsonlSink(out, record=record), journal=journal, key=str, ordered=False
        )
        assert summary.interrupted == "the test"
        assert not stopping()
        begun = {"k01", "k02", "k03"}
        assert {k: v for k, v in seen.items() if k in begun} == dict.fromkeys(begun, journaled)
        if not journaled:
            assert begun <= set(await written(out))
            return
        assert not begun & set(await written(out))
        stop.clear()
        summary = await pipeline.run(
            KEYS,
            sink=JsonlSink(out, record=record),
            journal=Journal(tmp_path / "journal"),
            key=str,
            resume=True,
        )
        assert summary.interrupted is None
        assert sorted(await written(out)) == KEYS and len(await written(out)) == len(KEYS)

    async def test_no_call_after_its_rate_limit_nor_retry_once_stopped(
        self, tmp_path: Path
    ) -> None:
        """
        With a journal, a call whose rate-limit turn comes after the stop is not made, and
        an item that failed is not tried again: both wait for --resume (round 26's
        re-check: calls waiting for a limit went out one by one, and retries went on).
        """
        calls: dict[str, int] = {}

        async def limited(key: str) -> str:
            calls[key] = calls.get(key, 0) + 1
            if len(calls) == 1:
                await anyio.sleep(0.05)  # the other workers wait for their turns meanwhile
                raise StopIntake("the test", "stop")
            return key

        async def flaky(key: str) -> str:
            calls[key] = calls.get(key, 0) + 1
            if calls[key] == 1:
                raise RetryableError("try again", retry_after=0.2)
            return key

        async def source() -> AsyncIterator[str]:
            yield "k00"
            await anyio.sleep(0.05)  # k00's first try has failed: it waits to try again
            raise StopIntake("the test", "stop")

        for fn, values in ((limited, KEYS), (flaky, source())):
            calls.clear()
            out, journal = tmp_path / f"{fn.__name__}.jsonl", tmp_path / f"{fn.__name__}.j"
            stage = Stage("s", fn, workers=4, limiter=RateLimit(1, 0.2), retry=Retry(attempts=3))
            pipeline = Pipeline([stage], max_buffer_size=1)
            summary = await pipeline.run(
                values, sink=JsonlSink(out, record=record), journal=Journal(journal), key=str
            )
            assert summary.interrupted == "the test"
            assert sum(calls.values()) == 1, calls
            assert await written(out) == []

    async def test_the_stop_ends_the_waits_for_a_limit_and_a_backoff(self, tmp_path: Path) -> None:
        """
        With a journal, the stop cuts short the waits before a call: for the stage's
        ``limiter=`` turn (1 an hour here) and for a retry's backoff (an hour).  Each call
        waiting gave up only at its turn (round 26's re-check: the exit took 38 s at 30
        calls/min, with nothing sent); here the run would last hours.
        """
        calls: dict[str, int] = {}

        async def limited(key: str) -> str:
            calls[key] = calls.get(key, 0) + 1
            await anyio.sleep(0.1)  # the other workers wait for their turns meanwhile
            raise StopIntake("the test", "stop")

        async def flaky(key: str) -> str:
            calls[key] = calls.get(key, 0) + 1
            raise RetryableError("try again", retry_after=3600)

        async def source() -> AsyncIterator[str]:
            yield "k00"
            await anyio.sleep(0.1)  # k00's first try has failed: it waits to try again
            raise StopIntake("the test", "stop")

        hourly = RateLimit(1, 3600.0)
        for fn, values, limiter in ((limited, KEYS, hourly), (flaky, source(), None)):
            calls.clear()
            out, journal = tmp_path / f"{fn.__name__}.jsonl", tmp_path / f"{fn.__name__}.j"
            retry = Retry(attempts=3, retry_after_cap=7200)
            stage = Stage("s", fn, workers=4, limiter=limiter, retry=retry)
            with anyio.fail_after(10):
                summary = await Pipeline([stage], max_buffer_size=1).run(
                    values, sink=JsonlSink(out, record=record), journal=Journal(journal), key=str
                )
            assert summary.interrupted == "the test"
            assert sum(calls.values()) == 1, calls
            assert await written(out) == []

    async def test_the_stop_counts_only_the_calls_it_finishes(self, tmp_path: Path) -> None:
        """
        The stop's word ("finishing N items in flight") counts the one call sending, not
        the three waiting for a rate limit in `move_on_stop` (they give up unsent) nor the
        item waiting out a backoff: it said 4 (round 28: "finishing 19 pages in flight"
        with 1 request sent).
        """
        told = Told()

        hourly = RateLimit(1, 3600.0)
        tries: dict[str, int] = {}

        async def send(key: str) -> str:
            tries[key] = tries.get(key, 0) + 1
            if key == "k04" and tries[key] == 1:
                raise RetryableError("try again", retry_after=3600)
            with move_on_stop(), move_on_stop():  # blocks inside one another count once
                await hourly.acquire()
            if stopping():
                raise StopIntake("the run's stop", "not sent")
            await anyio.sleep(0.3)  # the request in flight
            return key

        async def source() -> AsyncIterator[str]:
            for key in KEYS[:5]:
                yield key
            await anyio.sleep(0.1)  # one call sends, three wait for the limit, k04 backs off
            raise StopIntake("the test", "stop")

        out = tmp_path / "out.jsonl"
        stage = Stage("send", send, workers=5, retry=Retry(attempts=3, retry_after_cap=7200))
        with anyio.fail_after(10):
            summary = await Pipeline([stage], max_buffer_size=1).run(
                source(),
                sink=JsonlSink(out, record=record),
                journal=Journal(tmp_path / "journal"),
                key=str,
                ordered=False,
                progress=told,
            )
        assert summary.interrupted == "the test"
        assert told.in_flight == [1]
        assert len(await written(out)) == 1 and sum(tries.values()) == 5

    async def test_the_stop_counts_a_call_once_across_its_own_tasks(self, tmp_path: Path) -> None:
        """
        A call whose own child tasks wait in `move_on_stop` counts once among those that
        give up: one call sending and two each waiting in three tasks of their own is "1
        in flight" (it said 0: each task counted as a call given up).
        """
        told = Told()

        hourly = RateLimit(1, 3600.0)
        gave_up: list[str] = []

        async def part() -> None:
            with move_on_stop():
                await hourly.acquire()

        async def send(key: str) -> str:
            if key == "k00":
                await anyio.sleep(0.3)  # the request in flight
                return key
            async with anyio.create_task_group() as tg:
                for _ in range(3):
                    tg.start_soon(part)
            if stopping():
                gave_up.append(key)
                raise StopIntake("the run's stop", "not sent")
            return key

        async def source() -> AsyncIterator[str]:
            for key in KEYS[:3]:
                yield key
            await anyio.sleep(0.1)  # k00 sends; k01 and k02 wait, each in three tasks
            raise StopIntake("the test", "stop")

        out = tmp_path / "out.jsonl"
        await hourly.acquire()  # the limit's one turn this hour: every part waits
        with anyio.fail_after(10):
            summary = await Pipeline([Stage("send", send, workers=3)], max_buffer_size=1).run(
                source(),
                sink=JsonlSink(out, record=record),
                journal=Journal(tmp_path / "journal"),
                key=str,
                ordered=False,
                progress=told,
            )
        assert summary.interrupted == "the test"
        assert told.in_flight == [1]
        assert sorted(gave_up) == ["k01", "k02"] and await written(out) == ["k00"]

    async def test_stage_defers_its_item_and_resume_runs_it(self, tmp_path: Path) -> None:
        """A stage raising BudgetExceeded on k03: k03 is not written, nothing new is taken
        in, and a resumed run writes k03 and the rest exactly once."""
        refuse = {"k03"}

        async def priced(key: str) -> str:
            if key in refuse:
                raise BudgetExceeded(f"{key} would pass the ceiling")
            return key

        out, journal = tmp_path / "out.jsonl", tmp_path / "journal"
        pipeline = Pipeline([Stage("priced", priced, workers=1)], max_buffer_size=1)
        summary = await pipeline.run(
            KEYS, sink=JsonlSink(out, record=record), journal=Journal(journal), key=str
        )
        assert summary.interrupted == "the cost ceiling" and summary.failed == 0
        first = await written(out)
        assert "k03" not in first and len(first) < len(KEYS) - 1
        refuse.clear()
        summary = await pipeline.run(
            KEYS, sink=JsonlSink(out, record=record), journal=Journal(journal), key=str, resume=True
        )
        assert summary.interrupted is None
        final = await written(out)
        assert sorted(final) == KEYS and len(final) == len(KEYS)

    async def test_ordered_output_stays_ordered(self, tmp_path: Path) -> None:
        """An ordered run whose stage stops the intake on a slow k05 while later items
        finish: nothing after k05 is written, so the output is a prefix of the input and
        the resumed run's output is the input in order (round 24's audit: the later items
        were written, and k05 came at the end after --resume)."""
        refuse = {"k05"}

        async def priced(key: str) -> str:
            await anyio.sleep(0.05 if key in refuse else 0.005)
            if key in refuse:
                raise BudgetExceeded(f"{key} would pass the ceiling")
            return key

        out, journal = tmp_path / "out.jsonl", tmp_path / "journal"
        pipeline = Pipeline([Stage("priced", priced, workers=4)])
        summary = await pipeline.run(
            KEYS, sink=JsonlSink(out, record=record), journal=Journal(journal), key=str
        )
        assert summary.interrupted == "the cost ceiling"
        assert await written(out) == KEYS[:5]
        refuse.clear()
        summary = await pipeline.run(
            KEYS, sink=JsonlSink(out, record=record), journal=Journal(journal), key=str, resume=True
        )
        assert summary.interrupted is None and await written(out) == KEYS

    def test_budget_exceeded_is_both(self) -> None:
        """BudgetExceeded is a StageError (an error outside a run) and a StopIntake."""
        exc = BudgetExceeded("over")
        assert isinstance(exc, StageError) and isinstance(exc, StopIntake)
        assert exc.reason == "the cost ceiling" and str(exc) == "over"
