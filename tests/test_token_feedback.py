"""
The token limit, the header feedback and the pause composed the way an httpx LLM client
uses them, against a server (an httpx.MockTransport) that enforces a token budget with 429s.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import anyio
import httpx
import orjson
import pytest

from asyncpipe import CostBudget, RateLimit, parse_ratelimit_headers

LIMIT = 1500  # tokens per PERIOD, on the server
PERIOD = 0.3
CALLS = 40
WORKERS = 8


@dataclass
class TokenServer:
    """
    Admits a request only if its prompt plus ``max_tokens`` fits in the last ``period``
    (as OpenAI counts a request), charges prompt plus the completion it really writes (half
    of ``max_tokens``), and answers with OpenAI's x-ratelimit-* headers.
    """

    limit: int
    period: float
    log: deque[tuple[float, int]] = field(default_factory=deque)
    refused: int = 0
    served: int = 0
    heaviest: int = 0

    def _in_window(self, now: float) -> int:
        while self.log and self.log[0][0] + self.period <= now:
            self.log.popleft()
        return sum(units for _, units in self.log)

    def _headers(self, now: float) -> dict[str, str]:
        used = self._in_window(now)
        reset = self.log[-1][0] + self.period - now if self.log else 0.0
        return {
            "x-ratelimit-limit-tokens": str(self.limit),
            "x-ratelimit-remaining-tokens": str(self.limit - used),
            "x-ratelimit-reset-tokens": f"{max(0, round(reset * 1000))}ms",
        }

    async def handle(self, request: httpx.Request) -> httpx.Response:
        body = orjson.loads(request.content)
        prompt = len(body["messages"][0]["content"]) // 4
        completion = body["max_tokens"] // 2
        now = time.monotonic()
        if self._in_window(now) + prompt + body["max_tokens"] > self.limit:
            self.refused += 1
            need = self._in_window(now) + prompt + body["max_tokens"] - self.limit
            wait = next(t + self.period - now for t, _ in self._expiring(need))
            return httpx.Response(429, headers={**self._headers(now), "retry-after": f"{wait:.3f}"})
        self.log.append((now, prompt + completion))
        self.heaviest = max(self.heaviest, self._in_window(now))
        self.served += 1
        await anyio.sleep(0.02)  # "generation"
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        return httpx.Response(200, json={"usage": usage}, headers=self._headers(time.monotonic()))

    def _expiring(self, need: int) -> list[tuple[float, int]]:
        freed, out = 0, []
        for entry in self.log:
            out.append(entry)
            freed += entry[1]
            if freed >= need:
                break
        return out[-1:]


@dataclass
class Client:
    """The calls an LLM client makes: the reference for wiring the limits into one."""

    http: httpx.AsyncClient
    tokens: RateLimit
    feedback: bool
    budget: CostBudget | None = None
    too_many: int = 0

    async def chat(self, prompt: str, max_tokens: int) -> int:
        estimate = len(prompt) // 4 + max_tokens  # prompt tokens, plus the most it may write
        cost = self.budget.reserve(len(prompt) // 4, max_tokens) if self.budget else None
        usage = None
        try:
            while True:
                reservation = await self.tokens.reserve(estimate)
                response = await self.http.post(
                    "/chat/completions",
                    json={
                        "messages": [{"role": "user", "content": prompt}],
                        "max_tokens": max_tokens,
                    },
                )
                usage = response.json()["usage"] if response.status_code == 200 else None
                reservation.settle(usage["total_tokens"] if usage else 0)  # a 429 costs nothing
                if self.feedback:
                    parse_ratelimit_headers(response.headers).apply(tokens=self.tokens)
                if response.status_code != 429:
                    return int(usage["total_tokens"]) if usage else 0
                self.too_many += 1
                wait = float(response.headers["retry-after"])
                if self.feedback:
                    self.tokens.pause(wait)  # everyone waits, not only this call
                else:
                    await anyio.sleep(wait)
        finally:
            if cost is not None and usage is not None:
                cost.settle(usage["prompt_tokens"], usage["completion_tokens"])
            elif cost is not None:
                cost.settle()  # unknown: count the worst case


async def run(server: TokenServer, tokens: RateLimit, *, feedback: bool) -> Client:
    """CALLS calls of 160-480 prompt characters and max_tokens 100, by WORKERS tasks."""
    transport = httpx.MockTransport(server.handle)
    async with httpx.AsyncClient(transport=transport, base_url="http://llm.test/v1") as http:
        client = Client(http, tokens, feedback)
        todo = iter(range(CALLS))

        async def worker() -> None:
            for n in todo:
                assert await client.chat("word " * (32 + 13 * n % 64), 100) > 0

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for _ in range(WORKERS):
                    tg.start_soon(worker)
    return client


class TestAgainstATokenBudget:
    """An LLM client wired to the token limit stays under a server's budget, or recovers."""

    async def test_same_budget_gets_no_429(self) -> None:
        """With the server's own budget (and a jitter margin), not one call is refused."""
        server = TokenServer(LIMIT, PERIOD)
        client = await run(server, RateLimit(LIMIT, PERIOD, margin=0.03), feedback=False)
        assert (server.served, server.refused, client.too_many) == (CALLS, 0, 0)
        assert server.heaviest <= LIMIT

    async def test_budget_set_too_high_recovers(self) -> None:
        """At 3x the server's budget every call still succeeds; the headers and a global
        pause after a 429 cut the 429s against retrying each call alone."""
        alone = await run(TokenServer(LIMIT, PERIOD), RateLimit(3 * LIMIT, PERIOD), feedback=False)
        server = TokenServer(LIMIT, PERIOD)
        shared = await run(server, RateLimit(3 * LIMIT, PERIOD), feedback=True)
        assert server.served == CALLS
        print(f"429s: {alone.too_many} retrying alone, {shared.too_many} with feedback")
        assert shared.too_many < alone.too_many


class TestCostCeiling:
    """The cost budget in the same loop: calls past the ceiling are refused before sending."""

    @pytest.mark.parametrize("max_cost", [0.3, 5.0])
    async def test_ceiling_holds(self, max_cost: float) -> None:
        """The spend never passes max_cost; with a low ceiling the budget closes first."""
        server = TokenServer(10**6, PERIOD)
        transport = httpx.MockTransport(server.handle)
        # Dear tokens keep the numbers small; the headroom is one call's worst case, so the
        # budget closes before a call has to be refused.
        budget = CostBudget(100.0, 400.0, max_cost=max_cost, headroom=0.05)
        async with httpx.AsyncClient(transport=transport, base_url="http://llm.test/v1") as http:
            client = Client(http, RateLimit(10**6, PERIOD, burst=10**6), True, budget)
            for n in range(CALLS):  # about 0.026 a call, 0.04 reserved
                if budget.closed:  # no new page
                    break
                await client.chat("word " * (32 + n), 100)
        assert budget.spent <= max_cost and budget.reserved == 0
        if max_cost == 5.0:
            assert not budget.closed and server.served == CALLS
        else:
            assert budget.closed and 0 < server.served < CALLS
            assert budget.refused == 0 and budget.spent > max_cost - 0.1
