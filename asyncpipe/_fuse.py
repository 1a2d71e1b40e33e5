"""
Fusing: consecutive stages on the same executor become one remote call per item.

Without fusing, each remote stage is its own round trip, so whatever one stage hands the
next (a decoded page, say) travels back to the driver and out again.  A `Chain` runs the
stages one after the other on the worker and ships back only the last output, with what
the driver still needs to see each stage: per-stage timings, the encoded output of each
checkpointed stage inside the chain, and which stage failed and how.

The chain is sent to the executor as an ordinary thread `Stage` (`Chain.fused`), so any
`Executor` runs it unchanged.  The runner then accounts for each stage of the chain in
its statistics and journal as if it had run alone.  A retry re-runs the chain from the
item's first unfinished stage in it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ._exceptions import RetryableError, StageError
from ._retry import Retry
from ._stage import Stage

# Internal to the run: nothing here is public API.
__all__: list[str] = []


@dataclass(frozen=True)
class _Link:
    """What the worker needs of one stage of a chain (it must pickle)."""

    name: str
    fn: Callable[..., Any]
    has_resource: bool
    checkpoint: bool
    encode: Callable[[Any], Any] | None


@dataclass
class ChainOutcome:
    """
    What one call of a chain sends back.

    Attributes:
        value: the last stage's output; after a failure, the input of the stage that
            failed (when ``carried``), so that a retry starts there and does not run the
            stages before it again.
        carried: after a failure, ``value`` is the failed stage's input.  It is not when
            that input cannot be pickled (the call's outcome travels back from the
            worker): the retry then starts the chain again, and the stage's own error is
            kept rather than lost to the pickling error.
        timings: seconds each stage that ran took on the worker, by stage name.
        checkpoints: the encoded output of each checkpointed stage that finished, except
            the chain's last stage (the driver encodes that one, as for any stage).
        failed: the name of the stage that raised, or ``None``.
        error: what it raised.
    """

    value: Any = None
    carried: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    checkpoints: dict[str, Any] = field(default_factory=dict)
    failed: str | None = None
    error: Exception | None = None


def _travels(value: Any, serialize: Callable[[Any], bytes] | None) -> bool:
    """Whether ``value`` can travel back from the worker as the executor serialises an
    outcome (always, in-process); tried only after a failure, so the cost is the
    failures'."""
    if serialize is None:
        return True
    try:
        serialize(value)
    except Exception:
        return False
    return True


def shippable(error: Exception, serialize: Callable[[Any], bytes] | None) -> Exception:
    """
    ``error``, or when it cannot travel back from the worker (it holds a lock, a socket, a
    file) one that keeps its type's name and its message, so the item's error record says
    what the stage raised rather than why pickling it failed: a `RetryableError` (with its
    ``retry_after``) or a `StageError` for those, so the retry policy decides as it would
    have, else a `RuntimeError`.
    """
    if serialize is None:
        return error
    try:
        serialize(error)
    except Exception as why:
        message = (
            f"{type(error).__name__}: {error} (the exception itself could not come back "
            f"from the worker: {why})"
        )
        if isinstance(error, RetryableError):
            return RetryableError(message, retry_after=error.retry_after)
        return StageError(message) if isinstance(error, StageError) else RuntimeError(message)
    return error


class _Resources:
    """The per-worker resources of a chain's stages, built once and closed together."""

    def __init__(self, factories: Sequence[Callable[[], Any] | None]) -> None:
        self.items: list[Any] = []
        try:
            for factory in factories:
                self.items.append(factory() if factory is not None else None)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for resource in reversed(self.items):
            if resource is not None and hasattr(resource, "close"):
                resource.close()


def _run_chain(
    links: tuple[_Link, ...],
    serialize: Callable[[Any], bytes] | None,
    resources: _Resources | None,
    job: tuple[int, Any],
) -> ChainOutcome:
    """
    Run ``links[offset:]`` on ``value`` (``job = (offset, value)``), on the worker.
    """
    offset, value = job
    outcome = ChainOutcome()
    last = len(links) - 1
    for position in range(offset, len(links)):
        link = links[position]
        started = time.perf_counter()
        try:
            if link.has_resource:
                assert resources is not None
                value = link.fn(resources.items[position], value)
            else:
                value = link.fn(value)
        except Exception as exc:
            outcome.timings[link.name] = time.perf_counter() - started
            outcome.failed = link.name
            outcome.error = shippable(exc, serialize)
            if position > offset and _travels(value, serialize):
                outcome.value, outcome.carried = value, True
            return outcome
        outcome.timings[link.name] = time.perf_counter() - started
        if link.checkpoint and position < last:
            outcome.checkpoints[link.name] = link.encode(value) if link.encode else value
    outcome.value = value
    return outcome


@dataclass(frozen=True)
class FusedStage(Stage):
    """
    The thread stage that runs a chain's stages in one call; ``members`` names them, so
    that an executor's messages can name the stages a user wrote.
    """

    members: tuple[str, ...] = ()


def stage_label(stage: Stage) -> str:
    """
    How a message names ``stage``: ``stage 'ocr'``, or for a fused chain the stages it runs,
    ``stages 'load', 'preprocess' and 'ocr' (run in one call)``.
    """
    members = stage.members if isinstance(stage, FusedStage) else ()
    if len(members) < 2:
        return f"stage {stage.name!r}"
    names = ", ".join(repr(name) for name in members[:-1])
    return f"stages {names} and {members[-1]!r} (run in one call)"


@dataclass(frozen=True)
class Chain:
    """
    Stages ``first`` to ``last`` (indexes into the pipeline), fused.

    Attributes:
        first: the index of the chain's first stage; its worker tasks run the chain.
        last: the index of its last stage.
        fused: the thread stage the executor runs: one call per item, with as many
            workers as the busiest stage of the chain asks for.
    """

    first: int
    last: int
    fused: Stage

    def covers(self, index: int) -> bool:
        """
        Whether stage ``index`` belongs to this chain.
        """
        return self.first <= index <= self.last


def _fuse(stages: Sequence[Stage], first: int, last: int) -> Chain:
    members = stages[first : last + 1]
    links = tuple(
        _Link(s.name, s.fn, s.resource is not None, s.checkpoint, s.encode) for s in members
    )
    factories = [s.resource for s in members]
    resource = partial(_Resources, factories) if any(factories) else None
    serialize = getattr(members[0].executor, "serialize", None)
    fn = (
        partial(_run_chain, links, serialize)
        if resource is not None
        else partial(_run_chain, links, serialize, None)
    )
    fused = FusedStage(
        "+".join(s.name for s in members),
        fn,
        kind="thread",
        workers=max(s.workers for s in members),
        resource=resource,
        # The runner applies each member's own retry policy to that member's failures.
        retry=Retry(attempts=1),
        executor=members[0].executor,
        members=tuple(s.name for s in members),
    )
    return Chain(first, last, fused)


def plan_chains(stages: Sequence[Stage]) -> list[Chain]:
    """
    Every run of two or more consecutive thread stages that share one executor (the same
    object) and no rate limit, fused into a `Chain`.
    """
    chains: list[Chain] = []
    first = 0
    while first < len(stages):
        executor = stages[first].executor
        last = first
        if executor is not None and stages[first].limiter is None:
            while (
                last + 1 < len(stages)
                and stages[last + 1].executor is executor
                and stages[last + 1].limiter is None
            ):
                last += 1
        if last > first:
            chains.append(_fuse(stages, first, last))
        first = last + 1
    return chains
