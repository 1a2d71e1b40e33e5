"""
The CRC-32 of a compacted journal's run of done lines, and journals written without one.

Each compaction writes the run's CRC-32 in the header (``"crc"``); the next compaction
checks the run against it before it copies it, which costs a fraction of matching every
line.  A run garbled to the same length (the header still fits) fails the check, and is
read as the rest of the journal is: its corrupt lines are dropped and named.

``tests/data/journal_v0.journal`` was written by the code before the CRC (commit
3b6ca47): a run of ``a``, ``bad-1``, ``é``, ``q"uote`` and ``b`` compacted at its close,
then a resume that added ``c`` and ``bad-2`` without compacting (the ``bad-*`` items fail
in their second stage, after a checkpoint).  ``journal_v0.compacted`` is what that
code's closing compaction made of it, less the header (which holds the time).
"""

from __future__ import annotations

import logging
import shutil
import zlib
from pathlib import Path
from typing import Any

import anyio
import pytest

from asyncpipe import Checkpoint, Journal, JsonlSink, Pipeline, Stage, StageError
from asyncpipe._journal_state import Layout, compact, read_all, read_for_resume, read_header

DATA = Path(__file__).with_name("data")
OLD = DATA / "journal_v0.journal"
DONE = {"a": "ok", "bad-1": "error", "é": "ok", 'q"uote': "ok", "b": "ok", "c": "ok"}
DONE |= {"bad-2": "error"}


def _old(folder: Path) -> Path:
    journal = folder / "out.jsonl.journal"
    shutil.copy(OLD, journal)
    return journal


def _closing_compaction(journal: Path) -> list[str]:
    """Compact as a run's close does (the run of done lines copied); the corrupt lines."""
    return compact(journal, read_header(journal))[3]


def _done_block(journal: Path) -> bytes:
    layout = read_header(journal)
    return journal.read_bytes()[layout.header : layout.tail]


def _garble(journal: Path, key: str) -> None:
    """Write over the ``done`` of the item's done line, as a flipped bit would."""
    data = journal.read_bytes()
    line = b'{"ev":"done","k":"%s",' % key.encode()
    assert data.count(line) == 1
    journal.write_bytes(data.replace(line, line.replace(b"done", b"dXne")))


class TestJournalWithoutCrc:
    """A journal written before the CRC reads, resumes and compacts as it did."""

    def test_it_reads_as_before(self) -> None:
        """Every reader sees in it what the code that wrote it saw."""
        assert read_header(OLD) == Layout(header=68, done=194, size=998, crc=None)
        state = read_all(OLD)
        assert state.done == DONE
        timings = {key: stages["paid"].timings for key, stages in state.checkpoints.items()}
        assert state.checkpoints == {
            key: {"paid": Checkpoint("8b3cdc988644d174", {"key": key}, timings[key])}
            for key in ("bad-1", "c", "bad-2")
        }
        assert {key: error.message for key, error in state.failed.items()} == {
            "bad-1": "last refuses bad-1",
            "bad-2": "last refuses bad-2",
        }
        assert (state.lines, state.torn, state.corrupt) == (14, 0, [])

        resumed, layout = read_for_resume(OLD, done=None, retry_failed=False)
        assert set(resumed.done_keys) == set(DONE)  # type: ignore[call-overload]
        assert (resumed.checkpoints, resumed.failed, resumed.lines) == ({}, {}, 14)
        assert layout == Layout(header=68, done=194, size=998, crc=None)
        retried = read_for_resume(OLD, done=None, retry_failed=True)[0]
        assert set(retried.checkpoints) == set(retried.failed) == {"bad-1", "bad-2"}
        sink = {"a", "é", 'q"uote', "b", "c"}
        seeking = read_for_resume(OLD, done=sink, retry_failed=True)[0]
        assert set(seeking.checkpoints) == set(seeking.failed) == {"bad-1", "bad-2"}
        assert seeking.lines == 8  # the run of done lines sought past, unread

    def test_its_compaction_writes_what_it_did_and_a_crc(self, tmp_path: Path) -> None:
        """
        A run's closing compaction writes the lines the old code wrote, and a header with
        the run's CRC-32; the next compaction, checked by it, changes nothing.
        """
        journal = _old(tmp_path)
        assert _closing_compaction(journal) == []
        first, body = journal.read_bytes().split(b"\n", 1)
        assert body == (DATA / "journal_v0.compacted").read_bytes()
        assert read_header(journal).crc == zlib.crc32(_done_block(journal))
        assert b',"crc":%d' % zlib.crc32(_done_block(journal)) in first
        assert read_all(journal).done == DONE

        assert _closing_compaction(journal) == []
        assert journal.read_bytes().split(b"\n", 1)[1] == body
        assert read_header(journal).crc == zlib.crc32(_done_block(journal))

    def test_a_done_line_garbled_to_its_length_is_still_dropped(self, tmp_path: Path) -> None:
        """With no CRC to check it by, the run of done lines is matched line by line."""
        journal = _old(tmp_path)
        _garble(journal, "b")
        assert read_header(journal).done == 194  # it still fits
        assert _closing_compaction(journal) == ["line 6"]
        assert read_all(journal).done == {key: s for key, s in DONE.items() if key != "b"}
        assert read_header(journal).crc == zlib.crc32(_done_block(journal))


