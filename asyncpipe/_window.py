"""
The clock-free core of `RateLimit`: which units may go when, given ``now``.

Every method takes the time as an argument and nothing here sleeps, so the rules can be
tested against a simulated clock (exact `fractions.Fraction` times work too).  Four rules
decide when an acquisition of ``w`` units may go; it goes once all four allow it:

1. **The window** (the guarantee).  A log of admissions over the last ``period`` seconds;
   ``w`` goes at ``t`` only if the units logged in ``(t - period, t]`` plus ``w`` are at
   most ``limit``.  So no half-open window ``[a, a + period)`` ever holds more than
   ``limit`` admitted units, whatever the other rules do.
2. **Spacing** (smoothness, not safety).  A leaky bucket draining one unit per
   ``interval`` seconds: after ``w`` units the next acquisition waits ``w * interval``,
   less a ``tolerance``.  It spreads units evenly instead of sending a window's worth at
   once.
3. **Pause**: nothing goes before ``paused_until`` (a global back-off after a 429).
4. **The server's word**: after `observe`, at most what the server said remains, refilled
   linearly until its reset time.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

# Internal to RateLimit: nothing here is public API.
__all__: list[str] = []

# ``Time`` is a float in RateLimit and may be a Fraction in tests; the arithmetic is the same.
Time = Any


class Entry:
    """
    One admission in the log: ``weight`` units at ``time`` (the weight shrinks on a refund).
    """

    __slots__ = ("time", "weight")

    def __init__(self, time: Time, weight: int) -> None:
        self.time = time
        self.weight = weight


class Window:
    """
    The state of one rate limit, advanced only by explicit calls with the current time.

    Args:
        limit: the most units in any window of ``period``.
        period: the window length.
        interval: seconds of spacing per unit (rule 2).
        tolerance: seconds of spacing that may be skipped, i.e. the burst allowance.
    """

    def __init__(self, limit: int, period: Time, interval: Time, tolerance: Time = 0) -> None:
        self.limit = limit
        self.period = period
        self.interval = interval
        self.tolerance = tolerance
        self.log: deque[Entry] = deque()
        self.in_window = 0  # the sum of the log's weights
        self.outstanding = 0  # units reserved and not settled yet
        self.paused_until: Time = -math.inf
        self._next: Time = -math.inf  # when the spacing bucket is empty
        # The server's last word (rule 4): from ``_t0``, ``_level0`` units plus ``_rate``
        # per second, of which ``_used`` are spent, until ``_until``.
        self._until: Time = -math.inf
        self._t0: Time = 0
        self._level0: Time = 0
        self._rate: Time = 0
        self._used = 0

    def _expire(self, now: Time) -> None:
        # ``time + period <= now`` is the one expression that decides expiry, here and in
        # `ready_at`, so a waiter that wakes at the time it was given always finds the
        # entries gone (no rounding gap between the two).
        log = self.log
        while log and log[0].time + self.period <= now:
            self.in_window -= log.popleft().weight

    def _server_available(self, now: Time) -> Time:
        return self._level0 + self._rate * (now - self._t0) - self._used

    def ready_at(self, weight: int, now: Time) -> Time:
        """
        Returns:
            The earliest time at or after which ``weight`` units may go, if nothing else
            changes; a time ``<= now`` means they may go now.
        """
        self._expire(now)
        at = max(self.paused_until, self._next - self.tolerance)
        excess = self.in_window + weight - self.limit
        if excess > 0:
            for entry in self.log:
                excess -= entry.weight
                if excess <= 0:
                    at = max(at, entry.time + self.period)
                    break
        if now < self._until:
            short = weight - self._server_available(now)
            if short > 0:
                wait = short / self._rate if self._rate > 0 else math.inf
                at = max(at, min(now + wait, self._until))
        return at

    def admit(self, weight: int, now: Time) -> Entry:
        """
        Log ``weight`` units at ``now``.  Call it only when ``ready_at(weight, now) <= now``.
        """
        entry = Entry(now, weight)
        self.log.append(entry)
        self.in_window += weight
        self._next = max(self._next, now) + weight * self.interval
        if now < self._until:
            self._used += weight
        return entry

    def charge(self, units: int, now: Time) -> None:
        """
        Log ``units`` more at ``now`` without waiting: they are already spent.
        """
        if units > 0:
            self.admit(units, now)

    def refund(self, entry: Entry, units: int, now: Time) -> None:
        """
        Take ``units`` back from an admission: fewer were used than it reserved.
        """
        self._expire(now)
        units = min(units, entry.weight)
        if entry.time + self.period > now:  # still in the log (see `_expire`)
            self.in_window -= units
        entry.weight -= units
        if self._next > now:
            self._next = max(now, self._next - units * self.interval)

    def restamp(self, entry: Entry, now: Time) -> None:
        """
        Move an admission to ``now``: its units were taken earlier but go out only now
        (the caller waited for another limit in between).  Later is always safe: the
        units stay in the log longer.  The log stays in time order.
        """
        self._expire(now)
        if entry in self.log:
            self.log.remove(entry)
        else:
            self.in_window += entry.weight  # it had expired: it counts again
        entry.time = now
        self.log.append(entry)

    def pause(self, seconds: Time, now: Time) -> None:
        """
        Let nothing go for ``seconds`` from ``now`` (a longer pause already set stands).
        """
        self.paused_until = max(self.paused_until, now + seconds)

    def observe(self, remaining: int, reset: Time, limit: int | None, now: Time) -> None:
        """
        The server says ``remaining`` units are left and it is full again in ``reset``.

        Units reserved and not yet settled may not have reached the server when it
        answered, so they are taken off ``remaining`` (cautious: the server may have
        counted some of them already).  The units refill linearly up to ``limit`` (if
        known) by the reset time; without ``limit`` none come back before it.  The latest
        word replaces the last one: keeping the stricter one instead would stall until its
        reset although the server has refilled since, and an answer overtaken in flight
        is at most one call's worth stale.
        """
        level = remaining - self.outstanding
        self._t0 = now
        self._level0 = level
        self._used = 0
        self._until = now + reset
        self._rate = (limit - remaining) / reset if limit is not None and reset > 0 else 0
        if self._rate < 0:
            self._rate = 0
