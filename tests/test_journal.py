from __future__ import annotations

import os
from pathlib import Path

import anyio
import anyio.lowlevel
import orjson
import pytest

from asyncpipe import ErrorRecord, Journal, JournalError, JournalState
from asyncpipe._durable import temporary
from asyncpipe._journal import WRITE_CHUNK
from asyncpipe._keyset import KeySet

pytestmark = pytest.mark.anyio


async def _lines(path: Path) -> list[bytes]:
    data = await anyio.Path(path).read_bytes()
    assert data.endswith(b"\n")
    return data.split(b"\n")[:-1]


def _event(**fields: object) -> bytes:
    return orjson.dumps(fields) + b"\n"


class TestRoundTrip:
    async def test_every_event_kind_reads_back(self, tmp_path: Path) -> None:
        """Events queued on the loop and written by the writer task come back from read."""
        path = tmp_path / "j.jsonl"
        journal = Journal(path, compact_bytes=None)
        state = await journal.open(resume=False)
        assert state == JournalState()
        error = ErrorRecord("b", "StageError", "bad input", 2)
        async with anyio.create_task_group() as tg:
            tg.start_soon(journal.run_writer)
            journal.start_nowait(["a", "b"])
            journal.checkpoint_nowait("k1", "b", "fp-b", {"x": [1, 2]}, {"a": 0.5, "b": 1.0})
            journal.done_nowait("k1", "ok")
            journal.checkpoint_nowait("k2", "a", "fp-a", "out", {"a": 0.1})
            journal.failed_nowait("k2", error)
            journal.done_nowait("k2", "error")
            journal.checkpoint_nowait("k3", "a", "fp-a", None, {})
            await anyio.sleep(0.05)
            tg.cancel_scope.cancel()
        await journal.aclose()
        await journal.aclose()  # twice is fine

        state = await Journal.read(path)
        assert state.lines == 7
        assert state.torn == 0
        assert state.done == {"k1": "ok", "k2": "error"}
        assert state.failed == {"k2": error}
        ck = state.checkpoints["k1"]["b"]
        assert (ck.fingerprint, ck.output) == ("fp-b", {"x": [1, 2]})
        assert ck.timings == {"a": 0.5, "b": 1.0}
        assert state.checkpoints["k2"]["a"].output == "out"
        assert state.checkpoints["k3"]["a"].output is None
        assert journal.written == 7

    async def test_events_queued_at_close_are_written(self, tmp_path: Path) -> None:
        """aclose writes whatever is still queued, without a writer task."""
        path = tmp_path / "j.jsonl"
        journal = Journal(path, compact_bytes=None)
        await journal.open(resume=False)
        for n in range(5):
            journal.done_nowait(f"k{n}", "ok")
        await journal.aclose()
        assert len(await _lines(path)) == 5
        with pytest.raises(JournalError, match="closed"):
            journal.done_nowait("late", "ok")

    async def test_writer_cancelled_right_after_wakeup_loses_nothing(self, tmp_path: Path) -> None:
        """A batch taken by the writer reaches the file even if the writer is cancelled at once."""
        path = tmp_path / "j.jsonl"
        for _ in range(20):
            journal = Journal(path)
            await journal.open(resume=False)
            async with anyio.create_task_group() as tg:
                tg.start_soon(journal.run_writer)
                await anyio.lowlevel.checkpoint()
                for n in range(10):
                    journal.done_nowait(f"k{n}", "ok")
                await anyio.lowlevel.checkpoint()  # the writer wakes up and takes the batch...
                tg.cancel_scope.cancel()  # ...and is cancelled before its thread starts
            await journal.aclose()
            state = await Journal.read(path)
            assert len(state.done) == 10

    async def test_without_resume_starts_afresh(self, tmp_path: Path) -> None:
        """open(resume=False) truncates an existing journal."""
        path = tmp_path / "j.jsonl"
        await anyio.Path(path).write_bytes(_event(ev="done", k="old", status="ok"))
        journal = Journal(path)
        assert (await journal.open(resume=False)).done == {}
        journal.done_nowait("new", "ok")
        await journal.aclose()
        assert (await Journal.read(path)).done == {"new": "ok"}

    async def test_a_journal_object_serves_two_runs(self, tmp_path: Path) -> None:
        """After aclose the same Journal can be opened again and appended to."""
        path = tmp_path / "j.jsonl"
        journal = Journal(path)
        await journal.open(resume=False)
        journal.done_nowait("a", "ok")
        await journal.aclose()
        state = await journal.open(resume=True)
        assert "a" in state.done_keys
        assert state.done == {}  # open keeps only what a resume needs
        journal.done_nowait("b", "ok")
        await journal.aclose()
        assert (await Journal.read(path)).done == {"a": "ok", "b": "ok"}

    async def test_missing_journal_reads_empty(self, tmp_path: Path) -> None:
        """Reading or resuming a journal that does not exist yet gives an empty state."""
        assert await Journal.read(tmp_path / "none.jsonl") == JournalState()
        journal = Journal(tmp_path / "sub" / "j.jsonl")
        assert await journal.open(resume=True) == JournalState()
        await journal.aclose()


