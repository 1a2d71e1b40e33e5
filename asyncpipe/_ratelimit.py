"""
A rate limit that holds in *every* window, for calls or for weighted units such as tokens.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from ._exceptions import ConfigError
from ._window import Entry, Window

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["RateLimit", "RateLimitStatistics", "Reservation", "parse_rate"]

_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
}


# The limit's clock.  anyio.current_time() costs ~6 us (it looks up the backend) against
# 0.4 us, and acquire() is on every call's path.  Waits are relative (move_on_after), and
# asyncio's and trio's own clocks run at the rate of this one, so they agree.
_now = time.monotonic


class _Waiter:
    __slots__ = ("event", "weight")

    def __init__(self, weight: int) -> None:
        self.weight = weight
        self.event = anyio.Event()


@dataclass(frozen=True)
class RateLimitStatistics:
    """
    A snapshot of a `RateLimit`.

    Attributes:
        acquired: acquisitions so far (reservations included).
        units: units used so far: weights, corrected by settlements.
        in_window: units in the window ending now, against ``limit``.
        outstanding: units reserved and not settled yet.
        waiting: tasks queued for the limit.
        paused_for: seconds left of a `RateLimit.pause`, else 0.

    .. versionadded:: 0.1
    """

    acquired: int
    units: int
    in_window: int
    outstanding: int
    waiting: int
    paused_for: float


class RateLimit:
    """
    At most ``limit`` units in any window of ``period`` seconds; a call is one unit.

    ``aiolimiter.AsyncLimiter(150, 60)`` is a leaky bucket of capacity 150: it lets 150
    calls through at t=0 and up to 299 within the first 60 s.  Here two rules hold
    instead.  **The window** (the guarantee): a sliding log of the admissions of the last
    ``period + margin`` seconds admits ``w`` units only if the log plus ``w`` is at most
    ``limit``, so no half-open window of that length ever holds more than ``limit`` units,
    at start-up included.  **Spacing** (smoothness): after ``w`` units the next
    acquisition waits ``w * period / limit`` seconds (less ``burst - 1`` units' worth), so
    units go evenly at exactly the limit's rate rather than a window's worth at once
    (which a server that enforces its limit per second, as OpenAI may, would refuse).

    Together they use the whole budget: in steady state ``limit`` units go every
    ``period + margin`` seconds, ``period / (period + margin)`` of the limit (0.99 at the
    default margin).  Spacing alone once kept the window, at ``period / (limit - 1)`` per
    unit; that capped the rate at ``(limit - 1) / limit`` of the limit (0.95 at 20 per
    window) and lost the wake-up lateness of every call on top.

    **The margin** covers the jitter between our clock and the server's: a unit is granted
    here, then sent, and the server counts it when it arrives.  Two units ``limit`` apart
    land in one of the server's windows only if the earlier one was delayed by ``margin``
    more than the later one.  The default is 1 % of the period, but at least 50 ms (and
    at most a tenth of the period) and at most 0.25 s.

    Waiters are served first come, first served: a heavy acquisition at the head of the
    queue is never overtaken by light ones behind it.  A weight above ``limit`` can never
    fit and raises `ConfigError` at once.

    **Tokens.**  Reserve an estimate before a call and settle with the real usage after:
    ``r = await limit.reserve(estimate)`` ... ``r.settle(actual)``.  Settling less gives
    the difference back.  Settling more charges the excess at the moment of settlement,
    without waiting (it is spent already): a window can then hold more than ``limit``,
    by at most the excess settled in it after its last admission, and nothing more is
    admitted until the window has room again.  So the limit holds exactly whenever
    estimates are upper bounds, and overshoots never compound.

    **Server feedback.**  `pause` holds every waiting and future acquirer (after a 429);
    `observe` takes the server's ``remaining``/``reset`` counts (see
    `parse_ratelimit_headers`).

    One object may be shared by many stages and tasks: that is how the LLM stages share
    150 calls/min.  Use it as ``async with limit:``, ``await limit.acquire()`` or
    ``await limit.acquire(weight)``.  It runs on anyio (asyncio or trio), timed by
    `time.monotonic`.

    Args:
        limit: the most units allowed in any window.
        period: the window length in seconds.
        burst: units that may go at once before spacing applies (default 1: even spacing).
        margin: seconds added to the window for jitter between our clock and the server's
            (default ``None``: 1 % of the period, within 50 ms..0.25 s, at most a tenth of
            the period).  Units stay in the log
            ``period + margin`` seconds, so no window of that length holds more than
            ``limit``; it costs ``margin / (period + margin)`` of the throughput.

    .. versionadded:: 0.1
    """

    def __init__(
        self, limit: int, period: float = 60.0, *, burst: int = 1, margin: float | None = None
    ) -> None:
        if limit < 1 or not period > 0 or math.isinf(period):
            raise ConfigError(
                f"a rate limit needs limit >= 1 and a finite period > 0, got {limit}/{period}s"
            )
        if not 1 <= burst <= limit:
            raise ConfigError(f"a rate limit's burst must be in 1..{limit}, got {burst}")
        if margin is None:
            margin = _default_margin(period)
        if not 0 <= margin < math.inf:
            raise ConfigError(f"a rate limit's margin must be a finite number >= 0, got {margin}")
        self.limit = limit
        self.period = period
        self.burst = burst
        self.margin = margin
        interval = period / limit
        self.interval = interval
        self._window = Window(limit, period + margin, interval, (burst - 1) * interval)
        self._waiters: deque[_Waiter] = deque()
        self.acquired = 0
        self.units = 0

    # -- acquiring --------------------------------------------------------------------------

    async def acquire(self, weight: int = 1) -> None:
        """
        Wait until ``weight`` more units fit in the limit, and count them.

        Raises:
            ConfigError: ``weight`` is below 1 or above ``limit``: it can never fit.
        """
        if not self._waiters and 1 <= weight <= self.limit:
            now = _now()
            if self._window.ready_at(weight, now) <= now:  # the fast path, inlined
                self._admit(weight, now)
                return
        await self._acquire(weight)

    async def reserve(self, estimate: int) -> Reservation:
        """
        Wait until ``estimate`` units fit, take them, and return the `Reservation` to
        settle with the units really used.

        Raises:
            ConfigError: ``estimate`` is below 1 or above ``limit``: it can never fit.
        """
        entry = await self._acquire(estimate)
        self._window.outstanding += estimate
        return Reservation(self, entry, estimate)

    async def _acquire(self, weight: int) -> Entry:
        if not 1 <= weight <= self.limit:
            raise ConfigError(self._never_fits(weight))
        window = self._window
        if not self._waiters:
            now = _now()
            if window.ready_at(weight, now) <= now:  # the fast path: no checkpoint
                return self._admit(weight, now)
        waiter = _Waiter(weight)
        self._waiters.append(waiter)
        try:
            while True:
                if self._waiters[0] is waiter:
                    now = _now()
                    at = window.ready_at(weight, now)
                    if at <= now:
                        self._waiters.popleft()
                        self._wake_head()
                        return self._admit(weight, now)
                    with anyio.move_on_after(at - now):
                        await waiter.event.wait()
                else:
                    await waiter.event.wait()
                waiter.event = anyio.Event()
        except BaseException:
            head = self._waiters[0] is waiter
            self._waiters.remove(waiter)
            if head:
                self._wake_head()
            raise

    def _admit(self, weight: int, now: float) -> Entry:
        self.acquired += 1
        self.units += weight
        return self._window.admit(weight, now)

    def _wake_head(self) -> None:
        if self._waiters:
            self._waiters[0].event.set()

    def _never_fits(self, weight: int) -> str:
        return (
            f"{weight} units can never fit in a limit of {self.limit} per {self.period:g}s"
            if weight > self.limit
            else f"an acquisition needs a weight of at least 1, got {weight}"
        )

    # -- feedback ---------------------------------------------------------------------------

    def pause(self, seconds: float) -> None:
        """
        Admit nothing for ``seconds`` from now: every waiting and future acquirer waits.

        Call it after a 429 with the server's ``Retry-After``: one 429 usually means the
        calls behind it would get one too.  A longer pause already set stands.
        """
        if seconds > 0:
            # No wake-up needed: a pause only delays, and the waiter at the head looks
            # again when its current wait ends.
            self._window.pause(seconds, _now())

    def observe(self, remaining: int, reset: float, limit: int | None = None) -> None:
        """
        Slow down to what the server says is left, before it refuses.

        Until ``reset`` seconds from now, admit at most ``remaining`` units, less those
        reserved and not yet settled (the server may not have seen them), plus a linear
        refill up to the server's ``limit`` by the reset time when that is known.  Units
        given back by a settlement are not returned to this allowance.  The latest answer
        replaces the last one.

        Args:
            remaining: ``x-ratelimit-remaining-*``.
            reset: ``x-ratelimit-reset-*`` in seconds.
            limit: ``x-ratelimit-limit-*``, if the server sent it.
        """
        if reset > 0:
            self._window.observe(remaining, reset, limit, _now())
            self._wake_head()

    # -- reporting --------------------------------------------------------------------------

    def statistics(self) -> RateLimitStatistics:
        """
        Returns:
            A snapshot of the counts so far.
        """
        window = self._window
        now = _now()
        window.ready_at(0, now)  # expires old entries
        return RateLimitStatistics(
            acquired=self.acquired,
            units=self.units,
            in_window=window.in_window,
            outstanding=window.outstanding,
            waiting=len(self._waiters),
            paused_for=max(0.0, window.paused_until - now),
        )

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def __repr__(self) -> str:
        burst = f", burst={self.burst}" if self.burst != 1 else ""
        margin = f", margin={self.margin:g}" if self.margin != _default_margin(self.period) else ""
        return f"RateLimit({self.limit}, {self.period:g}{burst}{margin})"


class Reservation:
    """
    Units taken from a `RateLimit` by `RateLimit.reserve`, to settle once with the units
    really used.

    Attributes:
        estimate: the units reserved.
        actual: the units settled, or ``None`` before `settle`.

    .. versionadded:: 0.1
    """

    __slots__ = ("_entry", "_limit", "actual", "estimate")

    def __init__(self, limit: RateLimit, entry: Entry, estimate: int) -> None:
        self._limit = limit
        self._entry = entry
        self.estimate = estimate
        self.actual: int | None = None

    def settle(self, actual: int | None = None) -> None:
        """
        Correct the reservation to ``actual`` units (``None``: keep the estimate).

        Less gives the difference back at once; more is charged now without waiting (see
        `RateLimit`).  Settle every reservation, in a ``finally`` if need be: an unsettled
        one counts as outstanding against `RateLimit.observe` forever.

        Raises:
            ConfigError: ``actual`` is negative.
            RuntimeError: the reservation is settled already.
        """
        if self.actual is not None:
            raise RuntimeError(f"{self!r} is settled already")
        actual = self.estimate if actual is None else actual
        if actual < 0:
            raise ConfigError(f"a reservation settles with >= 0 units, got {actual}")
        limit = self._limit
        window = limit._window
        now = _now()
        self.actual = actual
        window.outstanding -= self.estimate
        limit.units += actual - self.estimate
        if actual < self.estimate:
            window.refund(self._entry, self.estimate - actual, now)
        else:
            window.charge(actual - self.estimate, now)
        limit._wake_head()

    def restamp(self) -> None:
        """
        Count the reserved units from now, not from when they were reserved: call it when
        the units go out later than that (another limit was waited for in between), so
        the window holds at the server too.  Does nothing once settled.

        .. versionadded:: 0.1
        """
        if self.actual is None:
            self._limit._window.restamp(self._entry, _now())

    def __repr__(self) -> str:
        return f"Reservation(estimate={self.estimate}, actual={self.actual})"


def _default_margin(period: float) -> float:
    """
    The margin a `RateLimit` adds to its window by default: 1 % of ``period``, but at
    least 50 ms and at most 0.25 s, and never more than a tenth of ``period``.

    Jitter is a matter of milliseconds, not of the period's length: a busy event loop or
    server can delay one request by tens of milliseconds more than the next (23 ms was
    seen on a loaded 2-core CI machine), which 1 % of a 2 s period (20 ms) did not cover.
    """
    return min(0.25, period / 10, max(0.05, period / 100))


def parse_rate(text: str, *, burst: int = 1, margin: float | None = None) -> RateLimit:
    """
    Parse ``"150/min"``, ``"10/s"``, ``"200000/min"`` or ``"1000/3600"`` into a `RateLimit`.

    Raises:
        ConfigError: the text is not of that form.
    """
    problem = f"cannot read rate {text!r}: write it as N/s, N/min, N/hour or N/SECONDS"
    count, sep, unit = text.strip().partition("/")
    if not sep:
        raise ConfigError(problem)
    unit = unit.strip().lower()
    try:
        limit = int(count)
        period = _UNITS[unit] if unit in _UNITS else float(unit)
    except ValueError:
        raise ConfigError(problem) from None
    return RateLimit(limit, period, burst=burst, margin=margin)
