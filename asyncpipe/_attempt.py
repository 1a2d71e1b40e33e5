"""
One item in one stage: the call, its retries, its error record and its checkpoint.

This is the hot path.  `make_call` builds, once per worker, the coroutine function that
makes one try; for an ``async`` stage with no limiter and no timeout it is the stage's
own function, with no wrapper at all.  `serve` is a worker's loop: it runs the tries and
then journals the output, and only then hands the output on: if the output cannot be
checkpointed, the error record keeps the stage's *input*, like any other failure of
that stage.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from ._exceptions import ConfigError, EndOfQueue, JournalError, StopIntake
from ._executor import StageCall
from ._fuse import ChainOutcome
from ._pinned import PinnedThread
from ._queue import ReceiveQueue, SendQueue
from ._ratelimit import RateLimit
from ._stage import ErrorRecord, Item, Stage
from ._stats import StageCounters, now
from ._stopping import begin_calls, move_on_stop, move_on_stop_between_calls, stopping

if TYPE_CHECKING:
    from ._fuse import Chain
    from ._run import Run

# Internal to the run: nothing here is public API.
__all__: list[str] = []

log = logging.getLogger("asyncpipe")


async def serve(
    run: Run,
    index: int,
    call: Callable[[Any], Any],
    receive: ReceiveQueue[Item],
    send: SendQueue[Item],
) -> None:
    """
    One worker of stage ``index``: take each item from ``receive``, run the stage on it
    (retrying as its policy says), record the outcome, and pass it on to ``send``.

    On success ``item.value`` becomes the output; on failure ``item.error`` is set and
    ``item.value`` stays what the stage was given.  An item that failed earlier, or that
    resume starts past this stage, passes by untouched.  Never raises for an item's own
    fault.

    The first try's success is handled inline (no coroutine or call per item beyond the
    stage's own); anything else goes to `_after_failure`.

    Raises:
        JournalError: the journal cannot take the checkpoint (the run must stop).
    """
    stage, counters = run.stages[index], run.counters[index]
    name = stage.name
    record_latency = counters.latencies.append
    begin_calls()
    store = run.journal is not None and stage.checkpoint
    while True:
        try:
            item = await receive.receive()
        except EndOfQueue:
            return
        if run.leave_waiting and item.error is None:
            item.deferred = True  # a stop: begun nowhere here, it waits for --resume
        if item.error is not None or item.start > index or item.deferred:
            counters.skipped += 1
        else:
            counters.items_in += 1
            started = now()
            counters.calls_running += 1
            counters.calls_since += started
            failure = None
            try:
                value = await call(item.value)
            except Exception as exc:
                failure = exc
            finally:  # cancelled too: the call is no longer running
                counters.calls_running -= 1
                counters.calls_since -= started
            if failure is not None:
                await _after_failure(run, index, call, item, failure, started)
                failure = None  # the traceback holds this frame
            else:
                elapsed = now() - started
                counters.busy += elapsed
                record_latency(elapsed)
                item.timings[name] = elapsed
                if not store or checkpoint(run, index, item, counters, 1, value):
                    item.value = value
                    counters.items_out += 1
        await send.send(item)


async def _after_failure(
    run: Run, index: int, call: Callable[[Any], Any], item: Item, exc: Exception, started: float
) -> None:
    """
    The slow path of `serve`: the first try of stage ``index`` on ``item``, begun at
    ``started``, raised ``exc``.  Retry as the stage's policy says and record the outcome.
    """
    stage, counters = run.stages[index], run.counters[index]
    attempt = 1
    busy = 0.0
    t0 = started
    while True:
        busy += now() - t0
        if isinstance(exc, _WrongKind):
            # No item is at fault, and every one would meet it: the run stops at once,
            # with a ConfigError as any other (its message names the stage and says why).
            run.broken(ConfigError(str(exc)))
            _leave(item, counters, busy)
            return
        if isinstance(exc, StopIntake):
            # Not the item's fault: leave it unwritten for --resume, and stop the intake.
            run.stop_intake(exc.reason, str(exc))
            _leave(item, counters, busy)
            return
        elapsed = now() - started  # the deadline's clock: since the item's first try here
        retry = stage.retry.should_retry(exc, attempt, elapsed)
        if retry and run.leave_waiting:
            # Stopping: no more tries (each may be paid for); --resume tries it again.
            _leave(item, counters, busy)
            return
        if not retry:
            counters.busy += busy
            _record(counters, item, stage.name, now() - started)
            message = str(exc) or repr(exc)
            error = ErrorRecord(stage.name, type(exc).__name__, message, attempt)
            fail(run, item, counters, error, exc)
            return
        counters.retried += 1
        with move_on_stop_between_calls():  # calls_running does not count the item now
            await anyio.sleep(stage.retry.delay(exc, attempt, elapsed))
        if run.leave_waiting:  # the run stopped during the wait
            _leave(item, counters, busy)
            return
        attempt += 1
        t0 = now()
        counters.calls_running += 1
        counters.calls_since += t0
        try:
            value = await call(item.value)
        except Exception as again:
            exc = again
            continue
        finally:
            counters.calls_running -= 1
            counters.calls_since -= t0
        break
    counters.busy += busy + (now() - t0)
    _record(counters, item, stage.name, now() - started)
    if checkpoint(run, index, item, counters, attempt, value):
        item.value = value
        counters.items_out += 1


def _leave(item: Item, counters: StageCounters, busy: float) -> None:
    """Leave ``item`` unwritten for --resume, after ``busy`` seconds on it."""
    item.deferred = True
    counters.busy += busy


def _record(counters: StageCounters, item: Item, name: str, elapsed: float) -> None:
    counters.latencies.append(elapsed)
    item.timings[name] = elapsed


def checkpoint(
    run: Run,
    index: int,
    item: Item,
    counters: StageCounters,
    attempt: int,
    output: Any,
    *,
    encoded: bool = False,
) -> bool:
    """
    Journal the output of stage ``index`` for ``item`` if the stage is checkpointed.

    Returns ``False`` when the output cannot be encoded: the item then fails in that
    stage, keeping its input, like any other failure of the stage.

    Raises:
        JournalError: the journal cannot take the checkpoint (the run must stop).
    """
    stage, journal = run.stages[index], run.journal
    if journal is None or not stage.checkpoint:
        return True
    try:
        if not encoded and stage.encode is not None:
            output = stage.encode(output)
        journal.checkpoint_nowait(
            item.key, stage.name, run.plan.fingerprints[index], output, item.timings
        )
    except JournalError:
        raise
    except Exception as exc:
        message = f"cannot checkpoint output: {exc}"
        error = ErrorRecord(stage.name, type(exc).__name__, message, attempt)
        fail(run, item, counters, error, exc)
        return False
    return True


#: The failed items a run logs one WARNING line each for; from the next one on, failures
#: are only counted (one line says so), so that a run where every item fails does not
#: flood the log.  Every failure's line and traceback is still logged at DEBUG.
FAILURES_LOGGED = 20

#: The most characters of an error's message in its WARNING line (the record keeps it all).
_MESSAGE_SHOWN = 300


def fail(
    run: Run, item: Item, counters: StageCounters, error: ErrorRecord, exc: BaseException
) -> None:
    """
    Mark ``item`` failed with ``error`` (its final failure, ``exc``), count it, log it and
    journal it.
    """
    # item.value stays what the failing stage was given, so the sink can still say
    # which input it was (and keep what earlier stages produced).
    item.error = error
    counters.failed += 1
    run.failures += 1
    _log_failure(run.failures, f"stage {error.stage}", item, error, exc)
    if run.journal is not None:
        run.journal.failed_nowait(item.key, error)


def output_failed(run: Run, item: Item) -> None:
    """
    Log that the sink could not write ``item`` as it was and wrote its error record
    instead (a value JSON cannot hold): a failure as a stage's is, so it gets the same
    line, within the same `FAILURES_LOGGED` of the run.
    """
    assert item.error is not None
    run.failures += 1
    _log_failure(run.failures, "the output", item, item.error, None)


def _log_failure(
    count: int, place: str, item: Item, error: ErrorRecord, exc: BaseException | None
) -> None:
    """
    Log ``item``'s final failure in ``place`` (a stage, or the output), the run's
    ``count``-th: once per item, not per try (a retried try is not the item's failure).

    Up to `FAILURES_LOGGED` failures, a WARNING line says the place, the item's key and
    the error record's type and message (its first line, trimmed): what a user watching
    the run wants as it happens.  After that one line says that failures are counted only.
    Every failure is also logged at DEBUG, with its traceback when there is one, for
    whoever debugs the stage.  The message is the record's, so it holds no API key: the
    LLM client redacts it from every message and raises them outside its ``except``
    blocks, and the sink's message names a value's type, never the value.
    """
    message = _one_line(error.message)
    if count <= FAILURES_LOGGED:
        log.warning("%s failed on %r: %s: %s", place, item.key, error.type, message)
    elif count == FAILURES_LOGGED + 1:
        log.warning(
            "%d items have failed: further failures are counted only (the summary at the "
            "end counts them, the output has their error records; the asyncpipe logger "
            "logs each at DEBUG)",
            count,
        )
    log.debug(
        "%s failed on item %r (try %d): %s: %s",
        place,
        item.key,
        error.attempts,
        error.type,
        message,
        exc_info=exc,
    )


def _one_line(message: str) -> str:
    """The first line of ``message``, at most `_MESSAGE_SHOWN` characters."""
    lines = message.strip().splitlines() or [""]
    line = lines[0]
    if len(line) > _MESSAGE_SHOWN or len(lines) > 1:
        line = line[:_MESSAGE_SHOWN].rstrip() + " …"
    return line


def make_call(
    stage: Stage,
    limiter: RateLimit | None,
    resource: Any,
    threads: anyio.CapacityLimiter | None,
    remote: StageCall | None,
    pinned: PinnedThread | None = None,
) -> Callable[[Any], Any]:
    """
    Build the coroutine function that makes one try of ``stage`` on a value.

    Args:
        stage: the stage.
        limiter: the rate limit acquired before every try (resolved by the run).
        resource: the worker's resource, if the stage has a factory.
        threads: the stage's thread tokens, for a ``thread`` stage run locally.
        remote: the executor's call, for a stage run elsewhere.
        pinned: the worker's own thread, for a ``thread`` stage with a resource: every
            call runs there (else on any thread of anyio's pool, under ``threads``).
    """
    timeout = stage.timeout
    if remote is not None:
        if limiter is None:
            return remote

        async def call_remote(value: Any) -> Any:
            await _take_turn(limiter)
            return await remote(value)

        return call_remote
    fn = partial(stage.fn, resource) if stage.resource is not None else stage.fn
    if threads is not None:
        run_in_thread = _returning_no_coroutine(stage.name, fn)
        offload = (
            pinned.run if pinned is not None else partial(anyio.to_thread.run_sync, limiter=threads)
        )

        async def call(value: Any) -> Any:
            if limiter is not None:
                await _take_turn(limiter)
            return await offload(run_in_thread, value)

        return call
    if not _is_async(stage.fn):
        fn = _awaiting_its_result(stage.name, fn)
    if limiter is None and timeout is None:
        return fn  # the fast path: no wrapper at all

    async def call_async(value: Any) -> Any:
        if limiter is not None:
            await _take_turn(limiter)
        if timeout is None:
            return await fn(value)
        try:
            with anyio.fail_after(timeout) as scope:
                return await fn(value)
        except TimeoutError:
            if not scope.cancelled_caught:
                raise  # the stage's own
            raise TimeoutError(f"the stage's timeout of {timeout:g} s passed") from None

    return call_async


async def _take_turn(limiter: RateLimit) -> None:
    """
    Wait for ``limiter``; if the run stopped meanwhile, raise `StopIntake` so that the
    call is not made and its item waits for --resume (`stopping`): otherwise, after a
    Ctrl-C, the calls waiting for a rate limit would go out one by one.
    """
    with move_on_stop():
        await limiter.acquire()
    if stopping():
        raise StopIntake("the run's stop", "not begun: the run is stopping")


def _is_async(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` is an ``async def`` (or a partial of one, or an object whose
    ``__call__`` is one)."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)


class _WrongKind(ConfigError):
    """
    A stage function of the wrong kind for its stage, found by what its first call
    returned (as trio and anyio find a plain function given where an async one is due):
    `Stage` cannot tell a plain ``def`` that returns a value from one that returns a
    coroutine (a ``lambda`` calling an ``async def``, a plain decorator around one),
    which is a fine async stage.  Every item would meet it and none is at fault: the run
    stops and raises it (`Run.broken`), its items unwritten for a resume.
    """


def _wrong_kind(name: str, message: str) -> _WrongKind:
    return _WrongKind(f"stage {name!r}: {message}")


def _awaiting_its_result(name: str, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``fn``, a plain callable in an ``async`` stage, awaited if what it returns can be
    (a ``lambda`` that returns a coroutine, say), else a `ConfigError` that says why."""

    async def call(value: Any) -> Any:
        result = fn(value)
        if not inspect.isawaitable(result):
            raise _wrong_kind(
                name,
                f"kind='async' runs an async def on the event loop, but the function "
                f"returned a value of type {type(result).__name__}, not an awaitable: give a plain "
                "function kind='thread'",
            )
        return await result

    return call


def _returning_no_coroutine(name: str, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``fn`` for a pool thread, with a `ConfigError` in place of a coroutine it returns
    (which no thread would ever await, so the stage's work would never happen)."""

    def call(value: Any) -> Any:
        result = fn(value)
        if inspect.iscoroutine(result):
            result.close()
            raise _wrong_kind(
                name,
                "kind='thread' runs a plain function in a thread, but the function "
                "returned a coroutine, which no thread awaits: give it kind='async'",
            )
        return result

    return call


async def process_chain(run: Run, chain: Chain, call: StageCall, item: Item) -> None:
    """
    Run the stages of ``chain`` on ``item`` in one call of the executor, from the item's
    first unfinished stage in it, and account for each stage as if it had run alone.

    A failure is charged to the stage that raised (an executor's own failure, such as a
    lost worker, to the first stage that was to run), and that stage's retry policy
    decides, counting that stage's own tries; a retry runs the chain again from that
    stage, on the input it had, so the stages before it do not run again.  On failure
    ``item.value`` stays what the chain was given.

    Raises:
        JournalError: the journal cannot take a checkpoint (the run must stop).
    """
    stages = run.stages
    begin = chain.first + max(0, item.start - chain.first)
    names = {stages[i].name: i for i in range(begin, chain.last + 1)}
    tries: dict[int, int] = {}  # failed tries, by stage
    timings: dict[str, float] = {}
    checkpoints: dict[str, Any] = {}
    start, value = begin, item.value
    began = now()  # the deadline's clock: since the item's first try in the chain
    while True:
        try:
            outcome: ChainOutcome = await call((start - chain.first, value))
        except Exception as exc:
            outcome = ChainOutcome(failed=stages[start].name, error=exc)
        timings.update(outcome.timings)
        checkpoints.update(outcome.checkpoints)
        if outcome.failed is None:
            break
        failed = names[outcome.failed]
        error = outcome.error
        assert error is not None
        tries[failed] = attempt = tries.get(failed, 0) + 1
        policy = stages[failed].retry
        elapsed = now() - began
        if not policy.should_retry(error, attempt, elapsed):
            break
        if not run.leave_waiting:
            run.counters[failed].retried += 1
            # A call's wait: `chains_running` still counts the item (`Run.stop_intake`).
            with move_on_stop():
                await anyio.sleep(policy.delay(error, attempt, elapsed))
        if run.leave_waiting:  # stopped: no more tries, the item waits for --resume
            outcome.error = StopIntake("the run's stop", "not tried again: the run is stopping")
            break
        if outcome.carried:
            start, value = failed, outcome.value
        # else: the executor failed (a lost worker), or the failed stage's input could not
        # travel back: the chain runs again from where this call began.
    _account_chain(run, chain, item, begin, outcome, tries, timings, checkpoints)


def _account_chain(
    run: Run,
    chain: Chain,
    item: Item,
    begin: int,
    outcome: ChainOutcome,
    tries: dict[int, int],
    timings: dict[str, float],
    checkpoints: dict[str, Any],
) -> None:
    """
    The accounting of `process_chain`, once its last call on ``item`` returned
    ``outcome``: each stage of ``chain`` from ``begin`` on is counted as if it had run
    alone, up to the stage that failed, if one did.  When none did, the item takes the
    chain's output and goes on past it.

    Args:
        tries: the failed tries of each stage, by index (a stage that finished made one
            more).
        timings: the seconds each stage took, by name, in the latest call that ran it.
        checkpoints: the encoded outputs of the inner stages, by name.

    Raises:
        JournalError: the journal cannot take a checkpoint (the run must stop).
    """
    stages = run.stages
    for index in range(begin, chain.last + 1):
        stage, counters = stages[index], run.counters[index]
        attempt = tries.get(index, 0) + (outcome.failed != stage.name)
        seconds = timings.get(stage.name, 0.0)
        counters.items_in += 1
        counters.busy += seconds
        counters.latencies.append(seconds)
        item.timings[stage.name] = seconds
        if outcome.failed == stage.name:
            error = outcome.error
            assert error is not None
            if isinstance(error, StopIntake):  # as in `_after_failure`
                item.deferred = True
                run.stop_intake(error.reason, str(error))
                return
            message = str(error) or repr(error)
            record = ErrorRecord(stage.name, type(error).__name__, message, attempt)
            fail(run, item, counters, record, error)
            return
        # Inner stages' outputs come back encoded (only the last output travels whole).
        if index < chain.last:
            stored = checkpoint(
                run,
                index,
                item,
                counters,
                attempt,
                checkpoints.get(stage.name),
                encoded=True,
            )
        else:
            stored = checkpoint(run, index, item, counters, attempt, outcome.value)
        if not stored:
            return
        counters.items_out += 1
    item.value = outcome.value
    item.start = chain.last + 1
