"""
How far a run is: the total, items done, the recent rate and the ETA.

The pipeline owns one `RunMeter` per run.  An app supplies only the total: a number, or
an async iterable of ever better estimates (count the input documents first, then the
pages as the documents are opened), which the run follows in a task of its own.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._stats import StageStatistics

# `RunMeter` is internal to the pipeline; the snapshot is public.
__all__ = ["PerMinute", "ProgressSnapshot", "Total"]

#: What an app may give as the total: a number, an async iterable of refined estimates,
#: or a function that returns one (called when the run starts).
Total = int | AsyncIterable[int] | Callable[[], AsyncIterable[int]]

# The rate is measured over the most recent window: long enough to smooth out one slow
# item, short enough to follow a change (another machine's load, a rate limit kicking
# in).  30 s is a judgement, not a measurement.
RATE_WINDOW = 30.0
# ... and over at least this many items, so that a slow run's rate is steady.
MIN_ITEMS = 20


@dataclass(frozen=True, slots=True)
class ProgressSnapshot:
    """
    How far a run is, at one moment.

    Attributes:
        stages: the statistics of each stage, in pipeline order.
        elapsed: seconds since this run started.
        total: how many items the run has in all (including those done by earlier runs),
            as far as it is known; ``None`` while unknown.
        total_exact: the source is exhausted, so ``total`` is exact.
        done: items finished, by this run and by earlier ones: ``previous`` plus the items
            through every stage (written, or with ordered output waiting for their turn).
        previous: items an earlier run already finished (resume); this run skips them.
        ok: items this run wrote with status ``ok``.
        failed: items that failed in this run (error records, written or about to be).
        skipped: items the source yielded that an earlier run had finished.
        rate: items per second that this run finished, over the recent window.
        eta: seconds until the end at that rate; ``None`` if the total or the rate is
            unknown.
        bottleneck: the busiest stage over the last rate window (since the start before
            a window has passed), or ``None``.
        interrupted: the signal that stopped intake, or ``None``.
    """

    stages: list[StageStatistics]
    elapsed: float
    total: int | None
    total_exact: bool
    done: int
    previous: int
    ok: int
    failed: int
    skipped: int
    rate: float
    eta: float | None
    bottleneck: str | None
    interrupted: str | None = None

    @property
    def fraction(self) -> float | None:
        """
        ``done / total`` (0.0 to 1.0), or ``None`` while the total is unknown.
        """
        if not self.total:
            return None
        return min(1.0, self.done / self.total)

    def to_json(self) -> dict[str, object]:
        """
        The snapshot as a JSON-ready dict (the stages by name, without latencies).
        """
        return {
            "elapsed": round(self.elapsed, 3),
            "total": self.total,
            "total_exact": self.total_exact,
            "done": self.done,
            "previous": self.previous,
            "ok": self.ok,
            "failed": self.failed,
            "skipped": self.skipped,
            "rate": round(self.rate, 4),
            "eta": None if self.eta is None else round(self.eta, 1),
            "bottleneck": self.bottleneck,
            "interrupted": self.interrupted,
            "stages": {
                s.name: {
                    "in": s.items_in,
                    "out": s.items_out,
                    "failed": s.failed,
                    "retried": s.retried,
                    "queue": s.queue_depth,
                    "running": s.running,
                    "util": round(s.utilization, 3),
                }
                for s in self.stages
            },
        }


def bottleneck(stages: list[StageStatistics]) -> str | None:
    """
    The stage with the highest utilization among those that did any work.
    """
    busy = [s for s in stages if s.items_in]
    return max(busy, key=lambda s: s.utilization).name if busy else None


class RunMeter:
    """
    The total, the done counts over time, and from them the rate and ETA of one run.

    Only the event loop touches it.

    Args:
        total: the app's total (see `Total`), or ``None``.
        window: seconds of history the rate is measured over.
    """

    def __init__(self, total: Total | None = None, *, window: float = RATE_WINDOW) -> None:
        self.estimate: int | None = total if isinstance(total, int) else None
        self._follow = None if total is None or isinstance(total, int) else total
        self.exact: int | None = None
        self.admitted = 0  # items sent into the first stage by this run
        self.finished = 0  # items through the last stage (written, or waiting for order)
        # Items through the last stage unfinished, left for --resume: not done (after a
        # Ctrl-C the bar climbed to "19/20 pages" with none written).
        self.left = 0
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()
        self._busy: deque[tuple[float, list[float]]] = deque()  # each stage's busy seconds

    @property
    def needs_task(self) -> bool:
        """
        Whether the total is an iterable that `follow_total` must consume.
        """
        return self._follow is not None

    async def follow_total(self) -> None:
        """
        Take each estimate the app's iterable yields, until it ends (or the run does).
        """
        follow = self._follow
        if follow is None:
            return
        estimates = follow() if callable(follow) else follow
        async for estimate in estimates:
            if self.exact is None:
                self.estimate = int(estimate)

    def exhausted(self, count: int) -> None:
        """
        The source has ended after ``count`` values: the total is now exact.
        """
        self.exact = count

    def snapshot(
        self,
        stages: list[StageStatistics],
        *,
        elapsed: float,
        ok: int,
        failed: int,
        skipped: int,
        previous: int,
        interrupted: str | None = None,
    ) -> ProgressSnapshot:
        """
        Build a snapshot, and keep ``(elapsed, finished)`` as a sample for the rate.
        """
        finished = max(self.finished, ok + failed)
        failed = max(failed, sum(s.failed for s in stages))
        rate = self._rate(elapsed, finished)
        done = previous + finished
        total = self.exact if self.exact is not None else self.estimate
        if total is not None:
            total = max(total, done)
        eta = None
        if total is not None:
            remaining = total - done
            if remaining == 0:
                eta = 0.0
            elif rate > 0:
                eta = remaining / rate
        return ProgressSnapshot(
            stages=stages,
            elapsed=elapsed,
            total=total,
            total_exact=self.exact is not None,
            done=done,
            previous=previous,
            ok=ok,
            failed=failed,
            skipped=skipped,
            rate=rate,
            eta=eta,
            bottleneck=self._recent_bottleneck(stages, elapsed),
            interrupted=interrupted,
        )

    def _recent_bottleneck(self, stages: list[StageStatistics], elapsed: float) -> str | None:
        """
        The stage busiest over the last window, as the rate is measured: over a whole
        run, a stage that was busy at the start (OCR, before the first long LLM calls
        ended) would stay "the bottleneck" long after the run waits on another.  Before
        a window has passed, the run's own utilization decides.
        """
        busy = [s.busy_seconds for s in stages]
        samples = self._busy
        if not samples or elapsed - samples[-1][0] >= 0.2:
            samples.append((elapsed, busy))
        while len(samples) > 2 and elapsed - samples[1][0] >= self.window:
            samples.popleft()
        then, before = samples[0]
        span = elapsed - then
        worked = [n for n, s in enumerate(stages) if s.items_in]
        if span < self.window or len(before) != len(busy) or not worked:
            return bottleneck(stages)
        busiest = max(worked, key=lambda n: (busy[n] - before[n]) / stages[n].workers)
        return stages[busiest].name

    def _rate(self, elapsed: float, finished: int) -> float:
        samples = self._samples
        if not samples or elapsed - samples[-1][0] >= 0.2:
            samples.append((elapsed, finished))
        # The oldest sample kept is the newest one that is a window old and at least
        # MIN_ITEMS behind: slow items (seconds each) must not make the rate jump.
        while (
            len(samples) > 2
            and elapsed - samples[1][0] >= self.window
            and finished - samples[1][1] >= MIN_ITEMS
        ):
            samples.popleft()
        start_time, start_count = samples[0]
        if elapsed - start_time < self.window or finished - start_count < MIN_ITEMS:
            start_time, start_count = 0.0, 0  # not yet: the rate since this run started
        span = elapsed - start_time
        return (finished - start_count) / span if span > 0 else 0.0


class PerMinute:
    """
    How many events happened in the last minute, from a running count: for a stage's
    extra counters, e.g. an LLM client's calls beside its rate limit (150/min)::

        calls = PerMinute()
        counters = {"structure": lambda: {
            "calls/min": f"{calls(client.statistics().calls)}/150",
            "tokens": client.statistics().total_tokens,
        }}

    The count is taken as 0 when the object is made.  Until a minute has passed it is
    the events so far; then those since the newest reading at least a minute old (so it
    may count a little more than the last 60 s, never less).

    Args:
        clock: the time source (monotonic seconds).
    """

    WINDOW = 60.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._samples: deque[tuple[float, int]] = deque([(clock(), 0)])

    def __call__(self, count: int) -> int:
        """
        Record the running ``count`` now; return the events in the last minute.
        """
        t = self._clock()
        samples = self._samples
        samples.append((t, count))
        while len(samples) > 2 and t - samples[1][0] >= self.WINDOW:
            samples.popleft()
        return count - samples[0][1]
