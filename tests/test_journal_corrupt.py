"""
A corrupt line in the middle of a real journal, one rule for the run and the tools.

A real run of ``tests/crashapp.py`` (its ``paid`` stage stands for a paid LLM call, and
each of its calls is counted in a side file) is killed with SIGKILL part way.  Its
journal then has lines corrupted in the middle, as a reviewer did with ``sed``: a done
line of an item the output holds, and the ``paid`` checkpoint of an item it does not.
A torn last line is added too: the journal's whole-line writes leave none after a real
SIGKILL, so it is written here, as a write cut by a power loss would leave it.

The rule (see ``asyncpipe._journal_state.EventReader``): a corrupt line is skipped and
named, by the resume (a warning), by ``journal show``, and by ``compact``, which drops
it.  It costs at most the redo of what it held: the lost done line costs nothing (the
output says what is written, and no line is written twice), the lost checkpoint one
``paid`` call for its item; every other item is neither called again nor written again.
Before, the resume and both tools stopped with "corrupt at line N: move it aside to
start over", and following that advice with ``--overwrite`` redid every paid call.
"""

from __future__ import annotations

import subprocess
from functools import partial
from pathlib import Path

import anyio
import orjson
import pytest
from crashapp import calls_of, expected_value, key_of, launch, written_ids
from killing import kill_when

from asyncpipe import Journal
from asyncpipe._cli import main

ITEMS = 40


def _start(root: Path, run: int, *, resume: bool, hold: int) -> subprocess.Popen[bytes]:
    return launch(root, run, resume=resume, hold=hold, items=ITEMS, journal="j.journal")


def _in_flight(root: Path) -> set[str]:
    """The items with a journaled ``paid`` checkpoint and no output line yet."""
    paid = set()
    for line in (root / "j.journal").read_bytes().splitlines(keepends=True):
        if line.endswith(b"\n"):
            event = orjson.loads(line)
            if event["ev"] == "ckpt" and event["s"] == "paid":
                paid.add(event["k"])
    return paid - set(written_ids(root / "out.jsonl"))


def _killable(root: Path) -> bool:
    """
    Whether the output holds 10 lines and the journal the ``paid`` checkpoints of two
    items not written yet, or the output all 20 lines the run can write.
    """
    if not ((root / "out.jsonl").exists() and (root / "j.journal").exists()):
        return False
    written = len(written_ids(root / "out.jsonl"))
    return written >= 20 or (written >= 10 and len(_in_flight(root)) >= 2)


def _killed_run(root: Path) -> Path:
    """
    Run until the output holds 10 lines and the journal the ``paid`` checkpoints of items
    not written yet (its loads past 20 hang, so it cannot finish), then SIGKILL it.  A
    run that writes its 20 items before the kill lands is tried again, in a new folder.

    Returns:
        The folder of the run killed as planned.
    """
    for attempt in range(5):
        folder = root / f"try{attempt}"
        folder.mkdir()
        proc = _start(folder, 0, resume=False, hold=20)
        kill_when(proc, partial(_killable, folder), log=folder / "run0.log")
        if _in_flight(folder):
            return folder
    raise AssertionError("every item paid for was written before each kill landed")


