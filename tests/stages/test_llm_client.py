"""
Unit tests of `stages.llm.LlmClient` over ``httpx.MockTransport`` (no network, fake time),
with retries made by the LLM stages' `asyncpipe.Retry` policy.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import orjson
import pytest

from asyncpipe._exceptions import ConfigError, RetryableError, StageError, StopIntake
from asyncpipe._ratelimit import RateLimit
from asyncpipe._retry import Retry
from asyncpipe._stopping import _STOPPING, StopSignal
from stages.llm import (
    DEFAULT_RETRY,
    CallState,
    ChatReply,
    LlmClient,
    LlmDeadlineError,
    LlmRetriesExhausted,
    LlmRetryableError,
    LlmServerDown,
    LlmServerRefused,
    LlmServerWait,
    LlmStatusError,
    Message,
    parse_retry_after,
)

KEY = "sk-test-7f3a9c1e5b2d4f6a8c0e"
MESSAGES: list[Message] = [{"role": "user", "content": "hello"}]

Step = httpx.Response | Exception
Handler = Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]


def ok(content: str = "fine", prompt: int = 10, completion: int = 3) -> httpx.Response:
    """A well-formed completion."""
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        },
    )


class FakeTime:
    """A clock that only moves when the client sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class MaxJitter(random.Random):
    """A generator whose uniform draw is always the upper bound."""

    def uniform(self, a: float, b: float) -> float:
        return b


class CountingLimit:
    """A limiter that admits everything and counts acquisitions."""

    def __init__(self) -> None:
        self.acquired = 0

    async def acquire(self) -> None:
        self.acquired += 1


class Script:
    """A MockTransport handler that plays the given steps in order and records requests."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


def make_client(script: Script | Handler, time: FakeTime | None = None, **kwargs: Any) -> LlmClient:
    """A client on a mock transport with fake time (unless the test wants real time)."""
    options: dict[str, Any] = {"api_key": KEY}
    if time is not None:
        options.update(clock=time.clock)
    options.update(kwargs)
    return LlmClient("http://llm.test/v1", "m", transport=httpx.MockTransport(script), **options)


def policy(**kwargs: Any) -> Retry:
    """The LLM stages' default policy, with the jitter drawn at its upper bound."""
    options: dict[str, Any] = {
        "attempts": DEFAULT_RETRY.attempts,
        "deadline": DEFAULT_RETRY.deadline,
        "rng": MaxJitter(0),
    }
    options.update(kwargs)
    return Retry(**options)


async def call(
    client: LlmClient, time: FakeTime, retry: Retry | None = None, **kwargs: Any
) -> ChatReply:
    """
    One call under a stage's `Retry`, as the pipeline's attempt loop makes it (should_retry,
    then sleep the delay, then try again), with fake time.  The real loop is exercised in
    tests/test_retry.py and, with the LLM stages, in test_llm_stages.py.
    """
    retry = retry or policy()
    state = CallState(deadline=retry.deadline)
    while True:
        try:
            return await client.chat(MESSAGES, call=state, **kwargs)
        except Exception as exc:
            if not retry.should_retry(exc, state.attempt):
                raise
            await time.sleep(retry.delay(exc, state.attempt))
            state.attempt += 1


