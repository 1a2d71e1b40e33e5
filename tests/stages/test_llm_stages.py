"""
Tests of the LLM stages: logic with a fake chat model, then end to end on the real server.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from asyncpipe._exceptions import ConfigError
from asyncpipe._ratelimit import RateLimit
from stages._page import Page, PageRef
from stages.llm import (
    ChatReply,
    LlmClient,
    LlmOutputError,
    LlmRetriesExhausted,
    Message,
    Prompts,
    Schema,
    Usage,
    correct,
    fix,
    llm_stages,
    parse_json_object,
    structure,
)
from stages.llm_server import correct_text, fix_text, structure_text
from stages.llm_server.testing import ServerHandle, open_server

OCR = "B00K SHOP SDN BHD\n789417-W\nNO.5 JALAN\n81100 JOHOR\nDATE: 25/12/2018\nT0TAL arnount\n9.OO"
LAYOUT = "THANK Y0U for the pay-\nment of the\ncustorner |\n***"


def page(text: str, item: str = "receipts/000.jpg#1@abc") -> Page:
    """A page after OCR."""
    return Page(ref=PageRef(id=item, source="receipts/000.jpg", page=1, kind="jpeg"), text=text)


class FakeModel:
    """A ChatModel that replays canned answers and records the conversations."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[list[Message], str, str | None, bool]] = []

    async def chat(
        self,
        messages: Sequence[Message],
        *,
        task: str,
        item: str | None = None,
        json_mode: bool = False,
    ) -> ChatReply:
        self.calls.append((list(messages), task, item, json_mode))
        return ChatReply(self.answers.pop(0), Usage(5, 2, 7), 1, "fake")


@pytest.fixture(scope="module")
def prompts() -> Prompts:
    """The shipped prompts."""
    return Prompts.load()


@pytest.fixture(scope="module")
def schema() -> Schema:
    """The shipped receipt schema."""
    return Schema.load()


GOOD = '{"company": "A", "date": "1/1/2020", "address": null, "total": "9.00"}'


class TestStageLogic:
    """Stage behaviour against a fake model."""

    async def test_correct_and_fix_fill_corrected(self, prompts: Prompts) -> None:
        """correct reads text, fix reads corrected; both clean fences and markers."""
        model = FakeModel("```\n<<<TEXT\nfixed once\nTEXT>>>\n```", "fixed twice")
        p = await correct(model, page("raw"), prompts=prompts)
        assert p.corrected == "fixed once"
        await fix(model, p, prompts=prompts)
        assert p.corrected == "fixed twice"
        (first, task, item, json_mode), (second, *_) = model.calls
        assert (task, item, json_mode) == ("correct", "receipts/000.jpg#1@abc", False)
        assert "<<<TEXT\nraw\nTEXT>>>" in first[1]["content"]
        assert "<<<TEXT\nfixed once\nTEXT>>>" in second[1]["content"]
        assert p.notes["llm"]["fix"] == {"calls": 1, "attempts": 1, "tokens": 7, "model": "fake"}

    async def test_empty_page_makes_no_call(self, prompts: Prompts) -> None:
        """Nothing to correct means no paid call."""
        model = FakeModel()
        p = await correct(model, page("  \n"), prompts=prompts)
        assert model.calls == []
        assert p.notes["llm"]["correct"]["calls"] == 0

    async def test_empty_answer_is_an_error(self, prompts: Prompts) -> None:
        """A blank answer for a non-empty page is an LlmOutputError."""
        with pytest.raises(LlmOutputError, match="empty"):
            await correct(FakeModel("  "), page("text"), prompts=prompts)

    async def test_structure_first_try(self, prompts: Prompts, schema: Schema) -> None:
        """A valid answer is kept; unexpected keys are dropped and noted."""
        answer = GOOD[:-1] + ', "__class__": "x", "cmd": "rm -rf /"}'
        model = FakeModel(answer)
        p = await structure(model, page("t"), prompts=prompts, schema=schema)
        assert p.fields == {"company": "A", "date": "1/1/2020", "address": None, "total": "9.00"}
        assert p.notes["llm"]["structure"]["dropped_keys"] == ["__class__", "cmd"]
        assert p.notes["llm"]["structure"]["repaired"] is False
        messages, task, _, json_mode = model.calls[0]
        assert (task, json_mode) == ("structure", True)
        assert '"company"' in messages[0]["content"]

    async def test_structure_one_repair(self, prompts: Prompts, schema: Schema) -> None:
        """An invalid answer is sent back once with the reason, then the fix is kept."""
        model = FakeModel('Sure: {"company": 12, "total": 9.0}', f"```json\n{GOOD}\n```")
        p = await structure(model, page("t"), prompts=prompts, schema=schema)
        assert p.fields is not None
        assert p.fields["total"] == "9.00"
        repair = model.calls[1][0]
        assert [m["role"] for m in repair] == ["system", "user", "assistant", "user"]
        assert repair[2]["content"].startswith("Sure:")
        assert "company" in repair[3]["content"]
        assert "is not of type" in repair[3]["content"]
        assert p.notes["llm"]["structure"]["repaired"] is True
        assert p.notes["llm"]["structure"]["calls"] == 2

    async def test_structure_gives_up_after_one_repair(
        self, prompts: Prompts, schema: Schema
    ) -> None:
        """Two invalid answers raise with the reason; no third call is made."""
        model = FakeModel("not json", "[1, 2]", GOOD)
        with pytest.raises(LlmOutputError, match=r"after one repair attempt: .*not an object"):
            await structure(model, page("t"), prompts=prompts, schema=schema)
        assert len(model.calls) == 2

    def test_parse_json_object(self) -> None:
        """Plain, fenced and embedded objects are read; others are refused."""
        assert parse_json_object('{"a": 1}') == {"a": 1}
        assert parse_json_object('x ```json\n{"a": 2}\n``` y') == {"a": 2}
        assert parse_json_object('Here: {"a": 3}.') == {"a": 3}
        with pytest.raises(ValueError, match="not valid JSON"):
            parse_json_object("{oops")

    def test_non_string_values_are_refused(self, tmp_path: Path) -> None:
        """Even a permissive schema cannot let a non-string value through."""
        path = tmp_path / "loose.json"
        path.write_text(json.dumps({"type": "object", "properties": {"n": {}}}))
        with pytest.raises(ValueError, match="must be a string or null"):
            Schema.load(path).clean({"n": [1]})

    def test_prompt_overrides(self, tmp_path: Path) -> None:
        """A prompts folder overrides single files and is checked."""
        (tmp_path / "correct_user.txt").write_text("Fix {text} please {schema}")
        prompts = Prompts.load(tmp_path)
        assert prompts.correct_user == "Fix {text} please {schema}"
        assert prompts.fix_user == Prompts.load().fix_user
        (tmp_path / "fix_user.txt").write_text("no placeholder")
        with pytest.raises(ConfigError, match=r"fix_user.txt must contain \{text\}"):
            Prompts.load(tmp_path)
        (tmp_path / "fix_user.txt").unlink()
        (tmp_path / "corect_user.txt").write_text("{text}")
        with pytest.raises(ConfigError, match="unknown prompt file"):
            Prompts.load(tmp_path)

    def test_bad_schema(self, tmp_path: Path) -> None:
        """An unusable schema file is a ConfigError."""
        path = tmp_path / "s.json"
        path.write_text('{"type": "array"}')
        with pytest.raises(ConfigError, match="object with properties"):
            Schema.load(path)
        with pytest.raises(ConfigError, match="cannot read"):
            Schema.load(tmp_path / "missing.json")


