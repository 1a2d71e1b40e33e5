"""
Retry policy: capped exponential backoff with full jitter, and Retry-After hints.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from ._exceptions import ConfigError, RetryableError

__all__ = ["Retry", "default_retryable"]


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
    When the exception carries ``retry_after`` (see `RetryableError`), the wait is at least
    that long: the server knows better than our guess.

    Attributes:
        attempts: the most tries per item, the first included (1 means no retry).
        base: seconds of the first backoff ceiling.
        cap: the largest backoff ceiling, in seconds.
        retry_after_cap: the longest ``Retry-After`` we agree to wait, in seconds.
        retryable: which exceptions are worth another try.
        rng: where jitter comes from (tests pass a seeded ``random.Random``).

    .. versionadded:: 0.1
    """

    attempts: int = 3
    base: float = 0.5
    cap: float = 8.0
    retry_after_cap: float = 60.0
    retryable: Callable[[Exception], bool] = default_retryable
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError(f"Retry(attempts={self.attempts}): at least one try is needed")
        if self.base < 0 or self.cap < 0:
            raise ConfigError("Retry base and cap must not be negative")

    def should_retry(self, exc: Exception, attempt: int) -> bool:
        """
        Whether try number ``attempt`` (1-based), which raised ``exc``, gets another.
        """
        return attempt < self.attempts and self.retryable(exc)

    def delay(self, exc: Exception, attempt: int) -> float:
        """
        Seconds to wait after try number ``attempt`` (1-based) raised ``exc``.
        """
        ceiling = min(self.cap, self.base * 2 ** (attempt - 1))
        wait = self.rng.uniform(0.0, ceiling)
        hint = getattr(exc, "retry_after", None)
        if isinstance(hint, int | float) and hint > 0:
            wait = max(wait, min(float(hint), self.retry_after_cap))
        return wait
