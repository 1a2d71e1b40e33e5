"""
`post_once`: one POST of a chat request within the time its call has left, and what
failed, if anything, in the terms the client counts and retries by (`Failure`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
import httpx

from asyncpipe import retry_after

from ._errors import error_detail

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Failure", "post_once"]

# Statuses another attempt may fix, besides 5xx.
_RETRY_STATUSES = frozenset({408, 409, 429})


@dataclass(slots=True)
class Failure:
    """
    An attempt that failed: ``cause`` is short and machine-readable (``"timeout"``,
    ``"connect"``, the status...), ``detail`` says it for a person.
    """

    cause: str
    retryable: bool
    detail: str
    status: int | None = None
    retry_after: float | None = None


async def post_once(
    http: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    remaining: float | None,
    redact: Callable[[str], str],
) -> tuple[Failure | None, httpx.Response | None]:
    """
    POST ``body`` to ``url``, giving up after ``remaining`` seconds (``None``: no limit).

    Returns:
        ``(None, response)`` for a 2xx answer; else the failure, with the response when
        there was one (its headers feed the shared limits).  A server's
        ``x-should-retry: true/false`` decides whether a status is retryable; its own
        error message, ``redact``-ed, goes into the detail.
    """
    try:
        with anyio.move_on_after(remaining) as scope:
            response = await http.post(url, content=body, headers=headers)
        if scope.cancelled_caught:
            return Failure("deadline", False, "deadline passed"), None
    except httpx.ConnectTimeout as exc:
        return Failure("connect", True, f"connect timeout ({type(exc).__name__})"), None
    except httpx.TimeoutException as exc:
        return Failure("timeout", True, f"timed out ({type(exc).__name__})"), None
    except httpx.ConnectError as exc:
        return Failure("connect", True, f"cannot connect ({exc})"), None
    except httpx.TransportError as exc:
        return Failure("network", True, f"network error ({type(exc).__name__}: {exc})"), None

    status = response.status_code
    if 200 <= status < 300:
        return None, response
    should = response.headers.get("x-should-retry")
    if should in ("true", "false"):
        retryable = should == "true"
    else:
        retryable = status in _RETRY_STATUSES or status >= 500
    failure = Failure(
        str(status),
        retryable,
        f"HTTP {status}{error_detail(response, redact)}",
        status=status,
        retry_after=retry_after(response.headers),
    )
    return failure, response
