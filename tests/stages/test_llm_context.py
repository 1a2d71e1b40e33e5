"""
What `LlmClient` tells the user about its server, over ``httpx.MockTransport`` (no
network, fake time): a reply the context cut rather than ``max_tokens``, more requests at
once than a llama.cpp server has slots, an outage as it begins and ends, a one-model
llama.cpp server serving another model than asked for, and where a missing key was
looked for.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest

from asyncpipe._exceptions import ConfigError
from stages._arguments import add_arguments
from stages.llm import CallState, LlmClient, Message, judge_edit
from stages.llm._guard import ContextFull
from stages.llm._options import LlmOptions, timeout_advice
from stages.llm._statistics import LlmStatistics

MESSAGES: list[Message] = [{"role": "user", "content": "hello"}]
MODEL_FILE = "/models/SmolLM2-135M-Instruct.Q4_1.gguf"


def reply(prompt: int, completion: int, finish: str = "length") -> httpx.Response:
    """A completion of ``prompt`` + ``completion`` tokens that stopped for ``finish``."""
    return httpx.Response(
        200,
        json={
            "model": MODEL_FILE,
            "choices": [{"message": {"content": "cut"}, "finish_reason": finish}],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        },
    )


def llama_cpp(
    chat: Callable[[httpx.Request], httpx.Response],
    *,
    slots: int = 1,
    context: int | None = 512,
    owner: str = "llamacpp",
) -> httpx.MockTransport:
    """A llama.cpp server of one model: its /models, its /props, and ``chat``."""
    props: dict[str, Any] = {"total_slots": slots}
    if context is not None:
        props["default_generation_settings"] = {"n_ctx": context}

    def server(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            entry = {"id": MODEL_FILE, "aliases": [MODEL_FILE], "owned_by": owner}
            return httpx.Response(200, json={"data": [entry]})
        if request.url.path == "/props":
            return httpx.Response(200, json=props)
        return chat(request)

    return httpx.MockTransport(server)


class FakeTime:
    """A clock that only moves when the client sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The stages.llm lines at WARNING."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "stages.llm" and r.levelno == logging.WARNING
    ]


