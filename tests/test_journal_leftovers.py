"""
What a journal keeps of items whose done lines it lost, and a garbled compacted journal.

A journal's done line can be lost while the output holds its item: a crash between the
output's write and the journal's (see ``tests/test_journal_corrupt.py`` for a real
SIGKILL and a line garbled after it), or a corrupt line.  The item is finished (the
sink's keys say so), so its checkpoints are dead weight: the run's closing compaction,
once the output is closed, drops them.  Items written with an error keep theirs (a
``retry_failed`` resume restarts them after their last checkpoint), and so does every
item the output does not hold: dropping one would pay for its call again.

A compacted journal's run of done lines is copied by each compaction unparsed, and a
resume seeks past it: a line in it garbled to the same length was never read again.
The run's compaction now checks the run first, and a corrupt line in it goes the way
of any other: skipped, named, dropped.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

from asyncpipe import Journal, JournalState, JsonlSink, Pipeline, Stage, StageError
from asyncpipe._cli import main
from asyncpipe._journal_state import read_header

KEYS = ["a", "b", "bad", "odd", "c"]


class Paid:
    """Two stages: ``paid`` (checkpointed, counted: a paid call) and ``last``."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    async def paid(self, key: str) -> dict[str, str]:
        self.calls[key] += 1
        return {"key": key}

    async def last(self, value: dict[str, str]) -> Any:
        if value["key"] == "bad":
            raise StageError("last refuses bad")  # an error with a fail line
        if value["key"] == "odd":
            return {1, 2}  # no JSON: the output writes an error record, with no fail line
        return value


async def _arun(
    folder: Path, app: Paid, keys: list[str], *, compact: bool = True, **options: Any
) -> None:
    pipeline = Pipeline([Stage("paid", app.paid, checkpoint=True), Stage("last", app.last)])
    journal = Journal(folder / "out.jsonl.journal", compact_bytes=None if not compact else 1 << 20)
    await pipeline.run(
        keys, sink=JsonlSink(folder / "out.jsonl"), journal=journal, key=str, **options
    )


def _run(folder: Path, app: Paid, keys: list[str], **options: Any) -> None:
    anyio.run(lambda: _arun(folder, app, keys, **options))


def _read(journal: Path) -> JournalState:
    return anyio.run(Journal.read, journal)


def _drop_done_line(journal: Path, key: str) -> None:
    """Take out the item's done line, as a crash between the two writes leaves it."""
    line = orjson.dumps({"ev": "done", "k": key, "status": "ok"}) + b"\n"
    data = journal.read_bytes()
    assert data.count(line) == 1
    journal.write_bytes(data.replace(line, b""))


@pytest.mark.parametrize("compacted", [False, True])
def test_a_resume_drops_checkpoints_of_written_items_only(tmp_path: Path, compacted: bool) -> None:
    """
    The checkpoints of an item the output holds and whose done line the journal lost go
    at the resume's close (they stayed for good); those of the items written with an
    error stay (their done lines in a compacted journal's run of done lines, which the
    resume does not read), and a ``retry_failed`` resume restarts them without a paid
    call.
    """
    journal = tmp_path / "out.jsonl.journal"
    if compacted:
        # The error items' done lines go into the run of done lines; "a" comes later.
        _run(tmp_path, Paid(), [k for k in KEYS if k != "a"])
        assert read_header(journal).done
        _run(tmp_path, Paid(), KEYS, resume=True, compact=False)
    else:
        _run(tmp_path, Paid(), KEYS, compact=False)
    _drop_done_line(journal, "a")
    before = _read(journal)
    assert before.done == {"b": "ok", "bad": "error", "odd": "error", "c": "ok"}
    assert set(before.checkpoints) == set(KEYS) - ({"b", "c"} if compacted else set())

    again = Paid()
    _run(tmp_path, again, KEYS, resume=True)
    assert again.calls == Counter()
    state = _read(journal)
    assert set(state.checkpoints) == {"bad", "odd"}  # "a"'s went (they stayed for good)
    retried = Paid()
    _run(tmp_path, retried, KEYS, resume=True, retry_failed=True)
    assert retried.calls == Counter()  # both restarted after their paid checkpoint


