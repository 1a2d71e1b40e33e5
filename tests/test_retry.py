from __future__ import annotations

import itertools
import random

import anyio
import pytest

from asyncpipe import ConfigError, Item, Pipeline, Retry, RetryableError, Stage, StageError
from asyncpipe._retry import default_retryable


async def run_one(stage: Stage, values: list[int]) -> list[Item]:
    """Run ``values`` through a one-stage pipeline and return the items the sink got."""
    got: list[Item] = []

    async def sink(item: Item) -> None:
        got.append(item)

    await Pipeline([stage]).run(values, sink=sink)
    return sorted(got, key=lambda item: item.index)


class TestBackoff:
    """Capped exponential backoff with full jitter."""

    def test_full_jitter_within_bounds(self) -> None:
        """The wait after try n is drawn from [0, min(cap, base * 2**(n-1))] and fills it."""
        retry = Retry(attempts=10, base=0.1, cap=1.0, rng=random.Random(1234))
        exc = RetryableError("busy")
        for attempt in range(1, 9):
            ceiling = min(1.0, 0.1 * 2 ** (attempt - 1))
            delays = [retry.delay(exc, attempt) for _ in range(400)]
            assert all(0.0 <= d <= ceiling for d in delays), attempt
            # Full jitter, not "ceiling plus a little": the draws cover the whole range.
            assert min(delays) < 0.1 * ceiling
            assert max(delays) > 0.9 * ceiling

    def test_cap_is_reached(self) -> None:
        """Late tries never wait longer than the cap."""
        retry = Retry(attempts=100, base=0.5, cap=2.0, rng=random.Random(7))
        delays = [retry.delay(RetryableError("x"), 40) for _ in range(200)]
        assert max(delays) <= 2.0
        assert max(delays) > 1.8

    def test_seeded_rng_is_reproducible(self) -> None:
        """The same seed gives the same waits."""
        exc = RetryableError("x")
        a = Retry(rng=random.Random(5))
        b = Retry(rng=random.Random(5))
        assert [a.delay(exc, n) for n in range(1, 6)] == [b.delay(exc, n) for n in range(1, 6)]

    def test_retry_after_hint(self) -> None:
        """A Retry-After hint is the wait; one over retry_after_cap ends the tries rather
        than trying sooner (round 25's audit: a 'Retry-After: 120' was met by a request a
        second)."""
        retry = Retry(base=0.0, retry_after_cap=5.0, rng=random.Random(0))
        assert retry.delay(RetryableError("x", retry_after=0.2), 1) == 0.2
        assert retry.should_retry(RetryableError("x", retry_after=5.0), 1)
        assert not retry.should_retry(RetryableError("x", retry_after=500.0), 1)
        assert retry.delay(RetryableError("x", retry_after=None), 1) == 0.0
        jittery = Retry(base=10.0, cap=10.0, rng=random.Random(3))
        assert all(jittery.delay(RetryableError("x", retry_after=1.0), 1) >= 1.0 for _ in range(50))

    @pytest.mark.parametrize("kwargs", [{"attempts": 0}, {"base": -1.0}, {"cap": -0.5}])
    def test_bad_settings(self, kwargs: dict[str, float]) -> None:
        """No tries at all, or negative waits, are ConfigErrors."""
        with pytest.raises(ConfigError):
            Retry(**kwargs)  # type: ignore[arg-type]


class TestRetryable:
    """Which errors get another try."""

    def test_default_predicate(self) -> None:
        """RetryableError and TimeoutError are retried by default; other errors are not."""
        assert default_retryable(RetryableError("x"))
        assert default_retryable(TimeoutError())
        assert not default_retryable(StageError("x"))
        assert not default_retryable(ValueError("x"))

    def test_should_retry_counts_tries(self) -> None:
        """should_retry stops at the last allowed try."""
        retry = Retry(attempts=3)
        assert retry.should_retry(RetryableError("x"), 1)
        assert retry.should_retry(RetryableError("x"), 2)
        assert not retry.should_retry(RetryableError("x"), 3)
        assert not retry.should_retry(ValueError("x"), 1)


