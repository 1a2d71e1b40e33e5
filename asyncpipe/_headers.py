"""
Rate-limit headers from LLM servers: what is left, and when it is full again.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from ._ratelimit import RateLimit

__all__ = ["RateLimitHeaders", "parse_duration", "parse_ratelimit_headers"]

# Go's time.Duration.String(), which OpenAI's "6m0s" and "20ms" come from.
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_SCALE = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}

# (kind, field) -> header names, OpenAI style first, then Anthropic's.
_NAMES = {
    ("requests", "limit"): ("x-ratelimit-limit-requests", "anthropic-ratelimit-requests-limit"),
    ("requests", "remaining"): (
        "x-ratelimit-remaining-requests",
        "anthropic-ratelimit-requests-remaining",
    ),
    ("requests", "reset"): ("x-ratelimit-reset-requests", "anthropic-ratelimit-requests-reset"),
    ("tokens", "limit"): ("x-ratelimit-limit-tokens", "anthropic-ratelimit-tokens-limit"),
    ("tokens", "remaining"): (
        "x-ratelimit-remaining-tokens",
        "anthropic-ratelimit-tokens-remaining",
    ),
    ("tokens", "reset"): ("x-ratelimit-reset-tokens", "anthropic-ratelimit-tokens-reset"),
}


def parse_duration(text: str, *, now: float | None = None) -> float:
    """
    Parse a reset time into seconds from now.

    Reads Go durations as OpenAI sends them (``"1s"``, ``"6m0s"``, ``"20ms"``,
    ``"1h2m3.5s"``), plain seconds (``"0.5"``), and RFC 3339 times as Anthropic sends
    them (``"2026-12-03T12:00:30Z"``, counted from ``now``, default `time.time`).  A time
    in the past is 0.

    Raises:
        ValueError: the text is none of these.
    """
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"not a duration: {text!r}")
        return seconds
    parts = _PART.findall(text)
    if parts and "".join(number + unit for number, unit in parts) == text:
        return sum(float(number) * _SCALE[unit] for number, unit in parts)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a duration or a time: {text!r}") from None
    if when.tzinfo is None:
        raise ValueError(f"not a duration, and a time needs a zone: {text!r}")
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class RateLimitHeaders:
    """
    What a response's rate-limit headers say; ``None`` where a header is missing or
    unreadable (a malformed header never fails a call).

    Attributes:
        limit_requests: requests allowed per the server's window.
        remaining_requests: requests left in it.
        reset_requests: seconds until the request limit is full again.
        limit_tokens: tokens allowed per the server's window.
        remaining_tokens: tokens left in it.
        reset_tokens: seconds until the token limit is full again.

    .. versionadded:: 0.1
    """

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens: float | None = None

    def apply(self, requests: RateLimit | None = None, tokens: RateLimit | None = None) -> None:
        """
        Tell each limit what the server said about it (`RateLimit.observe`).

        A limit is told only when both its ``remaining`` and ``reset`` headers were read.
        Settle the response's token reservation *before* this call, so that its units are
        not counted as outstanding on top of what the server already counted.
        """
        if (
            requests is not None
            and self.remaining_requests is not None
            and self.reset_requests is not None
        ):
            requests.observe(self.remaining_requests, self.reset_requests, self.limit_requests)
        if (
            tokens is not None
            and self.remaining_tokens is not None
            and self.reset_tokens is not None
        ):
            tokens.observe(self.remaining_tokens, self.reset_tokens, self.limit_tokens)


def _count(text: str) -> int:
    value = int(text.strip())
    if value < 0:
        raise ValueError(text)
    return value


def parse_ratelimit_headers(
    headers: Mapping[str, str], *, now: float | None = None
) -> RateLimitHeaders:
    """
    Read OpenAI's ``x-ratelimit-*`` or Anthropic's ``anthropic-ratelimit-*`` headers.

    Args:
        headers: the response headers (``httpx.Headers`` or any mapping; names are
            matched without regard to case).
        now: the wall-clock time for RFC 3339 reset times (default `time.time`).
    """
    lower = {name.lower(): value for name, value in headers.items()}
    found: dict[str, int | float] = {}
    for (kind, field), names in _NAMES.items():
        text = next((lower[name] for name in names if name in lower), None)
        if text is None:
            continue
        try:
            found[f"{field}_{kind}"] = (
                parse_duration(text, now=now) if field == "reset" else _count(text)
            )
        except ValueError:
            continue
    return RateLimitHeaders(**found)  # type: ignore[arg-type]
