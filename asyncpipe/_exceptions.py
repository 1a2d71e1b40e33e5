"""
The exceptions asyncpipe raises.

    AsyncpipeError
    ├── ConfigError            a pipeline, stage or option is set up wrongly
    ├── StageError             one item failed in one stage (the item's own fault)
    │   ├── RetryableError     ...and trying again may help (carries a retry-after hint)
    │   └── BudgetExceeded     ...a call would pass the cost ceiling (also a StopIntake)
    ├── StopIntake             take no new items, finish the calls running (raised by a
    │                          source; from a stage it also leaves that item for --resume)
    ├── JournalError           the checkpoint journal cannot be read or written
    ├── OutputError            the output cannot be written (a full disk, say)
    ├── QueueClosed            you closed this end of the queue and then used it
    ├── QueueBroken            the other end of the queue is gone
    └── EndOfQueue             no more items will arrive (raised by ``receive``)

Stage code raises ``StageError`` (or any ``Exception``); the framework turns the final
failure of an item into an error *record*, never a status dict.  Cancellation is a
``BaseException`` and is never caught by the framework.
"""

from __future__ import annotations

__all__ = [
    "AsyncpipeError",
    "BudgetExceeded",
    "ConfigError",
    "EndOfQueue",
    "JournalError",
    "OutputError",
    "QueueBroken",
    "QueueClosed",
    "RetryableError",
    "StageError",
    "StopIntake",
]


class AsyncpipeError(Exception):
    """
    The root of every exception asyncpipe raises on purpose.
    """


class ConfigError(AsyncpipeError):
    """
    A pipeline, a stage or an option is configured wrongly.
    """


class StageError(AsyncpipeError):
    """
    One item failed in one stage.

    Raise it (or a subclass) from stage code to give a clear, user-facing reason.
    Translate third-party errors at the boundary with ``raise StageError(...) from exc``.
    """


class RetryableError(StageError):
    """
    A failure that may go away if the same item is tried again.

    Args:
        message: what went wrong.
        retry_after: seconds the other side asked us to wait (``Retry-After``), or ``None``.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StopIntake(AsyncpipeError):
    """
    Raised by a run's source to stop taking new items, as a first Ctrl-C does: the calls
    running are finished (with a journal, the items waiting between stages are left at
    their last checkpoint; without one they are finished too), the run ends as
    interrupted by ``reason``, and ``--resume`` continues it.  Raised by a stage, it does
    the same, and the item it was working on is not written (nor journaled as done), so
    ``--resume`` runs it again from its last checkpoint.  An app raises it, for instance,
    when its cost ceiling is reached.

    Args:
        reason: what stopped the run, in a few words (``"the cost ceiling"``); the
            summary says "interrupted by" it.
        message: the full explanation, logged when the intake stops.

    .. versionadded:: 0.1
    """

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(message or reason)
        self.reason = reason


class BudgetExceeded(StageError, StopIntake):
    """
    A call was refused because its worst-case cost would pass the cost ceiling.

    Raised from a stage, it stops the run's intake (`StopIntake`, reason "the cost
    ceiling") and leaves the item unwritten for ``--resume``; elsewhere it is a
    `StageError`.

    .. versionadded:: 0.1
    """

    def __init__(self, message: str) -> None:
        StopIntake.__init__(self, "the cost ceiling", message)


class JournalError(AsyncpipeError):
    """
    The checkpoint journal cannot be read or written.
    """


class OutputError(AsyncpipeError):
    """
    The output cannot be written (a full disk, a file system gone read-only): the run
    stops, and once that is put right ``--resume`` finishes it.  The lines written before
    are kept; a line cut short is cut off by the resume.

    .. versionadded:: 0.1
    """


class QueueClosed(AsyncpipeError):
    """
    This end of the queue was closed by its owner and then used again.
    """


class QueueBroken(AsyncpipeError):
    """
    The other end of the queue is closed: nobody will ever receive what you send.
    """


class EndOfQueue(AsyncpipeError):
    """
    The sending side is closed and the buffer is empty: no more items will arrive.
    """