class TestTornTail:
    async def test_resume_cuts_torn_line_and_appends_on_a_clean_line(self, tmp_path: Path) -> None:
        """A partial last line is cut off on resume, and new events start on their own line."""
        path = tmp_path / "j.jsonl"
        good = _event(ev="ckpt", k="a", s="s", fp="f", out=1, t={}) + _event(
            ev="done", k="a", status="ok"
        )
        torn = b'{"ev":"ckpt","k":"b","s":"s","fp":"f","ou'
        await anyio.Path(path).write_bytes(good + torn)

        read = await Journal.read(path)
        assert (read.lines, read.torn) == (2, len(torn))

        journal = Journal(path, compact_bytes=None)
        state = await journal.open(resume=True)
        assert state.torn == len(torn)
        assert "a" in state.done_keys
        assert "b" not in state.checkpoints
        assert await anyio.Path(path).read_bytes() == good
        journal.done_nowait("b", "ok")
        await journal.aclose()

        lines = await _lines(path)
        assert [orjson.loads(line)["ev"] for line in lines] == ["ckpt", "done", "done"]
        assert (await Journal.read(path)).done == {"a": "ok", "b": "ok"}

    async def test_unparsable_last_whole_line_is_a_torn_tail(self, tmp_path: Path) -> None:
        """Garbage after the last good line (e.g. zeros after a power loss) is tolerated."""
        path = tmp_path / "j.jsonl"
        good = _event(ev="done", k="a", status="ok")
        await anyio.Path(path).write_bytes(good + b"\0\0\0\n\0\0")
        state = await Journal.read(path)
        assert state.done == {"a": "ok"}
        assert state.torn == 6


