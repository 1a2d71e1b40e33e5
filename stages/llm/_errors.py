"""
The errors of the LLM client and stages.

    StageError                 (asyncpipe)
    └── LlmError               a chat call or an LLM stage failed
        ├── LlmRetryableError  one attempt failed, and another may work (also an asyncpipe
        │                      ``RetryableError``: the stage's ``Retry`` decides and waits)
        ├── LlmStatusError     the server answered a status that retrying cannot fix
        │   └── LlmServerRefused  ...one that every call would get (401, 403, 404): also
        │                         an asyncpipe ``StopIntake``
        ├── LlmRetriesExhausted a timed-out generation was already retried as often as allowed
        ├── LlmDeadlineError   the call's total time budget ran out
        ├── LlmServerWait      a Retry-After longer than a call may take (a ``StopIntake``)
        ├── LlmServerDown      the server unreachable for a whole deadline (a ``StopIntake``)
        └── LlmOutputError     the answer is unusable (structure: invalid after one repair,
                               or cut by ``max_tokens``)

There is one retry system: the client makes one attempt per request and reports a
retryable failure as `LlmRetryableError` with the server's ``retry_after``; the pipeline
stage's `asyncpipe.Retry` waits and tries again, so its statistics count the retries and
the error record carries the true attempt count.  Messages never hold the API key (the
client redacts it before building them).  `error_detail` reads the server's own message
out of an error answer, for the client's errors and its start-up checks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from asyncpipe import RetryableError, StageError, StopIntake

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

__all__ = [
    "LlmDeadlineError",
    "LlmError",
    "LlmOutputError",
    "LlmRetriesExhausted",
    "LlmRetryableError",
    "LlmServerDown",
    "LlmServerRefused",
    "LlmServerWait",
    "LlmStatusError",
    "error_detail",
]


class LlmError(StageError):
    """
    A chat call or an LLM stage failed.

    Args:
        message: what went wrong, for a person.
        cause: a short machine-readable cause (``"401"``, ``"timeout"``, ``"malformed"``...).
        attempts: how many attempts of the call were made.
        status: the last HTTP status, if any.
        elapsed: seconds since the call's first attempt was admitted, if known (a
            deadline-aware `asyncpipe.Retry` reads it).
    """

    def __init__(
        self,
        message: str,
        *,
        cause: str,
        attempts: int = 0,
        status: int | None = None,
        elapsed: float | None = None,
    ) -> None:
        StageError.__init__(self, message)
        self.cause = cause
        self.attempts = attempts
        self.status = status
        self.elapsed = elapsed


class LlmRetryableError(LlmError, RetryableError):
    """
    One attempt failed in a way another attempt may fix: a timeout, a connection or
    protocol error, status 408, 409, 429 or 5xx, or a malformed body.

    Args:
        message: what went wrong.
        cause: ``"timeout"``, ``"connect"``, ``"network"``, ``"malformed"`` or the status.
        attempts: the attempt number that failed.
        status: the HTTP status, if any.
        elapsed: see `LlmError`.
        retry_after: seconds the server asked to wait (``retry-after-ms``, then
            ``Retry-After``), or ``None`` (then the stage's backoff applies).
    """

    def __init__(
        self,
        message: str,
        *,
        cause: str,
        attempts: int = 0,
        status: int | None = None,
        elapsed: float | None = None,
        retry_after: float | None = None,
    ) -> None:
        LlmError.__init__(
            self, message, cause=cause, attempts=attempts, status=status, elapsed=elapsed
        )
        self.retry_after = retry_after


class LlmStatusError(LlmError):
    """
    The server answered a status that retrying cannot fix (400, 401, 403, 404, 422...).
    """


class LlmServerRefused(LlmStatusError, StopIntake):
    """
    The server refused a call in a way it would refuse every call: 401 or 403 (the key),
    404 (the URL or the model).  The run takes no new pages and the page is left for
    ``--resume``, rather than each page becoming an error record.  Raised for such a
    status before any call of the client has succeeded, or on the third in a row; one
    between successes is a `LlmStatusError` for its page alone.

    Args:
        message: the server's answer, and what to check.
        attempts: the attempt number that was refused.
        status: the HTTP status.
    """

    def __init__(self, message: str, *, attempts: int = 0, status: int) -> None:
        LlmStatusError.__init__(self, message, cause=str(status), attempts=attempts, status=status)
        self.reason = "the LLM server's refusal"


class LlmRetriesExhausted(LlmError):
    """
    A retryable cause may not be retried again: a generation timed out more often than
    the client's ``timeout_retries`` allows (each retry would start it over).
    """


class LlmDeadlineError(LlmError):
    """
    The call's total time budget ran out before an attempt succeeded.
    """


class LlmOutputError(LlmError):
    """
    The model's answer cannot be used: empty, or (structure) not valid JSON for the schema
    even after the one repair attempt.
    """


class LlmServerWait(LlmError, StopIntake):
    """
    The server asked (a 429's ``Retry-After``) for a wait longer than a call may take:
    the run takes no new pages, the page is left for ``--resume``, and no call is sent
    until the wait has passed (an hourly quota, say).

    Args:
        message: what the server asked, and what to do.
        attempts: the attempt number that was refused.
    """

    def __init__(self, message: str, *, attempts: int = 0) -> None:
        LlmError.__init__(self, message, cause="429", attempts=attempts, status=429)
        self.reason = "the LLM server's Retry-After"


class LlmServerDown(LlmError, StopIntake):
    """
    The server has been unreachable (a refused connection, a 502 or a 503) for a whole
    call's deadline, with no answer in between: it is not coming back soon.  The run
    takes no new pages and the pages waiting for it are left for ``--resume``, rather
    than each page waiting out its own deadline and becoming an error record.

    Args:
        message: how long the server has been unreachable, and what to do.
        attempts: the attempt number that was waiting.
    """

    def __init__(self, message: str, *, attempts: int = 0) -> None:
        LlmError.__init__(self, message, cause="unreachable", attempts=attempts)
        self.reason = "the LLM server's outage"


def error_detail(response: httpx.Response, redact: Callable[[str], str]) -> str:
    """The server's own error message, ``redact``-ed, then shortened (a key cut across
    by the shortening would no longer be found whole, and 45 of a key's 52 characters
    could be kept); servers put it in ``error.message``."""
    try:
        data = orjson.loads(response.content)
        message = data["error"]["message"] if isinstance(data.get("error"), dict) else data["error"]
        text = str(message)
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        text = response.text
    text = " ".join(redact(text).split())
    if len(text) > 200:
        text = text[:200] + "..."
    return f" ({text})" if text else ""
