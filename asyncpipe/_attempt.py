"""
One item in one stage: the call, its retries, its error record and its checkpoint.

This is the hot path.  `make_call` builds, once per worker, the coroutine function that
makes one try; for an ``async`` stage with no limiter and no timeout it is the stage's
own function, with no wrapper at all.  `process` runs the tries and then journals the
output, and only then hands the output on: if the output cannot be checkpointed, the
error record keeps the stage's *input*, like any other failure of that stage.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from ._exceptions import JournalError
from ._executor import StageCall
from ._ratelimit import RateLimit
from ._stage import ErrorRecord, Item, Stage
from ._stats import StageCounters, now

if TYPE_CHECKING:
    from ._run import Run

# Internal to the run: nothing here is public API.
__all__: list[str] = []


async def process(
    run: Run,
    index: int,
    stage: Stage,
    counters: StageCounters,
    call: Callable[[Any], Any],
    item: Item,
) -> None:
    """
    Run ``stage`` on ``item`` (retrying as its policy says) and record the outcome.

    On success ``item.value`` becomes the output; on failure ``item.error`` is set and
    ``item.value`` stays what the stage was given.  Never raises for an item's own fault.

    Raises:
        JournalError: the journal cannot take the checkpoint (the run must stop).
    """
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
                fail(
                    run,
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
        break
    elapsed = now() - started
    counters.busy += busy
    counters.record_latency(elapsed)
    item.timings[stage.name] = elapsed
    if item.error is not None:
        return
    journal = run.journal
    if journal is not None:
        if stage.checkpoint:
            try:
                encoded = stage.encode(value) if stage.encode is not None else value
                journal.checkpoint_nowait(
                    item.key, stage.name, run.plan.fingerprints[index], encoded, item.timings
                )
            except JournalError:
                raise
            except Exception as exc:
                fail(
                    run,
                    item,
                    counters,
                    ErrorRecord(
                        stage.name,
                        type(exc).__name__,
                        f"cannot checkpoint output: {exc}",
                        attempt,
                    ),
                )
                return
        else:
            journal.stage_ok_nowait(item.key, stage.name)
    item.value = value
    counters.items_out += 1


def fail(run: Run, item: Item, counters: StageCounters, error: ErrorRecord) -> None:
    """
    Mark ``item`` failed with ``error``, count it and journal it.
    """
    # item.value stays what the failing stage was given, so the sink can still say
    # which input it was (and keep what earlier stages produced).
    item.error = error
    counters.failed += 1
    if run.journal is not None:
        run.journal.failed_nowait(item.key, error)


def make_call(
    stage: Stage,
    limiter: RateLimit | None,
    resource: Any,
    threads: anyio.CapacityLimiter | None,
    remote: StageCall | None,
) -> Callable[[Any], Any]:
    """
    Build the coroutine function that makes one try of ``stage`` on a value.

    Args:
        stage: the stage.
        limiter: the rate limit acquired before every try (resolved by the run).
        resource: the worker's resource, if the stage has a factory.
        threads: the stage's thread tokens, for a ``thread`` stage run locally.
        remote: the executor's call, for a stage run elsewhere.
    """
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
