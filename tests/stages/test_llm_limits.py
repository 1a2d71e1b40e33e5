"""
The LLM client wired to the shared limits (`stages.llm.LlmLimits`): a token limit reserved
before each attempt and settled with the server's ``usage``, the server's ``x-ratelimit-*``
headers, a global pause after a 429, and a cost ceiling; over ``httpx.MockTransport``.
"""

from __future__ import annotations

import contextlib
import time

import anyio
import httpx
import pytest

from asyncpipe import BudgetExceeded, CostBudget, RateLimit, StageError, StopIntake
from asyncpipe._stopping import _STOPPING, StopSignal
from stages.llm import LlmClient, LlmError, LlmRetryableError, Message
from stages.llm._limits import LlmLimits, prompt_tokens
from stages.testing.llama_server import LlamaServer

MESSAGES: list[Message] = [{"role": "user", "content": "x" * 100}]


def completion(
    prompt: int, completion: int, headers: dict[str, str] | None = None
) -> httpx.Response:
    """A well-formed completion with its usage."""
    return httpx.Response(
        200,
        headers=headers,
        json={
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "ok"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        },
    )


def client(handler: httpx.MockTransport, limits: LlmLimits) -> LlmClient:
    """A client on a mock transport sharing ``limits``."""
    return LlmClient("http://llm.test/v1", "m", transport=handler, shared=limits)


