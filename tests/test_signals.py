"""
Clean shutdown: SIGINT or SIGTERM to a running pipeline (``tests/crashapp.py``).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from crashapp import expected_value, key_of

from asyncpipe import Journal

APP = Path(__file__).with_name("crashapp.py")
ITEMS = 150


class App:
    """One crash-app working directory, and a way to run it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.out = root / "out.jsonl"
        self.journal = root / "journal.jsonl"
        self.side = root / "calls.txt"

    def start(self, run_id: int, *extra: str, resume: bool = False) -> subprocess.Popen[bytes]:
        args = [
            sys.executable,
            str(APP),
            "--items",
            str(ITEMS),
            "--out",
            str(self.out),
            "--journal",
            str(self.journal),
            "--side",
            str(self.side),
            "--run-id",
            str(run_id),
            "--workers",
            "2,2,4,2",
            "--sleep",
            "0.03",
            *extra,
        ]
        if resume:
            args.append("--resume")
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def wait_until(self, proc: subprocess.Popen[bytes], path: Path, lines: int) -> None:
        """Wait until ``path`` holds ``lines`` lines (the app is mid-run)."""
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            if path.exists() and path.read_bytes().count(b"\n") >= lines:
                return
            time.sleep(0.005)

    def output(self) -> list[dict[str, Any]]:
        data = self.out.read_bytes()
        assert not data or data.endswith(b"\n"), "torn output line"
        return [orjson.loads(line) for line in data.splitlines()]

    def calls(self) -> list[tuple[int, str, str]]:
        return [
            (int(r), k, s)
            for r, k, s in (line.split() for line in self.side.read_text().splitlines())
        ]


def finish(proc: subprocess.Popen[bytes], timeout: float = 60) -> tuple[int, dict[str, Any]]:
    """Wait for the app; return its exit status and the summary it printed."""
    out, err = proc.communicate(timeout=timeout)
    lines = out.decode().splitlines()
    assert lines, err.decode()
    return proc.returncode, orjson.loads(lines[-1])


def resume_to_the_end(app: App, run_id: int) -> None:
    """Resume to completion: every item once, no journaled checkpoint run again."""
    journaled = anyio.run(Journal.read, app.journal)
    before = {(k, s) for k, stages in journaled.checkpoints.items() for s in stages}
    done = len(app.output())
    rc, summary = finish(app.start(run_id, resume=True))
    assert rc == 0
    assert summary == {
        "ok": ITEMS - done,
        "failed": 0,
        "skipped": done,
        "interrupted": None,
        "cancelled": False,
    }
    records = app.output()
    assert Counter(r["id"] for r in records) == Counter(key_of(n) for n in range(ITEMS))
    for record in records:
        assert record["value"] == expected_value(int(record["id"][1:]))
    again = {(k, s) for r, k, s in app.calls() if r == run_id}
    assert not again & before


class TestSignals:
    @pytest.mark.parametrize(
        ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["INT", "TERM"]
    )
    def test_signal_stops_cleanly(self, tmp_path: Path, signum: int, code: int) -> None:
        """One signal: intake stops, in-flight items finish, the journal is flushed, exit 128+n."""
        app = App(tmp_path)
        proc = app.start(0)
        app.wait_until(proc, app.side, 12)
        proc.send_signal(signum)
        rc, summary = finish(proc, timeout=30)
        assert rc == code
        assert summary["interrupted"] == signal.Signals(signum).name
        assert summary["cancelled"] is False

        records = app.output()
        keys = [r["id"] for r in records]
        assert len(keys) == len(set(keys)) == summary["ok"] + summary["failed"]
        assert 0 < len(keys) < ITEMS
        data = app.journal.read_bytes()
        assert data.endswith(b"\n")
        state = anyio.run(Journal.read, app.journal)
        # Nothing dropped: every item a checkpointed stage ran for has its output line, or
        # keeps its checkpoints for --resume (it was waiting between stages at the stop).
        assert {k for _, k, _ in app.calls()} <= set(keys) | set(state.checkpoints)
        assert state.torn == 0
        assert state.lines == data.count(b"\n")
        assert state.done == dict.fromkeys(keys, "ok")  # flushed: a done line per output line
        # Compacted on close: the checkpoints of finished items are gone.
        assert not set(state.checkpoints) & set(keys)

        resume_to_the_end(app, 1)

    def test_a_stop_begins_no_waiting_item(self, tmp_path: Path) -> None:
        """
        After one signal no stage begins an item: the items waiting in the queues (here in
        front of the slow ``paid`` stage) are left for --resume at their last checkpoint
        instead of being run, and paid for, first (round 25's audit: one Ctrl-C went on
        for 58 s and 128 LLM calls).
        """
        app = App(tmp_path)
        proc = app.start(0, "--sleep", "0.2", "--workers", "4,4,1,1")
        app.wait_until(proc, app.side, 6)  # the queue in front of `paid` has filled
        proc.send_signal(signal.SIGINT)
        at_signal = len(app.calls())
        rc, summary = finish(proc, timeout=30)
        assert rc == 130 and summary["interrupted"] == "SIGINT"
        # The calls running at the signal finish (one per checkpointed stage, and one
        # more each that may have begun while the signal was on its way); none begins.
        assert len(app.calls()) - at_signal <= 4
        state = anyio.run(Journal.read, app.journal)
        written = {r["id"] for r in app.output()}
        assert set(state.checkpoints) - written  # items left at their last checkpoint
        resume_to_the_end(app, 1)

    def test_second_signal_cancels_items_in_flight(self, tmp_path: Path) -> None:
        """A second SIGINT stops at once, without waiting for slow items; resume completes."""
        app = App(tmp_path)
        # Calls of up to 3 s: after one signal the items in flight would take many seconds.
        proc = app.start(0, "--sleep", "3.0", "--workers", "4,4,4,4")
        app.wait_until(proc, app.journal, 1)  # started: the signal handler is installed
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        assert proc.poll() is None  # still finishing its items in flight
        second = time.monotonic()
        proc.send_signal(signal.SIGINT)
        rc, summary = finish(proc, timeout=30)
        # Only a thread stage's current call (at most 3 s) is waited for.
        assert time.monotonic() - second < 6
        assert rc == 130
        assert summary["interrupted"] == "SIGINT" and summary["cancelled"] is True

        state = anyio.run(Journal.read, app.journal)
        assert state.torn == 0
        data = app.out.read_bytes() if app.out.exists() else b""
        keys = [orjson.loads(line)["id"] for line in data.splitlines()]
        assert len(keys) == len(set(keys))
        resume_to_the_end(app, 1)
