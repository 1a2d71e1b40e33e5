"""
An ordered ``retry_failed`` resume leaves the output in input order, line for line as a
clean ordered run writes it: after a clean retry, a stopped one and a SIGKILL half way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import orjson
from killing import kill_when
from test_retry_failed import FAILING, ITEMS, App

from asyncpipe import Journal, JsonlSink, Pipeline, RunSummary, Stage, StopIntake
from asyncpipe._durable import temporary
from asyncpipe._keyindex import InputOrder

INPUT = [str(n) for n in range(ITEMS)]


async def failing(value: int) -> int:
    if value % 3 == 0:
        raise ValueError(value)
    return value


async def fixed(value: int) -> int:
    return value


async def run(
    root: Path,
    work: Callable[[int], Awaitable[int]],
    *,
    retry: bool,
    ordered: bool = True,
) -> RunSummary:
    return await Pipeline([Stage("work", work, workers=4)]).run(
        range(ITEMS),
        sink=JsonlSink(root / "out.jsonl"),
        journal=Journal(root / "journal.jsonl"),
        key=str,
        ordered=ordered,
        resume=retry,
        retry_failed=retry,
    )


async def lines(root: Path) -> list[dict[str, Any]]:
    data = await anyio.Path(root / "out.jsonl").read_bytes()
    return [orjson.loads(line) for line in data.splitlines()]


def without_timings(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in record.items() if k != "timings"} for record in records]


class TestRetryFailedOrder:
    async def test_a_retry_leaves_the_output_as_a_clean_run_writes_it(self, tmp_path: Path) -> None:
        """The retried items' new lines stand where a clean ordered run puts them."""
        clean = tmp_path / "clean"
        await run(clean, fixed, retry=False)
        await run(tmp_path, failing, retry=False)
        summary = await run(tmp_path, fixed, retry=True)
        assert summary.ok == len(FAILING)
        records = await lines(tmp_path)
        assert [record["id"] for record in records] == INPUT
        assert without_timings(records) == without_timings(await lines(clean))
        assert not await anyio.Path(tmp_path / "out.jsonl.retrying").exists()

    async def test_a_stopped_retry_is_in_order_and_keeps_the_rest(self, tmp_path: Path) -> None:
        """A retry stopped half way puts what it replaced in order, keeps the rest."""
        retried: list[int] = []

        async def some(value: int) -> int:
            if len(retried) == 4:
                raise StopIntake("enough")
            retried.append(value)
            return value

        await run(tmp_path, failing, retry=False)
        summary = await run(tmp_path, some, retry=True)
        assert summary.interrupted == "enough"
        records = await lines(tmp_path)
        assert [record["id"] for record in records] == INPUT
        failed = {record["id"] for record in records if record["status"] == "error"}
        assert failed == FAILING - {str(n) for n in retried}
        await run(tmp_path, fixed, retry=True)
        records = await lines(tmp_path)
        assert [record["id"] for record in records] == INPUT
        assert all(record["status"] == "ok" for record in records)

    async def test_an_unordered_retry_appends(self, tmp_path: Path) -> None:
        """Unordered, the retried items' lines come at the end, as before."""
        await run(tmp_path, failing, retry=False, ordered=False)
        await run(tmp_path, fixed, retry=True, ordered=False)
        ids = [record["id"] for record in await lines(tmp_path)]
        assert sorted(ids) == sorted(INPUT)
        assert set(ids[-len(FAILING) :]) == FAILING


class TestInputOrder:
    def test_it_gives_back_the_keys_asked_in_order(self) -> None:
        """Every key asked, repeats and odd ones too, in order; the answers are done's."""
        keys = ["b", "a\0z", "", "b", "\udcff", "é" * 300]
        order = InputOrder({"b"})
        assert [key in order for key in keys] == [True, False, False, True, False, False]
        assert list(order) == keys
        assert len(order) == 1


class TestRetryFailedOrderKill:
    def test_a_resume_after_a_kill_puts_the_lines_in_order(self, tmp_path: Path) -> None:
        """SIGKILL an ordered retry half way: the next resume, plain, ends in input order."""
        app = App(tmp_path)
        app.finish()
        proc = app.start("--resume", "--retry-failed", "--fixed", "--pause", "0.1")
        kill_when(proc, lambda: len(app.retried()) >= 2, within=30)
        assert (tmp_path / "out.jsonl.retrying").exists()
        # What a kill during the closing rewrite leaves: its temporary file, half written.
        temporary(app.out).write_bytes(app.out.read_bytes()[:100])
        app.finish("--resume", "--fixed")
        records = app.lines()
        assert [record["id"] for record in records] == INPUT
        assert not (tmp_path / "out.jsonl.retrying").exists()
        app.finish("--resume", "--retry-failed", "--fixed")
        records = app.lines()
        assert [record["id"] for record in records] == INPUT
        assert all(record["status"] == "ok" for record in records)
