"""
Counting lost Ray actors, and reporting them in the run's summary, without a cluster.

`RayExecutor`'s call loop is driven here with stand-ins for Ray's actor handles and
exception types, so each way an actor goes (lost mid-call, restarted while idle,
replaced after its restarts) is played exactly; `tests/test_ray_cluster.py` checks the
same counts against a real cluster that loses a node.  The run's side (the difference
between an executor's counts at the start and the end of a run reaches
``RunSummary.worker_losses``, and a closing line names it) needs no Ray at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from asyncpipe import (
    Executor,
    Pipeline,
    RetryableError,
    RunSummary,
    Stage,
    StageCall,
    WorkerLosses,
    closing_lines,
)

pytest.importorskip("ray", reason="RayExecutor needs ray installed: pip install 'asyncpipe[ray]'")

from asyncpipe import _ray
from asyncpipe._ray import RayExecutor
from asyncpipe._ray_actors import Slot

__all__: list[str] = []

pytestmark = pytest.mark.anyio


class RayError(Exception):
    """Stands for ray.exceptions.RayError."""


class ActorError(RayError):
    """Stands for ray.exceptions.RayActorError (the actor's process or node is gone)."""


class TaskError(RayError):
    """Stands for ray.exceptions.RayTaskError."""

    cause: BaseException | None = None


FAKE_RAY = SimpleNamespace(
    exceptions=SimpleNamespace(RayError=RayError, RayActorError=ActorError, RayTaskError=TaskError)
)

LOST = "lost"


class _Method:
    def __init__(self, fn: Callable[..., Coroutine[Any, Any, Any]]) -> None:
        self._fn = fn

    def remote(self, *args: Any) -> Coroutine[Any, Any, Any]:
        return self._fn(*args)


class FakeActor:
    """An actor handle that answers its calls from a script: a pid, or ``LOST``."""

    def __init__(self, script: list[int | str]) -> None:
        self.script = list(script)
        self.calls = 0
        self.call = _Method(self._call)
        self.ready = _Method(self._ready)

    async def _call(self, value: Any) -> tuple[int, Any]:
        self.calls += 1
        step = self.script.pop(0)
        if step == LOST:
            raise ActorError("The actor is temporarily unavailable: RpcError")
        assert isinstance(step, int)
        return step, value * 10

    async def _ready(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _short_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    """The executor waits 2 s before a call runs again; here a millisecond."""
    monkeypatch.setattr(_ray, "RERUN_PAUSE", 0.001)


@asynccontextmanager
async def _caller(executor: RayExecutor, actors: list[FakeActor]) -> AsyncIterator[StageCall]:
    """The executor's call over ``actors``, as `RayExecutor.open` makes it."""
    send, receive = anyio.create_memory_object_stream[Slot](len(actors))
    with send, receive:
        async with anyio.create_task_group() as revivals:
            for actor in actors:
                send.send_nowait(Slot(actor))
            stage = Stage("ocr", lambda v: v, kind="thread", workers=len(actors))
            yield executor._caller(FAKE_RAY, stage, send, receive, revivals)  # type: ignore[arg-type]
            revivals.cancel_scope.cancel()


class TestRayExecutorLosses:
    """RayExecutor counts each lost actor once, each call it ran again, each replacement."""

    async def test_no_loss_counts_nothing(self) -> None:
        """Calls answered by the same process leave every count at zero."""
        executor = RayExecutor()
        async with _caller(executor, [FakeActor([7, 7, 7])]) as call:
            assert [await call(v) for v in (1, 2, 3)] == [10, 20, 30]
        assert executor.losses() == WorkerLosses()
        assert not executor.losses()

    async def test_lost_mid_call_counts_one_loss_and_one_rerun(self) -> None:
        """
        A call that fails twice while its node is gone, then runs on the restarted actor
        (a new pid), is one loss and one call run again; the new pid is not a second loss.
        """
        executor = RayExecutor()
        actor = FakeActor([7, LOST, LOST, 8, 8])
        async with _caller(executor, [actor]) as call:
            assert await call(1) == 10
            assert await call(2) == 20
            assert await call(3) == 30
            assert actor.calls == 5
        assert executor.losses() == WorkerLosses(lost=1, rerun=1, replaced=0)

    async def test_restart_while_idle_is_a_loss_without_rerun(self) -> None:
        """An answer from a new process after an idle spell counts a loss, no rerun."""
        executor = RayExecutor()
        async with _caller(executor, [FakeActor([7, 9])]) as call:
            await call(1)
            await call(2)
        assert executor.losses() == WorkerLosses(lost=1, rerun=0, replaced=0)

    async def test_actor_out_of_restarts_is_replaced(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """With no restarts left the actor is replaced, and the call runs on the new one."""
        executor = RayExecutor(max_restarts=0)
        fresh = FakeActor([11])
        monkeypatch.setattr(executor, "_make_actor", lambda ray, stage: fresh)
        async with _caller(executor, [FakeActor([7, LOST])]) as call:
            assert await call(1) == 10
            assert await call(2) == 20
            assert fresh.calls == 1
        assert executor.losses() == WorkerLosses(lost=1, rerun=1, replaced=1)

    async def test_retries_used_up_raise_and_stay_counted(self) -> None:
        """After max_call_retries the call raises RetryableError; the loss is counted."""
        executor = RayExecutor(max_call_retries=1)
        async with _caller(executor, [FakeActor([LOST, LOST])]) as call:
            with pytest.raises(RetryableError, match="died"):
                await call(1)
        assert executor.losses() == WorkerLosses(lost=1, rerun=1, replaced=0)

    async def test_two_actors_lost_count_two(self) -> None:
        """Two actors lost with one node are two losses, each call run again once."""
        executor = RayExecutor()
        async with _caller(executor, [FakeActor([LOST, 8]), FakeActor([LOST, 9])]) as call:

            async def one(value: int) -> None:
                await call(value)

            async with anyio.create_task_group() as tg:
                tg.start_soon(one, 1)
                tg.start_soon(one, 2)
        assert executor.losses() == WorkerLosses(lost=2, rerun=2, replaced=0)


class LosingExecutor(Executor):
    """Runs calls inline and counts one lost worker and one rerun per call."""

    name = "fake"

    def __init__(self, lost: int = 0) -> None:
        self.counted = WorkerLosses(lost=lost)

    def losses(self) -> WorkerLosses:
        return self.counted

    @asynccontextmanager
    async def open(self, stage: Stage) -> AsyncIterator[StageCall]:
        async def call(value: Any) -> Any:
            self.counted = self.counted + WorkerLosses(lost=1, rerun=1)
            return stage.fn(value)

        yield call


class TestSummaryReportsLosses:
    """The run reports its executors' losses in RunSummary and in the closing lines."""

    async def test_run_reports_only_its_own_losses(self) -> None:
        """Losses counted before the run (an earlier run's) are left out."""
        executor = LosingExecutor(lost=5)
        stage = Stage("double", lambda v: 2 * v, kind="thread", executor=executor)
        summary = await Pipeline([stage]).run([1, 2, 3])
        assert summary.ok == 3
        assert summary.worker_losses == {"fake": WorkerLosses(lost=3, rerun=3)}

    async def test_no_executor_reports_nothing(self) -> None:
        """A run on local threads has no worker_losses."""
        stage = Stage("double", lambda v: 2 * v, kind="thread")
        summary = await Pipeline([stage]).run([1, 2])
        assert summary.worker_losses == {}

    async def test_closing_line_in_plain_words(self, tmp_path: Path) -> None:
        """A run that lost an actor says so, in words; a fault-free run says nothing of it."""
        options: dict[str, Any] = {
            "out": tmp_path / "out.jsonl",
            "journal": tmp_path / "out.jsonl.journal",
            "command": ["asyncpipe", "run", "x"],
        }
        lost = RunSummary(
            stages=[],
            elapsed=1.0,
            ok=6,
            failed=0,
            skipped=0,
            worker_losses={"ray": WorkerLosses(lost=1, rerun=2)},
        )
        lines = await closing_lines(lost, **options)
        assert "ray: 1 actor lost (its process or node died); 2 calls ran again after " in (
            "\n".join(lines)
        )
        assert "after their actors were lost" in "\n".join(lines)
        clean = RunSummary(stages=[], elapsed=1.0, ok=6, failed=0, skipped=0)
        assert not [line for line in await closing_lines(clean, **options) if "ray" in line]

    def test_describe_counts_replacements(self) -> None:
        """describe() names replaced actors and gets singular and plural right."""
        text = WorkerLosses(lost=2, rerun=1, replaced=1).describe()
        assert text == (
            "2 actors lost (their process or node died); 1 call ran again after its "
            "actor was lost; 1 actor replaced (restarts used up)"
        )

    def test_describe_names_only_what_happened(self) -> None:
        """A count of zero is left out: a rerun with no loss seen says nothing of losses."""
        assert WorkerLosses(rerun=2).describe() == "2 calls ran again after their actors were lost"
        assert WorkerLosses(lost=1).describe() == "1 actor lost (its process or node died)"
