"""
Run ``python -m asyncpipe`` with faults injected, for the reliability tests.

The tests start this script instead of ``-m asyncpipe``; it installs the faults that
the environment asks for, then calls `asyncpipe._cli.main`.  Nothing is patched when
no variable is set, so it then behaves exactly like ``python -m asyncpipe``.

- ``RELIABILITY_TEAR_JOURNAL=N``: the N-th journal batch is written half-way, then the
  process SIGKILLs itself (a kill in the middle of a journal write).
- ``RELIABILITY_TEAR_SINK=N``: the N-th sink batch is written half-way, then SIGKILL
  (a kill in the middle of an output write).
- ``RELIABILITY_ENOSPC_JOURNAL=N``: from the N-th journal batch on, the write fails with
  ``OSError(ENOSPC)`` after writing half of the batch (a disk that fills mid-write); used
  only where a small tmpfs cannot be mounted.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["install"]


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install() -> None:
    """Install the faults named in the environment."""
    from asyncpipe import _journal, _sink

    tear_journal = int(os.environ.get("RELIABILITY_TEAR_JOURNAL", "0"))
    enospc_journal = int(os.environ.get("RELIABILITY_ENOSPC_JOURNAL", "0"))
    tear_sink = int(os.environ.get("RELIABILITY_TEAR_SINK", "0"))

    if tear_journal or enospc_journal:
        original_write = _journal.Journal._write
        batches = 0

        def write(self: Any, data: bytes, count: int, sync: bool) -> None:
            nonlocal batches
            batches += 1
            if batches == tear_journal and len(data) > 1:
                os.write(self._fd, data[: len(data) // 2])
                _kill_self()
            if enospc_journal and batches >= enospc_journal and self._fd is not None:
                os.write(self._fd, data[: len(data) // 2])
                exc = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                self.failure = exc
                raise _journal.JournalError(f"cannot write journal {self.path}: {exc}") from exc
            original_write(self, data, count, sync)

        _journal.Journal._write = write  # type: ignore[method-assign]

    if tear_sink:
        import orjson

        original_sink_write = _sink.JsonlSink.write
        sink_batches = 0

        async def sink_write(self: Any, items: Sequence[Any]) -> None:
            nonlocal sink_batches
            sink_batches += 1
            if sink_batches == tear_sink:
                data = b"".join(
                    orjson.dumps(self._record(item), option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"
                    for item in items
                )
                await self._file.flush()
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
                os.write(fd, data[: max(1, len(data) // 2)])
                _kill_self()
            await original_sink_write(self, items)

        _sink.JsonlSink.write = sink_write  # type: ignore[method-assign]


if __name__ == "__main__":
    install()
    from asyncpipe._cli import main

    sys.exit(main(sys.argv[1:]))
