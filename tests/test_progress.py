from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import logging
import os
import re
import select
import shlex
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from clirun import cli_env, run_cli

from asyncpipe import (
    Journal,
    Pipeline,
    ProgressReporter,
    RunSummary,
    Stage,
    StageStatistics,
    StopIntake,
)
from asyncpipe._meter import PerMinute, ProgressSnapshot, RunMeter, bottleneck
from asyncpipe._progress import RichProgress, format_duration, progress_line
from asyncpipe._stats import StageCounters, now
from asyncpipe._summary import command_line, follow_up_command

ROOT = Path(__file__).resolve().parent.parent
LINE = re.compile(
    r"^(\d+)/(\d+) files \((\d+\.\d)%\) · (\d+\.\d\d) files/s · elapsed (\S+) · "
    r"ETA (\S+) · (\d+) failed( · \d+ done before)?( · bottleneck \w+)?( · running: [^·]+)?"
    r"( · work [\d,]+ calls, [\d,]+ characters)?$"
)


class Snapshots(ProgressReporter):
    """A reporter that keeps every snapshot it is given."""

    interval = 0.01

    def __init__(self) -> None:
        super().__init__()
        self.snapshots: list[ProgressSnapshot] = []
        self.summary: RunSummary | None = None

    def update(self, snapshot: ProgressSnapshot) -> None:
        self.snapshots.append(snapshot)

    def finish(self, summary: RunSummary) -> None:
        self.summary = summary


def meter_snapshot(meter: RunMeter, elapsed: float, done: int, previous: int = 0) -> Any:
    """A snapshot of ``meter`` with ``done`` items finished by this run."""
    meter.finished = done
    return meter.snapshot([], elapsed=elapsed, ok=done, failed=0, skipped=0, previous=previous)