def client_for(server: ServerHandle, **kwargs: Any) -> LlmClient:
    """A client tuned for quick tests: short timeouts, seeded jitter."""
    options: dict[str, Any] = {
        "api_key": "sk-e2e-secret",
        "timeout": httpx.Timeout(1.0, connect=1.0),
        "deadline": 20.0,
        "backoff_base": 0.05,
        "backoff_cap": 0.4,
        "rng": random.Random(1),
    }
    options.update(kwargs)
    return LlmClient(server.url, "asyncpipe-test", **options)


async def load_stages(client: LlmClient) -> Any:
    """Build the bound stages off the event loop (it reads files)."""
    return await anyio.to_thread.run_sync(llm_stages, client)


class TestEndToEnd:
    """The stages against the real server subprocess."""

    async def test_three_stages(self) -> None:
        """correct → fix → structure give the server's deterministic answers."""
        async with open_server(api_key="sk-e2e-secret") as srv, client_for(srv) as client:
            stages = await load_stages(client)
            p = await stages.correct(page(OCR))
            assert p.corrected == correct_text(OCR)
            assert "BOOK SHOP" in p.corrected
            assert "TOTAL amount\n9.00" in p.corrected
            p = await stages.fix(p)
            assert p.corrected == fix_text(correct_text(OCR))
            p = await stages.structure(p)
            assert p.fields == {
                "company": "BOOK SHOP SDN BHD",
                "date": "25/12/2018",
                "address": "NO.5 JALAN, 81100 JOHOR",
                "total": "9.00",
            }
            q = await stages.fix(page(LAYOUT, item="second"))
            assert q.corrected == "THANK Y0U for the payment of the custorner"
            stats = client.statistics()
            records = await anyio.to_thread.run_sync(srv.read_log)
        assert (stats.calls, stats.succeeded, stats.attempts) == (4, 4, 4)
        assert stats.total_tokens > 0
        assert [(r["task"], r["item"], r["auth"]) for r in records] == [
            ("correct", "receipts/000.jpg#1@abc", "ok"),
            ("fix", "receipts/000.jpg#1@abc", "ok"),
            ("structure", "receipts/000.jpg#1@abc", "ok"),
            ("fix", "second", "ok"),
        ]

    @pytest.mark.parametrize("fault", ["500", "429", "hang", "malformed"])
    async def test_fault_is_retried(self, fault: str) -> None:
        """Each injected fault costs one retry and the answer is still right."""
        options: dict[str, Any] = {"faults": {fault: 1.0}, "fault_limit": 1}
        options["fault_retry_after"] = 0.2
        async with open_server(**options) as srv:
            async with client_for(srv, timeout=httpx.Timeout(0.5, connect=1.0)) as client:
                stages = await load_stages(client)
                p = await stages.correct(page(OCR))
                stats = client.statistics()
            records = await anyio.to_thread.run_sync(srv.read_log)
        assert p.corrected == correct_text(OCR)
        cause = {"hang": "timeout"}.get(fault, fault)
        assert stats.retries == {cause: 1}
        assert [(r["attempt"], r["fault"]) for r in records] == [(1, fault), (2, None)]
        if fault == "429":
            gap = records[1]["ts"] - records[0]["ts_end"]
            # retry-after-ms (0.2 s) must win over Retry-After (rounded up to 1 s).
            assert 0.19 <= gap < 0.9, f"waited {gap:.2f}s, not the retry-after-ms hint"

    async def test_invalid_output_repaired(self) -> None:
        """Invalid structured output gets one repair call, which succeeds."""
        async with open_server(faults={"invalid_output": 1.0}, fault_limit=1) as srv:
            async with client_for(srv) as client:
                stages = await load_stages(client)
                p = await stages.structure(page(OCR))
            records = await anyio.to_thread.run_sync(srv.read_log)
        assert p.fields == structure_text(OCR)
        assert p.notes["llm"]["structure"]["repaired"] is True
        assert [r["fault"] for r in records] == ["invalid_output", None]

    async def test_invalid_output_twice_fails(self) -> None:
        """Invalid output on the repair too ends in a clear LlmOutputError."""
        async with open_server(faults={"invalid_output": 1.0}) as srv, client_for(srv) as client:
            stages = await load_stages(client)
            with pytest.raises(LlmOutputError, match="invalid after one repair") as info:
                await stages.structure(page(OCR))
            records = await anyio.to_thread.run_sync(srv.read_log)
        assert "receipts/000.jpg#1@abc" in str(info.value)
        assert len(records) == 2

    async def test_persistent_500_exhausts(self) -> None:
        """A server that always fails exhausts the attempts with a clear error."""
        server = open_server(faults={"500": 1.0})
        async with server as srv, client_for(srv, max_attempts=3) as client:
            stages = await load_stages(client)
            with pytest.raises(LlmRetriesExhausted, match=r"after 3 attempts.*HTTP 500"):
                await stages.fix(page("x"))

    async def test_down_window(self) -> None:
        """A one-second outage (503) is ridden out by backoff."""
        server = open_server(down_after=0.0, down_for=1.0)
        async with server as srv, client_for(srv, max_attempts=8, backoff_cap=0.8) as client:
            stages = await load_stages(client)
            p = await stages.correct(page("T0TAL"))
            stats = client.statistics()
        assert p.corrected == "TOTAL"
        assert stats.retries["503"] >= 1

    async def test_connection_refused_window(self) -> None:
        """A server that is gone for a moment (connection refused) is retried."""
        async with open_server() as srv:
            await anyio.to_thread.run_sync(srv.stop)
            async with client_for(srv, max_attempts=10, backoff_cap=0.4) as client:
                stages = await load_stages(client)
                async with anyio.create_task_group() as tg:

                    async def restart() -> None:
                        await anyio.sleep(0.5)
                        await anyio.to_thread.run_sync(srv.start)

                    tg.start_soon(restart)
                    p = await stages.correct(page("T0TAL"))
                stats = client.statistics()
        assert p.corrected == "TOTAL"
        assert stats.retries["connect"] >= 1

    async def test_rate_limit_holds_on_the_wire(self) -> None:
        """With 10/s shared by 25 concurrent calls, no 1 s window holds more than 10."""
        limit, period, calls = 10, 1.0, 25
        rate = RateLimit(limit, period)
        async with open_server(rate_limit=limit, rate_period=period, latency=0.05) as srv:
            async with client_for(srv, rate_limit=rate) as client:
                stages = await load_stages(client)
                async with anyio.create_task_group() as tg:
                    for i in range(calls):
                        tg.start_soon(stages.correct, page("T0TAL", item=f"item-{i}"))
                stats = client.statistics()
            records = await anyio.to_thread.run_sync(srv.read_log)
        assert rate.acquired == calls
        assert len(records) == calls
        assert all(r["status"] == 200 for r in records), "the server had to refuse some"
        assert stats.retries == {}
        ts = sorted(r["ts"] for r in records)
        for i in range(len(ts) - limit):
            assert ts[i + limit] - ts[i] >= period, f"window at {i} holds > {limit}"
        assert sorted(r["item"] for r in records) == sorted(f"item-{i}" for i in range(calls))
