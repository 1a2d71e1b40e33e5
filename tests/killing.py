"""
A real ``kill -9`` of a test's subprocess at a chosen moment.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["kill_when"]


def kill_when(
    process: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    *,
    within: float = 60.0,
    every: float = 0.005,
    log: Path | None = None,
) -> None:
    """
    SIGKILL ``process`` once ``ready()`` holds, asking every ``every`` seconds.

    The process is killed whatever happens: when ``ready()`` does not hold in time or
    raises, no subprocess outlives the test.

    Args:
        process: the test's subprocess.
        ready: whether the moment to kill it has come.
        within: the seconds ``ready()`` has to hold in.
        every: the seconds between two asks.
        log: the file the process writes its output to, shown if it ends first (without
            it, what its pipes held is shown).

    Raises:
        AssertionError: the process ended before it was killed (with its exit code and
            output), or ``ready()`` did not hold ``within`` seconds.
    """
    deadline = time.monotonic() + within
    try:
        while process.poll() is None and not ready():
            assert time.monotonic() < deadline, f"not ready to kill within {within} s"
            time.sleep(every)
    finally:
        process.send_signal(signal.SIGKILL)
        said = process.communicate()
    assert process.returncode == -signal.SIGKILL, (
        f"the process ended (exit {process.returncode}) before it was killed: "
        f"{log.read_text(errors='replace') if log else said}"
    )