class TestTokenLimit:
    """Reserve before the attempt, settle with usage after it, whatever happens."""

    def test_estimate_is_at_least_a_token_per_byte(self) -> None:
        """The prompt estimate counts every byte, and each message's template tokens."""
        assert prompt_tokens(MESSAGES) == 100 + 8 + 3
        assert prompt_tokens([{"role": "user", "content": "é"}]) == 2 + 8 + 3

    async def test_settles_with_usage(self) -> None:
        """After the call the window holds the usage the server reported, not the estimate."""
        tokens = RateLimit(10_000, 60)
        async with client(
            httpx.MockTransport(lambda r: completion(30, 7)), LlmLimits(tokens)
        ) as llm:
            await llm.chat(MESSAGES, task="t", max_tokens=200)
            stats = tokens.statistics()
        assert (stats.in_window, stats.outstanding, stats.units) == (37, 0, 37)

    async def test_a_short_run_reports_counts_not_a_rate(self) -> None:
        """A run under a minute says how many calls it made, not a per-minute rate
        extrapolated from its burst (round 25's audit: '205.2 calls/min (limit 150/min)'
        though no 60 s window held more than 150)."""
        async with client(
            httpx.MockTransport(lambda r: completion(30, 7)), LlmLimits(RateLimit(10_000, 60))
        ) as llm:
            for _ in range(3):
                await llm.chat(MESSAGES, task="t", max_tokens=200)
        [short] = llm.shared.summary(7.5, "150/min")
        assert short == "llm rates: 3 calls in 7.5 s (limit 150/min), 111 tokens (limit 10000/60s)"
        [long] = llm.shared.summary(120.0, "150/min")
        # A mean over the run may pass a limit that held in every 60 s window (a review:
        # '10.1 calls/min (limit 10/min)'): the line says it is a mean, and the busiest
        # minute's count.
        assert long.startswith(
            "llm rates: 1.5 calls/min mean over the run, at most 3 in any 60 s (limit 150/min)"
        )

    async def test_tokens_the_server_never_reported_are_said_to_be_estimates(self) -> None:
        """A reply with no usage (a proxy's HTML page) settles at the tokens reserved, so
        the rates line counts tokens the client's usage line does not: the line says how
        many calls were counted so (a review: 'tokens: 0' over '6670 tokens')."""
        async with client(
            httpx.MockTransport(lambda r: httpx.Response(200, text="<html>bad gateway</html>")),
            LlmLimits(RateLimit(10_000, 60)),
        ) as llm:
            with pytest.raises(LlmError):
                await llm.chat(MESSAGES, task="t", max_tokens=200)
        [line] = llm.shared.summary(7.5, None)
        assert line.endswith(
            "(limit 10000/60s), 1 of them counted at the tokens reserved (the server "
            "reported no usage)"
        )
        assert llm.statistics().total_tokens == 0

    async def test_a_call_given_up_unsent_is_not_counted(self) -> None:
        """The summary counts the requests that went out: a call admitted and then given
        up unsent because the run stopped is not one (round 26's re-check: '22 calls' for
        3 requests after a Ctrl-C)."""
        async with client(
            httpx.MockTransport(lambda r: completion(30, 7)), LlmLimits(RateLimit(10_000, 60))
        ) as llm:
            await llm.chat(MESSAGES, task="t", max_tokens=200)
            stopped = StopSignal()
            stopped.set()
            token = _STOPPING.set(stopped)
            try:
                with pytest.raises(StopIntake, match="not sent"):
                    await llm.chat(MESSAGES, task="t", max_tokens=200)
            finally:
                _STOPPING.reset(token)
        [line] = llm.shared.summary(7.5, None)
        assert line == "llm rates: 1 calls in 7.5 s, 37 tokens (limit 10000/60s)"
        assert llm.shared.per_minute()[0] == 1  # the live display's calls/min

    async def test_a_reply_without_usage_is_said(self) -> None:
        """Replies that give no usage are counted and named in the summary, which does
        not then claim they cost nothing (round 25's audit: 'cost: 0.0000' beside the
        ceiling's estimate)."""
        bare = {"model": "m", "choices": [{"message": {"content": "ok"}}]}
        answer = httpx.MockTransport(lambda r: httpx.Response(200, json=bare))
        async with client(answer, LlmLimits()) as llm:
            await llm.chat(MESSAGES, task="t", max_tokens=20)
        stats = llm.statistics()
        assert stats.no_usage == 1
        assert "1 replies gave no usage" in stats.summary()

    async def test_refused_call_gives_everything_back(self) -> None:
        """A 500 used nothing: the window is empty again."""
        tokens = RateLimit(10_000, 60)
        async with client(
            httpx.MockTransport(lambda r: httpx.Response(500)), LlmLimits(tokens)
        ) as llm:
            with pytest.raises(LlmRetryableError):
                await llm.chat(MESSAGES, task="t", max_tokens=200)
        assert tokens.statistics().in_window == 0

    async def test_timeout_keeps_the_estimate(self) -> None:
        """A timed-out attempt may have been charged: the estimate stands."""

        def hang(request: httpx.Request) -> httpx.Response:
            raise httpx.ReadTimeout("slow", request=request)

        tokens = RateLimit(10_000, 60)
        async with client(httpx.MockTransport(hang), LlmLimits(tokens)) as llm:
            with pytest.raises(LlmRetryableError):
                await llm.chat(MESSAGES, task="t", max_tokens=200)
        stats = tokens.statistics()
        assert stats.in_window == prompt_tokens(MESSAGES) + 200 and stats.outstanding == 0

    async def test_the_two_costs_are_labelled(self) -> None:
        """The summary's two costs say which is which: the replies' usage, and the
        ceiling's count with a timed-out call at its worst case (both were 'cost')."""
        answers = iter([completion(30, 7)])

        def answer(request: httpx.Request) -> httpx.Response:
            reply = next(answers, None)
            if reply is None:
                raise httpx.ReadTimeout("slow", request=request)
            return reply

        limits = LlmLimits(budget=CostBudget(1000, 1000, max_cost=10))
        async with LlmClient(
            "http://llm.test/v1",
            "m",
            transport=httpx.MockTransport(answer),
            shared=limits,
            prices=(1000, 1000),
        ) as llm:
            await llm.chat(MESSAGES, task="t", max_tokens=200)
            with pytest.raises(LlmRetryableError):
                await llm.chat(MESSAGES, task="t", max_tokens=200)
        assert ", usage cost: 0.037" in llm.statistics().summary()
        worst = 0.037 + (prompt_tokens(MESSAGES) + 200) / 1000
        assert limits.summary(5.0, None)[1].startswith(
            f"llm worst-case cost: {worst:.4g} of the 10 ceiling (the usage cost, plus each "
            "call that timed out"
        )
        assert limits.live(None)["worst-case cost"] == f"{worst:.4g}/10"

    async def test_cancelled_call_is_settled(self) -> None:
        """A call cancelled mid-flight settles its reservation (nothing left outstanding)."""

        async def slow(request: httpx.Request) -> httpx.Response:
            await anyio.sleep(10)
            return completion(1, 1)

        tokens = RateLimit(10_000, 60)
        async with client(httpx.MockTransport(slow), LlmLimits(tokens)) as llm:
            with anyio.move_on_after(0.05):
                await llm.chat(MESSAGES, task="t", max_tokens=200)
        stats = tokens.statistics()
        assert stats.outstanding == 0 and stats.in_window == prompt_tokens(MESSAGES) + 200

    async def test_call_that_never_fits_is_an_error(self) -> None:
        """A call bigger than the whole limit fails at once, saying what to change."""
        sent: list[httpx.Request] = []

        def answer(request: httpx.Request) -> httpx.Response:
            sent.append(request)
            return completion(1, 1)

        async with client(httpx.MockTransport(answer), LlmLimits(RateLimit(100, 60))) as llm:
            with anyio.fail_after(2), pytest.raises(LlmError, match=r"never fit.*--token-limit"):
                await llm.chat(MESSAGES, task="t", max_tokens=500)
        assert sent == []

    async def test_waits_for_room(self) -> None:
        """Two calls that together pass the limit go one window apart."""
        tokens = RateLimit(300, 0.3)
        starts: list[float] = []

        def answer(request: httpx.Request) -> httpx.Response:
            starts.append(time.monotonic())
            return completion(40, 150)  # the estimate was 111 + 150; settles at 190

        async with client(httpx.MockTransport(answer), LlmLimits(tokens)) as llm:
            await llm.chat(MESSAGES, task="t", max_tokens=150)
            await llm.chat(MESSAGES, task="t", max_tokens=150)
        assert starts[1] - starts[0] >= 0.29


