"""
Retry policy: capped exponential backoff with full jitter, and Retry-After hints.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ._exceptions import ConfigError, RetryableError

__all__ = ["Retry", "default_retryable", "retry_after"]


def retry_after(headers: Mapping[str, str], now: Callable[[], float] = time.time) -> float | None:
    """
    The wait a server asked for, for `RetryableError`'s ``retry_after``:
    ``retry-after-ms`` first, then ``Retry-After`` as seconds or as an HTTP-date.

    Args:
        headers: the response's headers (``httpx.Headers`` finds the names in any case;
            a plain dict needs them in lower case).
        now: the wall clock, for HTTP-dates.

    Returns:
        Seconds to wait (never negative), or ``None`` if there is no readable hint.

    .. versionadded:: 0.1
    """
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())


def default_retryable(exc: Exception) -> bool:
    """
    The default retryable predicate: `RetryableError` and `TimeoutError` are worth another
    try; anything else (a corrupt file, a bug) fails the same way every time.
    """
    return isinstance(exc, RetryableError | TimeoutError)


@dataclass(frozen=True)
class Retry:
    """
    How a stage retries an item that raised.

    The wait before try ``n + 1`` is drawn uniformly from ``[0, min(cap, base * 2**(n-1))]``
    ("full jitter", which spreads retries of many items so they do not arrive together).
    When the exception carries ``retry_after`` (see `RetryableError`), the wait is that
    long instead: the server knows better than our guess.  A wait over
    ``retry_after_cap`` ends the item's tries (it fails with the server's error) rather
    than trying sooner than the server asked; openai-python instead drops such a hint and
    retries on its backoff, which meets a quota's long wait with a request every second.

    With a ``deadline``, one item's tries in the stage (waits included) must end within that
    many seconds of its first try.  How long the item has been at it is ``elapsed``: the
    pipeline passes the time since the item's first try in the stage (in a fused chain of
    stages, since its first try in the chain).  An exception that carries its own
    ``elapsed`` attribute is believed instead: a stage that tracks its own calls, like the
    LLM stages, knows when a call really began (not while it waited for a free slot).  No
    retry is made once the deadline has passed, nor when the server's ``retry_after``
    would cross it; a drawn backoff is shortened to end at the deadline.  Without a known
    ``elapsed`` (calling `should_retry` or `delay` yourself without one) the deadline is
    not applied.

    Attributes:
        attempts: the most tries per item, the first included (1 means no retry).
        base: seconds of the first backoff ceiling.
        cap: the largest backoff ceiling, in seconds.
        retry_after_cap: the longest ``Retry-After`` we agree to wait, in seconds; a longer
            one fails the item.
        retryable: which exceptions are worth another try.
        deadline: seconds one item may spend in the stage, tries and waits included, or
            ``None`` for no limit.
        rng: where jitter comes from (tests pass a seeded ``random.Random``).

    .. versionadded:: 0.1
    """

    attempts: int = 3
    base: float = 0.5
    cap: float = 8.0
    retry_after_cap: float = 60.0
    retryable: Callable[[Exception], bool] = default_retryable
    deadline: float | None = None
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError(f"Retry(attempts={self.attempts}): at least one try is needed")
        if self.base < 0 or self.cap < 0:
            raise ConfigError("Retry base and cap must not be negative")
        if self.deadline is not None and not self.deadline > 0:
            raise ConfigError(f"Retry(deadline={self.deadline}): the deadline must be positive")

    def remaining(self, exc: Exception, elapsed: float | None = None) -> float | None:
        """
        Seconds left before the deadline, or ``None`` when there is no deadline or
        ``elapsed`` is unknown.  The exception's own ``elapsed``, when it carries one, wins
        over the caller's (see the class docstring).
        """
        value = getattr(exc, "elapsed", None)
        if isinstance(value, int | float):
            elapsed = float(value)
        if self.deadline is None or elapsed is None:
            return None
        return self.deadline - elapsed

    def should_retry(self, exc: Exception, attempt: int, elapsed: float | None = None) -> bool:
        """
        Whether try number ``attempt`` (1-based), which raised ``exc`` after the item had
        spent ``elapsed`` seconds in the stage, gets another.
        """
        if attempt >= self.attempts or not self.retryable(exc):
            return False
        if self._hint(exc) > self.retry_after_cap:
            return False  # the server asks for longer than we agreed to wait
        left = self.remaining(exc, elapsed)
        if left is None:
            return True
        return left > 0 and self._hint(exc) < left

    def delay(self, exc: Exception, attempt: int, elapsed: float | None = None) -> float:
        """
        Seconds to wait after try number ``attempt`` (1-based) raised ``exc``.
        """
        ceiling = min(self.cap, self.base * 2 ** (attempt - 1))
        hint = self._hint(exc)
        wait = hint if hint > 0 else self.rng.uniform(0.0, ceiling)
        left = self.remaining(exc, elapsed)
        if left is not None:
            wait = max(0.0, min(wait, left))
        return wait

    def _hint(self, exc: Exception) -> float:
        hint = getattr(exc, "retry_after", None)
        if isinstance(hint, int | float) and hint > 0:
            return float(hint)
        return 0.0
