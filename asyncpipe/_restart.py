"""
Restart the running command with variables that must be set before the process starts.

Some settings are read once, when the C runtime or a library initialises: glibc's malloc
tunables (``GLIBC_TUNABLES``), OpenMP's thread count.  Setting them from Python is too
late.  `restart_with` replaces the process with the same command line (``execv``, so the
process id, open files and the terminal stay) and those variables added, once: the
restarted process carries `RESTARTED` and never restarts again.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Mapping

from ._startup import RESTARTED

__all__ = ["restart_with"]


def _missing(environment: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``environment`` that this process does not have, or differ."""
    return {name: value for name, value in environment.items() if os.environ.get(name) != value}


def restart_with(environment: Mapping[str, str]) -> None:
    """
    Replace this process with its own command line plus ``environment``, when some of
    it is missing.  Returns (doing nothing) when nothing is missing, when this process was
    restarted already, or when the command line is not known (an embedded interpreter).

    Call it first thing in a script, before threads or files are opened: for example
    ``restart_with(stages._malloc.start_environment())`` gives a program that builds the
    document pipeline itself what ``asyncpipe run`` starts with.

    .. versionadded:: 0.1
    """
    needed = _missing(environment)
    argv = getattr(sys, "orig_argv", None)
    if not needed or os.environ.get(RESTARTED) or not argv or not sys.executable:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    # A Ctrl-C landing while the new interpreter starts, before the package's start-up
    # handler is in place, would end it by the signal or in the middle of ``site``'s
    # import (a traceback, "Fatal Python error").  SIGINT stays blocked across the exec
    # (the mask is inherited) until `asyncpipe._startup` has its handler in place.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        os.execve(
            sys.executable, [sys.executable, *argv[1:]], {**os.environ, **needed, RESTARTED: "1"}
        )
    except BaseException:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        raise