class TestServerFeedback:
    """The server's headers and 429s steer every call, not only the one that got them."""

    async def test_429_pauses_every_call(self) -> None:
        """After a 429 with Retry-After 0.3, a second call waits the pause out."""
        steps = [httpx.Response(429, headers={"retry-after-ms": "300"}), completion(1, 1)]
        starts: list[float] = []

        def answer(request: httpx.Request) -> httpx.Response:
            starts.append(time.monotonic())
            return steps.pop(0)

        limits = LlmLimits()
        async with client(httpx.MockTransport(answer), limits) as llm:
            with pytest.raises(LlmRetryableError):
                await llm.chat(MESSAGES, task="a", max_tokens=10)
            await llm.chat(MESSAGES, task="b", max_tokens=10)  # another call, same limits
        assert starts[1] - starts[0] >= 0.29 and limits.pauses == 1

    async def test_call_limit_is_taken_after_a_pause(self) -> None:
        """
        Calls held by a pause take the call limit when it ends: sent 3 per 1 s at most.

        Taking the call limit first and then waiting out the pause sent 4 within 0.5 s.
        """
        sent: list[float] = []

        def answer(request: httpx.Request) -> httpx.Response:
            sent.append(time.monotonic())
            return completion(1, 1)

        limits = LlmLimits()
        # The limit counts calls when they are granted; the transport sees them a little
        # later, and on a loaded machine the first one once arrived 0.1 s late, so that 4
        # arrived within 0.9 s. The margin covers that delay, as it covers network jitter.
        calls = RateLimit(3, 1.0, margin=0.25)
        async with LlmClient(
            "http://llm.test/v1",
            "m",
            transport=httpx.MockTransport(answer),
            shared=limits,
            rate_limit=calls,
        ) as llm:

            async def call(task: str) -> None:
                await llm.chat(MESSAGES, task=task, max_tokens=10)

            limits._requests.pause(0.5)
            async with anyio.create_task_group() as tg:
                for task in "abcd":
                    tg.start_soon(call, task)
        sent.sort()
        assert len(sent) == 4 and sent[3] - sent[0] >= 1.0, sent

    async def test_429_pauses_the_calls_queued_for_the_call_limit(self) -> None:
        """
        Calls that were admitted and wait their turn in the call limit when a 429 comes
        wait out its Retry-After too (round 24's audit: with 16 workers and 150/min, the
        others went on at 0.4 s apart through a 6 s Retry-After, 52 of them).
        """
        sent: list[float] = []
        refused: list[float] = []

        async def answer(request: httpx.Request) -> httpx.Response:
            sent.append(time.monotonic())
            if len(sent) == 1:
                await anyio.sleep(0.2)  # the 429 arrives while calls are queued
                refused.append(time.monotonic())
                return httpx.Response(429, headers={"retry-after-ms": "600"})
            return completion(1, 1)

        calls = RateLimit(20, 1.0)  # spaced 50 ms: a queue of calls behind the first
        async with LlmClient(
            "http://llm.test/v1",
            "m",
            transport=httpx.MockTransport(answer),
            shared=LlmLimits(),
            rate_limit=calls,
        ) as llm:

            async def call(task: str) -> None:
                with contextlib.suppress(LlmRetryableError):
                    await llm.chat(MESSAGES, task=task, max_tokens=10)

            async with anyio.create_task_group() as tg:
                for task in "abcdefgh":
                    tg.start_soon(call, task)
        # Those sent before the 429 came back could not be held; none after it is sent
        # before its Retry-After has passed.
        later = [at - refused[0] for at in sent if at > refused[0]]
        assert len(later) >= 3 and min(later) >= 0.59, later

    async def test_no_feedback_does_not_pause(self) -> None:
        """With feedback off a 429 stays the refused call's own business."""
        steps = [httpx.Response(429, headers={"retry-after-ms": "300"}), completion(1, 1)]
        starts: list[float] = []

        def answer(request: httpx.Request) -> httpx.Response:
            starts.append(time.monotonic())
            return steps.pop(0)

        async with client(httpx.MockTransport(answer), LlmLimits(feedback=False)) as llm:
            with pytest.raises(LlmRetryableError):
                await llm.chat(MESSAGES, task="a", max_tokens=10)
            await llm.chat(MESSAGES, task="b", max_tokens=10)
        assert starts[1] - starts[0] < 0.2

    async def test_remaining_tokens_header_slows_down(self) -> None:
        """A reply saying 0 tokens remain until 0.3 s holds the next call that long."""
        headers = {"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "300ms"}
        starts: list[float] = []

        def answer(request: httpx.Request) -> httpx.Response:
            starts.append(time.monotonic())
            return completion(5, 5, headers)

        async with client(httpx.MockTransport(answer), LlmLimits()) as llm:
            await llm.chat(MESSAGES, task="a", max_tokens=10)
            await llm.chat(MESSAGES, task="b", max_tokens=10)
        assert starts[1] - starts[0] >= 0.29


class TestCostCeiling:
    """Calls are priced by their usage; one that may pass the ceiling is never sent."""

    async def test_spend_and_refusal(self) -> None:
        """The spend is the usage at the prices; past the ceiling a call is refused unsent."""
        budget = CostBudget(1000.0, 2000.0, max_cost=0.5)  # 1e-3 per prompt token
        sent: list[httpx.Request] = []

        def answer(request: httpx.Request) -> httpx.Response:
            sent.append(request)
            return completion(40, 10)

        async with client(httpx.MockTransport(answer), LlmLimits(budget=budget)) as llm:
            with pytest.raises(BudgetExceeded, match=r"cost ceiling of 0\.5") as refused:
                for _ in range(20):
                    await llm.chat(MESSAGES, task="t", max_tokens=100)
        assert isinstance(refused.value, StageError)  # an error record, never a crash
        # Each call reserves 111 prompt + 100 completion tokens = 0.311 and spends 0.06: the
        # fifth would pass 0.5 (0.24 spent + 0.311).
        assert len(sent) == 4 and budget.spent == pytest.approx(0.24)
        assert budget.closed and budget.reserved == 0


class TestRealServer:
    """Against llama.cpp (xllamacpp + SmolLM2): its usage is what the limits count."""

    @pytest.mark.timeout(600)
    async def test_usage_is_counted_and_settled(self, real_llm: LlamaServer) -> None:
        """After real calls, the token window and the spend hold exactly the usage the
        server reported, nothing is left outstanding, and each estimate was an upper bound."""
        tokens = RateLimit(100_000, 600)
        budget = CostBudget(1.0, 2.0)
        limits = LlmLimits(tokens, budget)
        texts = [
            "TOTAL RM 12.50\nTHANK YOU",
            "SHOP NUMBER 7 SDN BHD\n12 JALAN BESAR 47100",
            "DATE 01/03/2018 10:22",
        ]
        replies = []
        async with LlmClient(real_llm.url, "smollm2", shared=limits, timeout=300) as llm:
            for text in texts:
                messages: list[Message] = [
                    {"role": "system", "content": "Repeat the user's text exactly."},
                    {"role": "user", "content": text},
                ]
                reply = await llm.chat(messages, task="correct", max_tokens=24)
                assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
                assert prompt_tokens(messages) >= reply.usage.prompt_tokens  # an upper bound
                replies.append(reply)
        used = sum(r.usage.total_tokens for r in replies)
        stats = tokens.statistics()
        assert (stats.in_window, stats.units, stats.outstanding) == (used, used, 0)
        assert budget.prompt_tokens == sum(r.usage.prompt_tokens for r in replies)
        assert budget.completion_tokens == sum(r.usage.completion_tokens for r in replies)
        assert budget.reserved == 0
