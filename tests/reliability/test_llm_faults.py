"""
LLM faults against the local server, through the CLI: a mixed fault profile, and a
burst in which the server is down.  Every item ends ok, or as an error record naming the
right stage and reason; the process never crashes; the rate limit holds in every window,
retries included; the summary counts failed requests by cause, and the stage table counts
the retries (one retry system: the stages' Retry makes them).
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from reliability_helpers import (
    LLM_STAGES,
    RECEIPTS,
    llm_run_args,
    read_lines,
    request_key,
    run_cli,
    write_receipts,
)

from stages.testing.llm_server._rules import rule_correct, rule_fix, rule_structure
from stages.testing.llm_server.testing import run_server

# The production limit is 150/min; scaled to 10 per 2 s so a CI run sees many windows.
LIMIT, PERIOD = 10, 2.0
MIXED = {"500": 0.20, "429": 0.10, "hang": 0.05, "malformed": 0.02, "invalid_output": 0.03}
# Server fault kind → the client's retry cause.
CAUSE = {
    "500": "500",
    "429": "429",
    "hang": "timeout",
    "malformed": "malformed",
    "down": "503",
    "rate_limit": "429",
}
LLM_ERRORS = {
    "LlmRetryableError",
    "LlmRetriesExhausted",
    "LlmOutputError",
    "LlmDeadlineError",
    "LlmStatusError",
}
RETRYABLE_CAUSES = ("500", "429", "503", "timeout", "malformed", "connect", "network")


def _inputs(folder: Path, copies: int) -> Path:
    write_receipts(folder)
    for n in range(1, copies):
        for path in list(folder.glob("*.*")):
            if "~" not in path.stem:
                shutil.copy(path, path.with_name(f"{path.stem}~{n}{path.suffix}"))
    return folder


def _args(inputs: Path, out: Path, url: str, *extra: str) -> list[str]:
    return llm_run_args(
        inputs,
        out,
        url,
        "--llm-timeout",
        "1",
        *extra,
        workers="ocr=2,llm=8",
        rate_limit=f"{LIMIT}/{PERIOD:g}",
    )


def _failures(output: str) -> Counter[str]:
    """The failed requests by cause, from the LLM summary line the CLI prints."""
    match = re.search(r"^llm: \d+ requests \(\d+ ok, \d+ failed: (.*?)\)", output, re.MULTILINE)
    assert match is not None, output
    if match.group(1) == "none":
        return Counter()
    return Counter({k: int(v) for k, v in (p.split("=") for p in match.group(1).split())})


def _stage_retries(output: str) -> int:
    """The retries the LLM stages made, from the statistics table (its ``retry`` column)."""
    head = next(line for line in output.splitlines() if line.startswith("stage "))
    column = head.split().index("retry")
    rows = [
        line.split()
        for line in output.splitlines()
        if line.split()[:1] in [[s] for s in LLM_STAGES]
    ]
    assert len(rows) == len(LLM_STAGES), output
    return sum(int(row[column]) for row in rows)


def _gave_up(records: list[dict[str, Any]]) -> int:
    """Calls whose last attempt failed retryably, so it was not retried."""
    return sum(
        1
        for r in records
        if r["status"] == "error"
        and r["error"]["type"] in ("LlmRetryableError", "LlmRetriesExhausted")
    )


def _assert_rate(requests: list[dict[str, Any]]) -> None:
    """No window of PERIOD seconds holds more than LIMIT requests (retries included)."""
    stamps = sorted(r["ts"] for r in requests)
    crowded = [
        (i, stamps[i + LIMIT] - stamps[i])
        for i in range(len(stamps) - LIMIT)
        if stamps[i + LIMIT] - stamps[i] < PERIOD
    ]
    assert not crowded, f"{LIMIT + 1} requests within {PERIOD}s: {crowded[:5]}"
    assert not [r for r in requests if r["fault"] == "rate_limit"], "the server had to 429"


def _assert_records(records: list[dict[str, Any]], requests: list[dict[str, Any]]) -> Counter[str]:
    """Each record is ok with the right fields, or an LLM error the server log explains."""
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for request in requests:
        by_key.setdefault(request_key(request), []).append(request)
    endings: Counter[str] = Counter()
    for record in records:
        if record["status"] == "ok":
            fields = rule_structure(rule_fix(rule_correct(record["text"])))
            # The field guard gives an empty field the offline rules' value, and says so.
            replaced = record["llm"]["structure"].get("replaced", {})
            assert set(replaced.values()) <= {"empty"}, record
            assert record["fields"] | dict.fromkeys(replaced) == fields | dict.fromkeys(replaced)
            endings["ok"] += 1
            continue
        error = record["error"]
        stage = error["stage"]
        assert stage in LLM_STAGES, record
        assert error["type"] in LLM_ERRORS, record
        assert repr(record["id"]) in error["message"], error
        tried = by_key[(record["id"], stage)]
        if error["type"] == "LlmOutputError":
            assert [r["fault"] for r in tried[-2:]] == ["invalid_output"] * 2, tried
            assert "invalid after one repair" in error["message"]
        elif error["type"] == "LlmRetryableError":
            assert len(tried) == error["attempts"] == 5, (tried, error)
            assert all(r["status"] != 200 or r["fault"] == "malformed" for r in tried), tried
            last = tried[-1]["fault"]
            # The message words a timeout as "timed out"; the other causes by their name.
            said = "timed out" if last == "hang" else CAUSE.get(last, last)
            assert said in error["message"] or "HTTP" in error["message"], (last, error)
        elif error["type"] == "LlmRetriesExhausted":
            # A timed-out generation is retried once, then given up.
            assert [r["fault"] for r in tried if r["fault"] == "hang"] == ["hang", "hang"], tried
            assert "timed out 2 times" in error["message"]
        endings[f"error:{stage}:{error['type']}"] += 1
        # The later stages never ran for it.
        later = LLM_STAGES[LLM_STAGES.index(stage) + 1 :]
        assert not [s for s in later if (record["id"], s) in by_key], record
    return endings


class TestLlmFaults:
    """The LLM stages under injected faults."""

    @pytest.mark.timeout(150)
    def test_mixed_profile(self, tmp_path: Path) -> None:
        """20% 500, 10% 429, 5% hangs, 2% malformed, 3% invalid output: all accounted for."""
        inputs = _inputs(tmp_path / "in", copies=2)
        out, log = tmp_path / "r.jsonl", tmp_path / "cli.log"
        with run_server(
            workdir=tmp_path,
            latency=0.02,
            seed=5,
            faults=MIXED,
            fault_retry_after=0.3,
            hang_seconds=30,
            rate_limit=LIMIT,
            rate_period=PERIOD,
        ) as server:
            result = run_cli(_args(inputs, out, server.url), log=log, timeout=140)
            requests = server.read_log()
        assert result.returncode == 0, result.output
        assert "Traceback" not in result.output
        records, torn = read_lines(out)
        assert torn == 0
        assert sorted(Path(r["source"]).name for r in records) == sorted(
            p.name for p in inputs.iterdir()
        )
        endings = _assert_records(records, requests)
        _assert_rate(requests)
        faults = Counter(r["fault"] for r in requests if r["fault"])
        failures = _failures(result.output)
        for kind in ("500", "429", "hang", "malformed"):
            assert failures[CAUSE[kind]] == faults[kind], (kind, faults, failures)
        assert set(failures) <= set(CAUSE.values())
        # Each failed attempt is retried by its stage, except the last of a call that gave up.
        retryable = sum(failures[c] for c in RETRYABLE_CAUSES)
        retries = _stage_retries(result.output)
        assert retries == retryable - _gave_up(records), (retries, failures, endings)
        for kind in ("500", "429", "hang"):
            assert faults[kind] > 0, f"no {kind} fault was drawn: {faults}"
        print(
            f"\nmixed: {len(requests)} requests, faults {dict(faults)}, "
            f"retries {retries}, endings {dict(endings)}"
        )

    @pytest.mark.timeout(150)
    def test_burst_down(self, tmp_path: Path) -> None:
        """The server is down for 10 s (a restart), then back: the calls wait for it
        together within their deadline, and every page ends ok (round 31's review: each
        call spent its 5 attempts within 20 s, and every page in flight failed)."""
        inputs = _inputs(tmp_path / "in", copies=1)
        out, log = tmp_path / "r.jsonl", tmp_path / "cli.log"
        with run_server(
            workdir=tmp_path,
            latency=0.05,
            down_after=0.5,
            down_for=10.0,
            rate_limit=LIMIT,
            rate_period=PERIOD,
        ) as server:
            result = run_cli(_args(inputs, out, server.url), log=log)
            requests = server.read_log()
        assert result.returncode == 0, result.output
        records, _ = read_lines(out)
        _assert_records(records, requests)
        assert [r for r in records if r["status"] != "ok"] == []
        down = [r for r in requests if r["fault"] == "down"]
        assert down, "the down window was never hit"
        assert _failures(result.output)["503"] == len(down)
        # The calls waited in the client, not in the stages' Retry: no attempt was spent.
        assert _stage_retries(result.output) == 0
        # Each call in flight tried once, then about one try per wait (1, 2, 4, 8 s): not
        # every call every few seconds.
        calls = {request_key(r) for r in down}
        assert len(down) <= len(calls) + 12, (len(down), len(calls))
        _assert_rate(requests)
        print(f"\nburst: {len(down)} requests of {len(calls)} calls hit the down window")

    @pytest.mark.timeout(150)
    def test_down_for_good_stops_the_run(self, tmp_path: Path) -> None:
        """The server goes down for good: once it has been unreachable for a call's
        deadline (--llm-deadline 3) the run stops, exit 4, saying to --resume once it is
        back, and writes no error record; the resume with the server up finishes every
        page once.  (Each page waited out its own deadline and became an error record: a
        1000-page run against a dead server took pages / concurrency x 180 s.)"""
        inputs = _inputs(tmp_path / "in", copies=2)
        pages = len(list(inputs.iterdir()))
        out, log = tmp_path / "r.jsonl", tmp_path / "cli.log"
        with run_server(
            workdir=tmp_path,
            latency=0.05,
            down_after=0.5,
            down_for=10_000.0,
            rate_limit=LIMIT,
            rate_period=PERIOD,
        ) as server:
            result = run_cli(_args(inputs, out, server.url, "--llm-deadline", "3"), log=log)
            assert result.returncode == 4, result.output
            assert "the LLM server has been unreachable for 3 s" in result.output, result.output
            assert "--resume once it is back" in result.output
            assert [r for r in server.read_log() if r["fault"] == "down"]
            records, _ = read_lines(out)
            assert [r for r in records if r["status"] != "ok"] == []
            assert len(records) < pages
            server.stop()
            server.options = replace(server.options, down_after=None)
            server.start()
            again = run_cli([*_args(inputs, out, server.url), "--resume"], log=log)
            assert again.returncode == 0, again.output
            requests = server.read_log()
        _assert_rate(requests)
        final, _ = read_lines(out)
        assert sorted(r["id"] for r in final) == sorted({r["id"] for r in final})
        assert len(final) == pages
        assert all(r["status"] == "ok" for r in final), final
        print(f"\ndown for good: {len(records)} of {pages} pages before the stop, then all")

    @pytest.mark.timeout(150)
    def test_pages_finish_in_order_with_one_slot(self, tmp_path: Path) -> None:
        """With one request at a time (--llm-concurrency 1), the first page's structure
        call goes before the third page's correct call: a later stage first, then the
        page begun first (the calls queued first come first served, so every page's
        correct call went before any structure call, and no page was written until all
        were corrected: 0 lines after 7 minutes with 2 slots)."""
        inputs = tmp_path / "in"
        write_receipts(inputs, list(RECEIPTS)[:3])
        out, log = tmp_path / "r.jsonl", tmp_path / "cli.log"
        with run_server(workdir=tmp_path, latency=1.5) as server:
            args = llm_run_args(
                inputs, out, server.url, "--llm-concurrency", "1", workers="ocr=2,llm=8"
            )
            result = run_cli(args, log=log)
            requests = server.read_log()
        assert result.returncode == 0, result.output
        sent = [request_key(r) for r in sorted(requests, key=lambda r: r["ts"])]
        corrected = [item for item, task in sent if task == "correct"]
        assert len(corrected) == 3, sent
        first, last = corrected[0], corrected[-1]
        assert sent.index((first, "structure")) < sent.index((last, "correct")), sent
