"""
What a stage is (its configuration), and the item that flows between stages.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from ._exceptions import ConfigError
from ._executor import Executor
from ._ratelimit import RateLimit
from ._retry import Retry

# `stage_fingerprints` is internal to the pipeline and the journal.
__all__ = ["ErrorRecord", "Item", "ResourceFactory", "Stage", "StageKind"]

StageKind = Literal["async", "thread"]


class ResourceFactory(Protocol):
    """
    **Protocol:** build one per-worker resource, e.g. an OCR engine.

    It is called once per worker, in a worker thread for ``thread`` stages.  If the
    resource has a ``close()`` method it is called when the worker stops.
    """

    def __call__(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    """
    Why an item failed: the stage, the exception type and message, and how many tries.
    """

    stage: str
    type: str
    message: str
    attempts: int

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "type": self.type,
            "message": self.message,
            "attempts": self.attempts,
        }


class Item:
    """
    One input item on its way through the pipeline, and the result the sink receives.

    Attributes:
        key: the stable key the journal and resume use.
        index: the item's position among the items admitted in this run.
        value: the payload; each stage replaces it with what it returned.  After a failure
            it is what the failing stage was given.
        error: why it failed, or ``None`` while it is fine.
        timings: seconds spent in each stage, by stage name.
        deferred: a stage raised `StopIntake` for it: it is not written, so ``--resume``
            runs it again (from its last checkpoint).
    """

    __slots__ = ("deferred", "error", "index", "key", "start", "timings", "value")

    def __init__(self, key: str, index: int, value: Any, start: int = 0) -> None:
        self.key = key
        self.index = index
        self.value = value
        self.error: ErrorRecord | None = None
        self.timings: dict[str, float] = {}
        # The first stage that still has to run for this item (resume skips the rest).
        self.start = start
        self.deferred = False

    @property
    def ok(self) -> bool:
        """
        Whether the item got through every stage.
        """
        return self.error is None

    def __repr__(self) -> str:
        state = "ok" if self.error is None else f"error in {self.error.stage}"
        return f"<Item {self.key!r} #{self.index} {state}>"


@dataclass(frozen=True)
class Stage:
    """
    A named step of a pipeline.

    Args:
        name: unique within the pipeline; used in statistics, error records and the journal.
        fn: the work. ``async`` stages take an ``async def fn(value)``; ``thread`` stages a
            plain ``def fn(value)``.  With a ``resource`` factory it is called as
            ``fn(resource, value)``.  It returns the new value, or raises.  An ``async
            def`` with ``kind="thread"`` is a `ConfigError` here.  A plain ``def`` in an
            ``async`` stage is known only by what it returns (one that returns a
            coroutine, such as a ``lambda`` calling an ``async def``, is fine): when its
            first call returns what cannot be awaited, or a ``thread`` stage's returns a
            coroutine, the run stops at once and `Pipeline.run` raises a `ConfigError`
            naming the stage; no item is failed or written, so a resume runs them all.
        kind: ``"async"`` runs ``workers`` concurrent tasks on the event loop (for I/O such
            as HTTP calls); ``"thread"`` offloads each call with ``anyio.to_thread.run_sync``
            under a `anyio.CapacityLimiter` of ``workers`` tokens, or, with a
            ``resource``, to each worker's own thread (for CPU work that releases the
            GIL, like OpenCV and ONNX models).
        workers: how many items the stage works on at once.  Default 1.
        resource: a per-worker factory.  Each worker builds its own instance once, so an
            engine that is not thread-safe is never used by two threads at once.  A
            ``thread`` worker with a resource has a thread of its own, where the resource
            is built, used and closed, so an engine bound to the thread that built it
            works (a sqlite3 connection as it comes).  Its calls may use
            ``anyio.from_thread.run`` and ``run_sync``, not ``check_cancelled``.  Its
            ``close()``, if it has one, is called when the worker stops; an exception
            from it is logged, not raised.  A factory that raises stops the run: `run`
            raises a `ConfigError` naming the stage, caused by the factory's error.
        limiter: a `RateLimit` acquired before every try, retries included.  Share one
            object between stages to share the limit, or give a name (e.g. ``"llm"``): the
            run resolves it to the one shared `RateLimit` of that name (see
            ``Pipeline(limits=...)`` and ``asyncpipe run --rate-limit``).
        retry: the `Retry` policy.  Default: 3 tries for `RetryableError` and `TimeoutError`.
        timeout: seconds one try of an ``async`` stage may take (it is cancelled after).
            ``thread`` stages take none: a thread cannot be cancelled, and abandoning it
            would leave it running.
        checkpoint: journal the stage's output so that resume never runs it twice for the
            same item.  The output must be JSON-serialisable, or give ``encode``/``decode``.
            What a resume reads back is what JSON holds: a dataclass comes back as a dict,
            a tuple or a numpy array as a list, a datetime as a string, NaN as ``None``;
            give ``decode`` (and ``encode``) when the next stage needs the type itself.
            (`JsonlSink` writes NaN and the infinities as ``null`` too.)
        version: change it when the stage's behaviour changes: its checkpoints (and those of
            the stages after it) are then not reused.
        encode: turns the output into JSON-safe data for the journal.
        decode: turns journaled data back into the output, on resume.
        max_buffer_size: how many items wait in front of this stage; ``None`` takes the
            pipeline's default.
        weight: the weight of one value waiting in front of this stage (e.g. the bytes of a
            decoded image), to bound that queue by weight as well as by count; needs
            ``max_weight``.  It is called once per item, on the event loop: keep it cheap.
        max_weight: the total weight that may wait in front of this stage.  One item is
            always let in, however heavy, so a huge page passes alone.
        executor: for ``thread`` stages, an `Executor` that runs the calls elsewhere (e.g.
            on Ray actors); ``None`` runs them in local threads.
        group: a name shared by stages that are tuned together (e.g. ``"llm"``): run-wide
            overrides such as ``--workers llm=32`` reach every stage of the group.

    .. versionadded:: 0.1
    """

    name: str
    fn: Callable[..., Any]
    kind: StageKind = "async"
    workers: int = 1
    resource: ResourceFactory | None = None
    limiter: RateLimit | str | None = None
    retry: Retry = field(default_factory=Retry)
    timeout: float | None = None
    checkpoint: bool = False
    version: str = "1"
    encode: Callable[[Any], Any] | None = None
    decode: Callable[[Any], Any] | None = None
    max_buffer_size: int | None = None
    weight: Callable[[Any], float] | None = None
    max_weight: float | None = None
    executor: Executor | None = None
    group: str | None = None

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ConfigError("a stage needs a non-empty name")
        if self.kind not in ("async", "thread"):
            raise ConfigError(
                f"stage {self.name!r}: kind must be 'async' or 'thread', not {self.kind!r}"
            )
        if self.workers < 1:
            raise ConfigError(
                f"stage {self.name!r}: workers must be at least 1, got {self.workers}"
            )
        if self.kind == "thread" and inspect.iscoroutinefunction(self.fn):
            raise ConfigError(
                f"stage {self.name!r}: an async def runs on the event loop: give it "
                "kind='async' (a thread stage takes a plain function)"
            )
        if self.timeout is not None and self.kind == "thread":
            raise ConfigError(
                f"stage {self.name!r}: thread stages take no timeout (a thread cannot be "
                "cancelled); put the deadline inside the function"
            )
        if self.timeout is not None and not self.timeout > 0:
            raise ConfigError(f"stage {self.name!r}: timeout must be positive")
        if self.executor is not None and self.kind != "thread":
            raise ConfigError(f"stage {self.name!r}: only thread stages take an executor")
        if self.max_buffer_size is not None and self.max_buffer_size < 1:
            raise ConfigError(f"stage {self.name!r}: max_buffer_size must be at least 1")
        if self.group is not None and (not self.group or not isinstance(self.group, str)):
            raise ConfigError(f"stage {self.name!r}: a group needs a non-empty name")
        if isinstance(self.limiter, str) and not self.limiter:
            raise ConfigError(f"stage {self.name!r}: a shared limit needs a non-empty name")
        if (self.weight is None) != (self.max_weight is None):
            raise ConfigError(f"stage {self.name!r}: weight and max_weight go together")
        if self.max_weight is not None and not self.max_weight > 0:
            raise ConfigError(f"stage {self.name!r}: max_weight must be positive")

    def weigh(self, item: Item) -> float:
        """
        The weight of ``item`` waiting in front of this stage: ``weight(item.value)``, or 0
        for an item that has failed (it only passes through) or when there is no ``weight``.
        """
        if self.weight is None or item.error is not None:
            return 0.0
        return float(self.weight(item.value))

    def replace(self, **changes: Any) -> Stage:
        """
        A copy of this stage with some settings changed (e.g. ``workers`` from a config).
        """
        return replace(self, **changes)


def stage_fingerprints(stages: Sequence[Stage]) -> list[str]:
    """
    For each stage, a hash of the names and versions of it and every stage before it.

    A checkpoint is reused only if its fingerprint still matches, so changing a stage's
    version invalidates its checkpoints and those of all later stages.
    """
    digest = hashlib.sha256()
    out = []
    for stage in stages:
        digest.update(f"{stage.name}\0{stage.version}\0".encode())
        out.append(digest.copy().hexdigest()[:16])
    return out