class TestRetryable:
    """Which failures are retryable, and how they are counted."""

    @pytest.mark.parametrize("status", [408, 409, 429, 500, 504])
    async def test_status_is_retried(self, status: int) -> None:
        """
        Each retryable status raises LlmRetryableError; the policy's retry succeeds.  (A
        502 and a 503 say the server is unreachable: `TestUnreachable`.)
        """
        script = Script(httpx.Response(status), ok("done"))
        async with make_client(script, FakeTime()) as client:
            reply = await call(client, FakeTime(), task="correct")
        assert reply.content == "done"
        assert reply.attempts == 2
        assert client.statistics().failures == {str(status): 1}
        assert [r.headers["x-asyncpipe-attempt"] for r in script.requests] == ["1", "2"]

    async def test_one_attempt_per_chat(self) -> None:
        """The client itself never retries: one chat is one request."""
        script = Script(httpx.Response(503), ok())
        async with make_client(script, FakeTime()) as client:
            with pytest.raises(LlmRetryableError) as info:
                await client.chat(MESSAGES, task="correct", item="a.png#1")
        assert len(script.requests) == 1
        err = info.value
        assert isinstance(err, RetryableError) and isinstance(err, StageError)
        assert (err.cause, err.status, err.attempts) == ("503", 503, 1)
        assert "'a.png#1'" in str(err)

    @pytest.mark.parametrize(
        ("error", "cause"),
        [
            (httpx.ReadTimeout("slow read"), "timeout"),
            (httpx.RemoteProtocolError("peer closed"), "network"),
        ],
    )
    async def test_transport_error_is_retried(self, error: Exception, cause: str) -> None:
        """Timeouts, connection and protocol errors are retryable, counted by cause."""
        async with make_client(Script(error, ok()), FakeTime()) as client:
            reply = await call(client, FakeTime(), task="fix")
        assert reply.attempts == 2
        assert client.statistics().failures == {cause: 1}

    @pytest.mark.parametrize(
        "body", [b'{"choices": [{"mess', b"[]", b'{"choices": []}', b'{"choices": [{}]}']
    )
    async def test_malformed_body_is_retried(self, body: bytes) -> None:
        """A 200 whose body is not a usable completion is retryable."""
        script = Script(httpx.Response(200, content=body), ok("second"))
        async with make_client(script, FakeTime()) as client:
            reply = await call(client, FakeTime(), task="fix")
        assert reply.content == "second"
        assert client.statistics().failures == {"malformed": 1}

    async def test_exhausted_retries_raise(self) -> None:
        """After the policy's attempts the last LlmRetryableError stands, with its numbers."""
        script = Script(*[httpx.Response(500, json={"error": {"message": "busy"}})] * 3)
        async with make_client(script, FakeTime()) as client:
            with pytest.raises(LlmRetryableError) as info:
                await call(client, FakeTime(), policy(attempts=3), task="correct", item="a#1")
        err = info.value
        assert (err.cause, err.status, err.attempts) == ("500", 500, 3)
        assert "HTTP 500 (busy)" in str(err)
        assert "attempt 3" in str(err)
        stats = client.statistics()
        assert (stats.succeeded, stats.failed, stats.attempts) == (0, 3, 3)
        assert stats.failures == {"500": 3}

    async def test_timeout_retried_once(self) -> None:
        """A timed-out generation is retried once by default, then gives up."""
        script = Script(httpx.ReadTimeout("slow"), httpx.ReadTimeout("slow"), ok())
        async with make_client(script, FakeTime(), timeout=7.0) as client:
            with pytest.raises(LlmRetriesExhausted) as info:
                await call(client, FakeTime(), task="correct")
        assert len(script.requests) == 2
        assert info.value.cause == "timeout"
        assert "timed out 2 times" in str(info.value) and "--llm-timeout" in str(info.value)

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
    async def test_client_errors_are_not_retried(self, status: int) -> None:
        """A 4xx other than 408/409/429 fails at once."""
        script = Script(httpx.Response(status, json={"error": {"message": "nope"}}), ok())
        async with make_client(script, FakeTime()) as client:
            with pytest.raises(LlmStatusError) as info:
                await call(client, FakeTime(), task="correct")
        assert len(script.requests) == 1
        assert info.value.status == status
        assert info.value.attempts == 1
        assert f"HTTP {status} (nope)" in str(info.value)
        if status in (401, 403, 404):
            assert isinstance(info.value, LlmServerRefused)  # below
        else:
            assert "not retryable" in str(info.value)

    async def test_a_refusal_every_call_would_get_stops_the_intake(self) -> None:
        """
        A 401, 403 or 404 before any success (a wrong key, URL or model) stops the intake
        with the page left for --resume, instead of an error record for every page (round
        25's audit: a wrong model gave one per page, and exit 0).  Between successes one
        is the page's own error; the third in a row stops the intake again.
        """
        refusal = httpx.Response(404, json={"error": {"message": "model 'x' not found"}})
        script = Script(refusal, ok(), refusal, refusal, refusal)
        async with make_client(script, FakeTime()) as client:
            with pytest.raises(LlmServerRefused, match=r"--llm-model") as first:
                await call(client, FakeTime(), task="correct")
            assert isinstance(first.value, StopIntake) and first.value.status == 404
            await call(client, FakeTime(), task="correct")
            for _ in range(2):
                with pytest.raises(LlmStatusError) as one:
                    await call(client, FakeTime(), task="correct")
                assert not isinstance(one.value, StopIntake)
            with pytest.raises(LlmServerRefused):
                await call(client, FakeTime(), task="correct")
        assert len(script.requests) == 5

    async def test_a_404_names_the_url_as_given(self) -> None:
        """A 404's advice quotes --llm-url as given (a review: it said 'which ends in /v1'
        of a URL that ended in /v2)."""
        refusal = httpx.Response(404, json={})
        transport = httpx.MockTransport(lambda r: refusal)
        async with LlmClient("http://llm.test/v2", "m", transport=transport) as client:
            with pytest.raises(LlmServerRefused) as info:
                await client.chat(MESSAGES, task="correct")
        assert "check --llm-url http://llm.test/v2 (an OpenAI-compatible API's most often " in (
            str(info.value)
        )
        assert "which ends in /v1" not in str(info.value)

    async def test_x_should_retry_overrides_status(self) -> None:
        """``x-should-retry`` wins over the status, both ways."""
        script = Script(
            httpx.Response(400, headers={"x-should-retry": "true"}),
            httpx.Response(500, headers={"x-should-retry": "false"}),
        )
        async with make_client(script, FakeTime()) as client:
            with pytest.raises(LlmStatusError) as info:
                await call(client, FakeTime(), task="correct")
        assert info.value.status == 500
        assert len(script.requests) == 2


