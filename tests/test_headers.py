from __future__ import annotations

import httpx
import pytest

from asyncpipe import RateLimitHeaders, parse_duration, parse_ratelimit_headers


class TestParseDuration:
    """Reset times as OpenAI (Go durations) and Anthropic (RFC 3339) send them."""

    @pytest.mark.parametrize(
        ("text", "seconds"),
        [
            ("1s", 1.0),
            ("6m0s", 360.0),
            ("20ms", 0.02),
            ("1h2m3.5s", 3723.5),
            ("0s", 0.0),
            ("17.5s", 17.5),
            ("250us", 250e-6),
            ("3µs", 3e-6),
            ("5ns", 5e-9),
            ("0.5", 0.5),
            ("12", 12.0),
            (" 2m ", 120.0),
        ],
    )
    def test_forms(self, text: str, seconds: float) -> None:
        """Every form reads as the right number of seconds."""
        assert parse_duration(text) == pytest.approx(seconds)

    def test_rfc3339_counts_from_now(self) -> None:
        """An RFC 3339 time is seconds from ``now``; a past one is 0."""
        now = 1_800_000_000.0  # 2027-01-15T08:00:00Z
        assert parse_duration("2027-01-15T08:00:30Z", now=now) == pytest.approx(30.0)
        assert parse_duration("2027-01-15T09:00:30+01:00", now=now) == pytest.approx(30.0)
        assert parse_duration("2027-01-15T07:59:00Z", now=now) == 0.0

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "s",
            "1x",
            "1s2",
            "-1",
            "-1s",
            "nan",
            "inf",
            "1 s",
            "6m0sX",
            "2027-01-15T08:00:30",
            "soon",
        ],
    )
    def test_errors(self, text: str) -> None:
        """Anything else is a ValueError."""
        with pytest.raises(ValueError, match="duration"):
            parse_duration(text)


class TestParseHeaders:
    """parse_ratelimit_headers reads what is left and when it is full again."""

    def test_openai_headers(self) -> None:
        """OpenAI's six x-ratelimit-* headers, from an httpx response, any case."""
        headers = httpx.Headers(
            {
                "X-RateLimit-Limit-Requests": "60",
                "x-ratelimit-remaining-requests": "59",
                "x-ratelimit-reset-requests": "1s",
                "x-ratelimit-limit-tokens": "150000",
                "x-ratelimit-remaining-tokens": "149984",
                "x-ratelimit-reset-tokens": "6m0s",
                "content-type": "application/json",
            }
        )
        assert parse_ratelimit_headers(headers) == RateLimitHeaders(
            limit_requests=60,
            remaining_requests=59,
            reset_requests=1.0,
            limit_tokens=150000,
            remaining_tokens=149984,
            reset_tokens=360.0,
        )

    def test_anthropic_headers(self) -> None:
        """Anthropic's anthropic-ratelimit-* headers, resets as RFC 3339 times."""
        now = 1_800_000_000.0
        got = parse_ratelimit_headers(
            {
                "anthropic-ratelimit-requests-limit": "50",
                "anthropic-ratelimit-requests-remaining": "49",
                "anthropic-ratelimit-requests-reset": "2027-01-15T08:00:01Z",
                "anthropic-ratelimit-tokens-remaining": "7000",
                "anthropic-ratelimit-tokens-reset": "2027-01-15T08:00:20Z",
            },
            now=now,
        )
        assert (got.limit_requests, got.remaining_requests, got.remaining_tokens) == (50, 49, 7000)
        assert got.limit_tokens is None
        assert got.reset_requests == pytest.approx(1.0)
        assert got.reset_tokens == pytest.approx(20.0)

    def test_malformed_headers_are_skipped(self) -> None:
        """A malformed or negative header is None; the others are still read."""
        got = parse_ratelimit_headers(
            {
                "x-ratelimit-remaining-requests": "lots",
                "x-ratelimit-reset-requests": "later",
                "x-ratelimit-remaining-tokens": "-5",
                "x-ratelimit-reset-tokens": "20ms",
            }
        )
        assert got == RateLimitHeaders(reset_tokens=0.02)

    def test_no_headers(self) -> None:
        """A response without rate-limit headers (llama.cpp, vLLM) says nothing."""
        assert parse_ratelimit_headers({"content-type": "application/json"}) == RateLimitHeaders()
