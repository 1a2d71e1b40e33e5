"""
What the library logs is right for a library user as well as for the command line: no
command-line option is named as if the run came from ``asyncpipe run``.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from asyncpipe import Item, Pipeline, Stage
from asyncpipe._attempt import FAILURES_LOGGED

APP = Path(__file__).with_name("retryapp.py")


def fail(value: int) -> int:
    raise ValueError(f"bad value {value}")


class TestWording:
    async def test_the_failure_cap_names_the_logger(self, caplog: pytest.LogCaptureFixture) -> None:
        """The line after the first failures says how to see each: the logger at DEBUG."""
        caplog.set_level(logging.WARNING, logger="asyncpipe")

        async def drop(item: Item) -> None:
            pass

        await Pipeline([Stage("bad", fail)]).run(range(FAILURES_LOGGED + 1), sink=drop)
        last = caplog.records[-1].getMessage()
        assert "further failures are counted only" in last
        assert "the asyncpipe logger logs each at DEBUG" in last
        assert "--" not in last

    def test_a_signal_leaves_the_items_for_a_resume(self, tmp_path: Path) -> None:
        """After a SIGINT (no progress display) the warning says the items wait for a resume."""
        calls = tmp_path / "calls"
        args = [sys.executable, str(APP), "--items", "1000", "--pause", "0.05", "--fixed"]
        args += ["--out", str(tmp_path / "out.jsonl"), "--journal", str(tmp_path / "j")]
        args += ["--calls", str(calls), "--stop-on-signals"]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while not calls.exists() or calls.read_bytes().count(b"\n") < 2:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline
                time.sleep(0.005)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 0, err.decode()
        assert (
            "SIGINT: no new items; finishing the calls running, leaving the items waiting for "
            "a resume (send it again to stop at once)"
        ) in err.decode()
        assert "--resume" not in err.decode()
