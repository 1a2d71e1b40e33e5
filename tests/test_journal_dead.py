"""
``asyncpipe journal show|compact`` and dead checkpoints, on a real run killed with SIGKILL.

A dead checkpoint belongs to an item the output holds written ok whose done line the
journal lost: a power loss takes the journal's last lines and leaves the output's, which
was fsynced later.  Here a real run of ``tests/crashapp.py`` (its ``paid`` stage stands
for a paid LLM call, each counted in a side file) is killed with SIGKILL part way, and
its journal is then cut on disk at a line's start, as such a loss leaves it.  The
commands find the output beside the journal (``out.jsonl`` for ``out.jsonl.journal``,
as a run names its journal) or take ``--out``: ``show`` counts the dead checkpoints,
``compact`` drops them and keeps those of the items the output lacks, and the resume
then pays for no item twice.
"""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from pathlib import Path

import orjson
import pytest
from crashapp import calls_of, expected_value, key_of, launch, written_ids
from killing import kill_when

from asyncpipe._cli import main
from asyncpipe._journal_state import read_all

ITEMS = 40


def _start(root: Path, run: int, *, resume: bool, hold: int) -> subprocess.Popen[bytes]:
    return launch(root, run, resume=resume, hold=hold, items=ITEMS, journal="out.jsonl.journal")


def _killed_run(root: Path) -> None:
    """Run until the output holds 12 lines (its loads past 20 hang), then SIGKILL it."""
    out = root / "out.jsonl"
    proc = _start(root, 0, resume=False, hold=20)
    kill_when(proc, lambda: out.exists() and len(written_ids(out)) >= 12, log=root / "run0.log")


def _after_cut(journal: Path, written: set[str], cut: int) -> tuple[set[str], set[str]]:
    """
    The items whose checkpoints lie before ``cut``: written, their done lines not (dead),
    and not written (paid for, in flight).
    """
    head = journal.read_bytes()[:cut]
    events = [orjson.loads(line) for line in head.splitlines()]
    paid = {e["k"] for e in events if e["ev"] == "ckpt"}
    done = {e["k"] for e in events if e["ev"] == "done"}
    return (paid & written) - done, paid - written


def _cut_run(root: Path) -> tuple[Path, set[str]]:
    """
    A run killed with SIGKILL whose journal, cut on disk at the start of a done line as
    a power loss takes its last lines, holds dead checkpoints and those of items paid
    for and not written (a run killed too early or too late for both is run again, in a
    new folder).  Returns the folder and the dead checkpoints' items.
    """
    for attempt in range(5):
        folder = root / f"try{attempt}"
        folder.mkdir()
        _killed_run(folder)
        journal = folder / "out.jsonl.journal"
        written = set(written_ids(folder / "out.jsonl"))
        data = journal.read_bytes()
        starts = [0, *(i + 1 for i, byte in enumerate(data[:-1]) if byte == ord("\n"))]
        done = [at for at in starts if data.startswith(b'{"ev":"done"', at)]
        best = max(done, key=lambda at: min(map(len, _after_cut(journal, written, at))))
        dead, in_flight = _after_cut(journal, written, best)
        if dead and in_flight:
            os.truncate(journal, best)
            return folder, dead
    raise AssertionError("no cut of five killed runs' journals left both kinds of item")


@pytest.mark.timeout(180)
def test_compact_drops_the_dead_checkpoints_of_a_killed_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """
    After a SIGKILL and a journal cut on disk, ``show`` counts the items written whose
    done lines are gone, with the output found beside the journal or given by ``--out``;
    ``compact`` drops their checkpoints (they stayed for good) and keeps those of the
    items paid for and not written; the resume then calls ``paid`` only for items with
    no checkpoint, and writes every item once.
    """
    folder, dead = _cut_run(tmp_path)
    journal, out = folder / "out.jsonl.journal", folder / "out.jsonl"
    written = set(written_ids(out))
    state = read_all(journal)
    kept = set(state.checkpoints) - dead - {k for k, s in state.done.items() if s == "ok"}
    assert kept and not kept & written
    paid_before = {k for k, stages in state.checkpoints.items() if "paid" in stages}

    assert main(["journal", "show", str(journal)]) == 0
    shown = capsys.readouterr().out
    assert f"dead checkpoints: {len(dead)} items written ok to {out} whose done lines" in shown
    moved = folder / "elsewhere.jsonl"
    out.rename(moved)
    assert main(["journal", "show", str(journal)]) == 0
    assert f"dead checkpoints: not counted, no output at {out}" in capsys.readouterr().out
    assert main(["journal", "show", str(journal), "--out", str(moved)]) == 0
    said = capsys.readouterr().out
    assert f"dead checkpoints: {len(dead)} items written ok to {moved}" in said
    moved.rename(out)

    assert main(["journal", "compact", str(journal)]) == 0
    assert f"dropped those of {len(dead)} items written ok to {out}" in capsys.readouterr().out
    after = read_all(journal)
    assert set(after.checkpoints) == kept  # the items paid for and not written keep theirs
    assert not set(after.checkpoints) & written
    assert main(["journal", "show", str(journal)]) == 0
    assert "dead checkpoints: 0 items" in capsys.readouterr().out

    resumed = _start(folder, 1, resume=True, hold=-1)
    assert resumed.wait(timeout=120) == 0, (folder / "run1.log").read_text()
    ids = written_ids(out)
    assert Counter(ids) == Counter(key_of(n) for n in range(ITEMS))  # each written once
    for line in out.read_bytes().splitlines():
        record = orjson.loads(line)
        assert record["value"] == expected_value(int(record["id"][1:]))
    paid_again = {key for key, stage in calls_of(folder / "calls.txt", 1) if stage == "paid"}
    assert not paid_again & (written | paid_before)
