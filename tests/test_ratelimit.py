from __future__ import annotations

from collections.abc import Awaitable, Sequence

import anyio
import pytest
from aiolimiter import AsyncLimiter

from asyncpipe import (
    ConfigError,
    Item,
    Pipeline,
    RateLimit,
    RateLimitHeaders,
    Retry,
    RetryableError,
    Stage,
    parse_rate,
)
from asyncpipe._window import Entry

# Scaled-down limits keep the tests short: 10 calls per 0.3 s is one every 33 ms.
LIMIT = 10
PERIOD = 0.3


class RecordingRateLimit(RateLimit):
    """A RateLimit that notes the loop time of every acquisition."""

    def __init__(self, limit: int, period: float, *, burst: int = 1, margin: float = 0.0) -> None:
        super().__init__(limit, period, burst=burst, margin=margin)
        self.times: list[float] = []
        self.weights: list[int] = []

    def _admit(self, weight: int, now: float) -> Entry:
        # The exact time the limit decided on, not a later reading of the clock.
        self.times.append(now)
        self.weights.append(weight)
        return super()._admit(weight, now)


def violations(times: Sequence[float], limit: int, period: float) -> list[tuple[int, float]]:
    """Where more than ``limit`` acquisitions fall in a half-open window of ``period`` seconds."""
    ts = sorted(times)
    return [
        (i, ts[i + limit] - ts[i]) for i in range(len(ts) - limit) if ts[i + limit] - ts[i] < period
    ]


async def hammer(acquire_fns: Sequence[object], tasks: int, calls: int) -> None:
    """Run ``tasks`` concurrent tasks, each acquiring ``calls`` times, round-robin over limiters."""

    async def worker(n: int) -> None:
        for c in range(calls):
            limiter = acquire_fns[(n + c) % len(acquire_fns)]
            await limiter.acquire()  # type: ignore[attr-defined]

    async with anyio.create_task_group() as tg:
        for n in range(tasks):
            tg.start_soon(worker, n)


def heaviest(times: Sequence[float], weights: Sequence[int], period: float) -> int:
    """The most units any half-open window of ``period`` holds."""
    events = sorted(zip(times, weights, strict=True))
    return max(
        sum(w for t, w in events[i:] if t < start + period) for i, (start, _) in enumerate(events)
    )


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

        pipeline = Pipeline(
            [
                Stage("first", first, workers=8, limiter=limit),
                Stage("second", second, kind="thread", workers=4, limiter=limit),
            ]
        )
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

        stage = Stage(
            "flaky",
            fn,
            kind=kind,  # type: ignore[arg-type]
            workers=2,
            limiter=limit,
            retry=Retry(attempts=3, base=0.0),
        )
        summary = await Pipeline([stage]).run(range(4), sink=sink)
        assert summary.ok == 4
        assert tries == {0: 3, 1: 3, 2: 3, 3: 3}
        assert limit.acquired == sum(tries.values()) == 12
        assert summary.stages[0].retried == 8


class TestRateLimit:
    """Construction and use of RateLimit."""

    @pytest.mark.parametrize(
        ("limit", "period"),
        [(0, 1.0), (-1, 1.0), (5, 0.0), (5, -1.0), (5, float("inf")), (5, float("nan"))],
    )
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
        assert repr(RateLimit(100, 60, burst=5)) == "RateLimit(100, 60, burst=5)"
        assert repr(parse_rate("2000/min", margin=0.5)) == "RateLimit(2000, 60, margin=0.5)"

    @pytest.mark.parametrize("margin", [-0.1, float("inf"), float("nan")])
    def test_bad_margin(self, margin: float) -> None:
        """A negative or non-finite margin is a ConfigError."""
        with pytest.raises(ConfigError, match="margin"):
            RateLimit(10, 1.0, margin=margin)

    async def test_margin_widens_the_window(self) -> None:
        """With margin m, units stay in the window period + m: a full window waits longer."""
        limit = RecordingRateLimit(10, 0.2, burst=10, margin=0.15)
        await limit.acquire(10)
        await limit.acquire(10)
        assert limit.times[1] - limit.times[0] >= 0.35

    @pytest.mark.parametrize(
        ("period", "margin"),
        [(60.0, 0.25), (10.0, 0.1), (2.0, 0.05), (1.0, 0.05), (0.2, 0.02), (3600.0, 0.25)],
    )
    def test_default_margin(self, period: float, margin: float) -> None:
        """The default margin is 1 % of the period, within 50 ms..0.25 s, and at most a
        tenth of the period: jitter is milliseconds whatever the period."""
        assert RateLimit(10, period).margin == pytest.approx(margin)

    @pytest.mark.parametrize("burst", [0, 11])
    def test_bad_burst(self, burst: int) -> None:
        """A burst outside 1..limit is a ConfigError."""
        with pytest.raises(ConfigError, match="burst"):
            RateLimit(10, 1.0, burst=burst)

    async def test_statistics(self) -> None:
        """statistics() reports acquisitions, units, the window, reservations and pauses."""
        limit = RateLimit(100, 60, burst=100)
        await limit.acquire(5)
        reservation = await limit.reserve(20)
        limit.pause(30)
        stats = limit.statistics()
        assert (stats.acquired, stats.units, stats.in_window, stats.outstanding) == (2, 25, 25, 20)
        assert stats.waiting == 0 and 29 < stats.paused_for <= 30
        reservation.settle(7)
        stats = limit.statistics()
        assert (stats.units, stats.in_window, stats.outstanding) == (12, 12, 0)


