"""
One run of a pipeline: its queues and tasks, its workers, the collector, and its end.

::

    source ──q0──► stage 0 ──q1──► stage 1 ── … ──qN──► collector ──► sink
                    (N workers)     (N workers)          (reorders if asked)

Every task runs in one task group.  The collector returns once the last queue is
drained; the helpers (journal writer, progress, signal watcher) are then cancelled.
"""

from __future__ import annotations

import functools
import logging
import math
import signal
from collections.abc import Callable, Sized
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from ._attempt import make_call, output_failed, process_chain, serve
from ._exceptions import ConfigError, EndOfQueue
from ._executor import StageCall
from ._fuse import Chain, plan_chains
from ._journal import Journal
from ._keyindex import InputOrder
from ._meter import ProgressSnapshot, RunMeter, Total
from ._ordering import AdmissionWindow, Reorderer
from ._overrides import resolve_limiters
from ._pinned import PinnedThread
from ._progress import ProgressReporter
from ._queue import ReceiveQueue, SendQueue, open_queue
from ._resume import ResumePlan
from ._runid import settle_run_id
from ._signals import signals_to
from ._sink import JsonlSink, Sink
from ._source import Source, feed
from ._stage import Item
from ._stats import RunSummary, StageCounters, StageStatistics, WorkerLosses, now
from ._stopping import _STOPPING, StopSignal, begin_calls
from ._stream import StreamSink

if TYPE_CHECKING:
    from ._pipeline import Pipeline

# Internal to `Pipeline`: nothing here is public API.
__all__: list[str] = []

log = logging.getLogger("asyncpipe")

#: The most items the collector hands the sink in one write.  Batching makes one sink
#: write (and one wait for the journal's room) of what is ready, not one per item; the
#: bound keeps one write, and the time before the collector awaits again, small when a
#: large ``max_buffer_size`` holds thousands in the last queue.  It holds 16 by default,
#: so the bound rarely bites.
_MOST_PER_WRITE = 256


