"""
A ``retry_failed`` resume replaces error lines without ever leaving an item with
neither line: not after a SIGKILL half way, nor after a stop.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import orjson
from killing import kill_when

from asyncpipe import Journal, JsonlSink, Pipeline, RunSummary, Stage, StopIntake

APP = Path(__file__).with_name("retryapp.py")
ITEMS = 60
FAILING = {str(n) for n in range(0, ITEMS, 3)}


class App:
    """The files of one run of ``tests/retryapp.py``, and a way to start it."""

    def __init__(self, root: Path) -> None:
        self.out = root / "out.jsonl"
        self.journal = root / "journal.jsonl"
        self.calls = root / "calls"

    def start(self, *extra: str) -> subprocess.Popen[bytes]:
        args = [sys.executable, str(APP), "--items", str(ITEMS), "--out", str(self.out)]
        args += ["--journal", str(self.journal), "--calls", str(self.calls), *extra]
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def finish(self, *extra: str) -> None:
        proc = self.start(*extra)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()

    def lines(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.out.read_bytes().splitlines()]

    def retried(self) -> set[str]:
        """The failing items with an ok line (whole lines only: the run is writing)."""
        data = self.out.read_bytes()
        lines = data[: data.rfind(b"\n") + 1].splitlines()
        return {r["id"] for r in map(orjson.loads, lines) if r["status"] == "ok"} & FAILING

    def statuses(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for line in self.lines():
            out.setdefault(line["id"], set()).add(line["status"])
        return out


class TestRetryFailedKill:
    def test_kill_during_a_retry_leaves_every_item_a_line(self, tmp_path: Path) -> None:
        """SIGKILL a retry_failed resume half way: every item keeps a line, and a resume
        (plain, then retrying) ends with one line per item."""
        app = App(tmp_path)
        app.finish()
        assert {k for k, s in app.statuses().items() if s == {"error"}} == FAILING
        app.calls.unlink()
        proc = app.start("--resume", "--retry-failed", "--fixed", "--pause", "0.1")
        # A few replacements are in, most are not.
        kill_when(proc, lambda: len(app.retried()) >= 2, within=30)
        statuses = app.statuses()
        assert set(statuses) == {str(n) for n in range(ITEMS)}  # never neither line
        retried = {k for k, s in statuses.items() if "ok" in s and k in FAILING}
        assert retried and retried != FAILING  # the kill came half way
        # A plain resume drops the error lines replaced before the kill, keeps the rest.
        app.finish("--resume", "--fixed")
        lines = app.lines()
        assert Counter(line["id"] for line in lines) == Counter(str(n) for n in range(ITEMS))
        failed = {line["id"] for line in lines if line["status"] == "error"}
        assert failed == FAILING - retried
        app.finish("--resume", "--retry-failed", "--fixed")
        lines = app.lines()
        assert Counter(line["id"] for line in lines) == Counter(str(n) for n in range(ITEMS))
        assert all(line["status"] == "ok" for line in lines)
        assert not (tmp_path / "out.jsonl.retrying").exists()


class TestRetryFailedStop:
    async def test_a_stopped_retry_keeps_the_error_lines_not_replaced(self, tmp_path: Path) -> None:
        """A retry stopped half way drops the error lines it replaced and keeps the rest."""
        out = tmp_path / "out.jsonl"
        retried: list[int] = []

        async def failing(value: int) -> int:
            if value % 3 == 0:
                raise ValueError(value)
            return value

        async def retrying(value: int) -> int:
            if len(retried) == 4:
                raise StopIntake("enough")
            retried.append(value)
            return value

        async def run(work: Callable[[int], Awaitable[int]], *, retry: bool) -> RunSummary:
            return await Pipeline([Stage("work", work)]).run(
                range(ITEMS),
                sink=JsonlSink(out),
                journal=Journal(tmp_path / "j"),
                key=str,
                resume=retry,
                retry_failed=retry,
            )

        await run(failing, retry=False)
        summary = await run(retrying, retry=True)
        assert summary.interrupted == "enough"
        lines = [orjson.loads(line) for line in (await anyio.Path(out).read_bytes()).splitlines()]
        assert Counter(line["id"] for line in lines) == Counter(str(n) for n in range(ITEMS))
        failed = {line["id"] for line in lines if line["status"] == "error"}
        assert failed == FAILING - {str(n) for n in retried}
        assert not await anyio.Path(tmp_path / "out.jsonl.retrying").exists()
