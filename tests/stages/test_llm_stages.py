"""
Tests of the LLM stages: logic with a fake chat model, then end to end on the real server.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fakemodel import FakeModel

from asyncpipe import Item, Pipeline, RunSummary, Stage
from asyncpipe._exceptions import ConfigError
from asyncpipe._ratelimit import RateLimit
from asyncpipe._retry import Retry
from stages._page import Page, PageRef
from stages.llm import (
    DEFAULT_RETRY,
    ChatReply,
    LlmClient,
    LlmOptions,
    LlmOutputError,
    LlmRetryableError,
    LlmStages,
    LlmStatistics,
    LlmStatusError,
    Message,
    Prompts,
    Schema,
    StructuredOutputs,
    add_arguments,
    correct,
    fix,
    llm_stages,
    parse_json_object,
    structure,
    structure_max_tokens,
    text_max_tokens,
    timeout_advice,
)
from stages.llm._guard import ContextFull
from stages.pipeline import DocumentSettings, build_pipeline
from stages.testing.llm_server import REWRITE_OUTPUT, rule_correct, rule_fix, rule_structure
from stages.testing.llm_server.testing import ServerHandle, open_server

OCR = "B00K SHOP SDN BHD\n789417-W\nNO.5 JALAN\n81100 JOHOR\nDATE: 25/12/2018\nT0TAL arnount\n9.OO"
LAYOUT = "THANK Y0U for the pay-\nment of the\ncustorner |\n***"


def page(text: str, item: str = "receipts/000.jpg#1@abc") -> Page:
    """A page after OCR."""
    return Page(ref=PageRef(id=item, source="receipts/000.jpg", page=1, kind="jpeg"), text=text)


@pytest.fixture(scope="module")
def prompts() -> Prompts:
    """The shipped prompts."""
    return Prompts.load()


@pytest.fixture(scope="module")
def schema() -> Schema:
    """The shipped receipt schema."""
    return Schema.load()


GOOD = '{"company": "A", "date": "1/1/2020", "address": null, "total": "9.00"}'
GOOD_PAGE = "A\nDATE: 1/1/2020\nTOTAL 9.00"
"""A page that holds GOOD's fields, so the field guard keeps them."""