class TestCorruption:
    """
    One rule for a line that is no event with good lines after it: it is skipped and
    named, by a resume, by `Journal.read` and by `Journal.compact` (which drops it).  It
    stopped all three with "corrupt at line N: move it aside to start over", advice that
    redid every paid call of a run whose output held them.
    """

    GARBAGE = (
        b"{not json",
        b"",
        b"[1, 2]",
        b'{"ev": "done", "k": "x"}',
        b'{"ev": "ckpt", "k": 5}',
        b'{"ev": "bogus"}',
        b'{"ev":"done","k":"doc00GARBAGE',
    )

    @staticmethod
    async def _write(path: Path, garbage: bytes) -> bytes:
        data = (
            _event(ev="ckpt", k="a", s="s", fp="f", out=1, t={})
            + _event(ev="done", k="a", status="ok")
            + garbage
            + b"\n"
            + _event(ev="ckpt", k="b", s="s", fp="f", out=2, t={})
        )
        await anyio.Path(path).write_bytes(data)
        return data

    @pytest.mark.parametrize("garbage", GARBAGE)
    async def test_mid_file_garbage_is_skipped_and_named(
        self, tmp_path: Path, garbage: bytes, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Read and resumed with the sink's keys, a bad line between good ones is
        skipped, named in ``corrupt`` and in a warning; the lines around it count."""
        path = tmp_path / "j.jsonl"
        await self._write(path, garbage)
        state = await Journal.read(path)
        assert (state.corrupt, state.lines, state.torn) == (["line 3"], 3, 0)
        assert state.done == {"a": "ok"}
        assert state.checkpoints["b"]["s"].output == 2

        journal = Journal(path, compact_bytes=None)
        state = await journal.open(resume=True, done=KeySet(["a"]))
        assert state.corrupt == ["line 3"]
        assert set(state.checkpoints) == {"b"}
        await journal.aclose()
        assert "skipped the corrupt line 3" in caplog.text

    async def test_the_journal_alone_cannot_skip_one(self, tmp_path: Path) -> None:
        """Where the sink cannot say what it holds, the journal's done lines decide, and a
        lost one would write an item twice: the resume refuses, saying what to do, and
        leaves the file as it was."""
        path = tmp_path / "j.jsonl"
        data = await self._write(path, b'{"ev":"done","k":"doc00GARBAGE')
        with pytest.raises(JournalError, match=r"line 3 .*delete those lines") as info:
            await Journal(path).open(resume=True)
        assert "start over" not in str(info.value)
        assert await anyio.Path(path).read_bytes() == data

    async def test_compact_drops_it(self, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
        """`Journal.compact` drops the corrupt line (it refused), with a warning."""
        path = tmp_path / "j.jsonl"
        await self._write(path, b"\x00\xffnot an event")
        assert await Journal.compact(path) == (3, 3)  # events read; a header, a done, a ckpt
        assert "compacted without the corrupt line 3" in caplog.text
        state = await Journal.read(path)
        assert (state.corrupt, state.done, set(state.checkpoints)) == ([], {"a": "ok"}, {"b"})

    @pytest.mark.parametrize("same_length", [False, True])
    async def test_in_a_compacted_journals_done_lines(
        self, tmp_path: Path, same_length: bool
    ) -> None:
        """A done line garbled in a compacted journal's run of them (the header counts its
        bytes).  Edited to another length, the header no longer fits: the resume reads
        the whole file (it seeked mid-line, and cut the checkpoints after it as a torn
        tail), skips the line and compacts it away.  Garbled in place, a resume with the
        sink's keys never reads it, and its compaction, which checks the run of done
        lines, drops it all the same (it copied it on, for good)."""
        path = tmp_path / "j.jsonl"
        await anyio.Path(path).write_bytes(
            b"".join(_event(ev="done", k=k, status="ok") for k in "abc")
            + _event(ev="ckpt", k="d", s="s", fp="f", out=4, t={})
        )
        await Journal.compact(path)
        lines = (await anyio.Path(path).read_bytes()).split(b"\n")
        garbage = b'{"ev":"done","k":"bGARBAGE'
        lines[2] = garbage.ljust(len(lines[2]), b"\0") if same_length else garbage
        await anyio.Path(path).write_bytes(b"\n".join(lines))
        journal = Journal(path)
        state = await journal.open(resume=True, done=KeySet(["a", "b", "c"]))
        assert set(state.checkpoints) == {"d"}
        await journal.aclose()
        assert (await Journal.read(path)).corrupt == []
        await Journal.compact(path)
        state = await Journal.read(path)
        assert (state.corrupt, set(state.done)) == ([], {"a", "c"})
        assert state.checkpoints["d"]["s"].output == 4

    async def test_a_file_of_other_json_lines_is_no_journal(self, tmp_path: Path) -> None:
        """A first line that is no event, and does not begin as a journal's lines do, is
        no corrupt journal but no journal: refused, never skipped and appended to."""
        path = tmp_path / "out.jsonl"
        data = b'{"hello":1}\n{"ev":"done","k":"a","status":"ok"}\n'
        await anyio.Path(path).write_bytes(data)
        for reading in (Journal.read(path), Journal(path).open(resume=True, done=KeySet())):
            with pytest.raises(JournalError, match=r"is not a journal \(line 1 is no journal"):
                await reading
        assert await anyio.Path(path).read_bytes() == data

    async def test_unreadable_journal_raises(self, tmp_path: Path) -> None:
        """A journal path that cannot be read is a JournalError, not an OSError."""
        with pytest.raises(JournalError):
            await Journal.read(tmp_path)


class TestFsync:
    @pytest.fixture
    def fsyncs(self, monkeypatch: pytest.MonkeyPatch) -> list[int]:
        """Record the journal module's fsync calls (and still make them)."""
        calls: list[int] = []
        real = os.fsync

        def counting(fd: int) -> None:
            calls.append(fd)
            real(fd)

        # The journal module's ``os`` is the os module: patch it there, for this test only.
        monkeypatch.setattr("asyncpipe._journal.os.fsync", counting)
        return calls

    async def test_fsync_by_count_and_at_close(self, tmp_path: Path, fsyncs: list[int]) -> None:
        """With fsync_every=3 seven single-event writes fsync twice, and close once more."""
        journal = Journal(
            tmp_path / "j.jsonl", fsync_every=3, fsync_interval=1e9, compact_bytes=None
        )
        await journal.open(resume=False)
        for n in range(7):
            journal.done_nowait(f"k{n}", "ok")
            await journal.flush()
        assert len(fsyncs) == 2
        await journal.aclose()
        assert len(fsyncs) == 3

    async def test_one_batch_one_fsync(self, tmp_path: Path, fsyncs: list[int]) -> None:
        """A batch larger than fsync_every is written and fsynced once."""
        journal = Journal(
            tmp_path / "j.jsonl", fsync_every=3, fsync_interval=1e9, compact_bytes=None
        )
        await journal.open(resume=False)
        for n in range(10):
            journal.done_nowait(f"k{n}", "ok")
        await journal.flush()
        assert len(fsyncs) == 1
        await journal.flush()  # nothing queued: no write, no fsync
        assert len(fsyncs) == 1
        await journal.aclose()
        assert len(fsyncs) == 2

    async def test_fsync_by_time(self, tmp_path: Path, fsyncs: list[int]) -> None:
        """With fsync_interval=0 every write is fsynced."""
        journal = Journal(tmp_path / "j.jsonl", fsync_every=10**6, fsync_interval=0.0)
        await journal.open(resume=False)
        for n in range(4):
            journal.done_nowait(f"k{n}", "ok")
            await journal.flush()
        assert len(fsyncs) == 4

    async def test_writer_task_batches(self, tmp_path: Path, fsyncs: list[int]) -> None:
        """Events queued together by the loop go out in one write and at most one fsync."""
        journal = Journal(
            tmp_path / "j.jsonl", fsync_every=1000, fsync_interval=1e9, compact_bytes=None
        )
        await journal.open(resume=False)
        async with anyio.create_task_group() as tg:
            tg.start_soon(journal.run_writer)
            for n in range(500):
                journal.done_nowait(f"k{n}", "ok")
            await anyio.sleep(0.1)
            assert journal.written == 500
            tg.cancel_scope.cancel()
        assert fsyncs == []
        await journal.aclose()
        assert len(fsyncs) == 1