class TestContextFull:
    """``finish_reason: length`` from a full context is not blamed on max_tokens."""

    async def test_a_reply_that_fills_the_context_per_slot(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Prompt + reply reaching the context /props told (per slot) is 'context full':
        the reason names the size and -c/--ctx-size, the guard rejects with it, and the
        statistics count it apart from the max_tokens cuts (round 35: both said max_tokens)."""
        transport = llama_cpp(lambda request: reply(116, 396), slots=2, context=512)
        async with LlmClient("http://llm.test/v1", "m", transport=transport) as client:
            await client.check()
            got = await client.chat(MESSAGES, task="correct", max_tokens=396)
        assert got.finish_reason == "length"  # as the server said: a cut reply
        assert isinstance(got.finish_reason, ContextFull)
        verdict = judge_edit("cut", "cut", finish_reason=got.finish_reason)
        assert not verdict.accepted and verdict.reason is not None
        assert verdict.reason.startswith("context full: prompt 116 + reply 396 tokens")
        assert "context of 512 tokens per slot" in verdict.reason
        assert "-c/--ctx-size, its 2 slots share it" in verdict.reason
        assert "max_tokens cannot help" in verdict.reason
        stats = client.statistics()
        assert (stats.context_stops, stats.length_stops, stats.context) == (1, 0, 512)
        line = stats.summary()
        assert "1 reply cut by a full context of 512 tokens per slot" in line
        assert "max_tokens" in line and "cut by max_tokens" not in line
        [warned] = [w for w in warnings(caplog) if "context full" in w]
        assert "LLM correct call" in warned

    async def test_a_reply_cut_by_max_tokens_is_still_so(self) -> None:
        """A reply that reached max_tokens, its prompt and reply under the context, is
        cut by max_tokens: a plain 'length', counted and reasoned as before."""
        transport = llama_cpp(lambda request: reply(100, 50), context=512)
        async with LlmClient("http://llm.test/v1", "m", transport=transport) as client:
            await client.check()
            got = await client.chat(MESSAGES, task="correct", max_tokens=50)
        assert not isinstance(got.finish_reason, ContextFull)
        verdict = judge_edit("cut", "cut", finish_reason=got.finish_reason)
        assert verdict.reason == "cut by max_tokens (finish_reason: length)"
        stats = client.statistics()
        assert (stats.context_stops, stats.length_stops) == (0, 1)
        assert "1 reply cut by max_tokens" in stats.summary()

    @pytest.mark.parametrize(("completion", "full"), [(20, True), (50, False)])
    async def test_without_a_context_told_a_reply_short_of_max_tokens(
        self, completion: int, full: bool
    ) -> None:
        """A server that tells no context (not llama.cpp): a cut reply shorter than the
        max_tokens sent was cut by the context; one as long was cut by max_tokens."""
        transport = llama_cpp(lambda request: reply(100, completion), owner="vllm")
        async with LlmClient("http://llm.test/v1", "m", transport=transport) as client:
            await client.check()
            got = await client.chat(MESSAGES, task="fix", max_tokens=50)
        assert isinstance(got.finish_reason, ContextFull) is full
        if isinstance(got.finish_reason, ContextFull):
            assert "under max_tokens 50" in got.finish_reason.reason
            assert "--max-model-len" in got.finish_reason.reason
        assert client.statistics().context_stops == int(full)


class TestConcurrencyOverSlots:
    """--llm-concurrency above a llama.cpp server's slots."""

    async def test_warned_once_at_the_start_with_both_numbers(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Concurrency 3 on a 1-slot server: one warning naming 3 and 1 slot, and that
        the wait at the server counts against --llm-timeout (the run said nothing)."""
        transport = llama_cpp(lambda request: reply(10, 3, "stop"), slots=1)
        client = LlmClient(
            "http://llm.test/v1", "m", transport=transport, concurrency=3, timeout=12.0
        )
        async with client:
            await client.check()
        assert client.concurrency == 3  # given, so kept
        [warned] = [w for w in warnings(caplog) if "--llm-concurrency" in w]
        assert "--llm-concurrency 3 is more than the llama.cpp server's 1 slot:" in warned
        assert "counts against --llm-timeout (12s)" in warned
        assert client.statistics().server_slots == 1

    async def test_not_warned_within_the_slots(self, caplog: pytest.LogCaptureFixture) -> None:
        """Concurrency at or under the slots, or not given: no warning; not given, the
        info line says the slots in the singular for one (it said '1 slots')."""
        caplog.set_level(logging.INFO, "stages.llm")
        transport = llama_cpp(lambda request: reply(10, 3, "stop"), slots=1)
        for concurrency in (1, None):
            client = LlmClient(
                "http://llm.test/v1", "x", transport=transport, concurrency=concurrency
            )
            async with client:
                await client.check()
        assert not [w for w in warnings(caplog) if "--llm-concurrency" in w]
        assert any(
            r.getMessage().startswith("the llama.cpp server has 1 slot: at most 1 LLM request ")
            for r in caplog.records
        )

    def test_the_timeout_advice_names_the_queue(self) -> None:
        """Most requests timed out with concurrency over the slots: the advice names the
        queue at the server and the concurrency to give, not only a slow server."""
        stats = LlmStatistics(
            attempts=3,
            succeeded=1,
            failed=2,
            failures={"timeout": 2},
            completion_tokens=224,
            seconds=10.0,
            server_slots=1,
        )
        advice = timeout_advice(stats, 12.0, 3)
        assert advice is not None
        assert "--llm-concurrency 3 is more than the server's 1 slot" in advice
        assert "queued at the server" in advice and "give --llm-concurrency 1" in advice
        plain = timeout_advice(LlmStatistics(**{**_fields(stats), "server_slots": 3}), 12.0, 3)
        assert plain is not None and "queued at the server" not in plain


def _fields(stats: LlmStatistics) -> dict[str, Any]:
    return {name: getattr(stats, name) for name in LlmStatistics.__dataclass_fields__}


class TestOutageIsSaid:
    """An unreachable server is said once when it goes, once when it comes back."""

    async def test_one_warning_then_one_info(self, caplog: pytest.LogCaptureFixture) -> None:
        """Refused five times, then back: one WARNING naming the URL, the time, the last
        failure and the deadline, and one INFO when it answers (nothing was said)."""
        caplog.set_level(logging.INFO, "stages.llm")
        time = FakeTime()
        steps: list[httpx.Response | Exception] = [httpx.ConnectError("refused")] * 5
        steps.append(reply(10, 3, "stop"))

        def chat(request: httpx.Request) -> httpx.Response:
            step = steps.pop(0)
            if isinstance(step, Exception):
                raise step
            return step

        transport = llama_cpp(chat)
        client = LlmClient(
            "http://llm.test/v1", "m", transport=transport, clock=time.clock, sleep=time.sleep
        )
        async with client:
            await client.chat(MESSAGES, task="correct", call=CallState(deadline=90.0))
        said = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "stages.llm"]
        [down] = [m for level, m in said if level == logging.WARNING]
        assert down.startswith("cannot reach the LLM server at http://llm.test/v1 since ")
        assert "(last: cannot connect" in down, down
        assert "waiting up to --llm-deadline 90 s; pages needing it wait" in down
        [back] = [m for level, m in said if "answers again" in m]
        assert back.startswith("the LLM server at http://llm.test/v1 answers again, after ")


class TestOneModelServer:
    """A llama.cpp server of one model, asked for another."""

    @pytest.mark.parametrize(
        ("model", "warned"),
        [
            ("gpt-4o-mini", True),
            (MODEL_FILE, False),
            ("SmolLM2-135M-Instruct.Q4_1.gguf", False),
            ("SmolLM2-135M-Instruct.Q4_1", False),
        ],
    )
    async def test_warned_when_not_the_one_served(
        self, caplog: pytest.LogCaptureFixture, model: str, warned: bool
    ) -> None:
        """One warning naming the model served and the one asked for; none when the name
        is the model's id or its file name (it passed silently)."""
        transport = llama_cpp(lambda request: reply(10, 3, "stop"))
        async with LlmClient("http://llm.test/v1", model, transport=transport) as client:
            await client.check()
        said = [w for w in warnings(caplog) if "serves one model" in w]
        assert len(said) == int(warned)
        if warned:
            assert MODEL_FILE in said[0] and "whatever --llm-model says ('gpt-4o-mini')" in said[0]

    async def test_another_server_of_one_model_is_not_judged(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A server not llama.cpp's may refuse the name, and its refusal says so."""
        transport = llama_cpp(lambda request: reply(10, 3, "stop"), owner="vllm")
        async with LlmClient("http://llm.test/v1", "other", transport=transport) as client:
            await client.check()
        assert not warnings(caplog)


def parsed(argv: list[str]) -> LlmOptions:
    """The LLM options of a command line."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return LlmOptions.from_args(parser.parse_args(argv))


class TestMissingKey:
    """A 401 at the start names the variables the key was looked for in, not values."""

    @pytest.mark.parametrize(
        ("argv", "named"),
        [
            (
                [],
                "(no key)): ASYNCPIPE_LLM_API_KEY and OPENAI_API_KEY are unset or empty: set "
                "one, or name another variable with --llm-key-env",
            ),
            (["--llm-key-env", "MY_KEY"], "(no key)): MY_KEY is unset or empty: set it"),
        ],
    )
    async def test_the_variables_are_named(self, argv: list[str], named: str) -> None:
        """The message names where the key was looked for (it said only --llm-key-env)."""
        options = await anyio.to_thread.run_sync(parsed, argv)  # argparse stats files

        def server(request: httpx.Request) -> httpx.Response:
            return httpx.Response(401, json={"error": {"message": "no key"}})

        transport = httpx.MockTransport(server)
        client = LlmClient(
            "http://llm.test/v1", "m", transport=transport, **options.client_kwargs()
        )
        async with client:
            with pytest.raises(ConfigError, match="wants an API key") as info:
                await client.check()
        assert named in str(info.value)