class TestUnreachable:
    """
    A refused connection, a 502 or a 503: the call waits for the server within its
    deadline, with every other call, and does not spend the stage's attempts.
    """

    @pytest.mark.parametrize(
        ("make", "cause"),
        [
            (lambda: httpx.ConnectError("refused"), "connect"),
            (lambda: httpx.ConnectTimeout("slow connect"), "connect"),
            (lambda: httpx.Response(502), "502"),
            (lambda: httpx.Response(503, json={"error": {"message": "Loading model"}}), "503"),
        ],
    )
    async def test_waited_for_in_the_same_attempt(
        self, make: Callable[[], Step], cause: str
    ) -> None:
        """The call tries again after a wait, as the same attempt, and succeeds."""
        time = FakeTime()
        script = Script(make(), make(), ok("back"))
        async with make_client(script, time, sleep=time.sleep) as client:
            reply = await call(client, time, task="correct")
        assert (reply.content, reply.attempts) == ("back", 1)
        assert [r.headers["x-asyncpipe-attempt"] for r in script.requests] == ["1"] * 3
        assert client.statistics().failures == {cause: 2}
        assert len(time.sleeps) == 2 and time.sleeps[1] > time.sleeps[0]  # it backs off

    async def test_more_tries_than_attempts_within_the_deadline(self) -> None:
        """
        A server down longer than the stage's 5 attempts would last (they were spent
        within 20 s: round 31's review, a server restarted mid-run failed every page in
        flight) is waited for until the deadline; then the run stops (`LlmServerDown`, a
        `StopIntake`: the page is left for --resume), having tried no more often than the
        backoff allows.
        """
        time = FakeTime()
        script = Script(*[httpx.ConnectError("refused")] * 100)
        async with make_client(script, time, sleep=time.sleep) as client:
            with pytest.raises(LlmServerDown, match=r"unreachable for 60 s") as info:
                await call(client, time, policy(deadline=60.0), task="correct")
        assert isinstance(info.value, StopIntake)
        assert "cannot connect" in str(info.value) and "--resume" in str(info.value)
        # More than the 5 attempts, and far fewer than 60: after 1, 2, 4, then every 8-12 s.
        assert 5 < len(script.requests) < 15
        assert time.now == pytest.approx(60.0)

    async def test_a_call_begun_late_waits_no_longer_than_the_outage_allows(self) -> None:
        """
        The outage's deadline counts from its start, not from each call's: a call that
        begins once the server has been unreachable for a deadline stops the run at once,
        sending nothing (each page waited its own 180 s, so a run of 1000 pages against a
        dead server took pages / concurrency x 180 s to write error records).
        """
        time = FakeTime()
        script = Script(*[httpx.ConnectError("refused")] * 100)
        async with make_client(script, time, sleep=time.sleep) as client:
            with pytest.raises(LlmServerDown):
                await call(client, time, policy(deadline=60.0), task="correct")
            sent, now = len(script.requests), time.now
            with pytest.raises(LlmServerDown, match=r"unreachable for 60 s"):
                await call(client, time, policy(deadline=60.0), task="fix")
        assert (len(script.requests), time.now) == (sent, now)

    async def test_without_a_deadline_one_attempt_raises(self) -> None:
        """A call without a deadline could wait for ever: it raises as any failure."""
        script = Script(httpx.ConnectError("refused"), ok())
        async with make_client(script, FakeTime()) as client:
            with pytest.raises(LlmRetryableError) as info:
                await client.chat(MESSAGES, task="correct")
        assert info.value.cause == "connect"
        assert len(script.requests) == 1

    async def test_calls_wait_together(self) -> None:
        """
        While the server is down the calls wait for one another's try: ten calls in flight
        send about one request per wait, not ten each (round 31's review: every call in
        flight retried a dead server on its own).
        """
        time = FakeTime()
        down = 40.0

        async def server(request: httpx.Request) -> httpx.Response:
            await anyio.lowlevel.checkpoint()
            if time.now < down:
                raise httpx.ConnectError("refused")
            return ok()

        replies: list[ChatReply] = []

        async def one(client: LlmClient) -> None:
            replies.append(await call(client, time, task="correct"))

        async with (
            make_client(server, time, sleep=time.sleep) as client,
            anyio.create_task_group() as tg,
        ):
            for _ in range(10):
                tg.start_soon(one, client)
        assert len(replies) == 10
        failed = client.statistics().failures["connect"]
        assert failed < 10 + 15  # each call's first try, then about one per wait


