"""
One run per journal, and one per output: advisory locks, the journal's held from
`Journal.lock` (or `Journal.open`) to `Journal.aclose` and taken before the run opens its
output, the output's held by `JsonlSink` from its `open` to its `aclose`.

Two runs appending to one journal (a ``--resume`` started twice, say) interleave their
lines and compact each other's work away.  The lock is ``flock`` on a file beside the
journal, ``JOURNAL.lock``, not on the journal itself: compaction replaces the journal's
file, and a lock on the old one would be lost with it.  The kernel drops the lock when
the process ends, SIGKILL included, so a crash never leaves a stale lock behind.  The
file stays after the run: unlinking it would let a run that opened it just before lock
a file nobody else can see.  It stays empty: its holder is read from ``/proc/locks``.

Two runs with one output and two journals (``--journal`` given twice over) would each
write every item to it; the output's own lock, ``OUTPUT.lock``, stops the second before
it empties or appends to the file.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ._exceptions import ConfigError, JournalError

# Internal: `Journal` takes and releases it.
__all__: list[str] = []


class _JournalInUse(JournalError, ConfigError):
    """Another run holds the journal: a `JournalError` as documented, and a usage error
    (exit 2) on the command line, as for an output in use, not a failed run (exit 1, whose
    "finish the run" advice would name the very command refused)."""


class _Unwritable(JournalError, ConfigError):
    """The journal's folder cannot be written (read-only, another user's, ``/proc``): a
    `JournalError` as documented, and a usage error on the command line, since the run has
    written nothing yet (its "finish the run" advice would name a run that never began)."""


def lock_path(target: Path) -> Path:
    """
    Returns:
        The lock file of ``target``, a journal or an output.
    """
    return target.with_name(target.name + ".lock")


def take(journal: Path, *, advice: str = "") -> int:
    """
    Lock ``journal`` for this process, without waiting.

    Args:
        journal: the journal.
        advice: what the error says to do besides waiting for the run that holds it
            (default: for a run, to give it another output).

    Returns:
        The lock file's descriptor: close it (`release`) to let the lock go.

    Raises:
        JournalError: another run holds the lock, or the lock file cannot be opened.
    """
    return _take(
        journal,
        "journal",
        JournalError,
        advice or "give this run another output (each output has its own journal)",
        in_use=_JournalInUse,
        unwritable=_Unwritable,
    )


def take_output(output: Path) -> int:
    """
    Lock the output file ``output`` for this process, without waiting, as `take` does a
    journal.

    Raises:
        ConfigError: another run writes to it, or its lock file cannot be opened.
    """
    return _take(output, "output", ConfigError, "give this run another output")


def _take(
    target: Path,
    what: str,
    error: type[Exception],
    advice: str,
    in_use: type[Exception] | None = None,
    unwritable: type[Exception] | None = None,
) -> int:
    path = lock_path(target)
    # The lock is the first file a run writes beside its output or journal, so a folder
    # it cannot write is met here, before anything is written: said as such.
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise (unwritable or error)(
            f"cannot write in {target.parent}, the folder of the {what} {target} ({reason}: "
            f"{exc.filename}): give the run a folder it can write"
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise (in_use or error)(
            f"{what} {target} is in use by another run{holder}: wait for it to end, or {advice}"
        ) from None
    except OSError as exc:
        os.close(fd)
        raise error(f"cannot lock the {what}'s lock {path}: {exc}") from exc
    return fd


def release(fd: int) -> None:
    """
    Let the lock taken by `take` go.
    """
    os.close(fd)


def _holder(fd: int) -> str:
    # The kernel lists every lock with its holder's pid in /proc/locks (Linux); the lock
    # file itself stays empty, so taking the lock needs no space on a full disk.
    try:
        info = os.fstat(fd)
        with open("/proc/locks", encoding="ascii") as locks:
            rows = locks.read().splitlines()
    except OSError:
        return ""
    where = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    for row in rows:
        fields = row.split()
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == where:
            pid = int(fields[4])
            return " (this process)" if pid == os.getpid() else f" (pid {pid})"
    return ""
