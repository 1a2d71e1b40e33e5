"""
The log a failing stage leaves: its traceback at DEBUG, once per failed item, and never
an API key.
"""

from __future__ import annotations

import logging

import httpx
import pytest

from asyncpipe import Item, Pipeline, Retry, Stage
from stages.llm import LlmClient, Message

KEY = "sk-attempt-log-5e1d9b7c3a"
MESSAGES: list[Message] = [{"role": "user", "content": "hello"}]


async def run_all(stage: Stage, values: list[int]) -> list[Item]:
    """Run ``values`` through a one-stage pipeline and return the items the sink got."""
    got: list[Item] = []

    async def sink(item: Item) -> None:
        got.append(item)

    await Pipeline([stage]).run(values, sink=sink)
    return got


def lookup(value: int) -> int:
    """A stage function with a bug: it reads a key that is not there."""
    table: dict[str, int] = {}
    return table["missing"] + value


class TestFailureLog:
    """An item's final failure in a stage is logged with its traceback at DEBUG only."""

    async def test_the_traceback_is_logged_at_debug(self, caplog: pytest.LogCaptureFixture) -> None:
        """The failing line of the stage is in the DEBUG log, once per item, not per try."""
        caplog.set_level(logging.DEBUG, logger="asyncpipe")
        retry = Retry(attempts=3, base=0.0, retryable=lambda exc: True)
        items = await run_all(Stage("bad", lookup, kind="thread", retry=retry), [1, 2])
        assert [item.error and item.error.attempts for item in items] == [3, 3]
        failures = [r for r in caplog.records if r.getMessage().startswith("stage bad failed")]
        assert [r.levelno for r in failures] == [logging.DEBUG] * 2
        assert "on item '0' (try 3): KeyError: 'missing'" in failures[0].getMessage()
        assert failures[0].exc_info is not None
        assert 'return table["missing"] + value' in caplog.text  # the stage's own line

    async def test_nothing_is_logged_at_info(self, caplog: pytest.LogCaptureFixture) -> None:
        """At INFO a failing item leaves its error record and no log line."""
        caplog.set_level(logging.INFO, logger="asyncpipe")
        items = await run_all(Stage("bad", lookup, kind="thread"), [1])
        assert items[0].error is not None
        assert caplog.records == []

    async def test_an_llm_failure_logs_no_api_key(self, caplog: pytest.LogCaptureFixture) -> None:
        """A server that echoes the key, and a connection error that holds it, leave it
        nowhere in the DEBUG log, tracebacks and their chained errors included."""
        caplog.set_level(logging.DEBUG)
        echo = {"error": {"message": f"Incorrect API key provided: {KEY}"}}
        steps: list[httpx.Response | Exception] = [
            httpx.Response(500, json=echo),
            httpx.ConnectError(f"boom {KEY}"),
            httpx.Response(400, json=echo),
        ]

        def server(request: httpx.Request) -> httpx.Response:
            step = steps.pop(0)
            if isinstance(step, Exception):
                raise step
            return step

        client = LlmClient(
            "http://llm.test/v1", "m", api_key=KEY, transport=httpx.MockTransport(server)
        )

        async def ask(value: int) -> str:
            reply = await client.chat(MESSAGES, task="correct", item=str(value))
            return reply.content

        async with client:
            items = await run_all(Stage("llm", ask, retry=Retry(attempts=1)), [1, 2, 3])
        assert all(item.error is not None for item in items)
        failures = [r for r in caplog.records if r.getMessage().startswith("stage llm failed")]
        assert len(failures) == 3
        assert all(r.exc_info is not None for r in failures)
        assert "Traceback" in caplog.text
        assert KEY not in caplog.text
