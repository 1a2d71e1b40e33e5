from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial

import anyio
import pytest

from asyncpipe import (
    Item,
    Pipeline,
    ProgressReporter,
    Retry,
    RetryableError,
    RunSummary,
    Sink,
    Stage,
    StageStatistics,
)
from asyncpipe._meter import ProgressSnapshot, bottleneck
from asyncpipe._stats import StageCounters


async def identity(value: int) -> int:
    """An async stage function that returns its input."""
    return value


class Recorder(ProgressReporter):
    """A progress reporter that keeps what it is given."""

    interval = 0.01

    def __init__(self) -> None:
        super().__init__()
        self.updates: list[list[StageStatistics]] = []
        self.finished: RunSummary | None = None

    def update(self, snapshot: ProgressSnapshot) -> None:
        self.updates.append(snapshot.stages)

    def finish(self, summary: RunSummary) -> None:
        self.finished = summary


def stats(name: str, **changes: float) -> StageStatistics:
    """A StageStatistics with neutral values, changed as asked."""
    values: dict[str, float] = {
        "workers": 1,
        "items_in": 1,
        "items_out": 1,
        "failed": 0,
        "retried": 0,
        "skipped": 0,
        "busy_seconds": 0.0,
        "utilization": 0.0,
        "queue_depth": 0,
        "latency_p50": 0.0,
        "latency_p95": 0.0,
    } | changes
    return StageStatistics(name=name, kind="async", **values)  # type: ignore[arg-type]


class TestCounters:
    """Per-stage item counts."""

    async def test_in_out_failed_retried_skipped(self) -> None:
        """Each counter counts what its docstring says."""
        tries: dict[int, int] = {}

        async def flaky(value: int) -> int:
            tries[value] = tries.get(value, 0) + 1
            if value == 0:
                raise ValueError("broken")
            if value == 1 and tries[value] == 1:
                raise RetryableError("again")
            return value

        pipeline = Pipeline(
            [Stage("a", flaky, retry=Retry(attempts=3, base=0.0)), Stage("b", identity)]
        )
        summary = await pipeline.run(range(10))
        a, b = summary.stages
        assert (a.name, a.items_in, a.items_out, a.failed, a.retried, a.skipped) == (
            "a",
            10,
            9,
            1,
            1,
            0,
        )
        assert (b.name, b.items_in, b.items_out, b.failed, b.retried, b.skipped) == (
            "b",
            9,
            9,
            0,
            0,
            1,
        )
        assert (summary.ok, summary.failed, summary.skipped) == (9, 1, 0)
        assert pipeline.statistics() == summary.stages

    async def test_utilization_in_range(self) -> None:
        """Utilization stays in [0, 1] for async and thread stages."""

        async def wait(value: int) -> int:
            await anyio.sleep(0.002)
            return value

        def work(value: int) -> int:
            time.sleep(0.002)
            return value

        summary = await Pipeline(
            [Stage("wait", wait, workers=3), Stage("work", work, kind="thread", workers=2)]
        ).run(range(40))
        for s in summary.stages:
            assert 0.0 < s.utilization <= 1.05, s
            assert s.busy_seconds > 0.0

    async def test_latency_percentiles(self) -> None:
        """p50 reflects the many fast items and p95 the few slow ones."""

        async def work(value: int) -> int:
            await anyio.sleep(0.05 if value % 10 == 0 else 0)
            return value

        summary = await Pipeline([Stage("work", work, workers=20)]).run(range(100))
        [s] = summary.stages
        assert s.latency_p50 < 0.05 <= s.latency_p95
        assert s.latency_p50 <= s.latency_p95

    def test_latency_ring_keeps_recent_samples(self) -> None:
        """Percentiles come from the most recent 2048 samples."""
        counters = StageCounters("s", "async", 1)
        for _ in range(3000):
            counters.record_latency(10.0)
        for _ in range(2048):
            counters.record_latency(1.0)
        snapshot = counters.snapshot(1.0, None)
        assert snapshot.latency_p50 == snapshot.latency_p95 == 1.0
        empty = StageCounters("e", "thread", 2).snapshot(0.0, None)
        assert (empty.latency_p50, empty.utilization, empty.queue_depth) == (0.0, 0.0, 0)


class TestLive:
    """Statistics while a run is going."""

    async def test_statistics_during_a_run(self) -> None:
        """pipeline.statistics() during a run names every stage and shows the queue filling."""
        release = anyio.Event()

        async def stuck(value: int) -> int:
            await release.wait()
            return value

        pipeline = Pipeline([Stage("first", identity), Stage("stuck", stuck, max_buffer_size=4)])
        assert pipeline.statistics() == []
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(pipeline.run, range(50)))
            with anyio.fail_after(10):
                # Polling on purpose: the pipeline offers no event for "queue is full".
                while not pipeline.statistics() or pipeline.statistics()[1].queue_depth < 4:  # noqa: ASYNC110
                    await anyio.sleep(0.005)
            live = pipeline.statistics()
            assert [s.name for s in live] == ["first", "stuck"]
            assert live[1].queue_depth == 4
            assert live[1].items_in == 1 and live[1].items_out == 0
            release.set()
        assert pipeline.statistics()[1].items_out == 50

    async def test_progress_reporter(self) -> None:
        """A progress reporter gets live updates and the final summary."""
        recorder = Recorder()

        async def slow(value: int) -> int:
            await anyio.sleep(0.005)
            return value

        summary = await Pipeline([Stage("slow", slow)]).run(range(10), progress=recorder)
        assert recorder.updates
        assert [s.name for s in recorder.updates[0]] == ["slow"]
        assert recorder.finished is summary