# Long periods make the timing checks robust on a busy machine: "it went at once" is
# checked with a generous fail_after, "it waited" by a short move_on_after that a 60 s
# wait cannot beat.
LONG = 60.0


async def goes_now(acquire: Awaitable[object]) -> None:
    """``acquire`` completes without waiting for the (long) window."""
    with anyio.fail_after(5):
        await acquire


async def waits(acquire: Awaitable[object]) -> bool:
    """``acquire`` is still waiting after 0.2 s (it is cancelled then)."""
    with anyio.move_on_after(0.2) as scope:
        await acquire
    return scope.cancelled_caught


class TestWeighted:
    """Weighted acquisitions: the same window guarantee, FIFO, and no hang."""

    @pytest.mark.parametrize("burst", [1, 40])
    async def test_mixed_weights_never_over(self, burst: int) -> None:
        """Concurrent acquirers of weights 1..40 never put more than L units in a window."""
        limit = RecordingRateLimit(40, 0.3, burst=burst)
        weights = [1, 5, 12, 40, 3, 20, 1, 7]

        async def worker(n: int) -> None:
            for c in range(2):
                await limit.acquire(weights[(n + c) % len(weights)])

        async with anyio.create_task_group() as tg:
            for n in range(len(weights)):
                tg.start_soon(worker, n)
        assert len(limit.times) == 16 and limit.units == 2 * sum(weights)
        assert heaviest(limit.times, limit.weights, 0.3) <= 40

    async def test_heavy_acquirer_is_not_starved(self) -> None:
        """A heavy waiter at the head goes before light ones that queued after it."""
        limit = RecordingRateLimit(10, LONG, burst=10)
        reservation = await limit.reserve(6)
        order: list[str] = []
        first_in = anyio.Event()

        async def take(name: str, weight: int) -> None:
            await limit.acquire(weight)
            order.append(name)
            first_in.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(take, "heavy", 10)
            await anyio.sleep(0.05)
            for n in range(4):
                tg.start_soon(take, f"light{n}", 1)  # 6 + 4 would fit, but heavy is first
            await anyio.sleep(0.2)
            assert order == [] and limit.statistics().waiting == 5
            reservation.settle(0)
            with anyio.fail_after(5):
                await first_in.wait()
            await anyio.sleep(0.1)
            assert order == ["heavy"]  # and the window is full again for a minute
            tg.cancel_scope.cancel()
        assert limit.statistics().waiting == 0

    async def test_cancelled_head_lets_the_next_go(self) -> None:
        """When the waiter at the head is cancelled, the one behind it is considered at once."""
        limit = RateLimit(10, LONG, burst=10)
        await limit.acquire(5)
        async with anyio.create_task_group() as tg:
            head = anyio.CancelScope()

            async def heavy() -> None:
                with head:
                    await limit.acquire(10)

            tg.start_soon(heavy)
            await anyio.sleep(0.05)
            tg.start_soon(goes_now, limit.acquire(5))
            await anyio.sleep(0.1)
            assert limit.statistics().waiting == 2
            head.cancel()
        assert limit.acquired == 2 and limit.units == 10

    @pytest.mark.parametrize("weight", [0, -1, 11, 10**9])
    @pytest.mark.parametrize("how", ["acquire", "reserve"])
    async def test_never_fitting_weight_fails_at_once(self, weight: int, how: str) -> None:
        """A weight outside 1..limit raises ConfigError at once, even while the limit waits."""
        limit = RateLimit(10, LONG)
        limit.pause(LONG)
        with anyio.fail_after(1), pytest.raises(ConfigError, match=r"never fit|at least 1"):
            await getattr(limit, how)(weight)


