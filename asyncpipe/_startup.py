"""
A Ctrl-C while the ``asyncpipe`` command is still importing itself.

``python -m asyncpipe`` imports the whole package (anyio, httpx, the pipeline: about
0.2 s) before `_cli.main` runs, and ``main``'s ``except KeyboardInterrupt`` cannot cover
that.  A Ctrl-C then printed a ``KeyboardInterrupt`` traceback and ended the process by
the signal.  Nothing is written at that point, so the command now says what a Ctrl-C later
in its start says (``asyncpipe: interrupted while starting (SIGINT)``) and exits 130.

The handler only notes the signal, and `leave_startup` (the first thing ``main`` does)
answers it once the imports are done.  Raising from the handler instead would end the
imports wherever they are: an exception raised inside orjson's extension module while it
initialises ended the interpreter with SIGSEGV (seen once in 40 signals timed into the
imports).  The imports left take at most the 0.2 s.

This module is the package's first import.  It changes SIGINT only when the process is
the command (``-m asyncpipe`` or the ``asyncpipe`` script), never for a program that
imports the library, and not when SIGINT came in ignored (a command started in the
background).  What Python does before it imports the package (about 0.05 s: ``site``
and the path finders) is out of its reach, except in a process `restart_with` restarted:
there SIGINT comes blocked across the exec, and is taken here.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

__all__ = ["INTERRUPTED", "RESTARTED", "leave_startup", "run_as_command"]

INTERRUPTED = "asyncpipe: interrupted while starting (SIGINT)"

#: Set in a process `asyncpipe._restart.restart_with` restarted, so that it never
#: restarts twice (here, where the package's first import reads it).
RESTARTED = "ASYNCPIPE_RESTARTED"


def run_as_command(orig_argv: list[str], argv0: str) -> bool:
    """
    Whether the process is the ``asyncpipe`` command, from ``sys.orig_argv`` and
    ``sys.argv[0]`` as they are while the package is imported.
    """
    if os.path.basename(argv0) in ("asyncpipe", "asyncpipe.exe"):
        return True  # the script `[project.scripts]` installs
    # ``python [options] -m asyncpipe``: the interpreter's own options come before ``-m``,
    # and Python sets ``sys.argv[0]`` to "-m" while it imports the package.
    if argv0 != "-m":
        return False
    for i, arg in enumerate(orig_argv[1:], start=1):
        if arg == "-m":
            return orig_argv[i + 1 : i + 2] == ["asyncpipe"]
        if arg == "-masyncpipe":
            return True
    return False


_signalled: list[int] = []


def _interrupted(signum: int, frame: FrameType | None) -> None:
    _signalled.append(signum)


def leave_startup() -> bool:
    """
    Give SIGINT back to Python's own handler (``KeyboardInterrupt``), if the start-up
    one is still in place.

    Returns:
        Whether a SIGINT came while the package was imported: the command then stops.
    """
    if signal.getsignal(signal.SIGINT) is _interrupted:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return bool(_signalled)


if (
    run_as_command(getattr(sys, "orig_argv", []), sys.argv[0] if sys.argv else "")
    and signal.getsignal(signal.SIGINT) is signal.default_int_handler
):
    signal.signal(signal.SIGINT, _interrupted)

# `asyncpipe._restart.restart_with` blocks SIGINT across its exec: a Ctrl-C that came
# while this process started is delivered now, to the handler above (or, in a program
# importing the library, to Python's own).
if os.environ.get(RESTARTED) and signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, set()):
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