class TestSummary:
    """RunSummary names the bottleneck."""

    async def test_bottleneck_is_the_slow_stage(self) -> None:
        """A one-worker sleeping stage between two fast ones is the bottleneck, in the table too."""

        def slow(value: int) -> int:
            time.sleep(0.02)
            return value

        class Discard(Sink):
            async def write(self, items: Sequence[Item]) -> None:
                pass

        pipeline = Pipeline(
            [
                Stage("fast", identity, workers=4),
                Stage("slow", slow, kind="thread", workers=1),
                Stage("after", identity, workers=4),
            ]
        )
        summary = await pipeline.run(range(40), sink=Discard())
        assert summary.bottleneck == "slow"
        table = summary.format_table()
        [line] = [row for row in table.splitlines() if row.startswith("slow ")]
        assert line.endswith("<- bottleneck")
        assert sum("bottleneck" in row for row in table.splitlines()) == 1
        assert "40 ok, 0 failed, 0 skipped" in table

    async def test_an_idle_stage_is_no_bottleneck(self) -> None:
        """When the sink sets the pace, the busiest stage is marked so, not as the
        bottleneck (round 25's audit: '<- bottleneck' on a stage busy 1% of the run)."""

        class Slow(Sink):
            async def write(self, items: Sequence[Item]) -> None:
                await anyio.sleep(0.02 * len(items))

        summary = await Pipeline([Stage("quick", identity)]).run(range(20), sink=Slow())
        [line] = [row for row in summary.format_table().splitlines() if row.startswith("quick")]
        assert line.endswith("<- busiest")

    async def test_a_long_call_counts_as_busy_while_it_runs(self) -> None:
        """Live statistics count a call still running: a run waiting on one long LLM call
        names that stage, not the fast stage before it that has finished items
        (helper-86's audit: 'bottleneck ocr' for minutes while structure ran)."""
        release = anyio.Event()

        def read(value: int) -> int:
            time.sleep(0.02)
            return value

        async def ask(value: int) -> int:
            await release.wait()
            return value

        pipeline = Pipeline(
            [Stage("read", read, kind="thread", workers=1), Stage("ask", ask, workers=16)]
        )
        async with anyio.create_task_group() as tg:
            live: list[list[StageStatistics]] = []

            async def watch() -> None:
                await anyio.sleep(0.6)
                live.append(pipeline.statistics())
                release.set()

            tg.start_soon(watch)
            summary = await pipeline.run(range(3))
        [during] = live
        ask_stats = {s.name: s for s in during}["ask"]
        assert ask_stats.busy_seconds > 1.0  # 3 calls of about 0.55 s each, none done
        assert bottleneck(during) == "ask"
        assert summary.ok == 3

    def test_bottleneck_ignores_idle_stages(self) -> None:
        """A stage that did no work is never the bottleneck; no work at all means none."""
        summary = RunSummary(
            stages=[stats("idle", items_in=0, utilization=0.9), stats("busy", utilization=0.5)],
            elapsed=2.0,
            ok=3,
            failed=1,
            skipped=0,
        )
        assert summary.bottleneck == "busy"
        assert summary.items_per_second == 2.0
        assert (
            RunSummary(
                stages=[stats("idle", items_in=0)], elapsed=0.0, ok=0, failed=0, skipped=0
            ).bottleneck
            is None
        )

    def test_bypass_is_not_called_skipped(self) -> None:
        """Items that passed a stage by are its ``bypass``, told from the items skipped as
        written before (a review: 'skip 4' in the table over '0 skipped (already done)'
        after a Ctrl-C)."""
        summary = RunSummary(
            stages=[stats("fix", skipped=4)],
            elapsed=1.0,
            ok=2,
            failed=0,
            skipped=0,
            interrupted="SIGINT",
        )
        head, _, row, legend, last = summary.format_table().splitlines()
        assert head.split()[7] == "bypass" and row.split()[7] == "4"
        assert "skip" not in head
        assert legend.startswith("bypass: passed the stage by without its work")
        assert last.startswith("2 ok, 0 failed, 0 skipped (written by an earlier run) in")
        summary = RunSummary(stages=[stats("fix")], elapsed=1.0, ok=2, failed=0, skipped=3)
        assert "bypass:" not in summary.format_table()

    @pytest.mark.parametrize("interrupted", [None, "SIGINT"])
    def test_table_mentions_interruption(self, interrupted: str | None) -> None:
        """The last line of the table says if a signal stopped the run."""
        summary = RunSummary(
            stages=[stats("a")], elapsed=1.0, ok=1, failed=0, skipped=0, interrupted=interrupted
        )
        last = summary.format_table().splitlines()[-1]
        assert ("interrupted by SIGINT" in last) == (interrupted is not None)