class TestStageLogic:
    """Stage behaviour against a fake model."""

    async def test_correct_and_fix_fill_corrected(self, prompts: Prompts) -> None:
        """correct reads text, fix reads corrected; both clean fences and markers."""
        raw, once, twice = "T0TAL 9.OO\nTHANK Y0U", "TOTAL 9.00\nTHANK YOU", "TOTAL 9.00 THANK YOU"
        model = FakeModel(f"```\n<<<TEXT\n{once}\nTEXT>>>\n```", twice)
        p = await correct(model, page(raw), prompts=prompts)
        assert p.corrected == once
        await fix(model, p, prompts=prompts)
        assert p.corrected == twice
        (first, task, item, response_format), (second, *_) = model.calls
        assert (task, item, response_format) == ("correct", "receipts/000.jpg#1@abc", None)
        assert f"<<<TEXT\n{raw}\nTEXT>>>" in first[1]["content"]
        assert f"<<<TEXT\n{once}\nTEXT>>>" in second[1]["content"]
        assert p.notes["llm"]["fix"] == {
            "calls": 1,
            "attempts": 1,
            "tokens": 7,
            "model": "fake",
            "max_tokens": text_max_tokens(once),
            "rejected": False,
            "similarity": 100.0,
        }
        assert p.notes["llm"]["correct"]["similarity"] == 80.0
        assert model.max_tokens == [text_max_tokens(raw), text_max_tokens(once)]

    async def test_empty_page_makes_no_call(self, prompts: Prompts) -> None:
        """Nothing to correct means no paid call."""
        model = FakeModel()
        p = await correct(model, page("  \n"), prompts=prompts)
        assert model.calls == []
        assert p.notes["llm"]["correct"]["calls"] == 0

    async def test_empty_answer_is_rejected(self, prompts: Prompts) -> None:
        """A blank answer for a non-empty page is never accepted: the input is kept."""
        p = await correct(FakeModel("  "), page("text"), prompts=prompts)
        assert p.corrected == "text"
        assert p.notes["llm"]["correct"]["rejected"] is True
        assert p.notes["llm"]["correct"]["reason"] == "empty reply"

    async def test_rewrite_is_rejected(self, prompts: Prompts) -> None:
        """A reply that is not an edit keeps the input and records the figure."""
        p = await correct(FakeModel(REWRITE_OUTPUT), page(OCR), prompts=prompts)
        assert p.corrected == OCR
        note = p.notes["llm"]["correct"]
        assert note["rejected"] is True and note["similarity"] < 50
        assert "a rewrite" in note["reason"]

    async def test_dropped_lines_are_rejected(self, prompts: Prompts) -> None:
        """correct may not drop lines, even when the rest is close."""
        lines = "line one of it\nline two of it\nline three of it\nline four of it\nend"
        p = await correct(FakeModel(lines.rsplit("\n", 1)[0]), page(lines), prompts=prompts)
        assert p.corrected == lines
        assert "dropped lines" in p.notes["llm"]["correct"]["reason"]

    async def test_threshold_is_an_option(self, prompts: Prompts) -> None:
        """With the threshold at 0 even a rewrite passes; the figure is recorded."""
        p = await correct(FakeModel(REWRITE_OUTPUT), page("x"), prompts=prompts, min_similarity=0)
        assert p.corrected == REWRITE_OUTPUT

    async def test_cut_reply_is_rejected(self, prompts: Prompts) -> None:
        """A reply stopped by max_tokens is never passed on as complete."""
        model = FakeModel("T0TAL 9.O", finish="length")
        p = await fix(model, page("T0TAL 9.OO"), prompts=prompts, max_tokens=3)
        assert p.corrected == "T0TAL 9.OO"
        assert "max_tokens" in p.notes["llm"]["fix"]["reason"]
        assert model.max_tokens == [3]

    async def test_cut_structure_fails(self, prompts: Prompts, schema: Schema) -> None:
        """A structure reply stopped by max_tokens fails at once, without a repair call."""
        model = FakeModel(GOOD, GOOD, finish="length")
        with pytest.raises(LlmOutputError, match="max_tokens") as info:
            await structure(model, page(GOOD_PAGE), prompts=prompts, schema=schema)
        assert info.value.cause == "length"
        assert len(model.calls) == 1
        assert model.max_tokens == [structure_max_tokens(schema)]

    async def test_structure_cut_by_a_full_context_says_so(
        self, prompts: Prompts, schema: Schema
    ) -> None:
        """A structure reply cut because the context filled names the context, not
        max_tokens, which cannot help."""
        full = ContextFull("context full: prompt 300 + reply 212 tokens filled 512")
        model = FakeModel(GOOD, finish=full)
        with pytest.raises(LlmOutputError) as info:
            await structure(model, page(GOOD_PAGE), prompts=prompts, schema=schema)
        assert "context full: prompt 300 + reply 212 tokens filled 512" in str(info.value)
        assert "max_tokens" not in str(info.value)
        assert info.value.cause == "length"

    async def test_structure_first_try(self, prompts: Prompts, schema: Schema) -> None:
        """A valid answer is kept; unexpected keys are dropped and noted."""
        answer = GOOD[:-1] + ', "__class__": "x", "cmd": "rm -rf /"}'
        model = FakeModel(answer)
        p = await structure(model, page(GOOD_PAGE), prompts=prompts, schema=schema)
        assert p.fields == {"company": "A", "date": "1/1/2020", "address": None, "total": "9.00"}
        assert p.notes["llm"]["structure"]["dropped_keys"] == ["__class__", "cmd"]
        assert p.notes["llm"]["structure"]["repaired"] is False
        messages, task, _, response_format = model.calls[0]
        assert task == "structure"
        assert response_format["type"] == "json_schema"
        assert response_format["json_schema"]["strict"] is True
        assert response_format["json_schema"]["schema"]["required"] == list(schema.properties)
        assert "$schema" not in response_format["json_schema"]["schema"]
        assert p.notes["llm"]["structure"]["mode"] == "json_schema"
        assert '"company"' in messages[0]["content"]

    async def test_fallback_chain(self, prompts: Prompts, schema: Schema) -> None:
        """auto steps json_schema → json_object → off on refusals, once for the run."""

        def refusal(kind: str) -> LlmStatusError:
            message = f"HTTP 400 (response_format {kind} is not supported)"
            return LlmStatusError(message, cause="400", status=400)

        modes = StructuredOutputs("auto", schema)
        model = FakeModel(refusal("json_schema"), refusal("json_object"), GOOD, GOOD)
        p = await structure(
            model, page(GOOD_PAGE), prompts=prompts, schema=schema, structured=modes
        )
        assert p.fields is not None
        await structure(model, page("u"), prompts=prompts, schema=schema, structured=modes)
        sent = [c[3]["type"] if c[3] else None for c in model.calls]
        assert sent == ["json_schema", "json_object", None, None]
        assert modes.mode == "off"
        assert "off (prompt only)" in modes.describe()
        assert "json_schema refused" in modes.describe()

    async def test_concurrent_calls_wait_for_the_first_to_settle_the_mode(
        self, prompts: Prompts, schema: Schema
    ) -> None:
        """Eight structure calls at once against a server without json_schema: one is
        refused, the rest go out as json_object (round 25's audit: each call in flight
        was refused on its own, 8 wasted requests)."""

        class Slow(FakeModel):
            async def chat(self, messages: Sequence[Message], **kwargs: Any) -> ChatReply:
                await anyio.sleep(0.01)
                if (kwargs.get("response_format") or {}).get("type") == "json_schema":
                    self.calls.append(
                        (list(messages), "structure", None, kwargs["response_format"])
                    )
                    raise LlmStatusError(
                        "HTTP 400 (response_format json_schema is not supported)",
                        cause="400",
                        status=400,
                    )
                return await super().chat(messages, **kwargs)

        modes = StructuredOutputs("auto", schema)
        model = Slow(*[GOOD] * 8)
        assert modes.describe() == "structured outputs: not tried (no structure reply came)"
        async with anyio.create_task_group() as tg:
            for n in range(8):
                tg.start_soon(
                    partial(
                        structure,
                        model,
                        page(f"p{n}"),
                        prompts=prompts,
                        schema=schema,
                        structured=modes,
                    )
                )
        sent = [c[3]["type"] if c[3] else None for c in model.calls]
        assert sent.count("json_schema") == 1 and sent.count("json_object") == 8

    async def test_a_probe_that_gets_no_reply_does_not_hold_the_others(
        self, prompts: Prompts, schema: Schema
    ) -> None:
        """When the first structure call fails without a refusal (a timeout), the others
        go on together in its mode (round 25's re-check: one at a time, 2 s apart)."""
        busy = 0
        most = 0

        class Timing(FakeModel):
            async def chat(self, messages: Sequence[Message], **kwargs: Any) -> ChatReply:
                nonlocal busy, most
                busy += 1
                most = max(most, busy)
                try:
                    await anyio.sleep(0.02)
                    return await super().chat(messages, **kwargs)
                finally:
                    busy -= 1

        timeout = LlmRetryableError("timed out", cause="timeout")
        modes = StructuredOutputs("auto", schema)
        model = Timing(*[timeout] * 8)  # no reply ever comes

        async def one(name: str) -> None:
            with contextlib.suppress(LlmRetryableError):
                await structure(model, page(name), prompts=prompts, schema=schema, structured=modes)

        async with anyio.create_task_group() as tg:
            for n in range(8):
                tg.start_soon(one, f"p{n}")
        assert most >= 4  # the seven after the probe overlapped, not one at a time

    async def test_fixed_mode_does_not_fall_back(self, prompts: Prompts, schema: Schema) -> None:
        """A mode the user chose is kept: the refusal fails the page."""
        modes = StructuredOutputs("json_schema", schema)
        error = LlmStatusError("HTTP 400 (response_format)", cause="400", status=400)
        with pytest.raises(LlmStatusError):
            await structure(
                FakeModel(error), page(GOOD_PAGE), prompts=prompts, schema=schema, structured=modes
            )
        assert modes.mode == "json_schema"

    async def test_structure_one_repair(self, prompts: Prompts, schema: Schema) -> None:
        """An invalid answer is sent back once with the reason, then the fix is kept."""
        model = FakeModel('Sure: {"company": 12, "total": 9.0}', f"```json\n{GOOD}\n```")
        p = await structure(model, page(GOOD_PAGE), prompts=prompts, schema=schema)
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
            await structure(model, page(GOOD_PAGE), prompts=prompts, schema=schema)
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
    """A client tuned for quick tests: short timeouts."""
    options: dict[str, Any] = {
        "api_key": "sk-e2e-secret",
        "timeout": httpx.Timeout(1.0, connect=1.0),
    }
    options.update(kwargs)
    return LlmClient(server.url, "asyncpipe-test", **options)