class TestReservation:
    """reserve() takes an estimate; settle() corrects it to the real usage."""

    async def test_settling_less_returns_capacity(self) -> None:
        """Reserve 10 of 10, settle 3: 7 more go at once, the 8th waits for the window."""
        limit = RateLimit(10, LONG, burst=10)
        reservation = await limit.reserve(10)
        assert await waits(limit.acquire(1))
        reservation.settle(3)
        await goes_now(limit.acquire(7))
        assert await waits(limit.acquire(1))
        assert limit.units == 10 and reservation.actual == 3

    async def test_settling_more_consumes_capacity(self) -> None:
        """Reserve 2, settle 9: only 1 more unit fits in the window."""
        limit = RateLimit(10, LONG, burst=10)
        reservation = await limit.reserve(2)
        reservation.settle(9)
        await goes_now(limit.acquire(1))
        assert await waits(limit.acquire(1))
        assert limit.units == 10

    async def test_settling_more_wakes_no_one_early(self) -> None:
        """Excess settled while a waiter is queued pushes its admission later."""
        limit = RecordingRateLimit(10, 0.3, burst=10)
        first = await limit.reserve(10)
        got: list[float] = []

        async def late() -> None:
            await limit.acquire(5)
            got.append(anyio.current_time())

        async with anyio.create_task_group() as tg:
            tg.start_soon(late)
            await anyio.sleep(0.1)
            settled_at = anyio.current_time()
            first.settle(16)  # 6 units over, charged now: they stay until settled_at + 0.3
        assert got[0] >= settled_at + 0.3

    async def test_settle_once(self) -> None:
        """settle() without a value keeps the estimate; a second settle or a negative one fails."""
        limit = RateLimit(10, LONG, burst=10)
        reservation = await limit.reserve(4)
        with pytest.raises(ConfigError):
            reservation.settle(-1)
        reservation.settle()
        assert reservation.actual == 4 and limit.statistics().outstanding == 0
        with pytest.raises(RuntimeError, match="settled already"):
            reservation.settle(2)
        assert repr(reservation) == "Reservation(estimate=4, actual=4)"


class TestFeedback:
    """pause() after a 429 and observe() from the server's headers slow everyone down."""

    async def test_pause_holds_future_acquirers(self) -> None:
        """After pause(0.3), nothing is admitted for 0.3 s, and then everything is."""
        limit = RecordingRateLimit(100, 1.0, burst=100)
        start = anyio.current_time()
        limit.pause(0.3)
        limit.pause(0.1)  # a shorter pause does not shorten it
        await hammer([limit], tasks=5, calls=2)
        assert len(limit.times) == 10 and min(limit.times) >= start + 0.3

    async def test_pause_holds_a_waiter_already_queued(self) -> None:
        """A waiter queued for spacing when the pause comes waits for the pause instead."""
        limit = RecordingRateLimit(11, 1.0)  # one call per 0.1 s
        await limit.acquire()
        async with anyio.create_task_group() as tg:
            tg.start_soon(limit.acquire)
            await anyio.sleep(0.02)
            paused_at = anyio.current_time()
            limit.pause(0.4)
        assert limit.times[1] >= paused_at + 0.4

    async def test_observe_spends_what_the_server_has_left(self) -> None:
        """remaining=3, reset=0.3: three calls go now, the fourth after the reset."""
        limit = RecordingRateLimit(1000, LONG, burst=1000)
        start = anyio.current_time()
        limit.observe(3, 0.3)
        limit.observe(5, 0.0)  # no reset time: ignored
        with anyio.fail_after(5):
            await hammer([limit], tasks=4, calls=1)
        assert sorted(limit.times)[2] < start + 0.3 <= sorted(limit.times)[3]

    async def test_headers_reach_both_limits(self) -> None:
        """RateLimitHeaders.apply tells the call limit and the token limit what is left."""
        calls, tokens = RateLimit(1000, LONG, burst=1000), RateLimit(10**6, LONG, burst=10**6)
        RateLimitHeaders(
            remaining_requests=1,
            reset_requests=30.0,
            remaining_tokens=500,
            reset_tokens=30.0,
            limit_tokens=1000,
        ).apply(requests=calls, tokens=tokens)
        await goes_now(calls.acquire())
        assert await waits(calls.acquire())
        await goes_now(tokens.acquire(500))
        assert await waits(tokens.acquire(100))  # refills 1000 - 500 over 30 s: 100 takes 6 s


class TestParseRate:
    """parse_rate reads N/unit and N/seconds."""

    @pytest.mark.parametrize(
        ("text", "limit", "period"),
        [
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
            ("200000/min", 200000, 60.0),  # a token limit
        ],
    )
    def test_forms(self, text: str, limit: int, period: float) -> None:
        """Every documented form gives the right limit and period."""
        rate = parse_rate(text)
        assert (rate.limit, rate.period) == (limit, period)

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "150",
            "150/",
            "/min",
            "abc/min",
            "1.5/s",
            "10/fortnight",
            "0/s",
            "10/0",
            "10/-1",
            "-3/min",
            "10/inf",
        ],
    )
    def test_errors(self, text: str) -> None:
        """Anything else is a ConfigError that says what was wrong."""
        with pytest.raises(ConfigError, match="rate"):
            parse_rate(text)
