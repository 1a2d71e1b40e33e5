"""
The pipeline: stages joined by bounded queues, run in one task group.

::

    source ──q0──► stage 0 ──q1──► stage 1 ── … ──qN──► collector ──► sink
                    (N workers)     (N workers)          (reorders if asked)

Every queue is bounded, so a slow stage holds the ones before it back.  Each item gets
its own try in each stage; a final failure becomes an `ErrorRecord` on the item, which
then passes the later stages untouched and reaches the sink like any other.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
import anyio.to_thread

from ._exceptions import ConfigError, EndOfQueue
from ._executor import StageCall
from ._journal import Journal, JournalState
from ._meter import ProgressSnapshot, RunMeter, Total  # progress:
from ._ordering import AdmissionWindow, Reorderer
from ._progress import ProgressReporter
from ._queue import ReceiveQueue, SendQueue, open_queue
from ._sink import CallbackSink, Sink
from ._stage import ErrorRecord, Item, Stage, stage_fingerprints
from ._stats import RunSummary, StageCounters, StageStatistics, now

__all__ = ["Pipeline", "iterate_in_thread"]

log = logging.getLogger("asyncpipe")

Source = Iterable[Any] | AsyncIterable[Any]


class Pipeline:
    """
    A chain of stages joined by bounded queues.

    Args:
        stages: the stages, in order.  Names must be unique.
        max_buffer_size: how many items wait in front of each stage (and of the sink),
            unless the stage sets its own.  Default 16.

    Example::

        pipeline = Pipeline([Stage("fetch", fetch, workers=16), Stage("parse", parse,
                             kind="thread", workers=2)])
        summary = await pipeline.run(urls, sink=JsonlSink("out.jsonl"), ordered=True)

    .. versionadded:: 0.1
    """

    def __init__(self, stages: Sequence[Stage], *, max_buffer_size: int = 16) -> None:
        if not stages:
            raise ConfigError("a pipeline needs at least one stage")
        names = [stage.name for stage in stages]
        if len(set(names)) != len(names):
            raise ConfigError(f"stage names must be unique: {names}")
        if max_buffer_size < 1:
            raise ConfigError("max_buffer_size must be at least 1")
        self.stages = list(stages)
        self.max_buffer_size = max_buffer_size
        self._run: _Run | None = None

    def statistics(self) -> list[StageStatistics]:
        """
        Live statistics of the current (or last) run, one entry per stage.
        """
        return self._run.snapshot() if self._run is not None else []

    def progress(self) -> ProgressSnapshot | None:  # progress:
        """
        How far the current (or last) run is: total, done, rate, ETA; ``None`` before a run.
        """
        return self._run.progress_snapshot() if self._run is not None else None

    async def run(
        self,
        source: Source,
        *,
        sink: Sink | Callable[[Item], Any] | None = None,
        journal: Journal | None = None,
        resume: bool = False,
        retry_failed: bool = False,
        ordered: bool = False,
        key: Callable[[Any], str] | None = None,
        reorder_window: int | None = None,
        progress: ProgressReporter | None = None,
        stop_on_signals: bool = False,
        total: Total | None = None,  # progress:
    ) -> RunSummary:
        """
        Run every item of ``source`` through the stages into ``sink``.

        Args:
            source: an iterable or async iterable of input values.  A plain iterable is
                iterated on the event loop, so it must not block (see `iterate_in_thread`).
            sink: a `Sink`, or an ``async def f(item)`` callback, or ``None`` to drop results.
            journal: a `Journal` for checkpoints and resume, or ``None``.
            resume: skip items already written, and restart unfinished items at their first
                stage without a checkpoint.
            retry_failed: on resume, run failed items again.
            ordered: hand items to the sink in input order.  Off by default: ordering
                makes fast items wait for slow ones.
            key: the stable key of an input value; default, its position in the source.
            reorder_window: with ``ordered``, the most items in flight at once; default, as
                many as the queues and workers hold, so the window never slows the run.
            progress: called with live statistics about once a second.
            stop_on_signals: on SIGINT/SIGTERM stop taking input, finish the items in
                flight and return (``summary.interrupted`` says which); a second signal
                cancels the items in flight too.
            total: how many items the source holds, for the ETA: a number, or an async
                iterable (or a function returning one) of refined estimates.

        Returns:
            A `RunSummary`.

        Raises:
            ConfigError, JournalError: the run cannot start or its journal failed.
            Exception: anything the framework itself (or the sink) raised.  Item failures
                never raise: they become error records.
        """
        if retry_failed and not resume:
            raise ConfigError("retry_failed only makes sense with resume")
        if resume and journal is None:
            raise ConfigError("resume needs a journal")
        if sink is not None and not isinstance(sink, Sink):
            sink = CallbackSink(sink)
        run = _Run(
            self,
            sink=sink,
            journal=journal,
            ordered=ordered,
            key=key,
            reorder_window=reorder_window,
            progress=progress,
            stop_on_signals=stop_on_signals,
        )
        run.meter = RunMeter(total)  # progress:
        self._run = run
        return await run.execute(source, resume=resume, retry_failed=retry_failed)

    @asynccontextmanager
    async def stream(
        self,
        source: Source,
        *,
        ordered: bool = False,
        key: Callable[[Any], str] | None = None,
        **options: Any,
    ) -> AsyncIterator[ReceiveQueue[Item]]:
        """
        Run the pipeline and iterate over its finished items::

            async with pipeline.stream(values, ordered=True) as items:
                async for item in items:
                    ...

        Leaving the block early cancels the run.  ``options`` are those of `run`.
        """
        send, receive = open_queue[Item](self.max_buffer_size)

        async def forward(item: Item) -> None:
            await send.send(item)

        async def produce() -> None:
            try:
                await self.run(source, sink=forward, ordered=ordered, key=key, **options)
            finally:
                send.close()

        error: Exception | None = None  # the consumer's own error comes out as itself
        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            try:
                yield receive
            except Exception as exc:
                error = exc
            finally:
                tg.cancel_scope.cancel()
        if error is not None:
            raise error


class _Run:
    """
    The state of one run of a pipeline.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        sink: Sink | None,
        journal: Journal | None,
        ordered: bool,
        key: Callable[[Any], str] | None,
        reorder_window: int | None,
        progress: ProgressReporter | None,
        stop_on_signals: bool,
    ) -> None:
        self.stages = pipeline.stages
        self.sink = sink
        self.journal = journal
        self.ordered = ordered
        self.key = key
        self.progress = progress
        self.stop_on_signals = stop_on_signals
        self.fingerprints = stage_fingerprints(self.stages)
        self.counters = [StageCounters(s.name, s.kind, s.workers) for s in self.stages]
        sizes = [s.max_buffer_size or pipeline.max_buffer_size for s in self.stages]
        sizes.append(pipeline.max_buffer_size)
        ends = [open_queue[Item](size) for size in sizes]
        self.senders: list[SendQueue[Item]] = [e[0] for e in ends]
        self.receivers: list[ReceiveQueue[Item]] = [e[1] for e in ends]
        capacity = sum(sizes) + sum(s.workers for s in self.stages)
        self.window = AdmissionWindow(reorder_window or capacity) if ordered else None
        self.intake = anyio.CancelScope()
        self.state = JournalState()
        self.done_keys: set[str] = set()
        self.started = now()
        self.finished: float | None = None
        self.ok = 0
        self.failed = 0
        self.skipped = 0
        self.interrupted: str | None = None
        self.meter = RunMeter()  # progress:

    def snapshot(self) -> list[StageStatistics]:
        elapsed = (self.finished or now()) - self.started
        return [c.snapshot(elapsed, self.receivers[i]) for i, c in enumerate(self.counters)]

    def progress_snapshot(self) -> ProgressSnapshot:  # progress:
        return self.meter.snapshot(
            self.snapshot(), elapsed=(self.finished or now()) - self.started, ok=self.ok,
            failed=self.failed, skipped=self.skipped, previous=len(self.done_keys),
            interrupted=self.interrupted,
        )

    def summary(self) -> RunSummary:
        return RunSummary(
            stages=self.snapshot(),
            elapsed=(self.finished or now()) - self.started,
            ok=self.ok,
            failed=self.failed,
            skipped=self.skipped,
            interrupted=self.interrupted,
            progress=self.progress_snapshot(),  # progress:
        )

    async def execute(self, source: Source, *, resume: bool, retry_failed: bool) -> RunSummary:
        try:
            # The sink first: it refuses to overwrite an earlier run's output, and that
            # refusal must come before the journal (and its checkpoints) is truncated.
            written = None
            if self.sink is not None:
                written = await self.sink.open(resume=resume, retry_failed=retry_failed)
            if self.journal is not None:
                self.state = await self.journal.open(resume=resume)
                self.journal.start_nowait([s.name for s in self.stages])
            if written is not None:
                # The sink's own record of what it holds is the truth: after a power loss
                # the journal may say "done" for a line that never reached the disk.
                self.done_keys = written
            elif resume:
                self.done_keys = {
                    k for k, status in self.state.done.items() if status == "ok" or not retry_failed
                }
            self.started = now()
            try:
                await self._run_tasks(source)
            except BaseExceptionGroup as group:
                # One failure (a ConfigError from the source, a JournalError from the
                # writer, the sink's own error) is raised as itself, as documented.
                leaves = _leaves(group)
                if len(leaves) == 1 and isinstance(leaves[0], Exception):
                    raise leaves[0] from None
                raise
        finally:
            self.finished = now()
            with anyio.CancelScope(shield=True):
                try:
                    if self.sink is not None:
                        await self.sink.aclose()
                finally:
                    if self.journal is not None:
                        await self.journal.aclose()
        summary = self.summary()
        if self.progress is not None:
            self.progress.finish(summary)
        return summary

    async def _run_tasks(self, source: Source) -> None:
        async with anyio.create_task_group() as tg:
            if self.journal is not None:
                tg.start_soon(self.journal.run_writer)
            if self.progress is not None:
                tg.start_soon(self._report_progress)
            if self.meter.needs_task:  # progress:
                tg.start_soon(self.meter.follow_total)  # progress:
            if self.stop_on_signals:
                tg.start_soon(self._watch_signals, tg.cancel_scope)
            for index in range(len(self.stages)):
                tg.start_soon(self._run_stage, index)
            tg.start_soon(self._source, source)
            await self._collect()
            tg.cancel_scope.cancel()  # the helpers above run forever

    # -- source ------------------------------------------------------------------------

    async def _source(self, source: Source) -> None:
        send = self.senders[0]
        keyfn = self.key
        journal = self.journal
        seen: set[str] | None = set() if journal is not None else None
        index = 0
        position = -1
        try:
            with self.intake:
                async for value in _iterate(source):
                    position += 1
                    key = keyfn(value) if keyfn is not None else str(position)
                    if seen is not None:
                        if key in seen:
                            raise ConfigError(f"two input items have the same key {key!r}")
                        seen.add(key)
                    if key in self.done_keys:
                        self.skipped += 1
                        continue
                    item = Item(key, index, value)
                    if self.state.checkpoints:
                        self._restore(item)
                    index += 1
                    if self.window is not None:
                        await self.window.acquire()
                    await send.send(item)
                    self.meter.admitted += 1  # progress:
                self.meter.exhausted(position + 1)  # progress:
        finally:
            send.close()

    def _restore(self, item: Item) -> None:
        """
        Move a resumed item past its last stage with a valid checkpoint.
        """
        checkpoints = self.state.checkpoints.pop(item.key, None)
        if not checkpoints:
            return
        for i in range(len(self.stages) - 1, -1, -1):
            stage = self.stages[i]
            ck = checkpoints.get(stage.name)
            if stage.checkpoint and ck is not None and ck.fingerprint == self.fingerprints[i]:
                item.value = stage.decode(ck.output) if stage.decode is not None else ck.output
                item.timings = dict(ck.timings)
                item.start = i + 1
                return

    # -- stages ------------------------------------------------------------------------

    async def _run_stage(self, index: int) -> None:
        stage = self.stages[index]
        try:
            if stage.executor is not None:
                async with stage.executor.open(stage) as remote:
                    await self._run_workers(index, None, remote)
            else:
                threads = anyio.CapacityLimiter(stage.workers) if stage.kind == "thread" else None
                await self._run_workers(index, threads, None)
        finally:
            self.senders[index + 1].close()

    async def _run_workers(
        self, index: int, threads: anyio.CapacityLimiter | None, remote: StageCall | None
    ) -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(self.stages[index].workers):
                tg.start_soon(self._worker, index, threads, remote)

    async def _worker(
        self, index: int, threads: anyio.CapacityLimiter | None, remote: StageCall | None
    ) -> None:
        stage = self.stages[index]
        resource = None
        if stage.resource is not None and remote is None:
            if threads is not None:
                resource = await anyio.to_thread.run_sync(stage.resource, limiter=threads)
            else:
                resource = stage.resource()
        try:
            call = _make_call(stage, resource, threads, remote)
            receive, send = self.receivers[index], self.senders[index + 1]
            counters = self.counters[index]
            while True:
                try:
                    item = await receive.receive()
                except EndOfQueue:
                    return
                if item.error is None and item.start <= index:
                    await self._process(index, stage, counters, call, item)
                else:
                    counters.skipped += 1
                await send.send(item)
        finally:
            if resource is not None and hasattr(resource, "close"):
                with anyio.CancelScope(shield=True):
                    if threads is not None:
                        await anyio.to_thread.run_sync(resource.close, limiter=threads)
                    else:
                        resource.close()

    async def _process(
        self,
        index: int,
        stage: Stage,
        counters: StageCounters,
        call: Callable[[Any], Any],
        item: Item,
    ) -> None:
        counters.items_in += 1
        started = now()
        attempt = 1
        busy = 0.0
        while True:
            t0 = now()
            try:
                value = await call(item.value)
            except Exception as exc:
                busy += now() - t0
                if not stage.retry.should_retry(exc, attempt):
                    self._fail(
                        item,
                        counters,
                        ErrorRecord(stage.name, type(exc).__name__, str(exc) or repr(exc), attempt),
                    )
                    break
                counters.retried += 1
                await anyio.sleep(stage.retry.delay(exc, attempt))
                attempt += 1
                continue
            busy += now() - t0
            item.value = value
            counters.items_out += 1
            break
        elapsed = now() - started
        counters.busy += busy
        counters.record_latency(elapsed)
        item.timings[stage.name] = elapsed
        journal = self.journal
        if journal is not None and item.error is None:
            if stage.checkpoint:
                try:
                    encoded = stage.encode(value) if stage.encode is not None else value
                    journal.checkpoint_nowait(
                        item.key, stage.name, self.fingerprints[index], encoded, item.timings
                    )
                except TypeError as exc:
                    counters.items_out -= 1
                    self._fail(
                        item,
                        counters,
                        ErrorRecord(
                            stage.name,
                            type(exc).__name__,
                            f"cannot checkpoint output: {exc}",
                            attempt,
                        ),
                    )
            else:
                journal.stage_ok_nowait(item.key, stage.name)

    def _fail(self, item: Item, counters: StageCounters, error: ErrorRecord) -> None:
        # item.value stays what the failing stage was given, so the sink can still say
        # which input it was (and keep what earlier stages produced).
        item.error = error
        counters.failed += 1
        if self.journal is not None:
            self.journal.failed_nowait(item.key, error)

    # -- collector ---------------------------------------------------------------------

    async def _collect(self) -> None:
        receive = self.receivers[-1]
        reorder: Reorderer[Item] | None = Reorderer() if self.ordered else None
        while True:
            try:
                batch = [await receive.receive()]
            except EndOfQueue:
                break
            # Take whatever else is ready too: one sink write per batch, not per item.
            while len(batch) < 256:
                try:
                    batch.append(receive.receive_nowait())
                except (EndOfQueue, asyncio.QueueEmpty):
                    break
            self.meter.finished += len(batch)  # progress:
            if reorder is not None:
                ready: list[Item] = []
                for item in batch:
                    ready.extend(reorder.push(item.index, item))
                batch = ready
            if batch:
                await self._emit(batch)
        if reorder is not None and len(reorder):
            raise RuntimeError(f"asyncpipe bug: {len(reorder)} items never left the reorder buffer")

    async def _emit(self, batch: list[Item]) -> None:
        if self.sink is not None:
            await self.sink.write(batch)
        journal = self.journal
        for item in batch:
            if item.error is None:
                self.ok += 1
            else:
                self.failed += 1
            if journal is not None:
                journal.done_nowait(item.key, "ok" if item.error is None else "error")
        if self.window is not None:
            self.window.release(len(batch))

    # -- helpers -----------------------------------------------------------------------

    async def _report_progress(self) -> None:
        assert self.progress is not None
        while True:
            self.progress.update(self.progress_snapshot())  # progress:
            await anyio.sleep(self.progress.interval)

    async def _watch_signals(self, everything: anyio.CancelScope) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                name = signal.Signals(signum).name
                if self.interrupted is None:
                    self.interrupted = name
                    if self.progress is not None:  # progress:
                        in_flight = self.meter.admitted - self.meter.finished  # progress:
                        self.progress.interrupted(self.progress_snapshot(), in_flight)
                    else:
                        log.warning(
                            "%s: no new items; finishing the items in flight "
                            "(send it again to stop at once)",
                            name,
                        )
                    self.intake.cancel()
                else:
                    log.warning("%s again: stopping now", name)
                    everything.cancel()


