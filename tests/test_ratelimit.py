from __future__ import annotations

from collections.abc import Sequence

import anyio
import pytest
from aiolimiter import AsyncLimiter

from asyncpipe import (
    ConfigError,
    Item,
    Pipeline,
    RateLimit,
    Retry,
    RetryableError,
    Stage,
    parse_rate,
)

# Scaled-down limits keep the tests short: 10 calls per 0.3 s is one every 33 ms.
LIMIT = 10
PERIOD = 0.3


class RecordingRateLimit(RateLimit):
    """A RateLimit that notes the loop time of every acquisition."""

    def __init__(self, limit: int, period: float) -> None:
        super().__init__(limit, period)
        self.times: list[float] = []

    async def acquire(self, weight: int = 1) -> None:
        await super().acquire(weight)
        self.times.append(anyio.current_time())


def violations(times: Sequence[float], limit: int, period: float) -> list[tuple[int, float]]:
    """Where more than ``limit`` acquisitions fall in a half-open window of ``period`` seconds."""
    ts = sorted(times)
    return [(i, ts[i + limit] - ts[i]) for i in range(len(ts) - limit)
            if ts[i + limit] - ts[i] < period]


async def hammer(acquire_fns: Sequence[object], tasks: int, calls: int) -> None:
    """Run ``tasks`` concurrent tasks, each acquiring ``calls`` times, round-robin over limiters."""

    async def worker(n: int) -> None:
        for c in range(calls):
            limiter = acquire_fns[(n + c) % len(acquire_fns)]
            await limiter.acquire()  # type: ignore[attr-defined]

    async with anyio.create_task_group() as tg:
        for n in range(tasks):
            tg.start_soon(worker, n)


class TestWindow:
    """At most ``limit`` acquisitions in any window of ``period`` seconds."""

    async def test_concurrent_tasks_including_startup(self) -> None:
        """Twenty tasks acquiring at once never put more than L calls in any window, from t=0."""
        limit = RecordingRateLimit(LIMIT, PERIOD)
        start = anyio.current_time()
        await hammer([limit], tasks=20, calls=2)
        assert len(limit.times) == limit.acquired == 40
        assert violations(limit.times, LIMIT, PERIOD) == []
        # Start-up: the window [start, start + period) holds at most L calls, not a burst of L.
        assert sum(1 for t in limit.times if t < start + PERIOD) <= LIMIT

    async def test_limit_of_one(self) -> None:
        """RateLimit(1, p) spaces every call at least p apart."""
        limit = RecordingRateLimit(1, 0.05)
        await hammer([limit], tasks=3, calls=2)
        assert violations(limit.times, 1, 0.05) == []

    async def test_raw_aiolimiter_bursts(self) -> None:
        """Why RateLimit exists: a raw AsyncLimiter(L, p) lets about 2L calls into one window."""
        raw = AsyncLimiter(LIMIT, PERIOD)
        times: list[float] = []

        async def worker() -> None:
            await raw.acquire()
            times.append(anyio.current_time())

        async with anyio.create_task_group() as tg:
            for _ in range(2 * LIMIT):
                tg.start_soon(worker)
        assert violations(times, LIMIT, PERIOD) != []

    async def test_shared_between_two_stages(self) -> None:
        """One RateLimit shared by two stages bounds their calls together."""
        limit = RecordingRateLimit(LIMIT, PERIOD)

        async def first(value: int) -> int:
            return value

        def second(value: int) -> int:
            return value

        pipeline = Pipeline([
            Stage("first", first, workers=8, limiter=limit),
            Stage("second", second, kind="thread", workers=4, limiter=limit),
        ])
        summary = await pipeline.run(range(15))
        assert summary.ok == 15
        assert limit.acquired == 30
        assert violations(limit.times, LIMIT, PERIOD) == []

    @pytest.mark.parametrize("kind", ["async", "thread"])
    async def test_every_retry_acquires_again(self, kind: str) -> None:
        """A stage that fails twice and then succeeds acquires the limit once per try."""
        limit = RecordingRateLimit(100, 1.0)
        tries: dict[int, int] = {}

        def flaky(value: int) -> int:
            tries[value] = tries.get(value, 0) + 1
            if tries[value] < 3:
                raise RetryableError("try again")
            return value

        async def flaky_async(value: int) -> int:
            return flaky(value)

        fn = flaky_async if kind == "async" else flaky
        got: list[Item] = []

        async def sink(item: Item) -> None:
            got.append(item)

        stage = Stage("flaky", fn, kind=kind, workers=2, limiter=limit,  # type: ignore[arg-type]
                      retry=Retry(attempts=3, base=0.0))
        summary = await Pipeline([stage]).run(range(4), sink=sink)
        assert summary.ok == 4
        assert tries == {0: 3, 1: 3, 2: 3, 3: 3}
        assert limit.acquired == sum(tries.values()) == 12
        assert summary.stages[0].retried == 8


class TestRateLimit:
    """Construction and use of RateLimit."""

    @pytest.mark.parametrize(("limit", "period"), [(0, 1.0), (-1, 1.0), (5, 0.0), (5, -1.0),
                                                   (5, float("inf")), (5, float("nan"))])
    def test_bad_limits(self, limit: int, period: float) -> None:
        """A limit below one or a period that is not a positive finite number is a ConfigError."""
        with pytest.raises(ConfigError):
            RateLimit(limit, period)

    async def test_context_manager_counts(self) -> None:
        """`async with limit:` acquires, and `acquired` counts acquisitions."""
        limit = RateLimit(100, 1.0)
        async with limit:
            pass
        await limit.acquire()
        assert limit.acquired == 2
        assert repr(limit) == "RateLimit(100, 1)"


class TestParseRate:
    """parse_rate reads N/unit and N/seconds."""

    @pytest.mark.parametrize(("text", "limit", "period"), [
        ("150/min", 150, 60.0),
        ("10/s", 10, 1.0),
        ("10/sec", 10, 1.0),
        ("5/second", 5, 1.0),
        ("2/m", 2, 60.0),
        ("3/minute", 3, 60.0),
        ("1000/hour", 1000, 3600.0),
        ("7/h", 7, 3600.0),
        ("1000/3600", 1000, 3600.0),
        ("4/0.5", 4, 0.5),
        (" 150 / MIN ", 150, 60.0),
    ])
    def test_forms(self, text: str, limit: int, period: float) -> None:
        """Every documented form gives the right limit and period."""
        rate = parse_rate(text)
        assert (rate.limit, rate.period) == (limit, period)

    @pytest.mark.parametrize("text", ["", "150", "150/", "/min", "abc/min", "1.5/s", "10/fortnight",
                                      "0/s", "10/0", "10/-1", "-3/min", "10/inf"])
    def test_errors(self, text: str) -> None:
        """Anything else is a ConfigError that says what was wrong."""
        with pytest.raises(ConfigError, match="rate"):
            parse_rate(text)
