"""
The pipeline: stages joined by bounded queues, run in one task group.

Every queue is bounded, so a slow stage holds the ones before it back.  Each item gets
its own try in each stage; a final failure becomes an `ErrorRecord` on the item, which
then passes the later stages untouched and reaches the sink like any other.

This module is the public face.  The run lives in `_run` (tasks, workers, collector),
the per-item tries in `_attempt`, resume planning in `_resume`, sources in `_source`
and run-wide overrides by stage name in `_overrides`.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Self

import anyio

from ._exceptions import ConfigError
from ._executor import Executor
from ._journal import Journal
from ._meter import ProgressSnapshot, Total
from ._overrides import (
    apply_executor,
    apply_workers,
    check_limits,
    declared_limits,
    stage_groups,
)
from ._progress import ProgressReporter
from ._queue import ReceiveQueue
from ._ratelimit import RateLimit
from ._run import Run
from ._sink import CallbackSink, Sink
from ._source import Source
from ._stage import Item, Stage
from ._stats import RunSummary, StageStatistics
from ._stream import StreamSink

__all__ = ["Pipeline"]


class Pipeline:
    """
    A chain of stages joined by bounded queues.

    Args:
        stages: the stages, in order.  Names must be unique, and no group may have the
            name of a stage.
        max_buffer_size: how many items wait in front of each stage (and of the sink),
            unless the stage sets its own.  Default 16.
        limits: the shared rate limits by name.  Stages use one with
            ``Stage(..., limiter="name")`` (acquired before every try); an app may also
            hand one to code that acquires it itself (e.g. per HTTP request).  Either way
            the name is what ``configure(limits=...)`` and ``--rate-limit`` override.

    Example::

        pipeline = Pipeline([Stage("fetch", fetch, workers=16), Stage("parse", parse,
                             kind="thread", workers=2)])
        summary = await pipeline.run(urls, sink=JsonlSink("out.jsonl"))

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        stages: Sequence[Stage],
        *,
        max_buffer_size: int = 16,
        limits: Mapping[str, RateLimit] | None = None,
    ) -> None:
        if not stages:
            raise ConfigError("a pipeline needs at least one stage")
        names = [stage.name for stage in stages]
        if len(set(names)) != len(names):
            raise ConfigError(f"stage names must be unique: {names}")
        if max_buffer_size < 1:
            raise ConfigError("max_buffer_size must be at least 1")
        self.groups = stage_groups(stages)
        limits = dict(limits or {})
        self.stages = list(stages)
        self.max_buffer_size = max_buffer_size
        self.limits = limits
        self._run: Run | None = None

    @property
    def limit_names(self) -> set[str]:
        """
        The names of the shared limits: those the stages use and those the pipeline holds.
        """
        return declared_limits(self.stages) | set(self.limits)

    def configure(
        self,
        *,
        workers: Mapping[str, int] | None = None,
        executor: Executor | None = None,
        executor_stages: Collection[str] | None = None,
        limits: Mapping[str, RateLimit] | None = None,
    ) -> Self:
        """
        A copy of the pipeline with run-wide overrides applied by stage or group name.

        The copy is of the pipeline's own class (a subclass's stays one, its own
        attributes copied as they are), so it can be configured again; the pipeline it
        is called on is left as it was.

        Args:
            workers: worker counts by stage or group name (a stage's own name wins).
            executor: an `Executor` for thread stages.
            executor_stages: the stage or group names that go to ``executor``; default,
                the CPU part: each run of consecutive thread stages that holds a stage
                with a per-worker resource.  Consecutive stages on one executor run as
                one call per item (they are fused).
            limits: shared rate limits by name, replacing the pipeline's own.

        Raises:
            ConfigError: a name is not a stage, group or declared limit, or
                ``executor_stages`` names a stage that is not a thread stage.
        """
        stages = self.stages
        check_limits(self.limit_names, limits or {})
        if workers:
            stages = apply_workers(stages, workers)
        if executor is not None:
            stages = apply_executor(stages, executor, executor_stages)
        elif executor_stages:
            raise ConfigError("executor stages were named, but no executor was given")
        configured = copy.copy(self)
        configured.stages = list(stages)
        configured.groups = stage_groups(stages)
        configured.limits = {**self.limits, **(limits or {})}
        configured._run = None
        return configured

    def statistics(self) -> list[StageStatistics]:
        """
        Live statistics of the current (or last) run, one entry per stage.
        """
        return self._run.snapshot() if self._run is not None else []

    def progress(self) -> ProgressSnapshot | None:
        """
        How far the current (or last) run is: total, done, rate, ETA; ``None`` before a run.
        """
        return self._run.progress_snapshot() if self._run is not None else None

    async def run(
        self,
        source: Source,
        *,
        sink: Sink | Callable[[Item], Awaitable[object]] | None = None,
        journal: Journal | None = None,
        resume: bool = False,
        retry_failed: bool = False,
        ordered: bool = True,
        key: Callable[[Any], str] | None = None,
        reorder_window: int | None = None,
        progress: ProgressReporter | None = None,
        stop_on_signals: bool = False,
        total: Total | None = None,
    ) -> RunSummary:
        """
        Run every item of ``source`` through the stages into ``sink``.

        Args:
            source: an iterable or async iterable of input values.  A plain iterable is
                iterated on the event loop, so it must not block (see `iterate_in_thread`).
            sink: a `Sink`, or an ``async def f(item)`` callback, or ``None`` to drop results.
                An item counts as done once the sink's ``write`` of its batch returns, so
                a batch the sink raised on, or the run stopped in, is handed to it again
                by a resume, items it already took included: make the callback idempotent
                (an upsert, say), or the sink exactly-once as `JsonlSink` is.
            journal: a `Journal` for checkpoints and resume, or ``None``.
            resume: skip items already written, and restart unfinished items at their first
                stage without a checkpoint.  An item already written is not run again when
                the stages have changed since (a stage's ``version`` renews checkpoints,
                not lines written): start over to apply new stages to every item.
            retry_failed: on resume, run failed items again.  Their lines are replaced,
                so they come after the others in the output, not in input order.  With a
                `JsonlSink`, an error line stays until its replacement is written (it
                goes as the run closes, or at the next resume after a kill): an item
                the run stopped or was killed before keeps its error line.
            ordered: hand items to the sink in input order (the default, here and in
                ``asyncpipe run``).  ``False`` hands each item over as soon as it is
                done: with uneven items that keeps fast items from waiting for slow ones.
            key: the stable key of an input value (a str); default, its position in the
                source, which a resume can trust only with the same inputs in the same
                order: with a journal, give a key that names the input (a path, an id).
                With a key function, a value whose key an earlier value of the run had
                is skipped, with a warning, and counted in ``RunSummary.duplicates``,
                with a journal or without; the run keeps its keys for that, compactly
                (about a key's length and 5 bytes each).
            reorder_window: with ``ordered``, the most items in flight at once, finished
                ones waiting for a slower one ahead included; default, as many as the
                queues and workers hold.  That bounds memory, but one item much slower
                than the rest (a retry after a 429's ``Retry-After``, say) then holds
                intake back: ``RunSummary.window_wait`` says for how long.  A larger
                window holds more finished items in memory; ``ordered=False`` holds none.
            progress: a `ProgressReporter` (`LogProgress`, `RichProgress` or your own)
                whose ``update`` gets live statistics every ``interval`` seconds.
            stop_on_signals: on SIGINT/SIGTERM stop taking input, finish the calls
                running and return (``summary.interrupted`` says which).  With a journal
                the items waiting between stages are left for ``resume`` at their last
                checkpoint; without one they are finished too.  A second signal cancels
                the calls running, but for a ``thread`` stage's: a thread cannot be
                cancelled, so the run returns once those calls have returned (their
                items are not written; a resume runs them).  Every run going with it gets
                each signal: two pipelines run side by side in one process both stop.
            total: how many items the source holds, for the ETA: a number, or an async
                iterable (or a function returning one) of refined estimates.

        Returns:
            A `RunSummary`.

        Raises:
            ConfigError, JournalError: the run cannot start or its journal failed.
            ConfigError: a worker's ``resource`` factory raised: the message names the
                stage and its ``__cause__`` is the factory's error.  It is this one
                exception however many workers failed, and whenever: the run stops at
                once, the lines written so far stay written, and the items in flight
                are not (with a journal, ``resume`` runs them once the factory is fixed).
                The same for a stage function of the wrong kind (see `Stage`), at its
                first call, and for a ``sink`` callback that returns what cannot be
                awaited (a plain ``def``).
            Exception: what the ``source`` raised (as itself): the run stops at once, the
                lines written stay, and the items in flight are not written (with a
                journal, ``resume`` completes them).  The same for the sink's own error,
                and for anything the framework itself raised.  Item failures never
                raise: they become error records.
        """
        if retry_failed and not resume:
            raise ConfigError("retry_failed only makes sense with resume")
        if resume and journal is None:
            raise ConfigError("resume needs a journal")
        if reorder_window is not None and reorder_window < 1:
            raise ConfigError(f"reorder_window must be at least 1 (it is {reorder_window})")
        if progress is not None and not all(
            hasattr(progress, name) for name in ("update", "interrupted", "finish", "interval")
        ):
            raise ConfigError(
                f"progress must be a ProgressReporter (LogProgress, say), not {progress!r}"
            )
        if sink is not None and not isinstance(sink, Sink):
            sink = CallbackSink(sink)
        run = Run(
            self,
            sink=sink,
            journal=journal,
            ordered=ordered,
            key=key,
            reorder_window=reorder_window,
            progress=progress,
            stop_on_signals=stop_on_signals,
            total=total,
        )
        self._run = run
        return await run.execute(source, resume=resume, retry_failed=retry_failed)

    @asynccontextmanager
    async def stream(
        self,
        source: Source,
        *,
        ordered: bool = True,
        key: Callable[[Any], str] | None = None,
        **options: Any,
    ) -> AsyncIterator[ReceiveQueue[Item]]:
        """
        Run the pipeline and iterate over its finished items::

            async with pipeline.stream(values) as items:
                async for item in items:
                    ...

        ``options`` are those of `run`.  Leaving the block early cancels the run.

        With a ``journal``, the stream is at-least-once for the code in the block: an
        item counts as done (a resume skips it) only once the task that took it has come
        back for the next, or the block is left without an error.  Several tasks may
        share the stream (workers in a task group inside the block): a task coming back
        finishes only the items it took.  The items being handled when the block raised
        (or the process died), and the items not yet handed over (also those a ``close``
        drops), are delivered again by a resume, so make what the block does with an
        item idempotent.  Leave by ``break`` and the item just taken counts as done;
        raise, and it does not.  Up to ``max_buffer_size`` finished items wait for the
        block, as they wait between stages, so the stages keep working while it handles
        one.

        .. versionchanged:: Unreleased
            An item counts as done once the code in the block is done with it, not once
            it waits in the stream's buffer.
        """
        sink = StreamSink(self.max_buffer_size)

        async def produce() -> None:
            try:
                await self.run(source, sink=sink, ordered=ordered, key=key, **options)
            finally:
                sink.end()

        error: Exception | None = None  # the consumer's own error comes out as itself
        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            try:
                yield sink.items
            except Exception as exc:
                error = exc
            else:
                sink.left()  # the items still held were handled: they are done
            finally:
                tg.cancel_scope.cancel()
        if error is not None:
            raise error