class TestBatchWrites:
    """A large batch is written in chunks under glibc's mmap threshold."""

    async def test_a_large_batch_goes_out_in_small_writes_and_one_fsync(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """1.1 MB of queued events: every write at most WRITE_CHUNK + a line, one fsync."""
        writes: list[int] = []
        fsyncs: list[int] = []
        real_write, real_fsync = os.write, os.fsync

        def write(fd: int, data: bytes) -> int:
            writes.append(len(data))
            return real_write(fd, data)

        def fsync(fd: int) -> None:
            fsyncs.append(fd)
            real_fsync(fd)

        monkeypatch.setattr("asyncpipe._journal.os.write", write)
        monkeypatch.setattr("asyncpipe._journal.os.fsync", fsync)
        journal = Journal(
            tmp_path / "j.jsonl", fsync_every=10, fsync_interval=1e9, compact_bytes=None
        )
        await journal.open(resume=False)
        for n in range(1000):
            journal.checkpoint_nowait(f"k{n}", "s", "fp", "x" * 1000, {})
        await journal.flush()
        line = len(_event(ev="ckpt", k="k999", s="s", fp="fp", out="x" * 1000, t={}))
        assert sum(writes) == (await anyio.Path(tmp_path / "j.jsonl").stat()).st_size > 10**6
        assert len(writes) > 1
        assert max(writes) < WRITE_CHUNK + line
        assert len(fsyncs) == 1  # due by count, done once after the batch's last chunk
        await journal.aclose()
        state = await Journal.read(tmp_path / "j.jsonl")
        assert len(state.checkpoints) == 1000


class TestCompact:
    async def _write(self, path: Path) -> None:
        err = {"stage": "s2", "type": "StageError", "message": "no", "attempts": 1}
        events = [
            _event(ev="start", at=1.0, stages=["s1", "s2"]),
            # a: finished ok
            _event(ev="ckpt", k="a", s="s1", fp="f1", out="a1", t={}),
            _event(ev="ok", k="a", s="s2"),
            _event(ev="done", k="a", status="ok"),
            # b: unfinished, checkpointed twice at s1 (e.g. after a version change)
            _event(ev="ckpt", k="b", s="s1", fp="old", out="b-old", t={}),
            _event(ev="ckpt", k="b", s="s1", fp="f1", out="b1", t={"s1": 2.0}),
            # c: finished with an error (retry_failed restarts it after its checkpoint)
            _event(ev="ckpt", k="c", s="s1", fp="f1", out="c1", t={}),
            _event(ev="fail", k="c", s="s2", err=err),
            _event(ev="done", k="c", status="error"),
            # d: failed, output not written yet
            _event(ev="fail", k="d", s="s2", err=err),
            _event(ev="start", at=2.0, stages=["s1", "s2"]),
        ]
        await anyio.Path(path).write_bytes(b"".join(events))

    async def test_compact_keeps_what_resume_needs(self, tmp_path: Path) -> None:
        """Compaction drops superseded lines but keeps done, checkpoints and failures."""
        path = tmp_path / "j.jsonl"
        await self._write(path)
        before = await Journal.read(path)
        assert await Journal.compact(path) == (11, 7)  # a header, 2 done, 2 ckpt, 2 fail
        after = await Journal.read(path)
        assert after.done == before.done == {"a": "ok", "c": "error"}
        assert after.failed == before.failed
        assert set(after.failed) == {"c", "d"}
        assert "a" not in after.checkpoints
        assert after.checkpoints["b"] == before.checkpoints["b"]
        assert after.checkpoints["b"]["s1"].output == "b1"
        assert after.checkpoints["c"] == before.checkpoints["c"]
        assert not await anyio.Path(tmp_path / "j.jsonl.tmp").exists()
        assert await Journal.compact(path) == (7, 7)  # idempotent

    async def test_keep_done_rejects_unwritten_items(self, tmp_path: Path) -> None:
        """An item keep_done rejects is kept as unfinished, with its checkpoints."""
        path = tmp_path / "j.jsonl"
        await self._write(path)
        await Journal.compact(path, keep_done=lambda key: key != "a")
        after = await Journal.read(path)
        assert after.done == {"c": "error"}
        assert after.checkpoints["a"]["s1"].output == "a1"

    async def test_compact_drops_torn_tail(self, tmp_path: Path) -> None:
        """A torn last line does not survive compaction."""
        path = tmp_path / "j.jsonl"
        await anyio.Path(path).write_bytes(_event(ev="done", k="a", status="ok") + b'{"ev"')
        assert await Journal.compact(path) == (1, 2)
        assert (await Journal.read(path)).torn == 0

    async def test_compact_refuses_corrupt_journal(self, tmp_path: Path) -> None:
        """A corrupt journal is not compacted (nor rewritten)."""
        path = tmp_path / "j.jsonl"
        data = b"garbage\n" + _event(ev="done", k="a", status="ok")
        await anyio.Path(path).write_bytes(data)
        with pytest.raises(JournalError, match="line 1"):
            await Journal.compact(path)
        assert await anyio.Path(path).read_bytes() == data


async def _run_items(journal: Journal, keys: list[str], *, done: bool = True) -> None:
    """Journal a 1 KB checkpoint for each key (and its done line), one write per key."""
    for key in keys:
        journal.checkpoint_nowait(key, "s", "fp", "x" * 1000, {})
        if done:
            journal.done_nowait(key, "ok")
        await journal.flush()


class TestCompaction:
    async def test_journal_stays_near_the_work_in_flight(self, tmp_path: Path) -> None:
        """Compacting as it goes, the file never holds much more than the done lines."""
        path = tmp_path / "j.jsonl"
        journal = Journal(path, compact_bytes=20_000, compact_grace=0.0)
        await journal.open(resume=False)
        await _run_items(journal, ["open1", "open2"], done=False)  # in flight all along
        biggest = 0
        for n in range(20):
            await _run_items(journal, [f"k{n}-{i}" for i in range(10)])
            biggest = max(biggest, (await anyio.Path(path).stat()).st_size)
        done_lines = 200 * len(_event(ev="done", k="k10-1", status="ok"))
        # Without compaction the file would pass 400 KB.
        assert biggest < 2 * (done_lines + 20_000) + 2 * 1100
        assert journal.compactions >= 3
        await journal.aclose()
        state = await Journal.read(path)
        assert set(state.checkpoints) == {"open1", "open2"}
        assert len(state.done) == 200

    async def test_grace_keeps_the_last_lines_as_they_are(self, tmp_path: Path) -> None:
        """During the run, lines younger than compact_grace are not compacted."""
        path = tmp_path / "j.jsonl"
        journal = Journal(path, compact_bytes=1, compact_grace=1e9)
        await journal.open(resume=False)
        await _run_items(journal, [f"k{i}" for i in range(20)])
        assert journal.compactions == 0  # nothing is old enough: no pointless rewrites
        assert len((await Journal.read(path)).checkpoints) == 20
        await journal.aclose()  # the close compacts everything (the sink is closed first)
        assert journal.compactions == 1
        assert (await Journal.read(path)).checkpoints == {}

    async def test_resume_with_sink_keys_skips_the_done_lines(self, tmp_path: Path) -> None:
        """Given the sink's keys, open() seeks past a compacted journal's run of done lines."""
        path = tmp_path / "j.jsonl"
        journal = Journal(path)
        await journal.open(resume=False)
        await _run_items(journal, [f"k{i}" for i in range(50)])
        await _run_items(journal, ["open"], done=False)
        await journal.aclose()  # compacted: header, 50 done lines, one checkpoint
        reader = Journal(path, compact_bytes=None)
        state = await reader.open(resume=True, done=KeySet(f"k{i}" for i in range(50)))
        await reader.aclose()
        assert state.lines == 1  # only the checkpoint was read
        assert set(state.checkpoints) == {"open"}
        assert "k7" in state.done_keys and "open" not in state.done_keys
        # Without the sink's word, the done lines are read and decide.
        state = await reader.open(resume=True)
        await reader.aclose()
        assert state.lines == 52
        assert "k7" in state.done_keys and set(state.checkpoints) == {"open"}

    async def test_resume_keeps_only_unfinished_checkpoints(self, tmp_path: Path) -> None:
        """open(resume) drops the checkpoints of finished items as it streams."""
        path = tmp_path / "j.jsonl"
        events = [
            _event(ev="ckpt", k="a", s="s", fp="f", out=1, t={}),
            _event(ev="ckpt", k="b", s="s", fp="f", out=2, t={}),
            _event(ev="done", k="a", status="ok"),
            _event(ev="ckpt", k="c", s="s", fp="f", out=3, t={}),
            _event(ev="fail", k="c", s="t", err={"type": "E", "message": "m", "attempts": 1}),
            _event(ev="done", k="c", status="error"),
        ]
        await anyio.Path(path).write_bytes(b"".join(events))
        journal = Journal(path, compact_bytes=None)
        state = await journal.open(resume=True)
        await journal.aclose()
        assert set(state.checkpoints) == {"b"}
        assert "a" in state.done_keys and "c" in state.done_keys
        retry = await journal.open(resume=True, retry_failed=True)
        await journal.aclose()
        assert set(retry.checkpoints) == {"b", "c"}
        assert set(retry.failed) == {"c"}
        sink = await journal.open(resume=True, done={"b"})
        await journal.aclose()
        assert set(sink.checkpoints) == {"a", "c"}  # the sink says a's line is missing

    async def test_left_over_temporary_is_removed(self, tmp_path: Path) -> None:
        """A compaction killed half-way leaves a temporary file: open removes it."""
        path = tmp_path / "j.jsonl"
        await anyio.Path(path).write_bytes(_event(ev="done", k="a", status="ok"))
        await anyio.Path(temporary(path)).write_bytes(b'{"ev":"start","at":1,"compac')
        journal = Journal(path)
        state = await journal.open(resume=True)
        assert "a" in state.done_keys
        assert not await anyio.Path(temporary(path)).exists()
        await journal.aclose()

    async def test_failed_compaction_keeps_the_journal(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A compaction that cannot write its new file is logged; the run goes on."""
        path = tmp_path / "j.jsonl"
        journal = Journal(path, compact_bytes=1, compact_grace=0.0)
        await journal.open(resume=False)

        def full(*args: object, **kwargs: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr("asyncpipe._durable.FileWriter.write", full)
        await _run_items(journal, ["a", "b"])
        assert journal.compactions == 0 and journal.failure is None
        monkeypatch.undo()
        await _run_items(journal, ["c"])  # appends still work, to the same file
        await journal.aclose()
        assert (await Journal.read(path)).done == {"a": "ok", "b": "ok", "c": "ok"}


class TestRoom:
    """`Journal.room` holds the run back while the writer is behind."""

    async def test_waits_until_the_writer_takes_the_queue(self, tmp_path: Path) -> None:
        """Queued bytes over the limit block `room` until a flush takes them."""
        journal = Journal(tmp_path / "j.jsonl", max_pending=1000, compact_bytes=None)
        await journal.open(resume=False)
        for n in range(20):
            journal.checkpoint_nowait(f"k{n}", "s", "fp", "x" * 100, {})
        with anyio.move_on_after(0.3) as waited:
            await journal.room()
        assert waited.cancelled_caught  # no writer: the queue stays over the limit
        async with anyio.create_task_group() as tg:
            tg.start_soon(journal.room)
            await anyio.lowlevel.checkpoint()
            await journal.flush()
        await journal.room()  # under the limit: returns at once
        await journal.aclose()
        state = await Journal.read(tmp_path / "j.jsonl")
        assert len(state.checkpoints) == 20  # nothing queued was lost

    async def test_under_the_limit_does_not_wait(self, tmp_path: Path) -> None:
        """A queue under the limit never waits."""
        journal = Journal(tmp_path / "j.jsonl", max_pending=1 << 20)
        await journal.open(resume=False)
        journal.done_nowait("k", "ok")
        with anyio.fail_after(1):
            await journal.room()
        await journal.aclose()


class TestRunLock:
    """One run per journal: a second open, or a compaction, fails while a run holds it."""

    async def test_second_open_fails_until_the_first_closes(self, tmp_path: Path) -> None:
        """The second run gets a clear error, and the journal once the first has closed."""
        path = tmp_path / "j.jsonl"
        first, second = Journal(path), Journal(path)
        await first.open(resume=False)
        with pytest.raises(JournalError, match=r"in use by another run \(this process\)"):
            await second.open(resume=True)
        with pytest.raises(JournalError, match="in use by another run") as info:
            await Journal.compact(path)
        # Compacting is no run, to be given another output (a review).
        assert str(info.value).endswith(
            ": wait for it to end, or let it compact the journal itself (a run compacts its "
            "own as it goes)"
        )
        await first.aclose()
        await second.open(resume=True)
        await second.aclose()
        assert await anyio.Path(tmp_path / "j.jsonl.lock").exists()

    @pytest.mark.parametrize("second", ["same path", "same object", "other journal", "none"])
    async def test_a_second_start_leaves_the_first_runs_output_alone(
        self, tmp_path: Path, second: str
    ) -> None:
        """The same job started again while it runs (a cron overlap), even with
        ``overwrite``, stops before its sink touches the output, and closes nothing of
        the first: the first run ends with every line.  With a journal of the same path
        or the very `Journal` object the first run holds, the journal's lock stops it
        (helper-87's audit and helper-91's check: the second start had emptied it); with
        another journal or none, the output's own lock does (helper-91: 588 lines for
        300 items)."""
        from asyncpipe import ConfigError, JsonlSink, Pipeline, Stage

        out, path = tmp_path / "out.jsonl", tmp_path / "out.journal"
        held = Journal(path)
        halfway = anyio.Event()

        async def slow(n: int) -> dict[str, int]:
            if n == 20:
                halfway.set()
            await anyio.sleep(0.01)
            return {"n": n}

        async def start(journal: Journal | None) -> int:
            pipeline = Pipeline([Stage("slow", slow, workers=2)])
            summary = await pipeline.run(
                range(60), sink=JsonlSink(out, overwrite=True), journal=journal
            )
            return summary.ok

        async def first() -> None:
            assert await start(held) == 60

        async with anyio.create_task_group() as tg:
            tg.start_soon(first)
            await halfway.wait()
            await anyio.sleep(0.05)
            written = await anyio.Path(out).read_bytes()
            assert written  # lines are out when the second run starts
            journal = {
                "same path": Journal(path),
                "same object": held,
                "other journal": Journal(tmp_path / "other.journal"),
                "none": None,
            }[second]
            refused = (
                (JournalError, "journal") if second.startswith("same") else (ConfigError, "output")
            )
            with pytest.raises(refused[0], match=f"{refused[1]} .* in use by another run") as info:
                await start(journal)
            # Another run's journal is a usage error too (exit 2, as for the output), not a
            # failed run (exit 1 with "finish the run": round 26's audit).
            assert isinstance(info.value, ConfigError) == (second != "same object")
            assert (await anyio.Path(out).read_bytes()).startswith(written)
        lines = [orjson.loads(line) for line in (await anyio.Path(out).read_bytes()).splitlines()]
        assert [line["value"]["n"] for line in lines] == list(range(60))

    def test_a_killed_holder_leaves_no_stale_lock(self, tmp_path: Path) -> None:
        """SIGKILL of the process holding the lock frees it: the kernel drops it."""
        import signal
        import subprocess
        import sys

        path = tmp_path / "j.jsonl"
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import anyio, sys, time\n"
                "from asyncpipe import Journal\n"
                "journal = Journal(sys.argv[1])\n"
                "anyio.run(lambda: journal.open(resume=False))\n"
                "print('open', flush=True)\n"
                "time.sleep(60)\n",
                str(path),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "open\n"

            async def opens() -> None:
                journal = Journal(path)
                await journal.open(resume=True)
                await journal.aclose()

            with pytest.raises(JournalError, match=f"pid {holder.pid}"):
                anyio.run(opens)
            holder.send_signal(signal.SIGKILL)
            holder.wait(10)
            anyio.run(opens)
        finally:
            holder.kill()
            holder.wait(10)
            if holder.stdout is not None:
                holder.stdout.close()
