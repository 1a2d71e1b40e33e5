"""
The errors of the LLM client and stages.

    StageError                 (asyncpipe)
    └── LlmError               a chat call or an LLM stage failed
        ├── LlmStatusError     the server answered a status that retrying cannot fix
        ├── LlmRetriesExhausted every attempt failed with a retryable cause
        ├── LlmDeadlineError   the call's total time budget ran out
        └── LlmOutputError     the answer is unusable (structure: invalid after one repair)

None of them is a ``RetryableError``: the client has already retried as far as its policy
allows, so a framework-level retry would only multiply the attempts.  Messages never hold
the API key (the client redacts it before building them).
"""

from __future__ import annotations

from asyncpipe._exceptions import StageError

__all__ = [
    "LlmDeadlineError",
    "LlmError",
    "LlmOutputError",
    "LlmRetriesExhausted",
    "LlmStatusError",
]


class LlmError(StageError):
    """
    A chat call or an LLM stage failed.

    Args:
        message: what went wrong, for a person.
        cause: a short machine-readable cause (``"401"``, ``"timeout"``, ``"malformed"``...).
        attempts: how many HTTP attempts were made.
        status: the last HTTP status, if any.
    """

    def __init__(
        self, message: str, *, cause: str, attempts: int = 0, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.cause = cause
        self.attempts = attempts
        self.status = status


class LlmStatusError(LlmError):
    """
    The server answered a status that retrying cannot fix (400, 401, 403, 404, 422...).
    """


class LlmRetriesExhausted(LlmError):
    """
    Every attempt failed with a retryable cause (timeout, connection, 429, 5xx, malformed).
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