class TestInPipeline:
    """How a stage uses its Retry policy."""

    async def test_waits_follow_the_drawn_backoff(self) -> None:
        """The gap between tries is at least the wait the seeded policy draws."""
        starts: list[float] = []

        async def always_busy(value: int) -> int:
            starts.append(anyio.current_time())
            raise RetryableError("busy")

        retry = Retry(attempts=4, base=0.05, cap=0.1, rng=random.Random(99))
        expected_rng = random.Random(99)
        expected = [expected_rng.uniform(0.0, min(0.1, 0.05 * 2 ** (n - 1))) for n in (1, 2, 3)]
        [item] = await run_one(Stage("busy", always_busy, retry=retry), [0])
        assert item.error is not None and item.error.attempts == 4
        gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
        assert len(gaps) == 3
        assert all(gap >= wait for gap, wait in zip(gaps, expected, strict=True)), (gaps, expected)

    async def test_retry_after_is_honoured(self) -> None:
        """RetryableError(retry_after=0.2) makes the next try start at least 0.2 s later."""
        starts: list[float] = []

        async def throttled(value: int) -> int:
            starts.append(anyio.current_time())
            if len(starts) == 1:
                raise RetryableError("429 Too Many Requests", retry_after=0.2)
            return value * 10

        [item] = await run_one(Stage("call", throttled, retry=Retry(base=0.0)), [4])
        assert item.ok and item.value == 40
        assert len(starts) == 2
        assert starts[1] - starts[0] >= 0.2

    @pytest.mark.parametrize("kind", ["async", "thread"])
    async def test_non_retryable_not_retried(self, kind: str) -> None:
        """A ValueError fails the item on its first try."""
        calls = 0

        def broken(value: int) -> int:
            nonlocal calls
            calls += 1
            raise ValueError("corrupt input")

        async def broken_async(value: int) -> int:
            return broken(value)

        fn = broken_async if kind == "async" else broken
        stage = Stage("parse", fn, kind=kind, retry=Retry(attempts=5, base=0.0))  # type: ignore[arg-type]
        [item] = await run_one(stage, [1])
        assert calls == 1
        assert item.error is not None
        assert (item.error.type, item.error.message, item.error.attempts) == (
            "ValueError",
            "corrupt input",
            1,
        )

    async def test_attempts_in_error_record(self) -> None:
        """An item that never succeeds is tried `attempts` times, and its record says so."""
        calls = 0

        async def down(value: int) -> int:
            nonlocal calls
            calls += 1
            raise RetryableError("503 Service Unavailable")

        [item] = await run_one(Stage("call", down, retry=Retry(attempts=4, base=0.0)), [0])
        assert calls == 4
        assert item.error is not None
        assert item.error.attempts == 4
        assert item.error.type == "RetryableError"

    async def test_deadline_ends_the_tries(self) -> None:
        """
        With ``deadline``, an item stops being tried once it has spent that long in the
        stage: far fewer tries than ``attempts`` when the waits alone would take longer
        (round 32's review: the pipeline never told the policy how long the item had
        been at it, so all 40 tries ran, over 0.9 s).
        """
        calls = 0

        async def down(value: int) -> int:
            nonlocal calls
            calls += 1
            raise RetryableError("503 Service Unavailable")

        # 39 waits drawn from [0, 0.05] take about 1 s; the deadline allows 0.2 s.
        retry = Retry(attempts=40, base=0.05, cap=0.05, deadline=0.2, rng=random.Random(7))
        with anyio.fail_after(20):
            [item] = await run_one(Stage("call", down, retry=retry), [0])
        assert item.error is not None and item.error.attempts == calls
        assert 1 < calls < 40

    def test_an_exception_s_own_elapsed_wins(self) -> None:
        """A stage that says how long its call has run (the LLM stages' ``elapsed``,
        which leaves out the wait for a free slot) is believed over the pipeline's clock."""
        retry = Retry(deadline=10.0)
        own = RetryableError("busy")
        own.elapsed = 2.0  # type: ignore[attr-defined]
        assert retry.remaining(own, elapsed=9.0) == 8.0
        assert retry.remaining(RetryableError("busy"), elapsed=9.0) == 1.0
        assert retry.remaining(RetryableError("busy")) is None

    async def test_custom_predicate(self) -> None:
        """A stage's own predicate decides what is retried."""
        calls = 0

        async def flaky(value: int) -> int:
            nonlocal calls
            calls += 1
            if calls < 3:
                raise KeyError("not yet")
            return value

        retry = Retry(attempts=3, base=0.0, retryable=lambda exc: isinstance(exc, KeyError))
        [item] = await run_one(Stage("call", flaky, retry=retry), [5])
        assert item.ok and item.value == 5
        assert calls == 3

    async def test_timeout_is_retried(self) -> None:
        """A try that exceeds the stage timeout raises TimeoutError, which is retried."""
        calls = 0

        async def slow_once(value: int) -> int:
            nonlocal calls
            calls += 1
            if calls == 1:
                await anyio.sleep(30)
            return value

        stage = Stage("call", slow_once, timeout=0.05, retry=Retry(attempts=2, base=0.0))
        with anyio.fail_after(20):
            [item] = await run_one(stage, [3])
        assert item.ok and item.value == 3
        assert calls == 2

    async def test_a_timeout_says_it_was_the_stages(self) -> None:
        """The stage's timeout is named in the error record; a TimeoutError the stage
        raises itself keeps its message (round 25's audit: 'TimeoutError()')."""

        async def slow(value: int) -> int:
            if value:
                raise TimeoutError("the upstream gave up")
            await anyio.sleep(30)
            return value

        stage = Stage("call", slow, timeout=0.05, retry=Retry(attempts=1))
        with anyio.fail_after(20):
            timed_out, own = await run_one(stage, [0, 1])
        assert timed_out.error is not None and own.error is not None
        assert (timed_out.error.type, timed_out.error.message) == (
            "TimeoutError",
            "the stage's timeout of 0.05 s passed",
        )
        assert own.error.message == "the upstream gave up"