QUICK = Retry(attempts=5, base=0.05, cap=0.4, deadline=20.0, rng=random.Random(1))


async def load_stages(client: LlmClient, retry: Retry = QUICK, **kwargs: Any) -> LlmStages:
    """Build the bound stages off the event loop (it reads files)."""
    return await anyio.to_thread.run_sync(lambda: llm_stages(client, retry=retry, **kwargs))


async def run_stage(stages: LlmStages, name: str, *pages: Page) -> tuple[list[Item], RunSummary]:
    """Run pages through one LLM stage in a real pipeline, with the stages' retry policy."""
    got: list[Item] = []

    async def sink(item: Item) -> None:
        got.append(item)

    stage = Stage(name, getattr(stages, name), retry=stages.retry, workers=len(pages))
    summary = await Pipeline([stage]).run(list(pages), sink=sink)
    return sorted(got, key=lambda item: item.index), summary


class TestEndToEnd:
    """The stages against the rule-based server subprocess, in a real pipeline."""

    async def test_three_stages(self) -> None:
        """correct → fix → structure give the server's deterministic answers."""
        async with open_server(api_key="sk-e2e-secret") as srv, client_for(srv) as client:
            stages = await load_stages(client)
            p = await stages.correct(page(OCR))
            assert p.corrected == rule_correct(OCR)
            assert "BOOK SHOP" in p.corrected
            assert "TOTAL amount\n9.00" in p.corrected
            p = await stages.fix(p)
            assert p.corrected == rule_fix(rule_correct(OCR))
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
        assert (stats.attempts, stats.succeeded, stats.failed) == (4, 4, 0)
        assert stats.total_tokens > 0
        assert stages.rejected == {}
        assert [(r["task"], r["item"], r["auth"]) for r in records] == [
            ("correct", "receipts/000.jpg#1@abc", "ok"),
            ("fix", "receipts/000.jpg#1@abc", "ok"),
            ("structure", "receipts/000.jpg#1@abc", "ok"),
            ("fix", "second", "ok"),
        ]

    @pytest.mark.parametrize("fault", ["500", "429", "hang", "malformed"])
    async def test_fault_is_retried(self, fault: str) -> None:
        """Each injected fault costs one retry, counted by the stage, and the answer is right."""
        options: dict[str, Any] = {"faults": {fault: 1.0}, "fault_limit": 1}
        options["fault_retry_after"] = 0.2
        async with open_server(**options) as srv:
            async with client_for(srv, timeout=httpx.Timeout(0.5, connect=1.0)) as client:
                stages = await load_stages(client)
                [item], summary = await run_stage(stages, "correct", page(OCR))
                stats = client.statistics()
            records = await anyio.to_thread.run_sync(srv.read_log)
        assert item.ok and item.value.corrected == rule_correct(OCR)
        assert item.value.notes["llm"]["correct"]["attempts"] == 2
        cause = {"hang": "timeout"}.get(fault, fault)
        assert stats.failures == {cause: 1}
        assert summary.stages[0].retried == 1
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
        assert p.fields == rule_structure(OCR)
        assert p.notes["llm"]["structure"]["repaired"] is True
        assert [r["fault"] for r in records] == ["invalid_output", None]

    async def test_invalid_output_twice_fails(self) -> None:
        """Invalid output on the repair too ends in a clear error, with fallback fields."""
        fallback_calls: list[str] = []

        def fallback(p: Page) -> dict[str, Any]:
            fallback_calls.append(p.ref.id)
            return {"total": "from rules"}

        async with open_server(faults={"invalid_output": 1.0}) as srv, client_for(srv) as client:
            stages = await load_stages(client, fallback=fallback)
            [item], _ = await run_stage(stages, "structure", page(OCR))
            records = await anyio.to_thread.run_sync(srv.read_log)
        assert item.error is not None and item.error.type == "LlmOutputError"
        assert "invalid after one repair" in item.error.message
        assert "receipts/000.jpg#1@abc" in item.error.message
        assert item.error.attempts == 1
        assert item.value.fallback_fields == {"total": "from rules"}
        assert fallback_calls == ["receipts/000.jpg#1@abc"]
        assert len(records) == 2

    async def test_invented_fields_keep_the_offline_rules(self) -> None:
        """Fields the page does not hold, and an empty one, give way to the offline rules'."""
        offline = {"company": "BOOK SHOP", "date": "25/12/2018", "address": None, "total": "9.00"}
        async with open_server(faults={"invented_output": 1.0}) as srv, client_for(srv) as client:
            stages = await load_stages(client, fallback=lambda p: dict(offline))
            [item], _ = await run_stage(stages, "structure", page(OCR))
        assert item.ok and item.value.fields == offline
        assert item.value.notes["llm"]["structure"]["replaced"] == {
            "company": "words not in the text",
            "date": "a date not in the text",
            "address": "words not in the text",
            "total": "empty",
        }
        assert stages.replaced["date (a date not in the text)"] == 1
        assert (
            "LLM fields replaced by the offline rules' by the field guard: "
            "address (words not in the text) 1, company (words not in the text) 1, "
            "date (a date not in the text) 1, total (empty) 1"
        ) in stages.summary(("structure",))

    async def test_fields_read_from_the_page_are_kept(self) -> None:
        """The guard keeps what the model read, even where the offline rules found nothing."""
        missed = dict.fromkeys(("company", "date", "address", "total"))
        text = rule_fix(rule_correct(OCR))
        async with open_server() as srv, client_for(srv) as client:
            stages = await load_stages(client, fallback=lambda p: dict(missed))
            [item], _ = await run_stage(stages, "structure", page(text))
        assert item.ok and item.value.fields == rule_structure(text)
        assert all(item.value.fields.values())
        assert "replaced" not in item.value.notes["llm"]["structure"]
        assert stages.replaced == {}

    async def test_persistent_500_exhausts(self) -> None:
        """A server that always fails: the record carries the true attempt count."""
        retry = Retry(attempts=3, base=0.05, cap=0.1, deadline=20.0)
        async with open_server(faults={"500": 1.0}) as srv, client_for(srv) as client:
            stages = await load_stages(client, retry)
            [item], summary = await run_stage(stages, "fix", page("x"))
            records = await anyio.to_thread.run_sync(srv.read_log)
        assert item.error is not None
        assert item.error.type == "LlmRetryableError"
        assert item.error.attempts == 3
        assert "attempt 3" in item.error.message and "HTTP 500" in item.error.message
        assert summary.stages[0].retried == 2
        assert [r["attempt"] for r in records] == [1, 2, 3]

    async def test_refused_json_schema_falls_back(self) -> None:
        """A server without json_schema: the run steps to json_object once, and says so."""
        async with open_server(response_formats=("json_object",)) as srv, client_for(srv) as client:
            stages = await load_stages(client)
            items, _ = await run_stage(stages, "structure", page(OCR, "a"), page(OCR, "b"))
            records = await anyio.to_thread.run_sync(srv.read_log)
        assert all(item.ok and item.value.fields == rule_structure(OCR) for item in items)
        statuses = [r["status"] for r in records]
        # At most one refusal per call that was in flight when the run switched.
        assert statuses.count(400) in (1, 2) and statuses.count(200) == 2
        assert stages.structured.mode == "json_object"
        assert "json_object, after the server refused: json_schema" in stages.summary()[0]

    async def test_rewrite_is_rejected_and_counted(self) -> None:
        """A server that rewrites: the guard keeps the OCR text and counts it."""
        async with open_server(faults={"rewrite": 1.0}) as srv, client_for(srv) as client:
            stages = await load_stages(client)
            [item], _ = await run_stage(stages, "correct", page(OCR))
        assert item.ok and item.value.corrected == OCR
        assert item.value.notes["llm"]["correct"]["rejected"] is True
        assert stages.rejected == {"correct": 1}
        assert "corrections rejected by the guard: correct=1" in stages.summary()
        # Only what called the LLM is summarised (helper-86's audit: a structured-output
        # mode was printed for a run whose structure ran its offline rules).
        assert stages.summary(("correct",)) == ["corrections rejected by the guard: correct=1"]
        assert stages.summary(("structure",)) == [
            stages.structured.describe(),
            "LLM fields replaced by the offline rules' by the field guard: none",
        ]

    async def test_down_window(self) -> None:
        """
        A two-second outage (503) is waited for by the client within the deadline, and
        spends none of the stage's attempts: one attempt is enough.
        """
        retry = Retry(attempts=1, deadline=20.0)
        async with open_server(down_after=0.0, down_for=2.0) as srv, client_for(srv) as client:
            stages = await load_stages(client, retry)
            [item], summary = await run_stage(stages, "correct", page("T0TAL"))
            stats = client.statistics()
        assert item.ok and item.value.corrected == "TOTAL"
        assert stats.failures["503"] >= 1
        assert summary.stages[0].retried == 0

    async def test_connection_refused_window(self) -> None:
        """A server that is gone for a moment (connection refused) is retried."""
        # Many short tries within the deadline: a restart takes seconds on a busy machine.
        retry = Retry(attempts=60, base=0.05, cap=0.4, deadline=30.0)
        async with open_server() as srv:
            await anyio.to_thread.run_sync(srv.stop)
            # A half-started server may accept and then answer late: allow read timeouts.
            async with client_for(srv, timeout_retries=10) as client:
                stages = await load_stages(client, retry)
                async with anyio.create_task_group() as tg:

                    async def restart() -> None:
                        await anyio.sleep(0.5)
                        await anyio.to_thread.run_sync(srv.start)

                    tg.start_soon(restart)
                    [item], _ = await run_stage(stages, "correct", page("T0TAL"))
                stats = client.statistics()
        assert item.ok, item.error
        assert item.value.corrected == "TOTAL"
        assert stats.failures["connect"] >= 1

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
        assert stats.failures == {}
        ts = sorted(r["ts"] for r in records)
        for i in range(len(ts) - limit):
            assert ts[i + limit] - ts[i] >= period, f"window at {i} holds > {limit}"
        assert sorted(r["item"] for r in records) == sorted(f"item-{i}" for i in range(calls))