class TestWaiting:
    """How long the stage's policy waits between attempts, and the deadline."""

    async def test_retry_after_ms_wins(self) -> None:
        """``retry-after-ms`` is used before ``Retry-After``."""
        time = FakeTime()
        headers = {"retry-after-ms": "250", "retry-after": "7"}
        async with make_client(Script(httpx.Response(429, headers=headers), ok()), time) as client:
            await call(client, time, task="correct")
        assert time.sleeps == [0.25]

    async def test_retry_after_seconds(self) -> None:
        """``Retry-After`` in seconds is honoured exactly."""
        time = FakeTime()
        script = Script(httpx.Response(500, headers={"retry-after": "3"}), ok())
        async with make_client(script, time) as client:
            await call(client, time, task="correct")
        assert time.sleeps == [3.0]

    async def test_retry_after_http_date(self) -> None:
        """``Retry-After`` as an HTTP-date becomes seconds from now."""
        date = email.utils.formatdate(1_000_000_042.0, usegmt=True)
        headers = httpx.Headers({"retry-after": date})
        assert parse_retry_after(headers, now=lambda: 1_000_000_000.0) == 42.0
        assert parse_retry_after(httpx.Headers({"retry-after": "soon"})) is None
        assert parse_retry_after(httpx.Headers({"retry-after": "-5"})) == 0.0
        assert parse_retry_after(httpx.Headers({})) is None

    async def test_a_retry_after_past_the_deadline_stops_the_intake(self) -> None:
        """A wait longer than a call may take stops the run's intake (StopIntake: the
        page is left for --resume) with no second request, and no later call is sent
        until it has passed (round 25's audit: the hint was dropped for the backoff, a
        request a second; its re-check: waited out page after page, 30 s each)."""
        time = FakeTime()
        script = Script(httpx.Response(429, headers={"retry-after": "3600"}), ok())
        async with make_client(script, time) as client:
            before = datetime.now(UTC).replace(microsecond=0)
            with pytest.raises(LlmServerWait, match=r"asked to wait 3600 s") as info:
                await call(client, time, task="correct")
            after = datetime.now(UTC)
            assert isinstance(info.value, StopIntake)
            # The clock time to resume after, in UTC (a review: only '--resume once it
            # has passed').
            found = re.search(r"--resume once it has passed, after (.{19}) UTC$", str(info.value))
            assert found is not None, str(info.value)
            until = datetime.strptime(found[1], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
            assert before + timedelta(hours=1) <= until <= after + timedelta(hours=1)
            with pytest.raises(LlmServerWait):
                await call(client, time, task="fix")
        assert time.sleeps == []
        assert len(script.requests) == 1

    async def test_a_call_waiting_when_the_run_stops_is_not_sent(self) -> None:
        """A call whose turn comes after its run stopped (`asyncpipe.stopping`) sends
        nothing and leaves its page for --resume (round 26: after a Ctrl-C, 14 requests
        went out, one per rate-limit slot, for calls that had been waiting for one)."""
        script = Script(ok())
        stopped = StopSignal()
        stopped.set()
        token = _STOPPING.set(stopped)
        try:
            async with make_client(script, FakeTime()) as client:
                with pytest.raises(StopIntake, match="not sent, the run is stopping"):
                    await client.chat(MESSAGES, task="correct")
        finally:
            _STOPPING.reset(token)
        assert script.requests == []

    async def test_the_stop_ends_the_waits_before_a_request(self) -> None:
        """
        When the run stops, a call waiting for the rate limit and one waiting for a free
        server slot give up at once, unsent, while the request in flight is answered
        (round 26's re-check: each waited its turn first, 38 s at 30 calls/min).
        """
        sent, answer, both = [], anyio.Event(), anyio.Event()

        async def server(request: httpx.Request) -> httpx.Response:
            sent.append(request)
            await answer.wait()
            return ok()

        outcome: dict[int, str] = {}

        async def one(client: LlmClient, n: int) -> None:
            try:
                await client.chat(MESSAGES, task="correct")
                outcome[n] = "answered"
            except StopIntake as exc:
                outcome[n] = str(exc)
                if len(outcome) == 2:
                    both.set()

        stop = StopSignal()
        token = _STOPPING.set(stop)
        try:
            hourly = RateLimit(1, 3600.0)  # the first call goes; the next waits an hour
            async with make_client(server, rate_limit=hourly, concurrency=2) as client:
                with anyio.fail_after(10):
                    async with anyio.create_task_group() as tg:
                        for n in range(3):  # 0 is sent; 1 waits for the limit, 2 for a slot
                            tg.start_soon(one, client, n)
                            await anyio.sleep(0.05)
                        stop.set()
                        with anyio.fail_after(2):
                            await both.wait()  # 1 and 2 gave up; 0 is still in flight
                        answer.set()
        finally:
            _STOPPING.reset(token)
        assert len(sent) == 1
        assert outcome[0] == "answered"
        assert outcome[1] == outcome[2]
        assert "not sent, the run is stopping" in outcome[1]

    async def test_backoff_doubles_to_cap(self) -> None:
        """Without hints the ceiling goes 0.5, 1, 2, 4, 8, 8 seconds."""
        time = FakeTime()
        script = Script(*[httpx.Response(500)] * 6, ok())
        async with make_client(script, time) as client:
            await call(client, time, policy(attempts=7, deadline=1000), task="correct")
        assert time.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]

    async def test_backoff_has_full_jitter(self) -> None:
        """The wait is drawn uniformly below the ceiling."""
        time = FakeTime()
        script = Script(*[httpx.Response(500)] * 4, ok())
        async with make_client(script, time) as client:
            await call(client, time, policy(rng=random.Random(7)), task="correct")
        ceilings = [0.5, 1.0, 2.0, 4.0]
        assert all(0 <= s <= c for s, c in zip(time.sleeps, ceilings, strict=True))
        assert time.sleeps != ceilings

    async def test_deadline_stops_retries(self) -> None:
        """A server wait that would cross the deadline is not slept: the call fails."""
        time = FakeTime()
        script = Script(*[httpx.Response(500, headers={"retry-after": "10"})] * 5)
        async with make_client(script, time) as client:
            with pytest.raises(LlmRetryableError) as info:
                await call(client, time, policy(attempts=10, deadline=25), task="correct")
        assert time.sleeps == [10.0, 10.0]
        assert info.value.attempts == 3
        assert info.value.elapsed == 20.0

    async def test_deadline_before_an_attempt(self) -> None:
        """An attempt that would start after the deadline is not sent."""
        time = FakeTime()
        state = CallState(deadline=5.0, started=0.0, attempt=2)
        time.now = 6.0
        script = Script(ok())
        async with make_client(script, time) as client:
            with pytest.raises(LlmDeadlineError) as info:
                await client.chat(MESSAGES, task="correct", call=state)
        assert script.requests == []
        assert "5s deadline" in str(info.value)
        stats = client.statistics()
        assert (stats.attempts, stats.failed, stats.failures, stats.gave_up) == (0, 0, {}, 1)
        assert "llm: 0 requests (0 ok, 0 failed: none), 1 call gave up before sending" in (
            stats.summary()
        )

    async def test_deadline_cuts_a_slow_attempt(self) -> None:
        """An attempt that outlives the deadline is abandoned (real time, short)."""

        async def stall(request: httpx.Request) -> httpx.Response:
            await anyio.sleep(30)
            return ok()

        async with make_client(stall) as client:
            with anyio.fail_after(5):
                with pytest.raises(LlmDeadlineError):
                    await client.chat(MESSAGES, task="correct", call=CallState(deadline=0.2))


class TestRateLimit:
    """Every attempt acquires the shared rate limit."""

    async def test_each_attempt_acquires(self) -> None:
        """Three attempts mean three acquisitions."""
        limit = CountingLimit()
        script = Script(httpx.Response(500), httpx.Response(429), ok())
        async with make_client(script, FakeTime(), rate_limit=limit) as client:
            await call(client, FakeTime(), task="correct")
        assert limit.acquired == 3
        assert client.statistics().attempts == 3

    async def test_real_rate_limit_counts_attempts(self) -> None:
        """The asyncpipe RateLimit is acquired per attempt, across calls."""
        limit = RateLimit(1000, 1)
        script = Script(httpx.Response(500), ok(), ok())
        async with make_client(script, FakeTime(), rate_limit=limit) as client:
            await call(client, FakeTime(), task="correct")
            await client.chat(MESSAGES, task="fix")
        assert limit.acquired == 3


