"""
Fusing consecutive stages on one executor into one call per item (asyncpipe._fuse).

The executor here runs calls in local threads, so these tests check the runner's side:
one call per item, per-stage statistics, error records naming their stage, retries by
the failing stage's policy, and checkpoints journaled inside a chain.  The Ray executor
runs the same chains in tests/test_ray.py.
"""

from __future__ import annotations

import pickle
import random
import threading
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

from asyncpipe import (
    Executor,
    Item,
    Journal,
    JsonlSink,
    Pipeline,
    Retry,
    RetryableError,
    Stage,
    StageCall,
    StopIntake,
)
from asyncpipe._fuse import plan_chains, shippable

pytestmark = pytest.mark.anyio


class ThreadExecutor(Executor):
    """Runs each call in a local thread, and counts the stages opened and the calls made."""

    def __init__(self) -> None:
        self.opened: list[str] = []
        self.calls = 0

    @asynccontextmanager
    async def open(self, stage: Stage) -> AsyncIterator[StageCall]:
        self.opened.append(stage.name)
        resource = stage.resource() if stage.resource is not None else None

        async def call(value: Any) -> Any:
            self.calls += 1
            if stage.resource is not None:
                return await anyio.to_thread.run_sync(stage.fn, resource, value)
            return await anyio.to_thread.run_sync(stage.fn, value)

        yield call


