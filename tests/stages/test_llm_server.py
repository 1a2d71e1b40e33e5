"""
Tests of the local OpenAI-compatible test server: its rules, options and real HTTP replies.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest

from stages.testing.llm_server import (
    INVALID_OUTPUT,
    ServerOptions,
    document_text,
    rule_correct,
    rule_fix,
    rule_structure,
)
from stages.testing.llm_server._options import ENV_VAR, parse_args
from stages.testing.llm_server.testing import ServerHandle, open_server, run_server

KEY = "sk-server-secret-0123456789"
RECEIPT = """BOOK TA .K(TAMAN DAYA) SDN BHD
789417-W
NO.53 55,57 & 59, JALAN SAGU 18,
TAMAN DAYA,
81100 JOHOR BAHRU,
JOHOR.
DATE: 25/12/2018 8:13:39 PM
TOTAL:
ROUNDING ADJUSTMENT: 0.00
ROUNDED TOTAL (RM): 9.00
CASH 10.00"""


def chat_body(text: str, **extra: Any) -> dict[str, Any]:
    """A chat request whose user message wraps ``text`` in the prompt markers."""
    content = f"Please.\n<<<TEXT\n{text}\nTEXT>>>"
    return {"model": "m", "messages": [{"role": "user", "content": content}], **extra}


async def post(
    server: ServerHandle,
    body: Any,
    headers: dict[str, str] | None = None,
    *,
    read_timeout: float = 5.0,
) -> httpx.Response:
    """POST a chat completion to the server."""
    async with httpx.AsyncClient(timeout=read_timeout) as client:
        return await client.post(f"{server.url}/chat/completions", json=body, headers=headers)


async def read_log(server: ServerHandle) -> list[dict[str, Any]]:
    """Read the request log off the event loop."""
    return await anyio.to_thread.run_sync(server.read_log)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerHandle]:
    """One plain server for the tests that do not change its options."""
    with run_server(api_key=KEY) as handle:
        yield handle


class TestRules:
    """The deterministic replies."""

    def test_correct_table(self) -> None:
        """Each row of the correction table applies, and nothing else changes."""
        assert rule_correct("T0TAL 1O.5O arnount TIRNE 10KG RM9.OO B00K 9.OO") == (
            "TOTAL 10.50 amount TIME 10KG RM9.OO BOOK 9.00"
        )
        assert rule_correct("AB8C w1th Mi5s") == "ABBC wlth MiSs"
        assert rule_correct("plain words, 12.50 and 2018") == "plain words, 12.50 and 2018"

    def test_fix_rules(self) -> None:
        """Hyphenation, broken lines, stray lines and characters, spaces."""
        text = "docu-\nment  is\nbroken here,\nand | there\n***\nEND-\nNext"
        assert rule_fix(text) == "document is broken here, and there\nEND-\nNext"

    def test_structure_rules(self) -> None:
        """Date, total, company and address come from the simple rules."""
        assert rule_structure(RECEIPT) == {
            "company": "BOOK TA .K(TAMAN DAYA) SDN BHD",
            "date": "25/12/2018",
            "address": "NO.53 55,57 & 59, JALAN SAGU 18, TAMAN DAYA, 81100 JOHOR BAHRU",
            "total": "9.00",
        }
        assert rule_structure("") == {"company": None, "date": None, "address": None, "total": None}

    def test_document_text(self) -> None:
        """The text is found between markers of the first user message."""
        messages = [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "x\n<<<TEXT\nabc\ndef\nTEXT>>>\n"},
            {"role": "user", "content": "<<<TEXT\nother\nTEXT>>>"},
        ]
        assert document_text(messages) == "abc\ndef"
        assert document_text([{"role": "user", "content": "bare"}]) == "bare"


class TestOptions:
    """Command line, JSON and environment options."""

    def test_flags(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Flags override the JSON, which overrides the environment."""
        monkeypatch.setenv(ENV_VAR, json.dumps({"seed": 3, "model": "env"}))
        monkeypatch.setenv("THE_KEY", KEY)
        options, host, port, fd = parse_args(
            [
                "--config-json",
                '{"model": "json", "hang_seconds": 5}',
                "--latency",
                "0.1-0.3",
                "--rate-limit",
                "10/1",
                "--fault",
                "500=0.25",
                "--fault",
                "hang=0.1",
                "--down",
                "2:3",
                "--api-key-env",
                "THE_KEY",
                "--port",
                "9",
            ]
        )
        assert (host, port, fd) == ("127.0.0.1", 9, None)
        assert options.seed == 3
        assert options.model == "json"
        assert (options.latency, options.latency_max) == (0.1, 0.3)
        assert (options.rate_limit, options.rate_period) == (10, 1.0)
        assert options.faults == {"500": 0.25, "hang": 0.1}
        assert (options.down_after, options.down_for) == (2.0, 3.0)
        assert options.api_key == KEY
        assert KEY not in repr(options)

    @pytest.mark.parametrize(
        "data",
        [{"faults": {"boom": 0.1}}, {"faults": {"500": 0.7, "429": 0.7}}, {"nope": 1}],
    )
    def test_bad_options(self, data: dict[str, Any]) -> None:
        """Unknown faults, probabilities over 1 and unknown names are refused."""
        with pytest.raises(ValueError, match=r"fault|unknown"):
            ServerOptions.from_mapping(data)


