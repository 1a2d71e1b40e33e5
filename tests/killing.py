"""
A real ``kill -9`` of a test's subprocess at a chosen moment.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable

__all__ = ["kill_when"]


def kill_when(
    process: subprocess.Popen[bytes], ready: Callable[[], bool], *, within: float = 60.0
) -> None:
    """
    SIGKILL ``process`` once ``ready()`` holds, polling every 5 ms.

    Raises:
        AssertionError: the process ended first (with its output), or ``ready()`` did not
            hold ``within`` seconds.
    """
    deadline = time.monotonic() + within
    while not ready():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"not ready to kill within {within} s"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL
