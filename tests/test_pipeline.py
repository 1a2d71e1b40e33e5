from __future__ import annotations

import contextvars
import dataclasses
import random
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from types import CodeType, FrameType, TracebackType
from typing import Any

import anyio
import anyio.lowlevel
import orjson
import pytest

from asyncpipe import (
    ConfigError,
    Item,
    Journal,
    JsonlSink,
    Pipeline,
    Retry,
    Sink,
    Stage,
    StageError,
)
from asyncpipe._ordering import Reorderer


class Gauge:
    """Counts calls running at once, from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.active = 0
        self.peak = 0
        self.calls = 0

    def __enter__(self) -> None:
        with self._lock:
            self.active += 1
            self.calls += 1
            self.peak = max(self.peak, self.active)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._lock:
            self.active -= 1


class CountingSource:
    """A source (endless unless ``n`` is given) that counts the values pulled from it."""

    def __init__(self, n: int | None = None) -> None:
        self.n = n
        self.pulled = 0

    def __iter__(self) -> Iterator[int]:
        i = 0
        while self.n is None or i < self.n:
            self.pulled += 1
            yield i
            i += 1


class ListSink(Sink):
    """Keeps every item it is given, in the order given."""

    def __init__(self) -> None:
        self.items: list[Item] = []

    async def write(self, items: Sequence[Item]) -> None:
        self.items.extend(items)


class StalledSink(Sink):
    """Blocks in its first write until released."""

    def __init__(self) -> None:
        self.release = anyio.Event()
        self.items: list[Item] = []

    async def write(self, items: Sequence[Item]) -> None:
        await self.release.wait()
        self.items.extend(items)


class BrokenSink(Sink):
    """Raises in every write, like a full disk."""

    async def write(self, items: Sequence[Item]) -> None:
        raise RuntimeError("sink broke")


class Abort(BaseException):
    """A BaseException that is not an Exception, as KeyboardInterrupt is."""


def leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside ``exc``, with (nested) exception groups flattened."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


def threads_running(code: CodeType) -> list[str]:
    """Names of the threads whose stack currently contains ``code``."""
    frames = sys._current_frames()
    names = []
    for thread in threading.enumerate():
        frame: FrameType | None = frames.get(thread.ident or -1)
        while frame is not None:
            if frame.f_code is code:
                names.append(thread.name)
                break
            frame = frame.f_back
    return names


async def wait_until(predicate: Callable[[], bool]) -> None:
    """Poll ``predicate`` until it holds (callers put a deadline around this)."""
    # Polling on purpose: the counts checked are bumped in threads and pipeline internals
    # that offer no event to wait on.
    while not predicate():  # noqa: ASYNC110
        await anyio.sleep(0.005)


async def identity(value: Any) -> Any:
    """An async stage function that returns its input."""
    return value


class TestConfig:
    """Pipelines and stages refuse bad settings."""

    def test_bad_pipelines(self) -> None:
        """No stages, duplicate names or a zero buffer are ConfigErrors."""
        with pytest.raises(ConfigError):
            Pipeline([])
        with pytest.raises(ConfigError, match="unique"):
            Pipeline([Stage("a", identity), Stage("a", identity)])
        with pytest.raises(ConfigError):
            Pipeline([Stage("a", identity)], max_buffer_size=0)

    async def test_a_plain_def_sink_is_a_config_error(self) -> None:
        """A plain ``def`` sink callback is a ConfigError naming it (it was "object
        NoneType can't be used in 'await' expression"); a lambda that returns a
        coroutine is a fine sink."""
        got: list[str] = []

        def plain_sink(item: Item) -> None:
            got.append(item.key)

        async def async_sink(item: Item) -> None:
            got.append(item.key)

        wrong: Any = plain_sink
        with pytest.raises(ConfigError, match=r"^the sink .*plain_sink returned NoneType"):
            await Pipeline([Stage("a", identity)]).run(range(3), sink=wrong)
        got.clear()
        await Pipeline([Stage("a", identity)]).run(range(3), sink=lambda item: async_sink(item))
        assert got == ["0", "1", "2"]

    async def test_bad_window_and_progress(self) -> None:
        """A reorder window under 1 and a progress that is not a reporter are
        ConfigErrors before anything runs (round 25's audit: -1 was a bare ValueError,
        0 meant the default, and a function crashed the run at its first tick)."""
        pipeline = Pipeline([Stage("a", identity)])
        for window in (0, -1):
            with pytest.raises(ConfigError, match="reorder_window must be at least 1"):
                await pipeline.run([1], reorder_window=window)
        with pytest.raises(ConfigError, match="progress must be a ProgressReporter"):
            await pipeline.run([1], progress=print)  # type: ignore[arg-type]

    async def test_a_resume_by_position_warns(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A resume without ``key`` says that it trusts the inputs' order (round 25's
        audit: changed inputs lost one value and wrote another twice, silently), and so
        does the first journaled run, while a key can still be given (round 32: it said
        nothing, and every later resume was bound to the inputs' order)."""
        pipeline, journal = Pipeline([Stage("a", identity)]), tmp_path / "j"
        out = tmp_path / "out.jsonl"

        def run(**options: Any) -> Any:
            return pipeline.run(["x"], sink=JsonlSink(out), journal=Journal(journal), **options)

        def said() -> list[str]:
            found = [r.getMessage() for r in caplog.records if "positional keys" in r.getMessage()]
            caplog.clear()
            return found

        await run(resume=True)  # nothing to resume yet: the first run
        (first,) = said()
        assert first.startswith("journaling with positional keys (no key= given)")
        assert "give key= to name each input" in first
        await run(resume=True, key=str)
        assert said() == []
        await run(resume=True)
        assert [m.split(":")[0] for m in said()] == ["resuming with positional keys"]
        await anyio.Path(out).unlink()
        await run()  # a fresh run (not resume=True) warns as well
        assert [m.split(" (")[0] for m in said()] == ["journaling with positional keys"]
        await pipeline.run(["x"], sink=JsonlSink(tmp_path / "o2.jsonl"))  # no journal
        assert said() == []

    def test_an_async_def_is_no_thread_stage(self) -> None:
        """An ``async def`` given ``kind="thread"`` is refused when the stage is made; in a
        thread it would return a coroutine nobody awaits (helper-87's audit: a TypeError
        from the sink, and a 'never awaited' warning)."""

        async def fetch(value: int) -> int:
            return value

        with pytest.raises(ConfigError, match="kind='async'"):
            Stage("fetch", fetch, kind="thread")
        Stage("fetch", fetch)

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"name": ""},
            {"kind": "process"},
            {"workers": 0},
            {"kind": "thread", "timeout": 1.0},
            {"timeout": 0.0},
            {"max_buffer_size": 0},
        ],
    )
    def test_bad_stages(self, kwargs: dict[str, Any]) -> None:
        """Each invalid stage setting is a ConfigError."""
        settings: dict[str, Any] = {"name": "s", "fn": identity} | kwargs
        with pytest.raises(ConfigError):
            Stage(**settings)

    async def test_bad_run_options(self) -> None:
        """retry_failed needs resume, and resume needs a journal."""
        pipeline = Pipeline([Stage("a", identity)])
        with pytest.raises(ConfigError):
            await pipeline.run([1], retry_failed=True)
        with pytest.raises(ConfigError):
            await pipeline.run([1], resume=True)