class TestEndpoints:
    """The server over real HTTP."""

    async def test_health_and_models(self, server: ServerHandle) -> None:
        """``/health`` and ``/v1/models`` answer."""
        async with httpx.AsyncClient() as client:
            health = await client.get(f"{server.root_url}/health")
            models = await client.get(f"{server.url}/models")
        assert health.json()["status"] == "ok"
        assert models.json()["data"][0]["id"] == "asyncpipe-test"

    @pytest.mark.parametrize(
        ("task", "expected"),
        [
            ("correct", "TOTAL 10.50\ndocu-\nment"),
            ("fix", "T0TAL 1O.5O\ndocument"),
            ("structure", None),
        ],
    )
    async def test_task_replies(
        self, server: ServerHandle, task: str, expected: str | None
    ) -> None:
        """Each task's reply is its rule applied to the document text, with usage."""
        text = "T0TAL 1O.5O\ndocu-\nment"
        headers = {"Authorization": f"Bearer {KEY}", "X-Asyncpipe-Task": task}
        response = await post(server, chat_body(text), headers)
        assert response.status_code == 200
        data = response.json()
        content = data["choices"][0]["message"]["content"]
        if expected is None:
            assert json.loads(content) == rule_structure(text)
        else:
            assert content == expected
        usage = data["usage"]
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
        assert response.headers["x-request-id"].startswith("req-")

    async def test_task_fallbacks(self, server: ServerHandle) -> None:
        """Without the header, json_object means structure and anything else is echo."""
        auth = {"Authorization": f"Bearer {KEY}"}
        echo = await post(server, chat_body("T0TAL"), auth)
        assert echo.json()["choices"][0]["message"]["content"] == "T0TAL"
        body = chat_body("TOTAL 9.00", response_format={"type": "json_object"})
        fields = await post(server, body, auth)
        assert json.loads(fields.json()["choices"][0]["message"]["content"])["total"] == "9.00"

    async def test_bad_body_is_400(self, server: ServerHandle) -> None:
        """A body without messages is a 400 in the OpenAI error shape."""
        response = await post(server, {"model": "m"}, {"Authorization": f"Bearer {KEY}"})
        assert response.status_code == 400
        assert response.json()["error"]["type"] == "invalid_request_error"

    async def test_auth_and_log_never_hold_the_key(self, server: ServerHandle) -> None:
        """A wrong or missing key is a 401, and the log records neither key."""
        wrong = await post(server, chat_body("x"), {"Authorization": "Bearer sk-wrong-999"})
        missing = await post(server, chat_body("x"), {"X-Asyncpipe-Item": "item-7"})
        good = await post(server, chat_body("x"), {"Authorization": f"Bearer {KEY}"})
        assert (wrong.status_code, missing.status_code, good.status_code) == (401, 401, 200)
        raw = await anyio.Path(server.log_path).read_text()
        assert KEY not in raw
        assert "sk-wrong-999" not in raw
        assert "Bearer" not in raw
        records = await read_log(server)
        tail = records[-3:]
        assert [r["auth"] for r in tail] == ["wrong", "missing", "ok"]
        assert tail[1]["item"] == "item-7"