class TestRequests:
    """What goes over the wire, and what is counted."""

    async def test_request_shape(self) -> None:
        """Headers, path and body follow the OpenAI API plus attribution headers."""
        script = Script(ok())
        async with make_client(script, FakeTime(), max_tokens=99) as client:
            await client.chat(
                MESSAGES,
                task="structure",
                item="dir/ü.png#2",
                response_format={"type": "json_object"},
            )
        request = script.requests[0]
        assert request.url == "http://llm.test/v1/chat/completions"
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert request.headers["x-asyncpipe-task"] == "structure"
        assert request.headers["x-asyncpipe-item"] == "dir/%C3%BC.png#2"
        body = orjson.loads(request.content)
        assert body == {
            "model": "m",
            "messages": MESSAGES,
            "temperature": 0.0,
            "max_tokens": 99,
            "response_format": {"type": "json_object"},
        }

    async def test_no_key_no_header(self) -> None:
        """Without a key no Authorization header is sent."""
        script = Script(ok())
        async with make_client(script, FakeTime(), api_key=None) as client:
            await client.chat(MESSAGES, task="correct")
        assert "authorization" not in script.requests[0].headers

    async def test_usage_is_counted(self) -> None:
        """Token usage adds up over calls, including the cost when prices are given."""
        script = Script(ok(prompt=100, completion=20), ok(prompt=50, completion=5))
        client = make_client(script, FakeTime(), prices=(2.0, 8.0))
        async with client:
            first = await client.chat(MESSAGES, task="correct")
            await client.chat(MESSAGES, task="fix")
        assert first.usage.total_tokens == 120
        stats = client.statistics()
        assert (stats.prompt_tokens, stats.completion_tokens, stats.total_tokens) == (150, 25, 175)
        assert stats.cost == pytest.approx((150 * 2 + 25 * 8) / 1e6)
        assert (stats.attempts, stats.succeeded, stats.failed) == (2, 2, 0)
        assert "tokens: 175" in stats.summary()

    async def test_closes_its_pool(self) -> None:
        """Leaving the context closes the httpx client."""
        client = make_client(Script(), FakeTime())
        async with client:
            pass
        with pytest.raises(RuntimeError):
            await client.chat(MESSAGES, task="correct")

    async def test_max_tokens_and_finish_reason(self) -> None:
        """max_tokens per request wins over the client's; finish_reason comes back."""
        cut = ok(completion=7)  # cut at max_tokens: a shorter reply was cut by the context
        cut_body = orjson.loads(cut.content)
        cut_body["choices"][0]["finish_reason"] = "length"
        script = Script(httpx.Response(200, json=cut_body))
        async with make_client(script, FakeTime(), max_tokens=99) as client:
            reply = await client.chat(MESSAGES, task="fix", max_tokens=7)
        assert orjson.loads(script.requests[0].content)["max_tokens"] == 7
        assert reply.finish_reason == "length"
        assert client.statistics().length_stops == 1

    @pytest.mark.parametrize("kwargs", [{"timeout_retries": -1}, {"max_tokens": 0}])
    def test_bad_settings(self, kwargs: dict[str, Any]) -> None:
        """Out-of-range settings are a ConfigError."""
        with pytest.raises(ConfigError):
            LlmClient("http://llm.test/v1", "m", **kwargs)

    def test_bad_url(self) -> None:
        """A base URL without a scheme is a ConfigError."""
        with pytest.raises(ConfigError):
            LlmClient("llm.test/v1", "m")


