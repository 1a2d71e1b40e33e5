"""
Two runs with ``stop_on_signals`` in one process (``tests/twinsapp.py``): each signal
reaches both.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

APP = Path(__file__).with_name("twinsapp.py")


@contextmanager
def start(side: Path, slow: float) -> Iterator[subprocess.Popen[bytes]]:
    """Start the app; kill it if the test leaves it running."""
    args = [sys.executable, str(APP), "--side", str(side), "--slow", str(slow)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def wait_for_calls(proc: subprocess.Popen[bytes], side: Path) -> None:
    """Wait until both runs are making calls."""
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        names = (
            {line.split()[0] for line in side.read_text().splitlines()} if side.exists() else set()
        )
        if names == {"slow", "fast"}:
            return
        time.sleep(0.005)


def report(line: bytes) -> tuple[str, dict[str, Any]]:
    name, _, summary = line.decode().partition(" ")
    return name, orjson.loads(summary)


class TestTwoRuns:
    def test_one_signal_stops_both(self, tmp_path: Path) -> None:
        """One SIGINT stops the intake of both runs, and both return interrupted."""
        side = tmp_path / "side"
        with start(side, 0.05) as proc:
            wait_for_calls(proc, side)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err.decode()
        reports = dict(map(report, out.splitlines()))
        expected = {"interrupted": "SIGINT", "cancelled": False}
        assert reports == {"slow": expected, "fast": expected}

    def test_a_second_signal_after_one_run_ended_cancels_the_other(self, tmp_path: Path) -> None:
        """Once one run has returned, a second SIGINT still reaches the other: it cancels
        its calls and returns, where it was a bare KeyboardInterrupt."""
        side = tmp_path / "side"
        with start(side, 60) as proc:
            wait_for_calls(proc, side)
            proc.send_signal(signal.SIGINT)
            assert proc.stdout is not None
            # The fast run finishes its calls and returns; the slow one waits for its own.
            first = report(proc.stdout.readline())
            assert first == ("fast", {"interrupted": "SIGINT", "cancelled": False})
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err.decode()
        assert b"KeyboardInterrupt" not in err
        assert dict(map(report, out.splitlines())) == {
            "slow": {"interrupted": "SIGINT", "cancelled": True}
        }