class TestFaults:
    """Injected faults, rate limit, down window and latency."""

    @pytest.mark.parametrize("fault", ["500", "429", "malformed", "invalid_output"])
    async def test_fault_then_recovery(self, fault: str) -> None:
        """With fault_limit=1 the first request of an item faults and the next is clean."""
        async with open_server(faults={fault: 1.0}, fault_limit=1, fault_retry_after=0.25) as srv:
            headers = {"X-Asyncpipe-Item": "p1", "X-Asyncpipe-Task": "structure"}
            first = await post(srv, chat_body("TOTAL 9.00"), headers)
            second = await post(srv, chat_body("TOTAL 9.00"), headers)
            records = await read_log(srv)
        assert second.status_code == 200
        assert json.loads(second.json()["choices"][0]["message"]["content"])["total"] == "9.00"
        if fault == "500":
            assert first.status_code == 500
        elif fault == "429":
            assert first.status_code == 429
            assert first.headers["retry-after-ms"] == "250"
            assert first.headers["retry-after"] == "1"
        elif fault == "malformed":
            assert first.status_code == 200
            with pytest.raises(json.JSONDecodeError):
                json.loads(first.content)
        else:
            assert first.json()["choices"][0]["message"]["content"] == INVALID_OUTPUT
        assert [(r["item"], r["task"], r["fault"]) for r in records] == [
            ("p1", "structure", fault),
            ("p1", "structure", None),
        ]

    async def test_invalid_output_only_hits_structure(self) -> None:
        """The invalid_output fault leaves text tasks alone."""
        async with open_server(faults={"invalid_output": 1.0}) as srv:
            reply = await post(srv, chat_body("T0TAL"), {"X-Asyncpipe-Task": "correct"})
        assert reply.json()["choices"][0]["message"]["content"] == "TOTAL"

    async def test_hang_outlasts_the_client(self) -> None:
        """A hang answers nothing until the client gives up."""
        async with open_server(faults={"hang": 1.0}) as srv:
            started = time.monotonic()
            with pytest.raises(httpx.ReadTimeout):
                await post(srv, chat_body("x"), read_timeout=0.3)
            assert time.monotonic() - started < 2
            records = await read_log(srv)
        assert records[0]["fault"] == "hang"
        assert records[0]["status"] is None

    async def test_seeded_faults_repeat(self) -> None:
        """The same seed gives the same fault sequence."""
        runs: list[list[int]] = []
        for _ in range(2):
            async with open_server(faults={"500": 0.5}, seed=42) as srv:
                runs.append([(await post(srv, chat_body("x"))).status_code for _ in range(12)])
        assert runs[0] == runs[1]
        assert set(runs[0]) == {200, 500}

    async def test_rate_limit(self) -> None:
        """Over the limit the server answers 429 with both wait headers."""
        async with open_server(rate_limit=3, rate_period=1.0) as srv:
            codes = [(await post(srv, chat_body("x"))).status_code for _ in range(3)]
            limited = await post(srv, chat_body("x"))
        assert codes == [200, 200, 200]
        assert limited.status_code == 429
        wait_ms = int(limited.headers["retry-after-ms"])
        assert 0 < wait_ms <= 1000
        assert limited.headers["retry-after"] == "1"

    async def test_down_window(self) -> None:
        """Inside the window every request is 503; after it, service resumes."""
        async with open_server(down_after=0.0, down_for=0.5) as srv:
            during = await post(srv, chat_body("x"))
            await anyio.sleep(0.6)
            after = await post(srv, chat_body("x"))
            records = await read_log(srv)
        assert (during.status_code, after.status_code) == (503, 200)
        assert [r["fault"] for r in records] == ["down", None]

    async def test_latency(self) -> None:
        """A fixed latency delays each answer."""
        async with open_server(latency=0.3) as srv:
            started = time.monotonic()
            await post(srv, chat_body("x"))
            assert time.monotonic() - started >= 0.3

    async def test_stop_refuses_then_start_serves(self) -> None:
        """Between stop and start the port refuses connections; start reuses the port."""
        async with open_server() as srv:
            port = srv.port
            await anyio.to_thread.run_sync(srv.stop)
            with pytest.raises(httpx.ConnectError):
                await post(srv, chat_body("x"))
            await anyio.to_thread.run_sync(srv.start)
            assert srv.port == port
            assert (await post(srv, chat_body("x"))).status_code == 200


class TestHandle:
    """The subprocess helper."""

    def test_run_server_cleans_up(self, tmp_path: Path) -> None:
        """The context manager stops the process; the log stays in the given workdir."""
        with run_server(workdir=tmp_path) as srv:
            assert srv.running
            response = httpx.post(f"{srv.url}/chat/completions", json=chat_body("x"))
            assert response.status_code == 200
        assert not srv.running
        lines = (tmp_path / "requests.jsonl").read_bytes().splitlines()
        assert orjson.loads(lines[0])["status"] == 200

    def test_bad_option_fails_fast(self) -> None:
        """An unknown option fails before any process starts."""
        with pytest.raises(ValueError, match="unknown"), run_server(colour="blue"):
            pass