class TestBackpressure:
    """Bounded queues hold a fast producer back."""

    async def test_stalled_consumer_bounds_the_source(self) -> None:
        """With a stalled sink the source gets at most buffers + workers + one batch + 1 ahead."""
        source = CountingSource(300)
        sink = StalledSink()

        def parse(value: int) -> int:
            return value

        stages = [
            Stage("fetch", identity, workers=2, max_buffer_size=3),
            Stage("parse", parse, kind="thread", workers=3, max_buffer_size=5),
        ]
        sink_buffer = 2
        pipeline = Pipeline(stages, max_buffer_size=sink_buffer)
        buffers = 3 + 5 + sink_buffer
        workers = 2 + 3
        # Once everything is stalled: every queue is full, every worker holds one item it
        # cannot pass on, the collector holds the batch the sink is stuck writing (at least
        # one item, at most what the sink queue held: it never waits to fill a batch), and
        # the source holds the one value it pulled and cannot send.
        lowest = buffers + workers + 1 + 1
        highest = buffers + workers + sink_buffer + 1
        async with anyio.create_task_group() as tg:
            # Unordered: an ordered run's admission window would stop the source sooner.
            tg.start_soon(partial(pipeline.run, source, sink=sink, ordered=False))
            with anyio.fail_after(10):
                await wait_until(lambda: source.pulled >= lowest)
            await anyio.sleep(0.2)  # time for a leak to show
            assert lowest <= source.pulled <= highest
            stats = {s.name: s for s in pipeline.statistics()}
            assert stats["fetch"].queue_depth == 3
            assert stats["parse"].queue_depth == 5
            sink.release.set()
        assert sorted(item.value for item in sink.items) == list(range(300))

    @pytest.mark.parametrize("weighed", [True, False])
    async def test_weight_bounds_what_waits(self, weighed: bool) -> None:
        """A stage's max_weight bounds the weight waiting in front of it, besides the count."""
        made = 0
        started = 0
        most_waiting = 0

        def make(value: int) -> int:
            nonlocal made
            made += 1
            return 4  # every value weighs 4

        async def slow(value: int) -> int:
            nonlocal started, most_waiting
            most_waiting = max(most_waiting, made - started)
            started += 1
            await anyio.sleep(0.002)
            return value

        weights: dict[str, Any] = {"weight": float, "max_weight": 10} if weighed else {}
        stages = [
            Stage("make", make, kind="thread"),
            Stage("slow", slow, max_buffer_size=50, **weights),
        ]
        summary = await Pipeline(stages).run(range(60))
        assert summary.ok == 60
        # Weighed: two items (8 <= 10) wait, plus the one `make` holds and the one it is
        # making.  Without a weight, the count bound (50) lets far more pile up.
        assert most_waiting <= 4 if weighed else most_waiting > 10