class TestMeter:
    """Total, done, rate and ETA from the counts over time."""

    def test_rate_and_eta_since_start(self) -> None:
        """Before a window has passed, the rate is this run's since its start."""
        meter = RunMeter(100)
        snap = meter_snapshot(meter, 10.0, 20)
        assert snap.total == 100 and snap.done == 20
        assert snap.rate == pytest.approx(2.0)
        assert snap.eta == pytest.approx(40.0)
        assert snap.fraction == pytest.approx(0.2)

    def test_rate_follows_the_recent_window(self) -> None:
        """After a slow start the rate is measured over the last window only."""
        meter = RunMeter(1000, window=10.0)
        for t in range(0, 21):
            # 1 item/s for the first 10 s, then 5 items/s.
            meter_snapshot(meter, float(t), t if t <= 10 else 10 + 5 * (t - 10))
        snap = meter_snapshot(meter, 21.0, 10 + 5 * 11)
        assert snap.rate == pytest.approx(5.0)

    def test_bursts_of_slow_items_give_a_steady_rate(self) -> None:
        """5 items at once every 25 s: the rate spans 20 items, not one jumpy 30 s window."""
        meter = RunMeter(1000, window=30.0)
        rates = []
        for t in range(0, 401):
            rates.append(meter_snapshot(meter, float(t), 5 * (t // 25)).rate)
        assert min(rates[150:]) >= 0.19 and max(rates[150:]) <= 0.27  # true rate 0.2

    def test_bottleneck_follows_the_recent_window(self) -> None:
        """OCR saturated for 60 s then done, while the LLM stage works alone: after a
        window the bottleneck is the LLM stage, though over the whole run OCR is the busier
        (round 23's audit: 'bottleneck ocr' for minutes while every page waited on the LLM)."""

        def stage(name: str, workers: int, busy: float) -> StageStatistics:
            return StageStatistics(
                name=name, kind="thread", workers=workers, items_in=10, items_out=10,
                failed=0, retried=0, skipped=0, busy_seconds=busy, utilization=0.0,
                queue_depth=0, latency_p50=0.0, latency_p95=0.0,
            )  # fmt: skip

        meter = RunMeter(1000, window=30.0)
        named = []
        for t in range(0, 101):
            ocr = 2.0 * min(t, 60)
            llm = 0.5 * min(t, 60) + 16.0 * max(0, t - 60)
            snap = meter.snapshot(
                [stage("ocr", 2, ocr), stage("structure", 16, llm)],
                elapsed=float(t), ok=0, failed=0, skipped=0, previous=0,
            )  # fmt: skip
            named.append(snap.bottleneck)
        assert named[20] == "ocr" and named[60] == "ocr"
        assert named[100] == "structure" and set(named[91:]) == {"structure"}
        assert bottleneck([stage("ocr", 2, 120.0), stage("structure", 16, 670.0)]) == "ocr"

    def test_resume_counts_earlier_items_but_not_their_rate(self) -> None:
        """Items done before count as done; the rate and ETA use this run's items only."""
        meter = RunMeter(100)
        snap = meter_snapshot(meter, 10.0, 10, previous=50)
        assert snap.done == 60 and snap.previous == 50
        assert snap.rate == pytest.approx(1.0)
        assert snap.eta == pytest.approx(40.0)

    def test_unknown_total_has_no_eta(self) -> None:
        """Without a total there is a rate but no ETA and no fraction."""
        snap = meter_snapshot(RunMeter(), 5.0, 5)
        assert snap.total is None and snap.eta is None and snap.fraction is None

    def test_exhausted_source_makes_the_total_exact(self) -> None:
        """The count of values the source yielded replaces any estimate."""
        meter = RunMeter(10)
        meter.exhausted(7)
        snap = meter_snapshot(meter, 1.0, 7)
        assert (snap.total, snap.total_exact, snap.eta) == (7, True, 0.0)

    async def test_follow_total_takes_each_estimate(self) -> None:
        """An async iterable of estimates updates the total as it goes."""
        seen: list[int | None] = []
        meter: RunMeter

        async def estimates() -> AsyncIterator[int]:
            for value in (3, 8, 12):
                seen.append(meter.estimate)
                yield value

        meter = RunMeter(estimates)
        assert meter.needs_task
        await meter.follow_total()
        assert seen == [None, 3, 8] and meter.estimate == 12


class TestPerMinute:
    """Events in the last minute, from a running count."""

    def test_counts_the_last_minute(self) -> None:
        """Before a minute: all so far; after: only those of the last minute."""
        now = [0.0]
        calls = PerMinute(clock=lambda: now[0])
        readings = []
        for second in range(0, 121, 10):
            now[0] = float(second)
            readings.append(calls(second * 2))  # 2 calls per second throughout
        assert readings[:7] == [0, 20, 40, 60, 80, 100, 120]
        assert readings[7:] == [120] * 6


class TestFormat:
    """Plain words for durations and progress lines."""

    @pytest.mark.parametrize(
        ("seconds", "text"),
        [(None, "?"), (0, "0s"), (42.4, "42s"), (185, "3m05s"), (24540, "6h49m"), (90000, "1d01h")],
    )
    def test_durations(self, seconds: float | None, text: str) -> None:
        """Durations read as the largest two units."""
        assert format_duration(seconds) == text

    def test_line_reads_as_the_issue_asks(self) -> None:
        """412 of 10000 done at 0.39/s reads as counts, percentage, rate, ETA, failures."""
        meter = RunMeter(10000)
        snap = meter.snapshot([], elapsed=412 / 0.39, ok=409, failed=3, skipped=0, previous=0)
        line = progress_line(snap, "pages")
        assert line.startswith("412/10000 pages (4.1%) · 0.39 pages/s · elapsed 17m36s · ")
        assert "ETA 6h49m · 3 failed" in line


class TestSharedCounters:
    """Counters under a name that is no stage's: what the stages share, by that name."""

    def test_a_shared_limit_has_a_row_of_its_own(self) -> None:
        """The LLM stages' shared limit shows as ``llm`` on a row of its own, beside the
        stages (round 29: the document app put it on the first LLM stage's row)."""
        from rich.console import Console

        stage = StageCounters("correct", "async", 2).snapshot(1.0, None)
        snap = RunMeter(3).snapshot([stage], elapsed=1.0, ok=0, failed=0, skipped=0, previous=0)
        reporter = RichProgress(
            file=io.StringIO(), counters={"llm": lambda: {"calls/min": "3/150"}}
        )
        shown = io.StringIO()
        Console(file=shown, width=200).print(reporter._table(snap, reporter.extras()))
        rows = [row.split("│") for row in shown.getvalue().splitlines() if "│" in row]
        cells = {row[1].strip(): [cell.strip() for cell in row[2:]] for row in rows}
        assert cells["llm"][0] == "shared" and cells["llm"][-2] == "3/150"
        assert cells["correct"][-2] == ""  # not the first LLM stage's
        line = progress_line(snap, "pages", reporter.extras())
        assert line.endswith(" · llm 3/150 calls/min")


class Terminal(io.StringIO):
    """What a terminal receives, kept as text."""

    def isatty(self) -> bool:
        return True


class TestLogLinesBesideTheBar:
    """A log line said while the bar is shown prints above it, not through it."""

    def test_the_cli_handler_writes_through_the_display(self) -> None:
        """The command line's log handler writes to the stderr the terminal display puts
        in place, so the line reaches the terminal above the bar (it wrote to the
        stderr of its start, under the display, which then drew over it)."""
        from asyncpipe._cli import _StderrHandler

        stage = StageCounters("load", "thread", 2).snapshot(1.0, None)
        snap = RunMeter(3).snapshot([stage], elapsed=1.0, ok=0, failed=1, skipped=0, previous=0)
        terminal = Terminal()
        reporter = RichProgress(file=terminal)
        logger = logging.getLogger("asyncpipe.test-terminal")
        handler = _StderrHandler()
        logger.addHandler(handler)
        logger.propagate = False
        try:
            reporter.update(snap)
            logger.warning("stage load failed on 'a.png#1': InputError: bad")
            reporter.update(snap)
        finally:
            if reporter._live is not None:
                reporter._live.stop()  # puts sys.stderr back
            logger.removeHandler(handler)
            logger.propagate = True
        assert "stage load failed on 'a.png#1': InputError: bad" in terminal.getvalue()


class TestCallsRunning:
    """The calls in flight show, where a calls/min count has left them out."""

    def test_running_calls_show_in_the_table_the_line_and_json(self) -> None:
        """Two LLM calls sent over a minute ago and not answered show as running (a
        review: 'llm 0/150 calls/min' while two calls were in flight)."""
        from rich.console import Console

        counters = StageCounters("structure", "async", 4)
        counters.calls_running = 2
        counters.calls_since = 2 * (now() - 90.0)  # both sent 90 s ago
        stage = counters.snapshot(90.0, None)
        assert stage.running == 2
        snap = RunMeter(3).snapshot([stage], elapsed=90.0, ok=0, failed=0, skipped=0, previous=0)
        reporter = RichProgress(
            file=io.StringIO(), counters={"llm": lambda: {"calls/min": "0/150"}}
        )
        shown = io.StringIO()
        Console(file=shown, width=200).print(reporter._table(snap, reporter.extras()))
        table = shown.getvalue().replace("┃", "│").splitlines()
        rows = [[cell.strip() for cell in row.split("│")] for row in table]
        head = next(row for row in rows if "running" in row)
        structure = next(row for row in rows if "structure" in row)
        assert structure[head.index("running")] == "2"
        line = progress_line(snap, "pages", reporter.extras())
        assert " · running: structure 2 · llm 0/150 calls/min" in line
        assert snap.to_json()["stages"] == {
            "structure": {
                "in": 0, "out": 0, "failed": 0, "retried": 0, "queue": 0, "running": 2,
                "util": 0.5,
            }
        }  # fmt: skip
        idle = StageCounters("structure", "async", 4).snapshot(1.0, None)
        quiet = RunMeter(3).snapshot([idle], elapsed=9.0, ok=0, failed=0, skipped=0, previous=0)
        assert "running" not in progress_line(quiet, "pages")


class TestPipelineProgress:
    """The pipeline feeds the reporter snapshots with the app's total."""

    async def test_snapshots_count_up_to_the_total(self) -> None:
        """Done grows to the total; the summary keeps the last snapshot."""
        reporter = Snapshots()

        async def slow(value: int) -> int:
            import anyio

            await anyio.sleep(0.005)
            return value

        pipeline = Pipeline([Stage("slow", slow, workers=2)])
        summary = await pipeline.run(range(40), progress=reporter, total=40)
        dones = [s.done for s in reporter.snapshots]
        assert dones == sorted(dones) and len(reporter.snapshots) > 2
        assert all(s.total == 40 for s in reporter.snapshots)
        assert summary.progress is not None and summary.progress.done == 40
        assert summary.progress.total_exact
        final = pipeline.progress()
        assert final is not None and final.done == 40 and final.eta == 0.0

    async def test_ordered_output_counts_pages_waiting_for_their_turn(self) -> None:
        """With the first item slow, the others count as done before they are written."""
        reporter = Snapshots()

        async def first_slow(value: int) -> int:
            import anyio

            await anyio.sleep(0.3 if value == 0 else 0)
            return value

        pipeline = Pipeline([Stage("s", first_slow, workers=4)])
        await pipeline.run(range(8), progress=reporter, total=8, ordered=True)
        waiting = [s for s in reporter.snapshots if s.ok == 0 and s.done == 7]
        assert waiting, [(s.ok, s.done) for s in reporter.snapshots]
        assert all(s.eta is not None for s in waiting)

    async def test_items_left_for_resume_are_not_done(self, tmp_path: Path) -> None:
        """After a stop, the items left for --resume are not counted as done (round 26's
        re-check: the bar climbed to "17/20 pages" after a Ctrl-C, none of them written)."""
        import anyio

        reporter = Snapshots()

        async def stop_at_three(value: int) -> int:
            await anyio.sleep(0.01)
            if value == 3:
                raise StopIntake("the test", "stop")
            return value

        pipeline = Pipeline([Stage("s", stop_at_three, workers=1)], max_buffer_size=4)
        summary = await pipeline.run(
            range(20),
            progress=reporter,
            total=20,
            journal=Journal(tmp_path / "journal"),
            key=str,
            ordered=False,
        )
        assert summary.interrupted == "the test" and summary.ok == 3
        assert summary.progress is not None and summary.progress.done == 3
        assert max(s.done for s in reporter.snapshots) == 3

    async def test_source_longer_than_the_estimate(self) -> None:
        """A too-small estimate never shows more done than total."""
        reporter = Snapshots()
        pipeline = Pipeline([Stage("id", _identity)])
        await pipeline.run(range(30), progress=reporter, total=5)
        assert all(s.total is not None and s.done <= s.total for s in reporter.snapshots)


async def _identity(value: int) -> int:
    return value


class TestCommandLine:
    """The follow-up commands are built from what the user typed."""

    def test_follow_up_drops_overwrite_and_quotes(self) -> None:
        """--overwrite goes, the new flags come last, odd paths are quoted."""
        command = [
            "python",
            "-m",
            "asyncpipe",
            "run",
            "my scans",
            "--out",
            "o.jsonl",
            "--overwrite",
        ]
        text = follow_up_command(command, "--resume", "--retry-failed")
        assert shlex.split(text) == [
            "python",
            "-m",
            "asyncpipe",
            "run",
            "my scans",
            "--out",
            "o.jsonl",
            "--resume",
            "--retry-failed",
        ]

    def test_a_piped_run_is_told_to_pipe_the_document_again(self) -> None:
        """With ``-`` among the inputs, the command says, as a shell comment it can be
        pasted with, that the document must be piped in again."""
        command = ["asyncpipe", "run", "-", "scans", "--out", "o.jsonl"]
        text = follow_up_command(command, "--resume")
        assert text.endswith("--resume  # with the same document piped in again")
        assert shlex.split(text, comments=True) == [*command, "--resume"]
        assert "#" not in follow_up_command(command[:2] + command[3:], "--resume")

    def test_in_process_call_falls_back_to_module_form(self) -> None:
        """main(argv) from Python names ``python -m asyncpipe``."""
        assert command_line(["run", "not-in-sys-argv-xyz"])[:3] == ["python", "-m", "asyncpipe"]


# -- the real command line -----------------------------------------------------------------


def make_inputs(folder: Path, count: int, bad: set[int] = frozenset()) -> Path:  # type: ignore[assignment]
    """``count`` text files, those numbered in ``bad`` with bad content."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"f{i:03d}.txt").write_text(("bad " if i in bad else "good ") + str(i))
    return folder


#: The test app, and no terminal width handed down from the test run.
APP: dict[str, str | None] = {"ASYNCPIPE_APP": "progressapp:app", "COLUMNS": None}


def app_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI run of the test app."""
    return cli_env({**APP, **extra}, test_apps=True)


def run_app(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``asyncpipe run ARGS`` with the test app from ``cwd``, capturing its output."""
    return run_cli(
        *args,
        progress=None,
        cwd=cwd,
        env={**APP, **env},
        test_apps=True,
        timeout=120,
    )


class TestLogAndJson:
    """Log mode writes plain lines, json mode one object per interval."""

    def test_log_lines(self, tmp_path: Path) -> None:
        """Every progress line has counts, percentage, rate, ETA, failures."""
        make_inputs(tmp_path / "in", 30, bad={4})
        done = run_app(
            [
                "in",
                "--out",
                "out.jsonl",
                "--progress",
                "log",
                "--delay",
                "0.05",
                "--workers",
                "work=1",
            ],
            tmp_path,
            ASYNCPIPE_PROGRESS_INTERVAL="0.2",
        )
        assert done.returncode == 0, done.stderr
        lines = [
            line.split("asyncpipe.progress: ", 1)[1]
            for line in done.stderr.splitlines()
            if "asyncpipe.progress: " in line and "finished" not in line
        ]
        assert len(lines) >= 3, done.stderr
        for line in lines:
            assert LINE.match(line), line
        totals = {LINE.match(line).group(2) for line in lines}  # type: ignore[union-attr]
        assert totals == {"30"}
        assert "done 3 ok" not in done.stderr

    def test_json_objects(self, tmp_path: Path) -> None:
        """One JSON object per line: progress events with total, rate, ETA, then finished."""
        make_inputs(tmp_path / "in", 200)  # more than the queues hold: the source waits
        done = run_app(
            [
                "in",
                "--out",
                "out.jsonl",
                "--progress",
                "json",
                "--delay",
                "0.01",
                "--workers",
                "work=1",
                "--refine",
            ],
            tmp_path,
            ASYNCPIPE_PROGRESS_INTERVAL="0.1",
        )
        assert done.returncode == 0, done.stderr
        events = [orjson.loads(line) for line in done.stdout.splitlines()]
        progress = [e for e in events if e["event"] == "progress"]
        assert len(progress) >= 3
        assert events[-1]["event"] == "finished" and events[-1]["ok"] == 200
        for event in progress:
            assert event["unit"] == "files"
            assert {"total", "done", "rate", "eta", "failed", "stages"} <= event.keys()
            assert event["counters"]["work"]["calls"] == event["stages"]["work"]["out"]
        totals = [e["total"] for e in progress]
        # The first estimate, then the refined one; the end of the source makes it exact.
        assert totals.index(100) < totals.index(200) and totals[-1] == 200
        assert progress[-1]["total_exact"]
        assert any(e["eta"] is not None and e["eta"] > 0 for e in progress)


class TestTerminal:
    """Under a pseudo-terminal the bar shows the total, the rate and an ETA."""

    def test_bar_in_a_pty(self, tmp_path: Path) -> None:
        """The raw terminal output holds 'N/40 files', a rate and 'ETA <duration>'."""
        make_inputs(tmp_path / "in", 40)
        pid, fd = os.forkpty()
        if pid == 0:  # the child: become the CLI
            os.chdir(tmp_path)
            env = app_env(TERM="xterm-256color")
            os.execve(
                sys.executable,
                [
                    sys.executable,
                    "-m",
                    "asyncpipe",
                    "run",
                    "in",
                    "--out",
                    "out.jsonl",
                    "--delay",
                    "0.05",
                    "--workers",
                    "work=1",
                ],
                env,
            )
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
        chunks: list[bytes] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1.0)
            if not ready:
                continue
            try:
                data = os.read(fd, 65536)
            except OSError as exc:
                if exc.errno == errno.EIO:  # the child closed the terminal
                    break
                raise
            if not data:
                break
            chunks.append(data)
        _, status = os.waitpid(pid, 0)
        text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode("utf-8", "replace"))
        assert os.waitstatus_to_exitcode(status) == 0, text[-2000:]
        assert re.search(r"\b\d+/40 files \d+\.\d%", text), text[-2000:]
        assert re.search(r"\d+\.\d\d files/s", text)
        assert re.search(r"ETA \d+(s|m\d\ds)", text), text[-2000:]
        assert "bottleneck" in text and "calls" in text  # the table and the extra counters
        assert "Done in" in text and "40 files in the output" in text


class TestClosingSummary:
    """The end of the run says where things are and how to retry failures."""

    def test_retry_command_finishes_the_failed_items(self, tmp_path: Path) -> None:
        """The printed --resume --retry-failed command, run as printed, fixes the failures."""
        make_inputs(tmp_path / "in", 12, bad={2, 5, 9})
        first = run_app(["in", "--out", "out/r.jsonl", "--progress", "none"], tmp_path)
        assert first.returncode == 0, first.stderr
        assert "12 files in the output, 9 ok, 3 failed" in first.stderr
        assert "output:  out/r.jsonl" in first.stderr
        assert "journal: out/r.jsonl.journal" in first.stderr
        assert re.search(r"^\s+3  in read: ValueError$", first.stderr, re.M), first.stderr
        retry = [line for line in first.stderr.splitlines() if line.startswith("To retry them: ")]
        assert len(retry) == 1
        command = shlex.split(retry[0].removeprefix("To retry them: "))
        assert command[:3] == [sys.executable, "-m", "asyncpipe"]
        assert command[-2:] == ["--resume", "--retry-failed"]
        make_inputs(tmp_path / "in", 12)  # the bad files are fixed
        second = subprocess.run(
            command, cwd=tmp_path, env=app_env(), capture_output=True, text=True, timeout=120
        )
        assert second.returncode == 0, second.stderr
        assert "12 files in the output, 12 ok, 0 failed" in second.stderr
        assert "To retry them" not in second.stderr
        records = [
            orjson.loads(line) for line in (tmp_path / "out/r.jsonl").read_bytes().splitlines()
        ]
        assert sorted(r["id"] for r in records) == [f"f{i:03d}.txt" for i in range(12)]
        assert all(r["status"] == "ok" for r in records)

    def test_ctrl_c_says_what_happens_and_how_to_resume(self, tmp_path: Path) -> None:
        """SIGINT: 'N files in flight finish the step they are in', then a resume command
        that finishes."""
        make_inputs(tmp_path / "in", 200)
        with subprocess.Popen(
            [
                sys.executable,
                "-m",
                "asyncpipe",
                "run",
                "in",
                "--out",
                "o.jsonl",
                "--progress",
                "log",
                "--delay",
                "0.05",
                "--workers",
                "work=3",
            ],
            cwd=tmp_path,
            env=app_env(ASYNCPIPE_PROGRESS_INTERVAL="0.2"),
            stderr=subprocess.PIPE,
            text=True,
        ) as proc:
            assert proc.stderr is not None
            for line in proc.stderr:
                if "asyncpipe.progress: " in line and not line.split(": ", 1)[1].startswith("0/"):
                    break
            proc.send_signal(signal.SIGINT)
            rest = proc.stderr.read()
            assert proc.wait(timeout=60) == 130, rest
        match = re.search(
            r"(\d+) files in flight finish the step they are in; Ctrl-C again to cancel them\. "
            r"They and the others wait\.",
            rest,
        )
        assert match, rest
        assert 0 < int(match.group(1)) <= 200
        resume = [line for line in rest.splitlines() if line.startswith("To finish the run: ")]
        assert len(resume) == 1 and "interrupted by SIGINT" in rest
        command = shlex.split(resume[0].removeprefix("To finish the run: "))
        assert command[-1] == "--resume"
        written = len((tmp_path / "o.jsonl").read_bytes().splitlines())
        again = subprocess.run(
            command,
            cwd=tmp_path,
            env=app_env(ASYNCPIPE_PROGRESS_INTERVAL="0.1"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert again.returncode == 0, again.stderr
        assert "200 files in the output, 200 ok, 0 failed" in again.stderr
        # The bar of the resumed run starts at what the first run finished.
        lines = [
            LINE.match(line.split("asyncpipe.progress: ", 1)[1])
            for line in again.stderr.splitlines()
            if "asyncpipe.progress: " in line and "finished" not in line
        ]
        assert lines and all(lines), again.stderr
        first = lines[0]
        assert first is not None and int(first.group(1)) >= written
        assert first.group(8) == f" · {written} done before"


class TestPageEstimate:
    """The document app's total: documents first, then pages of PDFs and TIFFs."""

    def test_estimates_refine_to_what_discover_yields(self, tmp_path: Path) -> None:
        """First the document count, last the page count that discover yields."""
        from PIL import Image

        from stages.inputs import discover, estimate_pages

        folder = tmp_path / "docs"
        folder.mkdir()
        frames = [Image.new("RGB", (40, 30), (i * 60, 0, 0)) for i in range(3)]
        frames[0].save(folder / "a.tiff", save_all=True, append_images=frames[1:])
        frames[0].save(folder / "b.pdf", save_all=True, append_images=frames[1:2])
        frames[0].save(folder / "c.png")
        (folder / "d.pdf").write_bytes(b"%PDF-1.4 broken")  # one error record
        (folder / "notes.txt").write_text("not a document")
        inputs = [str(folder), str(tmp_path / "missing.jpg")]
        estimates = list(estimate_pages(inputs, every=0.0))
        assert estimates[0] == 5  # four documents and one missing path, unopened
        assert estimates[-1] == 3 + 2 + 1 + 1 + 1
        assert estimates == sorted(estimates)
        assert estimates[-1] == len(list(discover(inputs)))

    def test_a_fifo_is_not_opened(self, tmp_path: Path) -> None:
        """A FIFO in a folder is counted, not opened: opening it waited for a writer for
        ever, and the run never ended (round 26's audit)."""
        from PIL import Image

        from stages.inputs import estimate_pages

        Image.new("RGB", (40, 30)).save(tmp_path / "a.png")
        fifo = tmp_path / "scan.jpg"
        os.mkfifo(fifo)
        estimates: list[int] = []
        worker = threading.Thread(
            target=lambda: estimates.extend(estimate_pages([str(tmp_path)], every=0.0)),
            daemon=True,
        )
        worker.start()
        worker.join(timeout=10)
        try:
            assert not worker.is_alive(), "the estimate waits on the FIFO"
        finally:
            with contextlib.suppress(OSError):  # free a reader stuck in open()
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        assert estimates[-1] == 2


class TestDocumentApp:
    """The document app supplies the unit, the page total and its CSV to the framework."""

    def test_corrupt_pages_are_counted_and_named(self, tmp_path: Path) -> None:
        """Three unreadable files: total 3 pages in the JSON lines, load failures summed."""
        folder = tmp_path / "in"
        folder.mkdir()
        (folder / "a.pdf").write_bytes(b"%PDF-1.4 broken")
        (folder / "b.jpg").write_bytes(b"garbage")
        (folder / "c.jpg").write_bytes(b"\xff\xd8\xffjunk")
        env = {k: v for k, v in os.environ.items() if k != "ASYNCPIPE_APP"}
        env["ASYNCPIPE_PROGRESS_INTERVAL"] = "0.2"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "asyncpipe",
                "run",
                "in",
                "--out",
                "out/r.jsonl",
                "--csv",
                "out/f.csv",
                "--progress",
                "json",
                "--workers",
                "ocr=1",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        events = [orjson.loads(line) for line in done.stdout.splitlines()]
        assert events and all(e["unit"] == "pages" for e in events)
        assert [e["total"] for e in events if e["event"] == "progress"][-1] == 3
        assert "  CSV:     out/f.csv" in done.stderr
        assert re.search(r"^\s+3  in load: InputError$", done.stderr, re.M), done.stderr
        assert re.search(r"^To retry them: .* --resume --retry-failed$", done.stderr, re.M)
