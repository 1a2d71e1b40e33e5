"""
The error raised when an input page cannot be read or decoded.
"""

from __future__ import annotations

from asyncpipe import StageError

__all__ = ["InputError"]


class InputError(StageError):
    """
    A page cannot be loaded: the file is missing, unreadable, of an unsupported type,
    truncated, encrypted, corrupt or absurdly large.

    The message always starts with the file's path, so the error record says which file
    failed and why.

    .. versionadded:: 0.1
    """