class Steps:
    """Three thread stages that count their calls and fail chosen values."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.fail_b: set[int] = set()
        self.flaky_b: set[int] = set()
        self.flaky_c: set[int] = set()

    def a(self, value: int) -> int:
        self.calls["a"] += 1
        return value + 1

    def b(self, value: int) -> int:
        self.calls["b"] += 1
        if value in self.fail_b:
            raise ValueError(f"b refuses {value}")
        if value in self.flaky_b:
            self.flaky_b.discard(value)
            raise TimeoutError("flaky")
        return value * 10

    def c(self, resource: list[int], value: int) -> int:
        self.calls["c"] += 1
        if value in self.flaky_c:
            self.flaky_c.discard(value)
            raise TimeoutError("flaky")
        resource.append(value)
        return value + 5


def _stages(steps: Steps, executor: Executor, **b_options: Any) -> list[Stage]:
    return [
        Stage("a", steps.a, kind="thread", executor=executor),
        Stage("b", steps.b, kind="thread", executor=executor, checkpoint=True, **b_options),
        Stage(
            "c",
            steps.c,
            kind="thread",
            executor=executor,
            resource=list,
            retry=Retry(attempts=2, base=0.001, cap=0.001),
        ),
    ]


async def _run(pipeline: Pipeline, values: list[int], **options: Any) -> list[Item]:
    out: list[Item] = []

    async def collect(item: Item) -> None:
        out.append(item)

    await pipeline.run(values, sink=collect, **options)
    return out


class TestPlanChains:
    """Which stages are fused."""

    def test_consecutive_stages_on_one_executor(self) -> None:
        """Stages on the same executor object fuse; a local stage or another executor splits."""
        first, second = ThreadExecutor(), ThreadExecutor()
        steps = Steps()
        stages = [
            Stage("a", steps.a, kind="thread", executor=first),
            Stage("b", steps.b, kind="thread", executor=first),
            Stage("local", steps.a, kind="thread"),
            Stage("c", steps.a, kind="thread", executor=second),
            Stage("d", steps.a, kind="thread", executor=first),
        ]
        chains = plan_chains(stages)
        assert [(c.first, c.last, c.fused.name) for c in chains] == [(0, 1, "a+b")]


class TestFusedRun:
    """A chain runs as one call per item and still shows each stage."""

    async def test_one_call_per_item_and_per_stage_statistics(self) -> None:
        """Three stages, one executor call per item; every stage counts every item."""
        steps, executor = Steps(), ThreadExecutor()
        pipeline = Pipeline(_stages(steps, executor))
        out = await _run(pipeline, list(range(6)))
        assert [item.value for item in out] == [(v + 1) * 10 + 5 for v in range(6)]
        assert executor.opened == ["a+b+c"]
        assert executor.calls == 6
        stats = {s.name: s for s in pipeline.statistics()}
        assert [(stats[n].items_in, stats[n].items_out) for n in "abc"] == [(6, 6)] * 3
        assert all(set(item.timings) == {"a", "b", "c"} for item in out)

    async def test_error_names_its_stage(self) -> None:
        """A failure inside the chain is an error record of the stage that raised."""
        steps, executor = Steps(), ThreadExecutor()
        steps.fail_b = {3}  # b sees a's output, value + 1
        pipeline = Pipeline(_stages(steps, executor))
        out = await _run(pipeline, list(range(4)))
        failed = [item for item in out if item.error is not None]
        assert len(failed) == 1
        assert failed[0].error is not None
        assert (failed[0].error.stage, failed[0].error.type) == ("b", "ValueError")
        assert failed[0].value == 2  # what the chain was given
        stats = {s.name: s for s in pipeline.statistics()}
        assert (stats["b"].failed, stats["c"].items_in) == (1, 3)

    async def test_retry_follows_the_failing_stage_policy(self) -> None:
        """c retries once (its own policy); the retry is counted on c."""
        steps, executor = Steps(), ThreadExecutor()
        steps.flaky_c = {20}  # c sees (1 + 1) * 10
        pipeline = Pipeline(_stages(steps, executor))
        out = await _run(pipeline, [0, 1, 2])
        assert all(item.error is None for item in out)
        stats = {s.name: s for s in pipeline.statistics()}
        assert (stats["a"].retried, stats["b"].retried, stats["c"].retried) == (0, 0, 1)
        assert executor.calls == 4
        # The retry starts at c, on c's input: a and b ran once an item (round 24's audit:
        # a retry of a later stage ran the expensive ones before it again).
        assert (steps.calls["a"], steps.calls["b"], steps.calls["c"]) == (3, 3, 4)

    @pytest.mark.parametrize("remote", [False, True])
    async def test_an_input_that_cannot_travel_back_restarts_the_chain(self, remote: bool) -> None:
        """When the failed stage's input cannot be serialised as the executor ships an
        outcome back, the retry starts the chain again, and the error is the stage's own
        (helper-95: on Ray a ValueError of stage b was recorded as a's pickling error).
        In-process, nothing is serialised, and the retry starts at the failed stage
        (helper-97: plain pickle was tried for every executor)."""
        calls: Counter[str] = Counter()
        lock = threading.Lock()

        def make(value: int) -> tuple[int, threading.Lock]:
            calls["make"] += 1
            return value, lock  # a lock: not picklable

        def use(pair: tuple[int, threading.Lock]) -> int:
            calls["use"] += 1
            if calls["use"] == 1:
                raise TimeoutError("flaky")
            if pair[0] == 2:
                raise ValueError("use refuses 2")
            return pair[0]

        executor, retry = ThreadExecutor(), Retry(attempts=2, base=0.001, cap=0.001)
        if remote:
            executor.serialize = pickle.dumps  # as a remote executor ships outcomes
        stages = [
            Stage("make", make, kind="thread", executor=executor),
            Stage("use", use, kind="thread", executor=executor, retry=retry),
        ]
        first, second = await _run(Pipeline(stages), [1, 2])
        assert first.error is None and first.value == 1
        assert second.error is not None
        assert (second.error.stage, second.error.type) == ("use", "ValueError")
        # Remote: make runs again for the retry of item 1.
        assert calls == {"make": 3 if remote else 2, "use": 3}

    async def test_a_stop_ends_a_chain_s_backoff(self, tmp_path: Path) -> None:
        """
        With a journal, the run's stop ends a chain's retry backoff (an hour here) and
        tries the item no more: it waits for --resume, which writes it (round 27's
        re-check: a fused chain kept its backoff and its retries after the stop).
        """
        tries = Counter[int]()

        def refuse_once(value: int) -> int:
            tries[value] += 1
            if tries[value] == 1:
                raise RetryableError("not now", retry_after=3600)
            return value

        async def source() -> AsyncIterator[int]:
            yield 1
            await anyio.sleep(0.3)  # the chain's first try has failed: it waits an hour
            raise StopIntake("the test", "stop")

        executor, out = ThreadExecutor(), tmp_path / "out.jsonl"
        retry = Retry(attempts=3, retry_after_cap=7200)
        pipeline = Pipeline(
            [
                Stage("a", _double, kind="thread", executor=executor),
                Stage("b", refuse_once, kind="thread", executor=executor, retry=retry),
            ]
        )
        for resume, values in ((False, source()), (True, [1])):
            with anyio.fail_after(10):
                summary = await pipeline.run(
                    values,
                    sink=JsonlSink(out, record=lambda item: {"id": item.key}),
                    journal=Journal(tmp_path / "journal"),
                    key=str,
                    resume=resume,
                )
        assert tries == {2: 2}
        assert summary.interrupted is None and summary.ok == 1

    async def test_a_deadline_ends_a_chain_s_tries(self) -> None:
        """
        A fused stage's ``deadline`` ends the item's tries as it does for a stage that runs
        alone (round 32's review: the chain never passed how long the item had been at
        it, so every one of the 40 tries ran).
        """
        tries = 0

        def down(value: int) -> int:
            nonlocal tries
            tries += 1
            raise RetryableError("busy")

        # 39 waits drawn from [0, 0.05] take about 1 s; the deadline allows 0.2 s.
        retry = Retry(attempts=40, base=0.05, cap=0.05, deadline=0.2, rng=random.Random(7))
        executor = ThreadExecutor()
        pipeline = Pipeline(
            [
                Stage("a", _double, kind="thread", executor=executor),
                Stage("b", down, kind="thread", executor=executor, retry=retry),
            ]
        )
        with anyio.fail_after(20):
            [item] = await _run(pipeline, [1])
        assert item.error is not None and item.error.stage == "b"
        assert item.error.attempts == tries
        assert 1 < tries < 40

    async def test_each_stage_of_a_chain_has_its_own_tries(self) -> None:
        """b and c each fail once with 2 tries each: the item succeeds, as it does when
        the stages run alone (round 24's audit: one count for the chain gave c one try)."""
        steps, executor = Steps(), ThreadExecutor()
        steps.flaky_b, steps.flaky_c = {1}, {10}  # value 0: a gives 1, b 10, c 15
        stages = _stages(steps, executor, retry=Retry(attempts=2, base=0.001, cap=0.001))
        pipeline = Pipeline(stages)
        [item] = await _run(pipeline, [0])
        assert item.error is None and item.value == 15
        stats = {s.name: s for s in pipeline.statistics()}
        assert (stats["b"].retried, stats["c"].retried) == (1, 1)
        assert (steps.calls["a"], steps.calls["b"], steps.calls["c"]) == (1, 2, 2)

    async def test_checkpoint_inside_chain_is_used_on_resume(self, tmp_path: Path) -> None:
        """b's checkpoint is journaled from inside the chain; a resumed retry starts at c."""
        steps, executor = Steps(), ThreadExecutor()
        steps.flaky_c = {10, 20}
        stages = _stages(steps, executor)
        stages[2] = stages[2].replace(retry=Retry(attempts=1))
        out, journal = tmp_path / "out.jsonl", tmp_path / "out.journal"

        def record(item: Item) -> dict[str, Any]:
            return {"id": item.key, "value": item.value, "status": "ok" if item.ok else "error"}

        summary = await Pipeline(stages).run(
            [0, 1, 2], sink=JsonlSink(out, record=record), journal=Journal(journal), key=str
        )
        assert (summary.ok, summary.failed) == (1, 2)
        before = Counter(steps.calls)
        summary = await Pipeline(stages).run(
            [0, 1, 2],
            sink=JsonlSink(out, record=record),
            journal=Journal(journal),
            key=str,
            resume=True,
            retry_failed=True,
        )
        assert summary.ok == 2
        assert steps.calls - before == Counter({"c": 2})  # a and b were not run again
        lines = (await anyio.Path(out).read_text()).splitlines()
        assert len(lines) == 3


def _double(value: int) -> int:
    return value * 2


class TestWithoutFusing:
    """A single executor stage is not a chain."""

    async def test_single_stage_runs_alone(self) -> None:
        """One executor stage between local ones is opened under its own name."""
        executor = ThreadExecutor()
        pipeline = Pipeline(
            [
                Stage("local", partial(_double), kind="thread"),
                Stage("remote", _double, kind="thread", executor=executor),
            ]
        )
        out = await _run(pipeline, [1, 2])
        assert [item.value for item in out] == [4, 8]
        assert executor.opened == ["remote"]


def test_an_exception_that_cannot_travel_keeps_its_kind() -> None:
    """An exception that cannot be pickled back is replaced by one of its kind, so a
    retryable one is still retried, with its wait (round 25's re-check: it became a
    RuntimeError, tried once)."""

    lock = threading.Lock()
    retryable = RetryableError("busy", retry_after=2.0)
    retryable.lock = lock  # type: ignore[attr-defined]
    stand_in = shippable(retryable, pickle.dumps)
    assert type(stand_in) is RetryableError and stand_in.retry_after == 2.0
    assert str(stand_in).startswith("RetryableError: busy (")
    other = ValueError("bad")
    other.lock = lock  # type: ignore[attr-defined]
    assert type(shippable(other, pickle.dumps)) is RuntimeError
    assert shippable(other, None) is other
