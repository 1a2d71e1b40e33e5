"""
An item written with an error record and no ``fail`` line (an output the sink cannot
encode) whose done line the journal lost keeps its checkpoints through the closing
compaction of a resume: a later ``retry_failed`` resume does not pay for it again.

A real run of ``tests/outputerrorapp.py`` is killed with SIGKILL once the output holds
that item's error line and the journal its done line; the journal is then cut on disk
at that done line, as a power loss takes a journal's last lines and leaves the output's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest
from killing import kill_when
from outputerrorapp import key_of

from asyncpipe._journal_state import read_all

APP = Path(__file__).with_name("outputerrorapp.py")
ITEMS = 10
UNENCODABLE = 2
KEY = key_of(UNENCODABLE)
DONE = b'{"ev":"done","k":"%s"' % KEY.encode()


def _start(root: Path, run: int, *extra: str) -> subprocess.Popen[bytes]:
    args = [
        sys.executable,
        str(APP),
        *("--items", str(ITEMS), "--unencodable", str(UNENCODABLE)),
        *("--out", str(root / "out.jsonl"), "--journal", str(root / "out.jsonl.journal")),
        *("--side", str(root / "calls.txt"), "--run-id", str(run), *extra),
    ]
    with open(root / f"run{run}.log", "wb") as log:
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)


def _records(out: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in out.read_bytes().splitlines()]


def _paid(side: Path, run: int) -> Counter[str]:
    calls = (line.split() for line in side.read_text().splitlines())
    return Counter(key for number, key in calls if int(number) == run)


def _killed_and_cut(root: Path) -> None:
    """
    Run until the journal holds the done line of ``KEY`` (its loads past 6 hang), SIGKILL
    it, and cut its journal on disk at the start of that line.
    """
    journal = root / "out.jsonl.journal"
    proc = _start(root, 0, "--hold-after", "6")
    kill_when(
        proc, lambda: journal.exists() and DONE in journal.read_bytes(), log=root / "run0.log"
    )
    data = journal.read_bytes()
    at = data.index(b"\n" + DONE) + 1
    os.truncate(journal, at)


@pytest.mark.timeout(120)
def test_an_output_error_whose_done_line_is_lost_is_not_paid_for_again(tmp_path: Path) -> None:
    """
    A plain resume's closing compaction keeps the checkpoints of an item the output holds
    as an error record of stage ``output`` whose done line was lost; the ``retry_failed``
    resume restarts it after ``paid`` and pays for no item twice.
    """
    _killed_and_cut(tmp_path)
    out = tmp_path / "out.jsonl"
    journal = tmp_path / "out.jsonl.journal"
    [record] = [r for r in _records(out) if r["id"] == KEY]
    assert record["status"] == "error"
    assert record["error"]["stage"] == "output"  # type: ignore[index]
    before = read_all(journal)
    assert KEY not in before.done and KEY not in before.failed
    assert "paid" in before.checkpoints[KEY]

    plain = _start(tmp_path, 1, "--resume")
    assert plain.wait(timeout=60) == 0, (tmp_path / "run1.log").read_text()
    assert "paid" in read_all(journal).checkpoints.get(KEY, {})

    retry = _start(tmp_path, 2, "--resume", "--retry-failed")
    assert retry.wait(timeout=60) == 0, (tmp_path / "run2.log").read_text()
    records = _records(out)
    assert Counter(r["id"] for r in records) == Counter(key_of(n) for n in range(ITEMS))
    assert [r["status"] for r in records if r["id"] == KEY] == ["error"]  # still unencodable
    paid = _paid(tmp_path / "calls.txt", 0) + _paid(tmp_path / "calls.txt", 1)
    paid += _paid(tmp_path / "calls.txt", 2)
    assert _paid(tmp_path / "calls.txt", 2) == Counter()
    assert max(paid.values()) == 1  # no item paid for twice
