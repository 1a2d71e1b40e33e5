"""
One item in one stage: a stage function of the wrong kind, and the log a failing stage
leaves (a WARNING line per failed item up to a cap, its traceback at DEBUG, and never an
API key).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx
import orjson
import pytest

from asyncpipe import ConfigError, Item, Journal, JsonlSink, Pipeline, Retry, Stage
from asyncpipe._attempt import FAILURES_LOGGED
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


KEYS = [f"k{n:02d}" for n in range(40)]


async def written(path: Path) -> list[str]:
    """The keys in a JSON-lines output."""
    data = await anyio.Path(path).read_bytes()
    return [orjson.loads(line)["id"] for line in data.splitlines()]


def record(item: Item) -> dict[str, object]:
    """The JSON line of an item: its key and status."""
    return {"id": item.key, "ok": item.ok}


async def upper(key: str) -> str:
    """An async stage function."""
    return key.upper()


def plain_upper(key: str) -> str:
    """The same as a plain function."""
    return key.upper()


class AsyncCall:
    """A callable object whose ``__call__`` is an ``async def``."""

    async def __call__(self, key: str) -> str:
        return key.upper()


def logged(fn: Callable[[str], Awaitable[str]]) -> Callable[[str], Awaitable[str]]:
    """A plain decorator around an async def: a plain function returning a coroutine."""

    @functools.wraps(fn)
    def wrapper(key: str) -> Awaitable[str]:
        return fn(key)

    return wrapper


def prefixed(prefix: str, key: str) -> Awaitable[str]:
    """A plain function returning a coroutine, given as a partial."""
    return upper(prefix + key)


class TestWrongKind:
    """A stage function of the wrong kind for its stage is a ConfigError naming the stage,
    raised by run() at its first call (a plain ``def`` is known only by what it returns:
    one that returns a coroutine is a fine async stage); no item is written or failed,
    and once the stage is fixed a resume writes every item exactly once."""

    @pytest.mark.parametrize("kind", ["async", "thread"])
    async def test_wrong_kind_raises_and_resume_finishes(
        self, tmp_path: Path, kind: Literal["async", "thread"]
    ) -> None:
        """A plain ``def`` as an async stage, or an ``async def`` behind a plain lambda
        as a thread stage: one ConfigError naming the stage, and nothing written."""
        wrong = plain_upper if kind == "async" else (lambda key: upper(key))
        out, journal = tmp_path / "out.jsonl", tmp_path / "journal"
        with pytest.raises(ConfigError, match=rf"^stage 'upper': kind='{kind}' runs"):
            await Pipeline([Stage("upper", wrong, kind=kind)]).run(
                KEYS, sink=JsonlSink(out, record=record), journal=Journal(journal), key=str
            )
        assert await written(out) == []
        right = upper if kind == "async" else plain_upper
        summary = await Pipeline([Stage("upper", right, kind=kind)]).run(
            KEYS, sink=JsonlSink(out, record=record), journal=Journal(journal), key=str, resume=True
        )
        assert summary.interrupted is None and await written(out) == KEYS

    async def test_a_plain_def_in_an_async_stage_raises_without_a_journal(self) -> None:
        """Without a journal too, run() raises; the items did not vanish into a summary
        of 0 written (h6's p10_kind: 'in 5 out 0', and run returned)."""
        with pytest.raises(ConfigError, match=r"^stage 'a': .*give a plain function kind='thread'"):
            await Pipeline([Stage("a", plain_upper)]).run(KEYS)

    @pytest.mark.parametrize(
        "fn",
        [
            pytest.param(lambda key: upper(key), id="lambda"),
            pytest.param(functools.partial(upper), id="partial-of-async"),
            pytest.param(functools.partial(prefixed, ""), id="partial-returning-coroutine"),
            pytest.param(AsyncCall(), id="async-__call__"),
            pytest.param(logged(upper), id="plain-decorator"),
        ],
    )
    async def test_what_returns_an_awaitable_is_an_async_stage(self, fn: Any) -> None:
        """A lambda, a partial, an object with an async ``__call__`` or a plain decorator
        that gives an awaitable is a fine async stage."""
        results: list[str] = []

        async def sink(item: Item) -> None:
            results.append(item.value)

        summary = await Pipeline([Stage("upper", fn)]).run(KEYS, sink=sink)
        assert summary.ok == len(KEYS) and results == [key.upper() for key in KEYS]


def lookup(value: int) -> int:
    """A stage function with a bug: it reads a key that is not there."""
    table: dict[str, int] = {}
    return table["missing"] + value


def failure_lines(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    """The records of the ``asyncpipe`` logger at ``level`` that tell a failed item."""
    return [
        r
        for r in caplog.records
        if r.name == "asyncpipe" and r.levelno == level and " failed on " in r.getMessage()
    ]


async def fail_always(value: int) -> int:
    """A stage function that fails on every value, with a two-line message."""
    raise ValueError(f"bad value {value}\nsecond line")


class TestFailureLog:
    """An item's final failure in a stage is logged as it fails: one line at WARNING (up
    to a cap), its traceback at DEBUG."""

    async def test_the_traceback_is_logged_at_debug(self, caplog: pytest.LogCaptureFixture) -> None:
        """The failing line of the stage is in the DEBUG log, once per item, not per try."""
        caplog.set_level(logging.DEBUG, logger="asyncpipe")
        retry = Retry(attempts=3, base=0.0, retryable=lambda exc: True)
        items = await run_all(Stage("bad", lookup, kind="thread", retry=retry), [1, 2])
        assert [item.error and item.error.attempts for item in items] == [3, 3]
        failures = failure_lines(caplog, logging.DEBUG)
        assert len(failures) == 2
        assert "on item '0' (try 3): KeyError: 'missing'" in failures[0].getMessage()
        assert failures[0].exc_info is not None
        assert 'return table["missing"] + value' in caplog.text  # the stage's own line

    async def test_one_warning_line_per_failed_item(self, caplog: pytest.LogCaptureFixture) -> None:
        """At INFO each failed item leaves one WARNING line, not one per try, with its
        stage, key and error and no traceback (there was no line at all)."""
        caplog.set_level(logging.INFO, logger="asyncpipe")
        retry = Retry(attempts=3, base=0.0, retryable=lambda exc: True)
        items = await run_all(Stage("bad", lookup, kind="thread", retry=retry), [1, 2])
        assert all(item.error is not None for item in items)
        assert [r.getMessage() for r in caplog.records] == [
            "stage bad failed on '0': KeyError: 'missing'",
            "stage bad failed on '1': KeyError: 'missing'",
        ]
        assert all(r.levelno == logging.WARNING and r.exc_info is None for r in caplog.records)
        assert "Traceback" not in caplog.text

    async def test_the_line_is_the_first_line_of_the_message_trimmed(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A message of several lines, or a long one, is one line in the log; the error
        record keeps it whole."""
        caplog.set_level(logging.INFO, logger="asyncpipe")

        async def long_message(value: int) -> int:
            raise RuntimeError("x" * 1000)

        items = await run_all(Stage("bad", fail_always), [7])
        items += await run_all(Stage("long", long_message), [8])
        assert items[0].error is not None and items[0].error.message == "bad value 7\nsecond line"
        assert items[1].error is not None and len(items[1].error.message) == 1000
        lines = [r.getMessage() for r in failure_lines(caplog, logging.WARNING)]
        assert lines[0] == "stage bad failed on '0': ValueError: bad value 7 …"
        assert lines[1] == f"stage long failed on '0': RuntimeError: {'x' * 300} …"

    async def test_many_failures_log_the_cap_then_one_line(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A run where each of 500 items fails logs FAILURES_LOGGED lines at WARNING, then
        one line saying the rest are counted only; at DEBUG every one is still there."""
        caplog.set_level(logging.DEBUG, logger="asyncpipe")
        items = await run_all(Stage("bad", fail_always, workers=8), list(range(500)))
        assert len(items) == 500 and all(item.error is not None for item in items)
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == FAILURES_LOGGED + 1
        assert all(" failed on " in r.getMessage() for r in warnings[:-1])
        last = warnings[-1].getMessage()
        assert last.startswith(f"{FAILURES_LOGGED + 1} items have failed: further failures")
        assert len(failure_lines(caplog, logging.DEBUG)) == 500

    async def test_the_cap_is_per_run(self, caplog: pytest.LogCaptureFixture) -> None:
        """A second run of the same pipeline logs its own first failures again."""
        caplog.set_level(logging.INFO, logger="asyncpipe")
        pipeline = Pipeline([Stage("bad", fail_always)])

        async def drop(item: Item) -> None:
            pass

        for _ in range(2):
            await pipeline.run(range(FAILURES_LOGGED + 5), sink=drop)
        warnings = [r.getMessage() for r in caplog.records]
        assert len(warnings) == 2 * (FAILURES_LOGGED + 1)
        assert warnings[FAILURES_LOGGED + 1] == "stage bad failed on '0': ValueError: bad value 0 …"

    async def test_an_llm_failure_logs_no_api_key(self, caplog: pytest.LogCaptureFixture) -> None:
        """A server that echoes the key, and a connection error that holds it, leave it
        nowhere in the log, tracebacks and their chained errors included; the WARNING
        line of each item is its error record's redacted text."""
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
        debug = failure_lines(caplog, logging.DEBUG)
        assert len(debug) == 3
        assert all(r.exc_info is not None for r in debug)
        assert "Traceback" in caplog.text
        assert KEY not in caplog.text
        warnings = failure_lines(caplog, logging.WARNING)
        assert len(warnings) == 3
        said = {r.getMessage() for r in warnings}
        expected = set()
        for item in items:
            assert item.error is not None
            expected.add(
                f"stage llm failed on {item.key!r}: {item.error.type}: {item.error.message}"
            )
        assert said == expected
        assert any("[REDACTED]" in line for line in said), said