class TestOptions:
    """The LLM command-line options and how the pipeline uses them."""

    def test_parse_and_validate(self) -> None:
        """--llm-stages and friends become typed settings; unknown stages are refused."""
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        args = parser.parse_args(
            ["--llm-stages", "structure", "--llm-structured", "json_object", "--llm-deadline", "30"]
        )
        options = LlmOptions.from_args(args)
        assert options.stages == ("structure",)
        assert options.structured == "json_object"
        assert options.retry().deadline == 30.0
        assert options.retry().attempts == DEFAULT_RETRY.attempts
        with pytest.raises(SystemExit):
            parser.parse_args(["--llm-stages", "correct,summarise"])
        with pytest.raises(ConfigError):
            LlmOptions(min_similarity=120)
        assert options.client_kwargs()["api_key_header"] == "Authorization"
        keyed = LlmOptions.from_args(parser.parse_args(["--llm-key-header", "api-key"]))
        assert keyed.client_kwargs()["api_key_header"] == "api-key"

    def test_the_deadline_makes_room_for_the_timeout(self) -> None:
        """``--llm-timeout 300`` alone gives each call room for its timed-out tries; a
        deadline given under the timeout wins, with a warning (round 23's audit: 300 did
        nothing past the 180 s default deadline)."""
        parser = argparse.ArgumentParser()
        parser.add_argument("--llm-timeout", type=float, default=60.0)
        add_arguments(parser)
        deadline = LlmOptions.from_args(parser.parse_args([])).deadline
        assert deadline == DEFAULT_RETRY.deadline
        slow = parser.parse_args(["--llm-timeout", "300"])
        assert LlmOptions.from_args(slow).deadline == 600.0  # 300 x (1 retry + 1)
        args = parser.parse_args(["--llm-timeout", "300", "--llm-timeout-retries", "0"])
        assert LlmOptions.from_args(args).deadline == 300.0
        args = parser.parse_args(["--llm-timeout", "300", "--llm-deadline", "900"])
        assert LlmOptions.from_args(args).deadline == 900.0
        short = parser.parse_args(["--llm-timeout", "300", "--llm-deadline", "100"])
        assert LlmOptions.from_args(short).deadline == 100.0
        with pytest.raises(ConfigError, match="must be positive"):
            LlmOptions.from_args(parser.parse_args(["--llm-deadline", "0"]))

    def test_a_timeout_given_is_told_from_the_default(self) -> None:
        """``--llm-timeout`` not given is 60 s and not given; given, even 60, it is the
        user's (only then is the start's warning for a llama.cpp server left out)."""
        parser = argparse.ArgumentParser()
        parser.add_argument("--llm-timeout", type=float, default=None)
        add_arguments(parser)
        default = LlmOptions.from_args(parser.parse_args([]))
        assert (default.timeout, default.timeout_given) == (60.0, False)
        assert default.deadline == DEFAULT_RETRY.deadline
        given = LlmOptions.from_args(parser.parse_args(["--llm-timeout", "60"]))
        assert (given.timeout, given.timeout_given) == (60.0, True)

    def test_timeout_advice(self) -> None:
        """Most requests timed out: one sentence with the measured speed and the option."""
        slow = LlmStatistics(
            attempts=4,
            succeeded=1,
            failed=3,
            failures={"timeout": 3},
            completion_tokens=50,
            seconds=10.0,
        )
        advice = timeout_advice(slow, 60.0)
        assert advice is not None
        assert "3 of 4" in advice and "5.0 tokens/s" in advice and "--llm-timeout" in advice
        assert "--llm-concurrency" in advice  # no cap: the server may have queued them
        capped = timeout_advice(slow, 60.0, concurrency=2)
        assert capped is not None and "--llm-concurrency" not in capped
        fine = LlmStatistics(attempts=4, succeeded=3, failed=1, failures={"timeout": 1})
        assert timeout_advice(fine, 60.0) is None
        # The max_tokens options of the stages that ran, only (a review: a structure-only
        # run was told to lower --llm-text-max-tokens, which it does not use).
        assert "(or lower --llm-text-max-tokens or --llm-structure-max-tokens)" in advice
        structure = timeout_advice(slow, 60.0, stages=("structure",))
        assert structure is not None and "(or lower --llm-structure-max-tokens)" in structure
        text = timeout_advice(slow, 60.0, stages=("correct", "fix"))
        assert text is not None and "(or lower --llm-text-max-tokens)" in text

    async def test_only_chosen_stages_call_the_llm(self) -> None:
        """--llm-stages structure: correct and fix run offline, structure is async with the
        LLM retry policy."""
        stages = await load_stages(FakeModel())  # type: ignore[arg-type]
        settings = DocumentSettings(model="m", llm_stages=("structure",))
        pipeline = build_pipeline(settings, stages)
        kinds = {s.name: (s.kind, s.version, s.retry) for s in pipeline.stages}
        assert kinds["correct"][:2] == ("thread", "offline-1")
        assert kinds["fix"][:2] == ("thread", "offline-1")
        assert kinds["structure"] == ("async", "llm-m-2", stages.retry)