class TestConcurrency:
    """A stage works on exactly `workers` items at once."""

    @pytest.mark.parametrize("workers", [1, 2, 4])
    async def test_thread_stage(self, workers: int) -> None:
        """The peak number of concurrent calls of a thread stage equals its worker count."""
        gauge = Gauge()

        def work(value: int) -> int:
            with gauge:
                time.sleep(0.01)
            return value

        summary = await Pipeline([Stage("work", work, kind="thread", workers=workers)]).run(
            range(8 * workers + 8)
        )
        assert summary.ok == 8 * workers + 8
        assert gauge.peak == workers
        assert gauge.active == 0

    @pytest.mark.parametrize("workers", [1, 3, 8])
    async def test_async_stage(self, workers: int) -> None:
        """The peak number of concurrent calls of an async stage equals its worker count."""
        gauge = Gauge()

        async def work(value: int) -> int:
            with gauge:
                await anyio.sleep(0.005)
            return value

        summary = await Pipeline([Stage("work", work, workers=workers)]).run(range(6 * workers + 6))
        assert summary.ok == 6 * workers + 6
        assert gauge.peak == workers


class Engine:
    """A resource that is not thread-safe: it notes which threads are inside it at once."""

    def __init__(self, registry: list[Engine]) -> None:
        self._lock = threading.Lock()
        self.inside: set[int] = set()
        self.peak = 0
        self.uses = 0
        self.closed = 0
        with self._lock:
            registry.append(self)

    def use(self, value: int) -> int:
        with self._lock:
            self.inside.add(threading.get_ident())
            self.peak = max(self.peak, len(self.inside))
            self.uses += 1
        time.sleep(0.005)
        with self._lock:
            self.inside.discard(threading.get_ident())
        return value

    def close(self) -> None:
        self.closed += 1