def test_an_unwritten_item_keeps_its_checkpoints(tmp_path: Path) -> None:
    """
    An item paid for and not written keeps its checkpoint through a resume that does not
    reach it (an input list without it): only the output's keys count as written.
    """
    journal = tmp_path / "out.jsonl.journal"
    _run(tmp_path, Paid(), ["a", "b"], compact=False)
    # "a" was paid for by a run killed before its output line: take that line out.
    out = tmp_path / "out.jsonl"
    kept = [line for line in out.read_bytes().splitlines(True) if b'"id":"a"' not in line]
    out.write_bytes(b"".join(kept))
    _drop_done_line(journal, "a")
    _run(tmp_path, Paid(), ["b"], resume=True)
    assert set(_read(journal).checkpoints) == {"a"}
    third = Paid()
    _run(tmp_path, third, ["a", "b"], resume=True)
    assert third.calls == Counter()  # restored from its checkpoint
    assert set(_read(journal).checkpoints) == set()


def test_a_garbled_line_in_the_run_of_done_lines_is_dropped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """
    A done line of a compacted journal garbled to the same length (the header still
    fits) is named by ``show``, and the resume's compaction drops it with a warning that
    names it, as any corrupt line: each compaction copied it on, for good.
    """
    journal = tmp_path / "out.jsonl.journal"
    keys = [f"k{n}" for n in range(6)]
    _run(tmp_path, Paid(), keys)
    layout = read_header(journal)
    lines = journal.read_bytes().splitlines(keepends=True)
    assert lines[3] == b'{"ev":"done","k":"k2","status":"ok"}\n'
    assert sum(map(len, lines[1:7])) == layout.done  # the run of done lines
    lines[3] = b'{"ev":"done","k":"k2\xff\x00'.ljust(len(lines[3]) - 1, b"?") + b"\n"
    journal.write_bytes(b"".join(lines))
    assert read_header(journal) == layout  # it still fits: the resume seeks past it

    assert main(["journal", "show", str(journal)]) == 0
    assert "corrupt (skipped): line 4:" in capsys.readouterr().out
    again = Paid()
    with caplog.at_level(logging.WARNING, logger="asyncpipe.journal"):
        _run(tmp_path, again, keys, resume=True)
    assert again.calls == Counter()  # the output says k2 is written
    assert "compacted without the corrupt line 4 (not a torn tail" in caplog.text
    state = _read(journal)
    assert state.corrupt == [] and set(state.done) == set(keys) - {"k2"}
    assert main(["journal", "show", str(journal)]) == 0
    assert "corrupt" not in capsys.readouterr().out


def test_journal_compact_keeps_the_checkpoints_of_items_written_with_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """
    ``journal compact`` drops the checkpoints of an item the output holds written ok
    whose done line is lost, by the output beside the journal; the items the output
    holds with an error keep theirs (``odd`` has no fail line: only the output says it
    failed), so a ``retry_failed`` resume restarts them with no paid call.  An output
    that is no run's output is refused.
    """
    journal = tmp_path / "out.jsonl.journal"
    _run(tmp_path, Paid(), KEYS, compact=False)
    data = journal.read_bytes()
    for key, status in (("a", "ok"), ("bad", "error"), ("odd", "error")):
        line = orjson.dumps({"ev": "done", "k": key, "status": status}) + b"\n"
        assert data.count(line) == 1
        data = data.replace(line, b"")
    journal.write_bytes(data)  # as a crash between the output's write and the journal's

    assert main(["journal", "show", str(journal)]) == 0
    assert "dead checkpoints: 1 items written ok to" in capsys.readouterr().out
    assert main(["journal", "compact", str(journal), "--out", str(journal)]) == 2
    assert "is not a run's output" in capsys.readouterr().err
    assert set(_read(journal).checkpoints) == set(KEYS)  # refused: nothing rewritten
    assert main(["journal", "compact", str(journal)]) == 0
    assert "dropped those of 1 items written ok to" in capsys.readouterr().out
    assert set(_read(journal).checkpoints) == {"bad", "odd"}
    retried = Paid()
    _run(tmp_path, retried, KEYS, resume=True, retry_failed=True)
    assert retried.calls == Counter()  # both restarted after their paid checkpoint