def _corrupt(journal: Path, written: set[str]) -> tuple[int, int, str, str]:
    """
    Garble the done line of an item in the output and the ``paid`` checkpoint of one not
    in it (and with no ``finish`` checkpoint), as ``sed -i 'Ns/.*/.../'`` does; add a torn
    tail.  Returns the two line numbers, the item whose checkpoint is lost and the one
    whose done line is.
    """
    lines = journal.read_bytes().splitlines()
    events = [orjson.loads(line) for line in lines]
    finished = {e["k"] for e in events if e["ev"] == "ckpt" and e["s"] == "finish"}
    done_at = next(i for i, e in enumerate(events) if e["ev"] == "done" and e["k"] in written)
    lost_at, lost = next(
        (i, e["k"])
        for i, e in enumerate(events)
        if e["ev"] == "ckpt" and e["s"] == "paid" and e["k"] not in written | finished
    )
    assert 0 < done_at < len(lines) - 1 and 0 < lost_at < len(lines) - 1  # in the middle
    lines[done_at] = b'{"ev":"done","k":"k00GARBAGE'
    lines[lost_at] = lines[lost_at][: len(lines[lost_at]) // 2] + b"\x00\xff garbage"
    journal.write_bytes(b"\n".join(lines) + b'\n{"ev":"ckpt","k":"k0039","s":"pa')
    return done_at + 1, lost_at + 1, lost, events[done_at]["k"]


def test_a_corrupt_line_costs_only_what_it_held(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """
    A real journal cut by SIGKILL and corrupted in the middle: ``journal show`` names the
    lines (exit 0; it exited 1 naming only the first), the resume skips them with a
    warning and finishes with every item written once, calling ``paid`` again only for
    the item whose checkpoint was lost, and its compaction drops them.
    """
    tmp_path = _killed_run(tmp_path)
    journal = tmp_path / "j.journal"
    written = set(written_ids(tmp_path / "out.jsonl"))
    assert 10 <= len(written) < ITEMS
    # The paid calls whose checkpoints the killed run journaled (a call may be in the side
    # file and not in the journal: killed before its checkpoint was written).
    paid_before = {
        e["k"]
        for e in map(orjson.loads, journal.read_bytes().splitlines())
        if e["ev"] == "ckpt" and e["s"] == "paid"
    }
    done_line, lost_line, lost, undone = _corrupt(journal, written)

    capsys.readouterr()
    assert main(["journal", "show", str(journal)]) == 0
    said = capsys.readouterr().out
    first, second = sorted((done_line, lost_line))
    assert f"corrupt (skipped): 2 lines (line {first}, line {second})" in said, said

    proc = _start(tmp_path, 1, resume=True, hold=-1)
    assert proc.wait(timeout=60) == 0, (tmp_path / "run1.log").read_text()
    log = (tmp_path / "run1.log").read_text()
    assert f"skipped the corrupt 2 lines (line {first}, line {second})" in log, log

    ids = written_ids(tmp_path / "out.jsonl")
    assert sorted(ids) == sorted(key_of(n) for n in range(ITEMS))  # each item once
    for line in (tmp_path / "out.jsonl").read_bytes().splitlines():
        record = orjson.loads(line)
        assert record["value"] == expected_value(int(record["id"][1:]))
    # Paid again: the items the killed run journaled no paid checkpoint of, and the one
    # whose checkpoint line was lost; none written before, each once.
    paid = calls_of(tmp_path / "calls.txt", 1)
    again = {key for key, stage in paid if stage == "paid"}
    assert again == {key_of(n) for n in range(ITEMS)} - paid_before | {lost}
    assert lost in paid_before and not again & written
    assert set(paid.values()) == {1}

    state = anyio.run(Journal.read, journal)
    assert state.corrupt == [] and state.torn == 0  # the run's compaction dropped them
    # The journal no longer says the item whose done line was lost is done; the output
    # does (as for an item whose line was written and whose done line the kill lost).
    assert undone not in state.done and set(state.done) <= set(ids)
    # Nor does it keep that item's checkpoints: its output line is durable, so they are
    # dead weight (each compaction kept them, for good).  No item keeps any.
    assert undone in written and state.checkpoints == {}
    capsys.readouterr()
    assert main(["journal", "show", str(journal)]) == 0
    assert "; 0 items not done ok with checkpoints;" in capsys.readouterr().out


def test_compact_drops_what_show_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """
    ``journal compact`` of that journal drops the corrupt lines and says so (it exited 1),
    keeping every checkpoint and done line around them; ``show`` then names none.
    """
    tmp_path = _killed_run(tmp_path)
    journal = tmp_path / "j.journal"
    written = set(written_ids(tmp_path / "out.jsonl"))
    _, _, lost, _ = _corrupt(journal, written)
    before = anyio.run(Journal.read, journal)

    # Items with checkpoints, counted the same before and after compacting (it counted
    # those of items done too: 242 before, 2 after).
    kept = len({key for key in before.checkpoints if before.done.get(key) != "ok"})
    assert 0 < kept < len(before.checkpoints)
    capsys.readouterr()
    assert main(["journal", "show", str(journal)]) == 0
    assert f"; {kept} items not done ok with checkpoints;" in capsys.readouterr().out
    assert main(["journal", "compact", str(journal)]) == 0
    said = capsys.readouterr().out
    assert "dropped the corrupt 2 lines (line " in said, said
    after = anyio.run(Journal.read, journal)
    assert (after.corrupt, after.torn) == ([], 0)
    assert after.done == before.done
    assert lost not in after.checkpoints or "paid" not in after.checkpoints[lost]
    unfinished = {key for key in before.checkpoints if key not in before.done}
    assert {key: after.checkpoints[key] for key in unfinished} == {
        key: before.checkpoints[key] for key in unfinished
    }
    assert main(["journal", "show", str(journal)]) == 0
    said = capsys.readouterr().out
    assert "corrupt" not in said and f"; {kept} items not done ok with checkpoints;" in said
