"""
Per-stage statistics, counted on the event loop (so no locks), and the run summary.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._meter import bottleneck

if TYPE_CHECKING:
    from ._meter import ProgressSnapshot
    from ._queue import ReceiveQueue

# `StageCounters` is internal to the pipeline; the snapshots below are public.
__all__ = ["RunSummary", "StageStatistics", "WorkerLosses"]

# Latency percentiles come from the most recent N samples: enough for a stable p95 and
# a bounded cost, whatever the input size.  (2048 is a round guess, not a measurement.)
_SAMPLES = 2048


@dataclass(frozen=True, slots=True)
class StageStatistics:
    """
    A snapshot of one stage.

    Attributes:
        name: the stage name.
        kind: ``"async"`` or ``"thread"``.
        workers: how many items the stage works on at once.
        items_in: items the stage started work on (skipped and resumed items excluded).
        items_out: items it finished successfully.
        failed: items it turned into error records after their last try.
        retried: extra tries it made.
        skipped: items that passed by without work (resumed past it, already failed, or
            left at their checkpoint by a stop); the summary table's ``bypass`` column.
        busy_seconds: time spent inside the stage function, summed over workers, the
            calls still running included.
        utilization: ``busy_seconds / (workers * elapsed)``: 1.0 means always busy.
        queue_depth: items waiting in the stage's input buffer right now.
        latency_p50: median seconds per item (recent items).
        latency_p95: 95th percentile seconds per item (recent items).
        running: calls of the stage running now (an LLM call sent and not answered: a
            calls/min count leaves it out once it was sent over a minute ago).

            .. versionadded:: 0.1
    """

    name: str
    kind: str
    workers: int
    items_in: int
    items_out: int
    failed: int
    retried: int
    skipped: int
    busy_seconds: float
    utilization: float
    queue_depth: int
    latency_p50: float
    latency_p95: float
    running: int = 0


class StageCounters:
    """
    The mutable counters behind `StageStatistics`; only the event loop touches them.
    """

    __slots__ = (
        "busy",
        "calls_running",
        "calls_since",
        "failed",
        "items_in",
        "items_out",
        "kind",
        "latencies",
        "name",
        "retried",
        "skipped",
        "workers",
    )

    def __init__(self, name: str, kind: str, workers: int) -> None:
        self.name = name
        self.kind = kind
        self.workers = workers
        self.items_in = 0
        self.items_out = 0
        self.failed = 0
        self.retried = 0
        self.skipped = 0
        self.busy = 0.0
        # Calls still running and the sum of their start times: their time so far counts
        # as busy in a live snapshot (a 2-minute LLM call is busy before it ends).
        self.calls_running = 0
        self.calls_since = 0.0
        # The hot path appends to it directly (``latencies.append`` is one C call).
        self.latencies: deque[float] = deque(maxlen=_SAMPLES)

    def record_latency(self, seconds: float) -> None:
        self.latencies.append(seconds)

    def snapshot(self, elapsed: float, queue: ReceiveQueue[Any] | None) -> StageStatistics:
        samples = sorted(self.latencies)
        busy = self.busy + max(0.0, self.calls_running * now() - self.calls_since)
        return StageStatistics(
            name=self.name,
            kind=self.kind,
            workers=self.workers,
            items_in=self.items_in,
            items_out=self.items_out,
            failed=self.failed,
            retried=self.retried,
            skipped=self.skipped,
            busy_seconds=busy,
            utilization=busy / (self.workers * elapsed) if elapsed > 0 else 0.0,
            queue_depth=queue.statistics().current_buffer_used if queue is not None else 0,
            latency_p50=_percentile(samples, 0.50),
            latency_p95=_percentile(samples, 0.95),
            running=self.calls_running,
        )


def _percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass(frozen=True, slots=True)
class WorkerLosses:
    """
    What an executor's remote workers lost during a run, and what it did about it.

    Attributes:
        lost: workers lost (their process died, or their node left the cluster) and
            restarted; each loss counts once, however many calls it failed.
        rerun: calls the executor sent again because the worker running them was lost
            (each call once, however many tries it took).
        replaced: workers the executor replaced with new ones (their restarts used up).

    .. versionadded:: 0.1
    """

    lost: int = 0
    rerun: int = 0
    replaced: int = 0

    def __bool__(self) -> bool:
        return bool(self.lost or self.rerun or self.replaced)

    def __add__(self, other: WorkerLosses) -> WorkerLosses:
        return WorkerLosses(
            self.lost + other.lost, self.rerun + other.rerun, self.replaced + other.replaced
        )

    def __sub__(self, other: WorkerLosses) -> WorkerLosses:
        return WorkerLosses(
            self.lost - other.lost, self.rerun - other.rerun, self.replaced - other.replaced
        )

    def describe(self) -> str:
        """
        The losses in words, e.g. ``"1 actor lost (its process or node died); 1 call ran
        again after its actor was lost"``.
        """
        parts = []
        if self.lost:
            parts.append(
                _count(self.lost, "actor", "actors")
                + (
                    " lost (its process or node died)"
                    if self.lost == 1
                    else " lost (their process or node died)"
                )
            )
        if self.rerun:
            parts.append(
                _count(self.rerun, "call", "calls")
                + (
                    " ran again after its actor was lost"
                    if self.rerun == 1
                    else " ran again after their actors were lost"
                )
            )
        if self.replaced:
            parts.append(_count(self.replaced, "actor", "actors") + " replaced (restarts used up)")
        return "; ".join(parts)


#: The utilization from which the busiest stage is called the bottleneck in the table:
#: below it the stage spent most of the run idle, held back by the source or the sink.
BUSY = 0.5


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


@dataclass(frozen=True)
class RunSummary:
    """
    What a finished (or stopped) run did.

    Attributes:
        stages: the final statistics of each stage, in pipeline order.
        elapsed: wall-clock seconds of the run.
        ok: items written with status ``ok``.
        failed: items written as error records.
        skipped: items skipped because a previous run already wrote them (resume).
        interrupted: the signal name that stopped intake early (``"SIGINT"``...), or ``None``.
        cancelled: a second signal cancelled the items in flight: they were not written,
            and ``--resume`` runs them from their last checkpoint.
        duplicates: input values skipped because an earlier value of the run had their
            key (checked when the run has a ``key`` function, with a journal or without).
        bottleneck: the name of the busiest stage (highest utilization), or ``None``.
        progress: the last progress snapshot (total, done, rate), or ``None``.
        worker_losses: by executor name (e.g. ``"ray"``), the remote workers lost during
            this run and the calls run again; only executors that lost any.
        window_wait: with ordered output, the seconds the source waited because the
            admission window was full of items finished behind a slower one (not the
            waits of a run paced by its sink or a stage).
            A large share of ``elapsed`` says a larger ``reorder_window`` (or unordered
            output) would run faster.

    """

    stages: list[StageStatistics]
    elapsed: float
    ok: int
    failed: int
    skipped: int
    interrupted: str | None = None
    cancelled: bool = False
    duplicates: int = 0
    progress: ProgressSnapshot | None = None
    worker_losses: dict[str, WorkerLosses] = field(default_factory=dict)
    window_wait: float = 0.0

    @property
    def bottleneck(self) -> str | None:
        """
        The stage with the highest utilization: the one to give more workers.
        """
        return bottleneck(self.stages)

    @property
    def items_per_second(self) -> float:
        """
        Items written (ok or error) per second of the run.
        """
        return (self.ok + self.failed) / self.elapsed if self.elapsed > 0 else 0.0

    def format_table(self) -> str:
        """
        The summary as a plain-text table that names the bottleneck stage.
        """
        head = (
            f"{'stage':<12} {'kind':<6} {'wrk':>3} {'in':>7} {'out':>7} {'fail':>5} {'retry':>5} "
            f"{'bypass':>6} {'busy s':>8} {'util':>5} {'p50 ms':>8} {'p95 ms':>8}"
        )
        rows = [head, "-" * len(head)]
        for s in self.stages:
            mark = ""
            if s.name == self.bottleneck:
                # A stage idle most of the run was waiting on its input or on the output.
                mark = "  <- bottleneck" if s.utilization >= BUSY else "  <- busiest"
            rows.append(
                f"{s.name:<12} {s.kind:<6} {s.workers:>3} {s.items_in:>7} {s.items_out:>7} "
                f"{s.failed:>5} {s.retried:>5} {s.skipped:>6} {s.busy_seconds:>8.2f} "
                f"{s.utilization:>5.2f} {s.latency_p50 * 1e3:>8.1f} "
                f"{s.latency_p95 * 1e3:>8.1f}{mark}"
            )
        if any(s.skipped for s in self.stages):
            # Not the items skipped as written before, counted below: after a stop, a
            # stage's bypass holds the items left at their checkpoint (a review: "skip 4"
            # over "0 skipped (already done)").
            rows.append(
                "bypass: passed the stage by without its work (left at a checkpoint by a "
                "stop, failed before it, or done before a resume)"
            )
        rows.append(
            f"{self.ok} ok, {self.failed} failed, {self.skipped} skipped (written by an "
            "earlier run) in "
            f"{self.elapsed:.2f} s: {self.items_per_second:.2f} items/s"
            + (f"; interrupted by {self.interrupted}" if self.interrupted else "")
        )
        if self.window_wait > max(1.0, 0.1 * self.elapsed):
            rows.append(
                f"ordered output held intake back {self.window_wait:.1f} s while finished "
                "items waited for a slower one: a larger reorder_window, or unordered "
                "output, may run faster"
            )
        return "\n".join(rows)


#: The clock used for statistics (monotonic, high resolution).  An alias, not a wrapper:
#: the hot path reads it twice per item and stage.
now = time.perf_counter
