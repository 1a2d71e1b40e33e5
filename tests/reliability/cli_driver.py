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
- ``RELIABILITY_SABOTAGE=NAME``: break one guarantee on purpose, to check that the tests
  notice (see `SABOTAGE`); never set in a normal run.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["SABOTAGE", "install"]

SABOTAGE = {
    "no-restore": "resume ignores checkpoints (LLM calls are paid again)",
    "no-skip": "resume forgets which items the output holds (duplicate lines)",
    "leak-key": "the API key is logged",
    "keep-extra-keys": "the structure stage keeps keys outside the schema",
    "no-rate-limit": "the LLM rate limit admits everything",
    "vague-errors": "load errors lose the file name and reason",
}


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _sabotage(name: str) -> None:
    from asyncpipe import _ratelimit, _resume, _sink

    if name == "no-restore":
        _resume.ResumePlan.restore = lambda self, item: None  # type: ignore[method-assign]
    elif name == "no-skip":
        original = _sink.JsonlSink._prepare

        def prepare(self: Any, resume: bool, retry_failed: bool) -> set[str]:
            original(self, resume, retry_failed)
            return set()

        _sink.JsonlSink._prepare = prepare  # type: ignore[method-assign]
        _resume.ResumePlan.done_keys = property(lambda self: set(), lambda self, v: None)  # type: ignore[assignment]
    elif name == "leak-key":
        import logging

        logging.getLogger("asyncpipe").warning("key %s", os.environ.get("MY_LLM_KEY"))
    elif name == "keep-extra-keys":
        from stages.llm import _schema

        _schema.Schema.clean = lambda self, value: (dict(value), [])  # type: ignore[method-assign]
    elif name == "no-rate-limit":

        async def acquire(self: Any, weight: int = 1) -> None:
            self.acquired += 1

        _ratelimit.RateLimit.acquire = acquire  # type: ignore[method-assign]
    elif name == "vague-errors":
        from stages import pipeline
        from stages.inputs import InputError

        original_load = pipeline._load

        def load(ref: Any, **kw: Any) -> Any:
            try:
                return original_load(ref, **kw)
            except InputError:
                raise InputError("cannot load") from None

        pipeline._load = load
    else:
        raise SystemExit(f"unknown sabotage {name!r}: choose from {sorted(SABOTAGE)}")


def install() -> None:
    """Install the faults named in the environment."""
    from asyncpipe import JournalError, _journal, _sink

    if sabotage := os.environ.get("RELIABILITY_SABOTAGE"):
        _sabotage(sabotage)

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
                raise JournalError(f"cannot write journal {self.path}: {exc}") from exc
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
