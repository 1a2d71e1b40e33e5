"""
A rate limit that holds in *every* window, built on aiolimiter.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from aiolimiter import AsyncLimiter

from ._exceptions import ConfigError

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["RateLimit", "parse_rate"]

_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0,
          "h": 3600.0, "hour": 3600.0}


class RateLimit:
    """
    At most ``limit`` acquisitions in any window of ``period`` seconds.

    ``aiolimiter.AsyncLimiter(150, 60)`` is a leaky bucket of capacity 150: it lets 150
    calls through at t=0 and up to 299 within the first 60 s.  A bucket of capacity
    ``b`` draining at ``r`` per second admits at most ``b + r * period`` calls in any
    window, so we use capacity 1 and ``r = (limit - 1) / period``.  That bound is
    ``limit`` exactly, with one full spacing interval of slack for network jitter
    between our clock and the server's; it costs ``1 / limit`` of the throughput
    (0.7 % at 150/min).  Calls are spread evenly rather than sent in bursts.

    One object may be shared by many stages and tasks: that is how the LLM stages share
    150 calls/min.  Use it as ``async with limit:`` or ``await limit.acquire()``.

    Args:
        limit: the most calls allowed in any window.
        period: the window length in seconds.

    .. versionadded:: 0.1
    """

    def __init__(self, limit: int, period: float = 60.0) -> None:
        if limit < 1 or not period > 0 or math.isinf(period):
            raise ConfigError(
                f"a rate limit needs limit >= 1 and a finite period > 0, got {limit}/{period}s"
            )
        self.limit = limit
        self.period = period
        # With limit == 1 there is no slack to spare: space calls 1 % wider than the period.
        interval = period / (limit - 1) if limit > 1 else period * 1.01
        self.interval = interval
        self._limiter = AsyncLimiter(1, interval)
        self.acquired = 0

    async def acquire(self) -> None:
        """
        Wait until one more call fits in the limit, and count it.
        """
        await self._limiter.acquire()
        self.acquired += 1

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
        return f"RateLimit({self.limit}, {self.period:g})"


def parse_rate(text: str) -> RateLimit:
    """
    Parse ``"150/min"``, ``"10/s"`` or ``"1000/3600"`` into a `RateLimit`.

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
    return RateLimit(limit, period)