class TestCheck:
    """One request before a run: a server that is not there, or refuses the key, is one
    clear error at the start (helper-86's audit: an error record per page)."""

    async def test_unreachable_refused_and_fine(self) -> None:
        down = Script(httpx.ConnectError("All connection attempts failed"))
        async with make_client(down) as client:
            with pytest.raises(ConfigError, match=r"cannot reach the LLM server at http://llm"):
                await client.check(grace=0)
        echo = {"error": {"message": f"Incorrect API key provided: {KEY}"}}
        refused = Script(httpx.Response(401, json=echo))
        async with make_client(refused) as client:
            with pytest.raises(ConfigError, match="refused the API key") as info:
                await client.check()
        assert KEY not in str(info.value)
        assert refused.requests[0].method == "GET"
        assert refused.requests[0].url.path == "/v1/models"
        nokey = Script(httpx.Response(401, json={}))
        async with make_client(nokey, api_key=None) as client:
            with pytest.raises(ConfigError, match="wants an API key, and none was set"):
                await client.check()
        # Anything else is left to the calls: no endpoint, a key that may chat but not
        # list models, a server error, a slow answer (helper-90's check).
        for step in (200, 403, 500, httpx.ReadTimeout("slow")):
            answer = httpx.Response(step, json={}) if isinstance(step, int) else step
            async with make_client(Script(answer)) as client:
                await client.check()

    async def test_a_url_without_v1_and_an_unlisted_model_are_named(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A base URL that lacks the /v1 the server answers at is a ConfigError that
        gives the right one; a model the server does not list is a warning (round 25's
        audit: both were an error record per page and exit 0)."""

        def server(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/v1/models":
                listed = [{"id": "gpt-4o-mini"}, {"id": "gpt-4o"}]
                return httpx.Response(200, json={"data": listed})
            return httpx.Response(404, json={})

        transport = httpx.MockTransport(server)
        async with LlmClient("http://llm.test", "m", transport=transport) as client:
            with pytest.raises(ConfigError, match=r"give --llm-url http://llm.test/v1$"):
                await client.check()
        async with LlmClient("http://llm.test/v1", "gpt-4o-mni", transport=transport) as client:
            await client.check()
        assert "does not list the model 'gpt-4o-mni' (it lists gpt-4o-mini, gpt-4o)" in (
            caplog.text
        )
        # One model listed (llama.cpp, which answers under any name): no warning.
        caplog.clear()
        one = httpx.MockTransport(lambda r: httpx.Response(200, json={"data": [{"id": "x"}]}))
        async with LlmClient("http://llm.test/v1", "local", transport=one) as client:
            await client.check()
        assert "does not list" not in caplog.text

    async def test_a_url_one_v1_too_many_or_the_chat_endpoint_is_named(self) -> None:
        """A 404 at /models asks the parent paths: a doubled /v1 or the chat endpoint
        pasted whole is a ConfigError giving the right URL (round 29: a doubled /v1 was
        left to the first chat call, exit 4)."""

        def server(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/v1/models":
                return httpx.Response(200, json={"data": [{"id": "m"}]})
            return httpx.Response(404, json={})

        transport = httpx.MockTransport(server)
        for given in (
            "http://llm.test/v1/v1",
            "http://llm.test/v1/chat/completions/",
            "http://llm.test/v2",  # another version: a review's exit 4 after one call
            "http://llm.test/api",  # Ollama's native API; its OpenAI one is at /v1
        ):
            async with LlmClient(given, "m", transport=transport) as client:
                with pytest.raises(ConfigError, match=r"give --llm-url http://llm.test/v1$"):
                    await client.check()

    async def test_a_404_nothing_else_answers_is_left_to_the_calls(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A 404 at /models that no alternative answers with a model list (a catch-all
        page is not one) is no warning, and the calls decide: some servers have no
        /models.  A refused call says it with what to check, in its one line."""
        seen: list[str] = []

        def server(request: httpx.Request) -> httpx.Response:
            seen.append(request.url.path)
            if request.url.path == "/models":
                return httpx.Response(200, text="<html>welcome</html>")
            return httpx.Response(404, json={})

        transport = httpx.MockTransport(server)
        async with LlmClient("http://llm.test/v1", "m", transport=transport) as client:
            await client.check()
            assert seen == ["/v1/models", "/models"]
            assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
            with pytest.raises(LlmServerRefused) as info:
                await client.chat(MESSAGES, task="correct")
        assert (
            "(check --llm-url http://llm.test/v1 (an OpenAI-compatible API's most often ends "
            "in /v1; it has no /models there, nor at the URLs it may have meant) and "
            "--llm-model 'm'): no new pages"
        ) in str(info.value)
        cut = Script(httpx.Response(404, json={}), httpx.ConnectError("gone"))
        async with make_client(cut) as client:
            await client.check()
        assert len(cut.requests) == 2

    async def test_a_url_that_chats_is_kept_though_models_are_at_a_parent(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An Azure-style deployment URL lists models at a parent path but chats at the
        path given: one warning and the run goes on, its query on every request and the
        key in the header named (ddc5df1 refused it at the start, exit 2, with no
        override; the query was pasted before the endpoint's path)."""
        deployment = "/openai/deployments/gpt4o"
        sent: list[httpx.Request] = []

        def azure(request: httpx.Request) -> httpx.Response:
            sent.append(request)
            if request.url.params.get("api-version") != "2024-06-01":
                return httpx.Response(404, json={"error": {"code": "404"}})
            if request.headers.get("api-key") != KEY:
                return httpx.Response(401, json={"error": {"message": "bad key"}})
            if request.url.path == "/openai/models":
                return httpx.Response(200, json={"data": [{"id": "gpt-4o"}, {"id": "o1"}]})
            if request.url.path == f"{deployment}/chat/completions":
                if request.content == b"{}":
                    return httpx.Response(400, json={"error": {"message": "no messages"}})
                return ok()
            return httpx.Response(404, json={"error": {"code": "404"}})

        given = f"https://azure.test{deployment}?api-version=2024-06-01"
        transport = httpx.MockTransport(azure)
        client = LlmClient(
            given, "gpt-4o", api_key=KEY, api_key_header="api-key", transport=transport
        )
        async with client:
            await client.check()
            reply = await client.chat(MESSAGES, task="correct")
        assert reply.content == "fine"
        assert [(r.method, r.url.path, r.url.query) for r in sent] == [
            ("GET", f"{deployment}/models", b"api-version=2024-06-01"),
            ("GET", f"{deployment}/v1/models", b"api-version=2024-06-01"),
            ("GET", "/openai/deployments/models", b"api-version=2024-06-01"),
            ("GET", "/openai/models", b"api-version=2024-06-01"),
            ("POST", f"{deployment}/chat/completions", b"api-version=2024-06-01"),
            ("POST", f"{deployment}/chat/completions", b"api-version=2024-06-01"),
        ]
        assert all("authorization" not in r.headers for r in sent)
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert warnings == [
            f"the LLM server has no /models at {given}, but has at "
            "https://azure.test/openai?api-version=2024-06-01; its /chat/completions there "
            "answers (HTTP 400), so --llm-url is kept as given"
        ]
        assert KEY not in caplog.text

    async def test_only_a_404_at_chat_too_refuses_the_url(self) -> None:
        """The given URL is refused only when its /chat/completions is a 404 too; an
        answer that says the route exists (400, 401, 403, 405, 422) or none at all keeps
        it.  The probe is a POST of {} and generates nothing."""
        for chat in (400, 401, 403, 405, 422, httpx.ReadTimeout("slow"), 404):
            probes: list[httpx.Request] = []

            def server(
                request: httpx.Request, chat: Any = chat, probes: list[httpx.Request] = probes
            ) -> httpx.Response:
                if request.url.path == "/v1/models":
                    return httpx.Response(200, json={"data": [{"id": "m"}]})
                if request.url.path == "/v1/m/chat/completions":
                    probes.append(request)
                    if isinstance(chat, Exception):
                        raise chat
                    return httpx.Response(chat, json={})
                return httpx.Response(404, json={})

            transport = httpx.MockTransport(server)
            async with LlmClient("http://llm.test/v1/m", "m", transport=transport) as client:
                if chat == 404:
                    with pytest.raises(ConfigError) as info:
                        await client.check()
                    assert str(info.value) == (
                        "the LLM server has no /models at http://llm.test/v1/m, nor "
                        "/chat/completions (HTTP 404), but has /models at "
                        "http://llm.test/v1: give --llm-url http://llm.test/v1"
                    )
                else:
                    await client.check()
            assert [(r.method, r.content) for r in probes] == [("POST", b"{}")], chat

    async def test_a_query_stays_after_the_path(self) -> None:
        """A query in the base URL follows the endpoint's path on every request, the
        llama.cpp /props read included, and a suggested URL keeps it (httpx had put the
        path after the query: '?api-version=1/models')."""
        seen: list[httpx.URL] = []

        def server(request: httpx.Request) -> httpx.Response:
            seen.append(request.url)
            if request.url.path == "/v1/models":
                return httpx.Response(200, json={"data": [{"id": "m", "owned_by": "llamacpp"}]})
            if request.url.path == "/props":
                return httpx.Response(200, json={"total_slots": 3})
            if request.url.path == "/v1/chat/completions":
                return ok()
            return httpx.Response(404, json={})

        transport = httpx.MockTransport(server)
        async with LlmClient("http://llm.test/v1/?a=1&b=x%2Fy", "m", transport=transport) as client:
            assert client.base_url == "http://llm.test/v1?a=1&b=x%2Fy"
            await client.check()
            assert client.concurrency == 3
            await client.chat(MESSAGES, task="correct")
        assert [str(url) for url in seen] == [
            "http://llm.test/v1/models?a=1&b=x%2Fy",
            "http://llm.test/props?a=1&b=x%2Fy",
            "http://llm.test/v1/chat/completions?a=1&b=x%2Fy",
        ]
        async with LlmClient("http://llm.test/v1/v1?a=1", "m", transport=transport) as client:
            with pytest.raises(ConfigError, match=r"give --llm-url http://llm.test/v1\?a=1$"):
                await client.check()

    async def test_a_llama_cpp_server_s_slots_cap_the_requests(self) -> None:
        """
        A llama.cpp server (``owned_by: llamacpp``) tells its slots at ``/props``; the
        client then sends no more requests at once.  It queued the rest, their timeouts
        ran there, and 9 pages of 10 timed out on 2 slots (round 26, SmolLM2).  Other
        servers are not asked, and ``concurrency`` given wins.
        """
        running = most = 0

        async def server(request: httpx.Request) -> httpx.Response:
            nonlocal running, most
            if request.url.path == "/v1/models":
                owner = request.url.host.split(".")[0]
                return httpx.Response(200, json={"data": [{"id": "x", "owned_by": owner}]})
            if request.url.path == "/props":
                return httpx.Response(200, json={"total_slots": 2})
            running += 1
            most = max(most, running)
            await anyio.sleep(0.01)
            running -= 1
            return ok()

        transport = httpx.MockTransport(server)
        async with LlmClient("http://llamacpp.test/v1", "m", transport=transport) as client:
            assert client.concurrency is None
            await client.check()
            assert client.concurrency == 2
            async with anyio.create_task_group() as tg:
                for _ in range(8):
                    tg.start_soon(partial(client.chat, MESSAGES, task="correct"))
        assert most == 2
        async with LlmClient("http://vllm.test/v1", "m", transport=transport) as client:
            await client.check()
            assert client.concurrency is None
        given = LlmClient("http://llamacpp.test/v1", "m", transport=transport, concurrency=5)
        async with given:
            await given.check()
            assert given.concurrency == 5
        with pytest.raises(ConfigError, match="concurrency must be at least 1"):
            LlmClient("http://x.test/v1", "m", concurrency=0)

    async def test_a_llama_cpp_server_is_told_apart(self) -> None:
        """``llama_cpp`` says whether `check` found a llama.cpp server, ``concurrency``
        given or not (the run warns of the default --llm-timeout for one)."""

        def server(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/props":
                return httpx.Response(200, json={"total_slots": 2})
            owner = request.url.host.split(".")[0]
            return httpx.Response(200, json={"data": [{"id": "x", "owned_by": owner}]})

        transport = httpx.MockTransport(server)
        for url, concurrency, found in [
            ("http://llamacpp.test/v1", None, True),
            ("http://llamacpp.test/v1", 4, True),
            ("http://vllm.test/v1", None, False),
        ]:
            client = LlmClient(url, "x", transport=transport, concurrency=concurrency)
            async with client:
                assert not client.llama_cpp
                await client.check()
                assert client.llama_cpp is found

    async def test_an_unverified_certificate_is_no_wait(self) -> None:
        """A TLS certificate the client cannot verify fails the check at once and names
        SSL_CERT_FILE (round 25's audit: retried for 30 s, then 'is it running')."""
        bad = Script(httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] self-signed"))
        async with make_client(bad) as client:
            with anyio.fail_after(5), pytest.raises(ConfigError, match="set SSL_CERT_FILE"):
                await client.check(grace=30)
        assert len(bad.requests) == 1

    async def test_a_server_still_starting_is_waited_for(self) -> None:
        """Refused connections are tried again within the grace period (helper-90's
        check: a server started beside the job failed the run at once)."""
        late = Script(
            httpx.ConnectError("refused"), httpx.ConnectError("refused"), httpx.Response(200)
        )
        async with make_client(late) as client:
            with anyio.fail_after(10):
                await client.check(grace=5)
        assert len(late.requests) == 3


class TestSecrets:
    """The API key never leaks into errors, logs or reprs."""

    async def test_key_not_in_errors_or_logs(self, caplog: pytest.LogCaptureFixture) -> None:
        """A server that echoes the key cannot make it show up anywhere."""
        caplog.set_level(logging.DEBUG)
        echo = {"error": {"message": f"Incorrect API key provided: {KEY}"}}
        script = Script(
            httpx.Response(500, json=echo),
            httpx.ConnectError(f"boom {KEY}"),
            httpx.Response(401, json=echo),
        )
        time = FakeTime()
        client = make_client(script, time, sleep=time.sleep)
        async with client:
            with pytest.raises(LlmStatusError) as info:
                await call(client, time, task="correct", item="x")
        err = info.value
        assert err.status == 401
        assert "HTTP 401" in str(err)
        assert "[REDACTED]" in str(err)
        texts = [str(err), repr(err), repr(client), caplog.text, client.statistics().summary()]
        assert caplog.records, "the failed attempts should have been logged"
        for text in texts:
            assert KEY not in text
        assert "***" in repr(client)

    async def test_key_across_the_shortened_message(self) -> None:
        """A key echoed where the server's message is shortened (past 200 characters)
        leaves none of itself behind (round 23's audit: 45 of 52 characters did)."""
        for padding in range(180, 200, 3):
            echo = {"error": {"message": "x" * padding + f" key {KEY} is not valid"}}
            script = Script(httpx.Response(400, json=echo))
            async with make_client(script, FakeTime()) as client:
                with pytest.raises(LlmStatusError) as info:
                    await call(client, FakeTime(), task="correct")
            assert KEY[:8] not in str(info.value), padding

    async def test_key_not_in_exhausted_error(self) -> None:
        """The last attempt's error is redacted too."""
        echo = {"error": {"message": f"bad key {KEY}"}}
        script = Script(httpx.Response(500, json=echo), httpx.Response(500, json=echo))
        async with make_client(script, FakeTime()) as client:
            with pytest.raises(LlmRetryableError) as info:
                await call(client, FakeTime(), policy(attempts=2), task="correct")
        assert KEY not in str(info.value)
        assert KEY not in repr(info.value)

    async def test_key_in_another_header(self, caplog: pytest.LogCaptureFixture) -> None:
        """--llm-key-header sends the key alone in the header named, and nowhere else;
        an echo of it is redacted; a name no header may have is refused, unshown key."""
        caplog.set_level(logging.DEBUG)
        echo = {"error": {"message": f"Access denied due to invalid key {KEY}"}}
        script = Script(httpx.Response(401, json=echo), httpx.Response(401, json=echo))
        async with make_client(script, api_key_header="x-api-key") as client:
            with pytest.raises(ConfigError) as checked:
                await client.check()
            with pytest.raises(LlmServerRefused) as called:
                await client.chat(MESSAGES, task="correct")
        for request in script.requests:
            assert request.headers["x-api-key"] == KEY
            assert "authorization" not in request.headers
            assert KEY not in str(request.url)
        for text in (str(checked.value), str(called.value), caplog.text, repr(client)):
            assert KEY not in text
        assert "--llm-key-header" in str(called.value)
        with pytest.raises(ConfigError, match="header name must be a word") as info:
            make_client(Script(), api_key_header="api key:")
        assert KEY not in str(info.value)


class TestKeyHygiene:
    """Where the key comes from, and what is refused so it can never be shown (round
    25's audit, helper-98)."""

    def test_a_named_variable_is_the_only_one_read(self) -> None:
        """--llm-key-env names the only variable read: unset, it is a ConfigError, not
        OPENAI_API_KEY sent to another server; empty, no key."""
        from stages.app import api_key

        environ = {"OPENAI_API_KEY": KEY}
        with pytest.raises(ConfigError, match="MY_KEY: that variable is not set"):
            api_key("MY_KEY", environ)
        assert api_key("MY_KEY", {**environ, "MY_KEY": ""}) is None
        assert api_key(None, environ) == KEY
        assert api_key(None, {**environ, "ASYNCPIPE_LLM_API_KEY": "sk-other"}) == "sk-other"
        assert api_key(None, {**environ, "ASYNCPIPE_LLM_API_KEY": " \n"}) == KEY

    async def test_a_key_is_trimmed_and_checked(self) -> None:
        """A key read with its line end (a secret file, a CRLF .env) is trimmed and sent;
        one that holds a character no header carries is refused without showing it (it
        was written to the output in httpx's error, its newline escaped)."""
        script = Script(ok())
        async with make_client(script, api_key=f" {KEY}\r\n") as client:
            await client.chat(MESSAGES, task="correct")
        assert script.requests[0].headers["authorization"] == f"Bearer {KEY}"
        for bad in (f"{KEY[:6]}\n{KEY[6:]}", f"{KEY}Ü"):
            with pytest.raises(ConfigError, match="the key is not shown") as info:
                LlmClient("http://llm.test/v1", "m", api_key=bad)
            assert KEY[6:] not in str(info.value)

    def test_a_key_in_the_query_is_refused(self) -> None:
        """A key in the URL's query (``?api-key=``, ``?code=``) is refused as a key before
        the host is: our messages and the printed resume command show the URL whole (a
        review saw it three times on stderr). A query with no secret's name is kept."""
        for name in ("api-key", "apiKey", "access_token", "sig", "code", "Key"):
            with pytest.raises(ConfigError, match="reads as a key") as info:
                LlmClient(f"http://llm.test/v1?api-version=1&{name}={KEY}", "m")
            assert KEY not in str(info.value)
        kept = LlmClient("http://llm.test/v1?api-version=2024-06-01&design=1", "m")
        assert kept.base_url.endswith("?api-version=2024-06-01&design=1")

    def test_a_url_with_credentials_or_a_bad_timeout_is_refused(self) -> None:
        """A key in the URL would be logged with every request and echoed in the resume
        command; a timeout of 0, -5 or NaN made 'cannot reach the server' or a traceback."""
        with pytest.raises(ConfigError, match="the URL is not shown") as info:
            LlmClient(f"http://user:{KEY}@llm.test/v1", "m")
        assert KEY not in str(info.value)
        for timeout in (0.0, -5.0, float("nan")):
            with pytest.raises(ConfigError, match="must be over 0 s"):
                LlmClient("http://llm.test/v1", "m", timeout=timeout)