def _make_call(
    stage: Stage,
    resource: Any,
    threads: anyio.CapacityLimiter | None,
    remote: StageCall | None,
) -> Callable[[Any], Any]:
    """
    Build the coroutine function that makes one try of ``stage`` on a value.
    """
    limiter = stage.limiter
    timeout = stage.timeout
    if remote is not None:
        if limiter is None:
            return remote

        async def call_remote(value: Any) -> Any:
            await limiter.acquire()
            return await remote(value)

        return call_remote
    fn = partial(stage.fn, resource) if stage.resource is not None else stage.fn
    if threads is not None:

        async def call(value: Any) -> Any:
            if limiter is not None:
                await limiter.acquire()
            return await anyio.to_thread.run_sync(fn, value, limiter=threads)

        return call
    if limiter is None and timeout is None:
        return fn  # the fast path: no wrapper at all

    async def call_async(value: Any) -> Any:
        if limiter is not None:
            await limiter.acquire()
        if timeout is None:
            return await fn(value)
        with anyio.fail_after(timeout):
            return await fn(value)

    return call_async


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


async def _iterate(source: Source) -> AsyncIterator[Any]:
    if isinstance(source, AsyncIterable):
        async for value in source:
            yield value
    else:
        for value in source:
            yield value


async def iterate_in_thread(iterable: Iterable[Any], *, batch: int = 64) -> AsyncIterator[Any]:
    """
    Iterate a blocking iterable (e.g. a directory walk) in a worker thread, ``batch``
    values at a time, so that the event loop never blocks on it.

    .. versionadded:: 0.1
    """
    iterator = iter(iterable)

    def take() -> list[Any]:
        out = []
        for value in iterator:
            out.append(value)
            if len(out) >= batch:
                break
        return out

    while True:
        values = await anyio.to_thread.run_sync(take)
        if not values:
            return
        for value in values:
            yield value
