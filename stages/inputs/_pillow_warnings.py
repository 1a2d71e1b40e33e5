"""
Pillow's warnings about a file, kept for the page they concern instead of printed.

Pillow warns (``UserWarning: Corrupt EXIF data...``, a metadata tag too long) where it
reads a damaged file, and Python prints such a warning to standard error as it is,
between the run's own lines. Discovery and loading run in worker threads, and
``warnings.catch_warnings`` changes the process's state and is not safe there (two
threads that leave it out of order can leave every later warning going to a list
nobody reads): so the warnings module's ``showwarning`` is wrapped once, and a warning
Pillow raises in a thread that collects goes to that thread's list.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import PIL

__all__ = ["pillow_warnings"]

_PILLOW = os.path.dirname(PIL.__file__) + os.sep
_collecting = threading.local()


def _divert(shown: Any) -> Any:
    """``shown`` (a ``showwarning``) with Pillow's warnings in a collecting thread kept."""

    def showwarning(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        bucket: list[str] | None = getattr(_collecting, "bucket", None)
        if bucket is not None and filename.startswith(_PILLOW):
            bucket.append(" ".join(str(message).split()))
            return
        shown(message, category, filename, lineno, file, line)

    showwarning.diverts = True  # type: ignore[attr-defined]
    return showwarning


@contextmanager
def pillow_warnings() -> Iterator[list[str]]:
    """
    Collect the warnings Pillow raises in this thread inside the block, rather than print
    them: the list yielded holds their texts, in order, each once.

    Python shows a warning from one place once per text (its default filter), so a
    warning already shown or collected with the same text is not collected again.
    """
    if not getattr(warnings.showwarning, "diverts", False):
        # Wrapped, never put back: a wrapper that does nothing outside a collecting
        # thread is safe to leave, and putting it back could undo another's change.
        warnings.showwarning = _divert(warnings.showwarning)
    outer = getattr(_collecting, "bucket", None)
    bucket: list[str] = []
    _collecting.bucket = bucket
    try:
        yield bucket
    finally:
        _collecting.bucket = outer
        unique = list(dict.fromkeys(bucket))
        bucket[:] = unique