async def _paid(key: str) -> dict[str, str]:
    return {"key": key}


async def _last(value: dict[str, str]) -> Any:
    if value["key"].startswith("bad"):
        raise StageError(f"last refuses {value['key']}")
    return value


def _run(folder: Path, keys: list[str], **options: Any) -> None:
    """A real run of two stages, its journal compacted at its close."""
    pipeline = Pipeline([Stage("paid", _paid, checkpoint=True), Stage("last", _last)])
    journal = Journal(folder / "out.jsonl.journal", compact_bytes=1 << 20)
    sink = JsonlSink(folder / "out.jsonl")
    anyio.run(lambda: pipeline.run(keys, sink=sink, journal=journal, key=str, **options))


class TestCrc:
    """A compacted journal's header holds its run of done lines' CRC-32."""

    KEYS = [f"k{n}" for n in range(5)] + ["bad-1", "é"]

    def test_a_run_writes_it(self, tmp_path: Path) -> None:
        """A run's closing compaction writes the CRC of the run of done lines it wrote."""
        _run(tmp_path, self.KEYS)
        journal = tmp_path / "out.jsonl.journal"
        assert read_header(journal).done > 0
        assert read_header(journal).crc == zlib.crc32(_done_block(journal))

    def test_a_done_line_garbled_to_its_length_fails_it(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """
        A done line of the run garbled on disk to the same length fails the check: the
        resume's compaction reads the run line by line, drops the line and names it, and
        writes the CRC of the run it kept.
        """
        _run(tmp_path, self.KEYS)
        journal = tmp_path / "out.jsonl.journal"
        layout = read_header(journal)
        _garble(journal, "k2")
        assert read_header(journal) == layout  # it still fits: only the CRC tells
        with caplog.at_level(logging.WARNING, logger="asyncpipe.journal"):
            _run(tmp_path, self.KEYS, resume=True)
        assert "compacted without the corrupt line 4 (not a torn tail" in caplog.text
        state = read_all(journal)
        assert state.corrupt == [] and set(state.done) == set(self.KEYS) - {"k2"}
        assert set(state.checkpoints) == {"bad-1"}
        assert read_header(journal).crc == zlib.crc32(_done_block(journal))

    def test_a_garbled_crc_loses_nothing(self, tmp_path: Path) -> None:
        """A CRC garbled in the header fails the check too, and every line is kept."""
        _run(tmp_path, self.KEYS)
        journal = tmp_path / "out.jsonl.journal"
        crc = read_header(journal).crc
        assert crc is not None
        data = journal.read_bytes()
        wrong = b"%d" % (crc ^ 1)
        journal.write_bytes(data.replace(b"%d" % crc, wrong.ljust(len(b"%d" % crc)), 1))
        assert read_header(journal).crc == crc ^ 1
        assert _closing_compaction(journal) == []
        assert set(read_all(journal).done) == set(self.KEYS)
        assert read_header(journal).crc == zlib.crc32(_done_block(journal)) == crc