class TestResources:
    """Per-worker resources: one per worker, never shared, always closed."""

    async def test_thread_stage_resources(self) -> None:
        """Each of 4 workers builds one engine, used by one thread at a time, closed once."""
        engines: list[Engine] = []
        gauge = Gauge()

        def ocr(engine: Engine, value: int) -> int:
            with gauge:
                return engine.use(value)

        stage = Stage("ocr", ocr, kind="thread", workers=4, resource=lambda: Engine(engines))
        summary = await Pipeline([stage]).run(range(60))
        assert summary.ok == 60
        assert gauge.peak == 4  # the workers did overlap, so sharing would have shown
        assert len(engines) == 4
        assert [e.peak for e in engines] == [1, 1, 1, 1]
        assert [e.closed for e in engines] == [1, 1, 1, 1]
        assert sum(e.uses for e in engines) == 60

    async def test_a_thread_workers_resource_stays_on_its_thread(self) -> None:
        """Each thread worker's resource is built, used and closed on one thread of its
        own, so an engine bound to its thread works: a sqlite3 connection with its default
        ``check_same_thread`` (round 23's audit: ProgrammingError on about half the items,
        their calls landing on other pool threads)."""
        seen: dict[int, set[int]] = {}  # a connection's id -> the threads it was used on
        lock = threading.Lock()

        class Connection:
            def __init__(self) -> None:
                self.db = sqlite3.connect(":memory:")  # check_same_thread=True
                self.note()

            def note(self) -> None:
                with lock:
                    seen.setdefault(id(self), set()).add(threading.get_ident())

            def close(self) -> None:
                self.note()
                self.db.close()

        def square(connection: Connection, value: int) -> int:
            connection.note()
            time.sleep(0.001)
            return int(connection.db.execute("select ? * ?", (value, value)).fetchone()[0])

        results: list[int] = []

        async def sink(item: Item) -> None:
            results.append(item.value)

        stage = Stage("sql", square, kind="thread", workers=3, resource=Connection)
        summary = await Pipeline([stage]).run(range(200), sink=sink)
        assert summary.ok == 200 and summary.failed == 0
        assert results == [n * n for n in range(200)]
        assert len(seen) == 3
        assert all(len(threads) == 1 for threads in seen.values())
        assert len(set.union(*seen.values())) == 3

    async def test_a_pinned_worker_is_an_anyio_worker_thread(self) -> None:
        """On its own thread, a worker's calls see their caller's context variables and
        can use anyio.from_thread, as on anyio's pool (helper-95: neither worked)."""
        request: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="-")

        def work(resource: object, value: int) -> tuple[str, int]:
            return request.get(), anyio.from_thread.run_sync(lambda: value * 2)

        request.set("batch-7")
        results: list[tuple[str, int]] = []

        async def sink(item: Item) -> None:
            results.append(item.value)

        stage = Stage("work", work, kind="thread", workers=2, resource=object)
        await Pipeline([stage]).run(range(5), sink=sink)
        assert results == [("batch-7", 2 * n) for n in range(5)]

    @pytest.mark.parametrize("checkpoints", range(6))
    async def test_a_run_cancelled_as_its_workers_start_ends(self, checkpoints: int) -> None:
        """Cancelled a few steps into its start, a run with a thread stage with resources
        returns at once (helper-97: with the worker's thread started in a task of its
        own, a task cancelled before it first ran left its call waited for for ever)."""
        stage = Stage(
            "work", lambda resource, value: value, kind="thread", workers=4, resource=object
        )
        with anyio.fail_after(10):  # a hang fails here
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as tg:

                    async def cancel() -> None:
                        for _ in range(checkpoints):
                            await anyio.lowlevel.checkpoint()
                        scope.cancel()

                    tg.start_soon(cancel)
                    await Pipeline([stage]).run(range(100))

    async def test_a_cancelled_pinned_worker_starts_no_call(self) -> None:
        """Cancelled from outside, a thread stage with a resource starts no new call
        (helper-95: 16 more started, and a second Ctrl-C OCRed the queued pages)."""
        started: list[int] = []

        def work(resource: object, value: int) -> int:
            started.append(value)
            time.sleep(0.02)
            return value

        with anyio.move_on_after(0.1):
            await Pipeline([Stage("work", work, kind="thread", resource=object)]).run(range(500))
        at_cancel = len(started)
        await anyio.sleep(0.1)
        assert len(started) == at_cancel <= 7

    async def test_async_stage_resources(self) -> None:
        """Each async worker builds one resource and closes it at the end."""
        engines: list[Engine] = []
        busy: set[int] = set()

        async def call(engine: Engine, value: int) -> int:
            assert id(engine) not in busy
            busy.add(id(engine))
            await anyio.sleep(0.002)
            busy.discard(id(engine))
            engine.uses += 1
            return value

        stage = Stage("llm", call, workers=3, resource=lambda: Engine(engines))
        summary = await Pipeline([stage]).run(range(30))
        assert summary.ok == 30
        assert len(engines) == 3
        assert [e.closed for e in engines] == [1, 1, 1]

    async def test_closed_when_the_run_fails(self) -> None:
        """A failing sink still leaves every resource closed, and no stage thread running."""
        engines: list[Engine] = []

        def ocr(engine: Engine, value: int) -> int:
            return engine.use(value)

        stage = Stage("ocr", ocr, kind="thread", workers=3, resource=lambda: Engine(engines))
        with pytest.raises(RuntimeError, match="sink broke"):
            await Pipeline([stage]).run(range(100), sink=BrokenSink())
        assert len(engines) == 3
        assert [e.closed for e in engines] == [1, 1, 1]
        assert threads_running(Engine.use.__code__) == []

    async def test_closed_when_the_run_is_cancelled(self) -> None:
        """Cancelling a run from outside leaves every resource closed."""
        engines: list[Engine] = []
        sink = ListSink()

        def ocr(engine: Engine, value: int) -> int:
            return engine.use(value)

        stage = Stage("ocr", ocr, kind="thread", workers=3, resource=lambda: Engine(engines))
        with anyio.fail_after(10), anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(partial(Pipeline([stage]).run, CountingSource(), sink=sink))
                await wait_until(lambda: len(sink.items) >= 5)
                scope.cancel()
        assert len(engines) == 3
        assert [e.closed for e in engines] == [1, 1, 1]
        assert threads_running(Engine.use.__code__) == []

    async def test_a_close_that_fails_is_logged_and_the_run_ends(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A resource whose close() raises costs no item and does not end the run in an
        ExceptionGroup (helper-87's audit: 99 of 100 lines, and no summary)."""

        class Sticky:
            def close(self) -> None:
                raise RuntimeError("cannot close")

        def work(engine: Sticky, value: int) -> int:
            return value

        sink = ListSink()
        stage = Stage("work", work, kind="thread", workers=2, resource=Sticky)
        summary = await Pipeline([stage]).run(range(100), sink=sink)
        assert summary.ok == 100
        assert [item.value for item in sink.items] == list(range(100))
        assert caplog.text.count("closing a worker's resource failed") == 2


class TestErrorRecords:
    """A failed item becomes an error record; the run goes on."""

    async def test_a_value_json_cannot_hold_is_an_error_record(self, tmp_path: Path) -> None:
        """One item whose output is a set: an error record naming why, and the run goes
        on (helper-87's audit: the run stopped at item 500, no item named)."""
        from asyncpipe import JsonlSink

        async def work(value: int) -> object:
            return {value} if value == 5 else value

        out = tmp_path / "out.jsonl"
        summary = await Pipeline([Stage("work", work)]).run(range(10), sink=JsonlSink(out))
        assert (summary.ok, summary.failed) == (9, 1)
        lines = [orjson.loads(line) for line in (await anyio.Path(out).read_bytes()).splitlines()]
        assert [line["id"] for line in lines] == [str(n) for n in range(10)]
        assert lines[5]["status"] == "error"
        assert lines[5]["error"]["stage"] == "output"
        assert "cannot write its output as JSON" in lines[5]["error"]["message"]

    async def test_failure_becomes_a_record(self) -> None:
        """Bad items carry key, stage, type, message and attempts; later stages skip them."""
        labelled: list[int] = []

        async def double(value: int) -> int:
            return value * 2

        def check(value: int) -> int:
            if value % 3 == 0:
                raise StageError(f"bad value {value}")
            return value

        async def label(value: int) -> str:
            labelled.append(value)
            return f"v{value}"

        sink = ListSink()
        pipeline = Pipeline(
            [
                Stage("double", double, workers=2),
                Stage("check", check, kind="thread", workers=2),
                Stage("label", label, workers=2),
            ]
        )
        summary = await pipeline.run(range(12), sink=sink, key=lambda v: f"item-{v}")
        by_key = {item.key: item for item in sink.items}
        assert sorted(by_key) == sorted(f"item-{v}" for v in range(12))
        failed = sorted(k for k, item in by_key.items() if not item.ok)
        assert failed == ["item-0", "item-3", "item-6", "item-9"]
        error = by_key["item-3"].error
        assert error is not None
        assert (error.stage, error.type, error.message, error.attempts) == (
            "check",
            "StageError",
            "bad value 6",
            1,
        )
        assert error.to_json() == {
            "stage": "check",
            "type": "StageError",
            "message": "bad value 6",
            "attempts": 1,
        }
        assert by_key["item-4"].ok and by_key["item-4"].value == "v8"
        assert sorted(labelled) == sorted(v * 2 for v in range(12) if v % 3)
        assert (summary.ok, summary.failed) == (8, 4)
        stats = {s.name: s for s in summary.stages}
        checked = stats["check"]
        assert (checked.items_in, checked.items_out, checked.failed) == (12, 8, 4)
        assert (stats["label"].items_in, stats["label"].skipped) == (8, 4)

    async def test_message_falls_back_to_repr(self) -> None:
        """An exception without a message is described by its repr."""

        async def fail(value: int) -> int:
            raise KeyError

        sink = ListSink()
        await Pipeline([Stage("s", fail, retry=Retry(attempts=1))]).run([1], sink=sink)
        [item] = sink.items
        assert item.error is not None
        assert (item.error.type, item.error.message) == ("KeyError", "KeyError()")

    @pytest.mark.parametrize(
        ("encode", "error_type"),
        [
            (lambda value: {"bad": object()}, "TypeError"),  # journal cannot serialise it
            (lambda value: 1 // 0, "ZeroDivisionError"),
        ],  # the encoder itself raises
    )
    async def test_checkpoint_failure_keeps_the_input(
        self, tmp_path: Path, encode: Callable[[Any], Any], error_type: str
    ) -> None:
        """An output that cannot be checkpointed fails the item with its input; the run goes on."""

        async def square(value: int) -> int:
            return value * value

        sink = ListSink()
        pipeline = Pipeline([Stage("square", square, checkpoint=True, encode=encode)])
        summary = await pipeline.run(range(1, 5), sink=sink, journal=Journal(tmp_path / "j"))
        assert (summary.ok, summary.failed) == (0, 4)
        assert [item.value for item in sink.items] == [1, 2, 3, 4]  # inputs, not squares
        error = sink.items[0].error
        assert error is not None
        assert (error.stage, error.type, error.attempts) == ("square", error_type, 1)
        assert error.message.startswith("cannot checkpoint output: ")
        [stats] = summary.stages
        assert (stats.items_in, stats.items_out, stats.failed) == (4, 0, 4)


class TestCancellation:
    """Cancellation is never swallowed."""

    async def test_cancel_from_outside(self) -> None:
        """Cancelling the scope around a run stops it, propagates, and leaves no thread running."""
        gauge = Gauge()
        source = CountingSource()
        sink = ListSink()
        returned: list[bool] = []

        def work(value: int) -> int:
            with gauge:
                time.sleep(0.002)
            return value

        pipeline = Pipeline(
            [Stage("a", identity, workers=4), Stage("b", work, kind="thread", workers=2)]
        )

        async def runner() -> None:
            await pipeline.run(source, sink=sink)
            returned.append(True)

        with anyio.fail_after(10), anyio.CancelScope() as scope:  # a deadline, not a speed test
            async with anyio.create_task_group() as tg:
                tg.start_soon(runner)
                await wait_until(lambda: len(sink.items) >= 10)
                scope.cancel()
        assert scope.cancelled_caught
        assert returned == []  # run() did not turn the cancellation into a return
        assert gauge.active == 0
        assert threads_running(work.__code__) == []
        pulled = source.pulled
        await anyio.sleep(0.05)
        assert source.pulled == pulled  # nothing is still pulling

    @pytest.mark.parametrize("kind", ["async", "thread"])
    async def test_base_exception_from_a_stage_propagates(self, kind: str) -> None:
        """A BaseException raised by stage code is not turned into an error record."""

        def abort(value: int) -> int:
            if value == 3:
                raise Abort
            return value

        async def abort_async(value: int) -> int:
            return abort(value)

        fn = abort_async if kind == "async" else abort
        sink = ListSink()
        with pytest.raises(BaseException) as excinfo:
            await Pipeline([Stage("s", fn, kind=kind)]).run(range(10), sink=sink)  # type: ignore[arg-type]
        # Bare or inside the task group's group, the only error is the Abort itself.
        assert [type(e) for e in leaves(excinfo.value)] == [Abort]
        assert all(item.ok for item in sink.items)


class TestCrash:
    """A framework (or sink) failure fails the run loudly and cleanly."""

    async def test_sink_failure_propagates_and_stops_threads(self) -> None:
        """The sink's RuntimeError comes out of run(), and no stage thread is left running."""
        gauge = Gauge()

        def work(value: int) -> int:
            with gauge:
                time.sleep(0.01)
            return value

        pipeline = Pipeline([Stage("work", work, kind="thread", workers=3)])
        # run() unwraps the task group's ExceptionGroup when it holds a single error.
        with pytest.raises(RuntimeError, match=r"^sink broke$"):
            await pipeline.run(range(200), sink=BrokenSink())
        assert gauge.active == 0
        assert threads_running(work.__code__) == []
        assert gauge.calls < 200  # it stopped, rather than running the input to the end

    @pytest.mark.parametrize("workers", [1, 3])
    async def test_a_resource_factory_that_fails_is_one_config_error(self, workers: int) -> None:
        """However many workers fail to build their resource, run() raises one ConfigError
        that names the stage, caused by the factory's error (not a nested group)."""

        def factory() -> object:
            raise FileNotFoundError("model.onnx not found")

        def work(resource: object, value: int) -> int:
            return value

        stage = Stage("ocr", work, kind="thread", workers=workers, resource=factory)
        with pytest.raises(ConfigError, match=r"^stage 'ocr': .*resource") as excinfo:
            await Pipeline([stage]).run(range(3))
        assert isinstance(excinfo.value.__cause__, FileNotFoundError)
        assert "model.onnx not found" in str(excinfo.value)

    async def test_a_resource_that_fails_after_items_were_written(self, tmp_path: Path) -> None:
        """A second worker's factory failing once the first wrote an item is the same
        ConfigError; what was written stays, and a resume writes every item exactly once."""
        out, journal = tmp_path / "out.jsonl", tmp_path / "journal"
        builds = 0
        lock = threading.Lock()

        def written() -> bool:
            # On disk, not just made into a record: the sink writes after `record`.
            return out.exists() and out.read_bytes().count(b"\n") >= 1

        def flaky() -> object:
            nonlocal builds
            with lock:
                builds += 1
                second = builds == 2
            if second:
                waited = time.monotonic() + 60
                while not written() and time.monotonic() < waited:
                    time.sleep(0.01)
                assert written()
                raise FileNotFoundError("model.onnx not found")
            return object()

        def record(item: Item) -> dict[str, Any]:
            return {"id": item.key, "value": item.value}

        def work(resource: object, value: int) -> int:
            return value

        def pipeline(factory: Callable[[], object]) -> Pipeline:
            return Pipeline([Stage("ocr", work, kind="thread", workers=2, resource=factory)])

        with pytest.raises(ConfigError, match=r"^stage 'ocr': ") as excinfo:
            await pipeline(flaky).run(
                range(20), sink=JsonlSink(out, record=record), journal=Journal(journal), key=str
            )
        assert isinstance(excinfo.value.__cause__, FileNotFoundError)
        assert (await anyio.Path(out).read_bytes()).count(b"\n") >= 1
        await pipeline(object).run(
            range(20),
            sink=JsonlSink(out, record=record),
            journal=Journal(journal),
            key=str,
            resume=True,
        )
        lines = (await anyio.Path(out).read_bytes()).splitlines()
        keys = [orjson.loads(line)["id"] for line in lines]
        assert sorted(keys, key=int) == [str(n) for n in range(20)]


class TestOrdering:
    """ordered=True gives input order, within a bounded window."""

    async def test_async_stage_random_delays(self) -> None:
        """Eight async workers with random delays still deliver in input order."""
        rng = random.Random(42)
        delays = [rng.uniform(0, 0.004) for _ in range(150)]

        async def work(value: int) -> int:
            await anyio.sleep(delays[value])
            return value * 10

        sink = ListSink()
        summary = await Pipeline([Stage("work", work, workers=8)]).run(
            range(150), sink=sink, ordered=True
        )
        assert summary.ok == 150
        assert [item.value for item in sink.items] == [v * 10 for v in range(150)]
        assert [item.key for item in sink.items] == [str(v) for v in range(150)]

    async def test_thread_stage_random_delays(self) -> None:
        """Four thread workers with random delays still deliver in input order."""
        rng = random.Random(7)
        delays = [rng.uniform(0, 0.004) for _ in range(60)]

        def work(value: int) -> int:
            time.sleep(delays[value])
            return value

        async def jitter(value: int) -> int:
            await anyio.sleep(delays[-1 - value])
            return value

        sink = ListSink()
        pipeline = Pipeline(
            [Stage("a", jitter, workers=4), Stage("b", work, kind="thread", workers=4)]
        )
        await pipeline.run(range(60), sink=sink, ordered=True)
        assert [item.value for item in sink.items] == list(range(60))

    def test_reorderer_releases_the_ready_run_of_each_batch(self) -> None:
        """Each batch releases the items now in order, across batches; the rest wait."""
        reorder: Reorderer[Item] = Reorderer()
        items = [Item(str(i), i, i) for i in range(8)]

        def take(*indexes: int) -> list[Item]:
            return [items[i] for i in indexes]

        assert reorder.push(take(2, 1)) == []
        assert reorder.push(take(0, 5)) == take(0, 1, 2)
        assert len(reorder) == 1
        assert reorder.push(take(3, 4, 7, 6)) == take(3, 4, 5, 6, 7)
        assert len(reorder) == 0

    async def test_unordered_returns_everything(self) -> None:
        """Without ordered, every item arrives, and a slow first item does not hold the rest."""

        async def work(value: int) -> int:
            await anyio.sleep(0.2 if value == 0 else 0)
            return value

        sink = ListSink()
        await Pipeline([Stage("work", work, workers=4)]).run(range(30), sink=sink, ordered=False)
        assert sorted(item.value for item in sink.items) == list(range(30))
        assert sink.items[0].value != 0

    @pytest.mark.parametrize("window", [6, None])
    async def test_slow_item_bounds_admission(self, window: int | None) -> None:
        """While one item is stuck, at most `reorder_window` items behind it are admitted."""
        slow = 2
        stuck = anyio.Event()
        source = CountingSource(200)
        sink = ListSink()

        async def work(value: int) -> int:
            if value == slow:
                await stuck.wait()
            return value

        pipeline = Pipeline([Stage("work", work, workers=4, max_buffer_size=5)], max_buffer_size=3)
        # The default window is what the queues and workers hold: 5 + 3 + 4.
        size = window if window is not None else 5 + 3 + 4
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                partial(pipeline.run, source, sink=sink, ordered=True, reorder_window=window)
            )
            with anyio.fail_after(10):
                await wait_until(lambda: source.pulled >= slow + size)
            await anyio.sleep(0.2)  # time for a leak to show
            # Items before the slow one are out; the window holds the slow one and the
            # items behind it; the source holds one more it pulled and cannot admit.
            assert [item.value for item in sink.items] == list(range(slow))
            assert source.pulled - (slow + 1) <= size
            stuck.set()
        assert [item.value for item in sink.items] == list(range(200))

    async def test_the_summary_says_how_long_the_window_held_intake_back(self) -> None:
        """One slow item: an ordered run's summary counts the seconds the full window
        kept the source waiting, and says what would run faster; unordered, none
        (helper-87's audit: the table blamed a stage)."""

        async def work(value: int) -> int:
            await anyio.sleep(0.3 if value == 2 else 0)
            return value

        pipeline = Pipeline([Stage("work", work, workers=4)], max_buffer_size=2)
        ordered = await pipeline.run(range(100), ordered=True, reorder_window=8)
        assert 0.2 < ordered.window_wait <= ordered.elapsed
        unordered = await pipeline.run(range(100), ordered=False)
        assert unordered.window_wait == 0.0
        assert "reorder_window" not in unordered.format_table()
        # A run paced by a slow sink waits on a full window too, but nothing finished is
        # held back for order: not counted, no advice (helper-91's check).

        async def slow_sink(item: Item) -> None:
            await anyio.sleep(0.003)

        uniform = Pipeline([Stage("work", identity, workers=4)], max_buffer_size=2)
        paced = await uniform.run(range(200), sink=slow_sink, ordered=True)
        assert paced.window_wait < 0.1 * paced.elapsed
        assert "reorder_window" not in paced.format_table()
        # Over a tenth of a run of more than ten seconds, the table says so.
        held = dataclasses.replace(ordered, elapsed=20.0, window_wait=5.0)
        assert "held intake back 5.0 s" in held.format_table()


class TestStream:
    """pipeline.stream() yields finished items and cleans up after an early exit."""

    async def test_full_iteration(self) -> None:
        """Iterating to the end yields every item, in order when asked."""
        pipeline = Pipeline([Stage("a", identity, workers=4)])
        async with pipeline.stream(range(50), ordered=True) as items:
            values = [item.value async for item in items]
        assert values == list(range(50))

    async def test_early_exit_cancels_the_run(self) -> None:
        """Leaving the block early stops the run and its threads, without an error."""
        gauge = Gauge()
        source = CountingSource()

        def work(value: int) -> int:
            with gauge:
                time.sleep(0.001)
            return value

        pipeline = Pipeline([Stage("a", work, kind="thread", workers=2)])
        seen = []
        with anyio.fail_after(10):
            async with pipeline.stream(source) as items:
                async for item in items:
                    seen.append(item.value)
                    if len(seen) == 5:
                        break
        assert len(seen) == 5
        assert gauge.active == 0
        assert threads_running(work.__code__) == []
        pulled = source.pulled
        await anyio.sleep(0.05)
        assert source.pulled == pulled

    async def test_error_in_the_body_propagates_unwrapped(self) -> None:
        """An exception raised by the consumer comes out as itself, not in an ExceptionGroup."""
        pipeline = Pipeline([Stage("a", identity)])
        with pytest.raises(ValueError, match="consumer failed"):
            async with pipeline.stream(CountingSource()) as items:
                async for item in items:
                    if item.value == 3:
                        raise ValueError("consumer failed")