class Run:
    """
    The state of one run of a pipeline.

    `Pipeline.run` makes one and calls `execute`.  Most of the state is the run's own;
    the per-item work lives in other modules, which read it and write some of it: the
    source's task (`_source.feed`), a stage's workers (`_attempt.serve` and its
    retries) and a fused chain's (`_attempt.process_chain`).  Written by this class
    unless said otherwise.

    Attributes:
        stages: the pipeline's stages, in order (read everywhere, by index).
        limiters: each stage's rate limit, named limits resolved, or ``None``.
        sink: where finished items go (`_emit`), or ``None`` to drop them.
        stream: the sink again when it is `Pipeline.stream`'s, which counts and journals
            each item (`_written`) as its consumer finishes with it; else ``None``.
        journal: the run's `Journal`, or ``None``; the workers journal checkpoints and
            failures through it.
        ordered: items reach the sink in input order (`reorder`).
        key: the key function of input values (`feed`), or ``None`` for positions.
        progress: the `ProgressReporter` updated every interval, or ``None``.
        stop_on_signals: SIGINT and SIGTERM stop the run (`_watch_signals`).
        chains: the fused chains of consecutive executor stages, by their first stage's
            index; that stage's task runs the chain.
        fused: the indexes of the other stages of a chain, which have no task.
        plan: the `ResumePlan`: what is done and the checkpoints to restart from (set by
            `execute` from the journal; read by `feed`, which skips and restores items,
            and by `_attempt.checkpoint` for the stages' fingerprints).
        counters: each stage's `StageCounters`, written by its workers (`serve`,
            `_after_failure`, `process_chain`: items in and out, failures, retries,
            busy time, latencies, ``calls_running``) and by ``_chain_worker``.
        senders, receivers: the queues' ends; ``senders[i]`` feeds stage ``i``
            (``senders[0]`` is `feed`'s), and the last receiver is the collector's.
        reorder: the `Reorderer` that puts items back in input order, if ``ordered``.
        window: with ``ordered``, the `AdmissionWindow` that bounds the items in flight
            (`feed` acquires it, the collector releases it).
        intake: the cancel scope the source is read in; `stop_intake` cancels it.
        started, finished: when the stages started and when the run ended (`now`).
        ok, failed: items written by the sink, without and with an error record.
        failures: items failed so far, in a stage (counted by `_attempt.fail`) or in
            the sink (`_attempt.output_failed`), as they fail (their log lines stop at a
            cap).
        skipped: input values not run because the output holds them (`feed`).
        deferred: items left unwritten for ``--resume`` (a stop, or `StopIntake`).
        duplicates: input values skipped because an earlier one had their key (`feed`).
        holding: with ``ordered``, an item has been left for ``--resume``, so every
            later one is too.
        interrupted: what stopped the intake (a signal's name, a `StopIntake` reason),
            or ``None``.
        stop_signal: set by a stop with a journal (`leave_waiting`); it ends the
            stages' waits (rate limits, backoffs).
        chains_running: items inside a fused chain's call (``_chain_worker``).
        cancelled: a second signal cancelled the items in flight.
        broken_by: the `ConfigError` that stopped the run at once (`broken`, called by
            a worker whose resource could not be built and by `_attempt` for a stage
            function of the wrong kind), which `execute` raises.
        meter: the `RunMeter` of progress: ``admitted`` counted by `feed`,
            ``finished`` and ``left`` by the collector.
        losses_before: each executor's lost workers when the run began.
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
        total: Total | None = None,
    ) -> None:
        self.stages = pipeline.stages
        self.limiters = resolve_limiters(self.stages, pipeline.limits)
        self.sink = sink
        # A stream's sink says when its consumer is done with each item: it is counted and
        # journaled then (`_written`), not once it is handed over.
        self.stream = sink if isinstance(sink, StreamSink) else None
        if self.stream is not None:
            self.stream.done = self._written
        self.journal = journal
        self.ordered = ordered
        self.key = key
        self.progress = progress
        self.stop_on_signals = stop_on_signals
        # Consecutive stages on one executor run as one call per item (see _fuse.py).
        self.chains = {chain.first: chain for chain in plan_chains(self.stages)}
        self.fused = {
            index
            for chain in self.chains.values()
            for index in range(chain.first + 1, chain.last + 1)
        }
        self.plan = ResumePlan.fresh(self.stages)
        self.counters = [StageCounters(s.name, s.kind, s.workers) for s in self.stages]
        sizes = [s.max_buffer_size or pipeline.max_buffer_size for s in self.stages]
        sizes.append(pipeline.max_buffer_size)
        ends = [
            open_queue[Item](size, max_weight=s.max_weight, weigh=s.weigh if s.weight else None)
            for s, size in zip(self.stages, sizes[:-1], strict=True)
        ]
        ends.append(open_queue[Item](sizes[-1]))
        self.senders: list[SendQueue[Item]] = [e[0] for e in ends]
        self.receivers: list[ReceiveQueue[Item]] = [e[1] for e in ends]
        capacity = sum(sizes) + sum(s.workers for s in self.stages)
        self.reorder: Reorderer[Item] | None = Reorderer() if ordered else None
        self.window = (
            AdmissionWindow(reorder_window or capacity, held=self.reorder.__len__)
            if self.reorder is not None
            else None
        )
        self.intake = anyio.CancelScope()
        self.started = now()
        self.finished: float | None = None
        self.ok = 0
        self.failed = 0
        self.failures = 0
        self.skipped = 0
        self.deferred = 0  # items a stage left for --resume (`StopIntake`)
        self.duplicates = 0  # input values skipped: an earlier one had their key
        # Ordered output: once an item is left for --resume, so is every item after it,
        # or --resume would write it after them.
        self.holding = False
        self.interrupted: str | None = None
        # Set by a stop, with a journal (`leave_waiting`); it ends the stages' waits.
        self.stop_signal = StopSignal()
        self.chains_running = 0  # items inside a fused chain's call
        self.cancelled = False  # a second signal cancelled the items in flight
        # What stopped the run at once, raised by `execute`: the first worker's resource
        # that could not be built, or a stage function of the wrong kind (`broken`).
        self.broken_by: ConfigError | None = None
        self._everything: anyio.CancelScope | None = None  # the run's task group's
        self.meter = RunMeter(total)
        # The executors' lost workers are counted from here (an executor may serve runs
        # one after another).
        executors = {id(s.executor): s.executor for s in self.stages if s.executor is not None}
        self.losses_before = [(e, e.losses()) for e in executors.values()]

    @property
    def leave_waiting(self) -> bool:
        """
        After a stop, with a journal: a stage begins no item, so the items waiting between
        stages are left for --resume at their last checkpoint, rather than drained through
        paid calls (draining can take a minute and a hundred LLM calls).
        """
        return self.stop_signal.is_set

    def snapshot(self) -> list[StageStatistics]:
        """
        Live statistics, one entry per stage.
        """
        elapsed = (self.finished or now()) - self.started
        return [c.snapshot(elapsed, self.receivers[i]) for i, c in enumerate(self.counters)]

    def progress_snapshot(self) -> ProgressSnapshot:
        """
        How far the run is: total, done, rate and ETA.
        """
        return self.meter.snapshot(
            self.snapshot(),
            elapsed=(self.finished or now()) - self.started,
            ok=self.ok,
            failed=self.failed,
            skipped=self.skipped,
            previous=len(keys) if isinstance(keys := self.plan.done_keys, Sized) else 0,
            interrupted=self.interrupted,
        )

    def summary(self) -> RunSummary:
        """
        The summary of the run so far.
        """
        return RunSummary(
            stages=self.snapshot(),
            elapsed=(self.finished or now()) - self.started,
            ok=self.ok,
            failed=self.failed,
            skipped=self.skipped,
            interrupted=self.interrupted,
            cancelled=self.cancelled,
            duplicates=self.duplicates,
            progress=self.progress_snapshot(),
            worker_losses=self.worker_losses(),
            window_wait=self.window.waited if self.window is not None else 0.0,
        )

    def worker_losses(self) -> dict[str, WorkerLosses]:
        """
        What each executor lost during this run, by its name; only those that lost any.
        """
        out: dict[str, WorkerLosses] = {}
        for executor, before in self.losses_before:
            if lost := executor.losses() - before:
                out[executor.name] = out.get(executor.name, WorkerLosses()) + lost
        return out

    async def execute(self, source: Source, *, resume: bool, retry_failed: bool) -> RunSummary:
        """
        Give the journal and the sink the run's id, and run (`_execute`).
        """
        # One id for the journal and the output's key index; on resume, another run's
        # output is refused here, before either file (or a lock beside it) is touched.
        restore = await anyio.to_thread.run_sync(
            functools.partial(settle_run_id, self.journal, self.sink, resume=resume)
        )
        try:
            return await self._execute(source, resume=resume, retry_failed=retry_failed)
        finally:
            restore()

    async def _execute(self, source: Source, *, resume: bool, retry_failed: bool) -> RunSummary:
        """
        Open the sink and the journal, plan the resume, run every task, and close up.
        """
        # The run's lock before anything is touched: a second start of the same job stops
        # here, not after its sink has emptied the first one's output, and closes nothing
        # of the run that holds it.
        if self.journal is not None:
            await self.journal.lock()
        written = None
        clean = False  # the run ended without an error: the sink closes as usual
        try:
            # Then the sink: it refuses to overwrite an earlier run's output, and that
            # refusal must come before the journal (and its checkpoints) is truncated.
            if self.sink is not None:
                written = await self.sink.open(resume=resume, retry_failed=retry_failed)
            if self.journal is not None:
                # The sink's record of what it holds decides what is finished; the journal
                # streams in and keeps only the checkpoints of the items not in it.
                state = await self.journal.open(
                    resume=resume, done=written, retry_failed=retry_failed
                )
                self.journal.start_nowait([s.name for s in self.stages])
                # Written now, before the source is asked for its first item: the journal
                # holds its start line before the app writes anything beside it (a full
                # disk then fails the journal first, the same way every time).
                await self.journal.flush(sync=True)
                self.plan = ResumePlan(self.stages, state, resume=resume)
                if self.key is None:
                    _warn_positional(resume and bool(written or state.done or state.checkpoints))
            elif written is not None:
                self.plan.done_keys = written
            if self.ordered and isinstance(self.sink, JsonlSink) and self.sink.reordering:
                # The source's keys, as it gives them: the sink puts the retried lines
                # in input order as it closes.
                order = InputOrder(self.plan.done_keys)
                self.plan.done_keys = order
                self.sink.put_in_order(order)
            self.started = now()
            try:
                await self._run_tasks(source)
                if self.broken_by is not None:
                    raise self.broken_by
                clean = True
            except BaseExceptionGroup as group:
                # One failure (a ConfigError from the source, a JournalError from the
                # writer, the sink's own error) is raised as itself, as documented, with
                # its own cause (an executor's ConfigError carries the factory's error).
                leaves = _leaves(group)
                if len(leaves) == 1 and isinstance(leaves[0], Exception):
                    raise leaves[0] from leaves[0].__cause__
                raise
        finally:
            self.finished = now()
            with anyio.CancelScope(shield=True):
                durable = False  # the sink closed after a clean run: its output is durable
                try:
                    if self.sink is not None:
                        await self.sink.aclose()
                    durable = clean
                finally:
                    if self.journal is not None:
                        # What the sink held at the start is on disk now: the items of
                        # it written ok whose done lines the journal lost keep no
                        # checkpoints.  A sink that cannot tell an error record keeps them.
                        ok = None
                        try:
                            if durable and written is not None and self.sink is not None:
                                ok = self.sink.written_ok()
                        finally:
                            await self.journal.aclose(written=ok)
        summary = self.summary()
        if self.progress is not None:
            self.progress.finish(summary)
        return summary

    async def _run_tasks(self, source: Source) -> None:
        # The run's tasks inherit it: `stopping()` reads this run's state.
        token = _STOPPING.set(self.stop_signal)
        try:
            await self._tasks(source)
        finally:
            _STOPPING.reset(token)

    async def _tasks(self, source: Source) -> None:
        async with anyio.create_task_group() as tg:
            self._everything = tg.cancel_scope
            if self.journal is not None:
                tg.start_soon(self.journal.run_writer)
            if self.progress is not None:
                tg.start_soon(self._report_progress)
            if self.meter.needs_task:
                tg.start_soon(self.meter.follow_total)
            if self.stop_on_signals:
                tg.start_soon(self._watch_signals, tg.cancel_scope)
            for index in range(len(self.stages)):
                tg.start_soon(self._run_stage, index)
            tg.start_soon(feed, self, source)
            await self._collect()
            tg.cancel_scope.cancel()  # the helpers above run forever

    # -- stages ------------------------------------------------------------------------

    async def _run_stage(self, index: int) -> None:
        stage = self.stages[index]
        chain = self.chains.get(index)
        if chain is not None:
            await self._run_chain(chain)
            return
        if index in self.fused:
            return  # the chain's first stage runs it, and feeds the queue after its last
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
        if stage.resource is None or threads is None or remote is not None:
            await self._serve_worker(index, threads, remote, None)
            return
        # A thread worker with a resource has a thread of its own: the resource is built,
        # used and closed there (an engine may be bound to the thread that made it).
        pinned = PinnedThread(f"asyncpipe {stage.name}")
        try:
            await self._serve_worker(index, threads, remote, pinned)
        finally:
            pinned.stop()

    async def _serve_worker(
        self,
        index: int,
        threads: anyio.CapacityLimiter | None,
        remote: StageCall | None,
        pinned: PinnedThread | None,
    ) -> None:
        """
        One worker of stage ``index``, with a resource or without: build its resource
        (when the stage has one and runs here, on ``pinned`` if given), serve its items,
        and close the resource.
        """
        stage = self.stages[index]
        resource = None
        if stage.resource is not None and remote is None:
            try:
                resource = await pinned.run(stage.resource) if pinned else stage.resource()
            except Exception as exc:
                error = ConfigError(
                    f"stage {stage.name!r}: a worker's resource could not be built "
                    f"({type(exc).__name__}: {exc})"
                )
                error.__cause__ = exc
                self.broken(error)
                return
        try:
            call = make_call(stage, self.limiters[index], resource, threads, remote, pinned)
            await serve(self, index, call, self.receivers[index], self.senders[index + 1])
        finally:
            if resource is not None and hasattr(resource, "close"):
                with anyio.CancelScope(shield=True):
                    try:
                        if pinned is not None:
                            await pinned.run(resource.close)
                        else:
                            resource.close()
                    except Exception:
                        # The worker's items are written by now; a cleanup that fails
                        # must not cancel the run nor cost the items still on their way.
                        log.exception("stage %s: closing a worker's resource failed", stage.name)

    def broken(self, error: ConfigError) -> None:
        """
        A stage cannot work (a worker's resource could not be built, or its function is
        of the wrong kind): stop the run at once, and let `execute` raise ``error``, the
        first one only, however many workers met one and whenever (it was a bare error
        or a group of them, as timing had it).  The items in flight are not written;
        with a journal, a resume runs them once the stage is fixed.
        """
        if self.broken_by is None:
            self.broken_by = error
        assert self._everything is not None
        self._everything.cancel()

    async def _run_chain(self, chain: Chain) -> None:
        fused = chain.fused
        assert fused.executor is not None
        try:
            async with fused.executor.open(fused) as remote, anyio.create_task_group() as tg:
                for _ in range(fused.workers):
                    tg.start_soon(self._chain_worker, chain, remote)
        finally:
            self.senders[chain.last + 1].close()

    async def _chain_worker(self, chain: Chain, remote: StageCall) -> None:
        receive, send = self.receivers[chain.first], self.senders[chain.last + 1]
        begin_calls()
        while True:
            try:
                item = await receive.receive()
            except EndOfQueue:
                return
            if self.leave_waiting and item.error is None:
                item.deferred = True
            if item.error is None and item.start <= chain.last and not item.deferred:
                self.chains_running += 1
                try:
                    await process_chain(self, chain, remote, item)
                finally:
                    self.chains_running -= 1
            else:
                for index in range(chain.first, chain.last + 1):
                    self.counters[index].skipped += 1
            await send.send(item)

    # -- collector ---------------------------------------------------------------------

    async def _collect(self) -> None:
        receive = self.receivers[-1]
        reorder = self.reorder
        while True:
            try:
                batch = [await receive.receive()]
            except EndOfQueue:
                break
            # Take whatever else is ready too: one sink write per batch, not per item.
            batch += receive.receive_ready(_MOST_PER_WRITE - 1)
            left = sum(item.deferred for item in batch)
            self.meter.finished += len(batch) - left  # through every stage, maybe held for order
            self.meter.left += left
            if reorder is not None:
                batch = reorder.push(batch)
                if self.window is not None:
                    self.window.check()
            if batch:
                await self._emit(batch)
        if self.stream is not None:
            await self.stream.drained()  # its last items are journaled as it finishes them
        if reorder is not None and len(reorder):
            raise RuntimeError(f"asyncpipe bug: {len(reorder)} items never left the reorder buffer")

    async def _emit(self, batch: list[Item]) -> None:
        released = len(batch)
        if self.ordered:
            for item in batch:
                self.holding = self.holding or item.deferred
                item.deferred = self.holding
        deferred = sum(1 for item in batch if item.deferred)
        if deferred:
            batch = [item for item in batch if not item.deferred]  # left for --resume
            self.deferred += deferred
        if self.sink is not None and batch:
            unfailed = [item for item in batch if item.error is None]
            await self.sink.write(batch)
            for item in unfailed:
                if item.error is not None:  # the sink wrote its error record instead
                    output_failed(self, item)
        if self.stream is None:
            # Counted after the write: an item the sink could not write is an error record.
            self._written(batch)
        if self.journal is not None:
            await self.journal.room()
        if self.window is not None:
            self.window.release(released)

    def _written(self, batch: list[Item]) -> None:
        """
        Count the items of ``batch`` written, and journal them done.
        """
        failed = sum(1 for item in batch if item.error is not None)
        self.ok += len(batch) - failed
        self.failed += failed
        journal = self.journal
        if journal is not None:
            for item in batch:
                journal.done_nowait(item.key, "ok" if item.error is None else "error")

    # -- helpers -----------------------------------------------------------------------

    async def _report_progress(self) -> None:
        assert self.progress is not None
        while True:
            self.progress.update(self.progress_snapshot())
            await anyio.sleep(self.progress.interval)

    def stop_intake(self, reason: str, message: str) -> None:
        """
        Take no new items; the run ends as interrupted by ``reason`` (a signal's name, or
        a `StopIntake` reason).  With a journal, the calls running finish and the items
        waiting between stages are left for ``--resume``, which takes each up at its last
        checkpoint; without one (nothing could resume them), every item admitted is
        finished.  ``message`` is logged when there is no progress display to tell.
        """
        if self.interrupted is not None:
            return
        self.interrupted = reason
        # The calls waiting for a rate limit, a slot or a backoff give up, unsent.
        given_up = self.stop_signal.set() if self.journal is not None else 0
        if self.progress is not None:
            if self.leave_waiting:
                # What the stop finishes: the calls and chains running, but those whose
                # wait it has just ended (a page waiting for the LLM rate limit is not
                # "in flight": the stop ends its wait, and it sends nothing).
                running = self.chains_running + sum(c.calls_running for c in self.counters)
                in_flight = max(0, running - given_up)  # a wait in a task of its own
            else:
                in_flight = self.meter.admitted - self.meter.finished - self.meter.left
            self.progress.interrupted(self.progress_snapshot(), in_flight)
            if not reason.startswith("SIG"):
                log.warning("%s", message)
        else:
            log.warning("%s", message)
        self.intake.cancel()

    async def _watch_signals(self, everything: anyio.CancelScope) -> None:
        # Every run that watches the signals gets each one (see `_signals`); it is acted
        # on in this task, so that what it raises stops this run.
        send, receive = anyio.create_memory_object_stream[int](math.inf)
        with send, receive, signals_to(send.send_nowait):
            async for signum in receive:
                name = signal.Signals(signum).name
                if self.interrupted is None:
                    rest = (
                        "the calls running, leaving the items waiting for a resume"
                        if self.journal is not None
                        else "the items in flight"
                    )
                    self.stop_intake(
                        name,
                        f"{name}: no new items; finishing {rest} (send it again to stop at once)",
                    )
                else:
                    log.warning("%s again: stopping now", name)
                    self.cancelled = True
                    everything.cancel()


def _warn_positional(resuming: bool) -> None:
    """
    Say, once a run, that a journaled run without ``key=`` names its items by position:
    at the first run, while it is still cheap to give one (every later resume must keep
    the inputs and their order as they are), and at each resume.
    """
    if resuming:
        log.warning(
            "resuming with positional keys: this is only right with the same "
            "inputs in the same order (give key= to name each input)"
        )
    else:
        log.warning(
            "journaling with positional keys (no key= given): a resume takes the input "
            "at each position for the one an earlier run left there, so after inputs are "
            "added, removed or reordered it skips some never run and writes others from "
            "another's checkpoints; give key= to name each input (a path, an id)"
        )


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out
