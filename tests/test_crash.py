"""
Crash safety: kill -9 the pipeline at random instants, resume until it finishes.

Each case runs ``tests/crashapp.py`` as a real process, kills it with SIGKILL at a
random instant (during start-up, mid-run, near the end; with a small ``fsync_every`` many
kills land in the middle of journal writes), reads the journal and the output after each
kill, and resumes until the app exits 0.  The checks:

- the output and the journal parse after every kill (but for a torn last line);
- no output line is ever duplicated, and at the end every item has exactly one line,
  holding the value of an uninterrupted run;
- no checkpointed stage is called again for an item once its checkpoint was journaled:
  the calls of run ``m`` (from the side file) never include a (key, stage) that was in
  the journal read after the kill before run ``m``.

Two cases make the journal compact after every write, slowly, so that kills land inside
a compaction (the test counts the kills that left its temporary file behind).  After
every kill the output's key index (``out.jsonl.keys``) must claim only what the output
holds: each record's keys, with the records before it, are exactly the ids of the
output's first ``end`` bytes; one case writes it slowly, so that kills tear its records.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from crashapp import expected_value, key_of

from asyncpipe import Journal
from asyncpipe._durable import temporary

APP = Path(__file__).with_name("crashapp.py")
CHECKPOINTED = ("paid", "finish")


@dataclass(frozen=True)
class Case:
    """One crash scenario."""

    name: str
    items: int = 120
    workers: str = "4,2,8,2"
    ordered: bool = False
    fsync_every: int = 1000
    buffer: int = 8
    kills: int = 6
    compact: bool = False
    seed: int = 0
    sleep: float = 0.01
    compact_bytes: int | None = None  # the app's journal compacts as it runs
    pause: float = 0.0  # ...and each compaction sleeps this long at every step
    index_pause: float = 0.0  # each write to the output's key index sleeps half way

    def __str__(self) -> str:
        return self.name


class Files:
    """The files of one case."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.out = root / "out.jsonl"
        self.journal = root / "journal.jsonl"
        self.side = root / "calls.txt"


def start(
    case: Case, files: Files, run_id: int, *, resume: bool, hold: int = -1
) -> subprocess.Popen[bytes]:
    """Start one run of the crash app; with ``hold`` >= 0, its loads after that many hang."""
    args = [
        sys.executable,
        str(APP),
        "--items",
        str(case.items),
        "--out",
        str(files.out),
        "--journal",
        str(files.journal),
        "--side",
        str(files.side),
        "--run-id",
        str(run_id),
        "--workers",
        case.workers,
        "--buffer",
        str(case.buffer),
        "--fsync-every",
        str(case.fsync_every),
        "--seed",
        str(case.seed),
        "--sleep",
        str(case.sleep),
        "--compaction-pause",
        str(case.pause),
        "--index-pause",
        str(case.index_pause),
        "--hold-after",
        str(hold),
    ]
    if case.compact_bytes is not None:
        args += ["--compact-bytes", str(case.compact_bytes)]
    if resume:
        args.append("--resume")
    if case.ordered:
        args.append("--ordered")
    log = open(files.root / f"run{run_id}.log", "wb")  # noqa: SIM115 (closed below)
    try:
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()


def read_output(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Parse the output's whole lines; return them and the size of a torn tail."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0
    whole, _, tail = data.rpartition(b"\n")
    records = [orjson.loads(line) for line in whole.split(b"\n")] if whole else []
    return records, len(tail)


def read_calls(path: Path) -> list[tuple[int, str, str]]:
    """The side file: one (run, key, stage) per checkpointed stage call."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    assert not data or data.endswith(b"\n"), "a side-file line was torn"
    calls = []
    for line in data.decode().splitlines():
        run, key, stage = line.split()
        calls.append((int(run), key, stage))
    return calls


def journaled(path: Path) -> set[tuple[str, str]]:
    """
    The (key, stage) checkpoints in the journal, parsed here (every whole line must parse;
    a torn last line is ignored) and checked against `Journal.read`.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""
    whole = data.rpartition(b"\n")[0]
    events = [orjson.loads(line) for line in whole.split(b"\n")] if whole else []
    found = {(e["k"], e["s"]) for e in events if e["ev"] == "ckpt"}
    state = anyio.run(Journal.read, path)
    assert state.lines == len(events)
    assert {(key, stage) for key, stages in state.checkpoints.items() for stage in stages} == found
    return found


def check_index(out: Path, *, whole: bool = False) -> bool:
    """
    The output's key index claims nothing the output does not hold: each record's keys,
    with the records before it, are exactly the ids of the output's first ``end`` bytes.
    With ``whole``, the index is not torn and covers all the output.  Returns whether its
    last record was torn.
    """
    try:
        data = out.with_name(out.name + ".keys").read_bytes()
    except FileNotFoundError:
        assert not whole
        return False
    output = out.read_bytes()
    body, _, tail = data.rpartition(b"\n")
    lines = body.split(b"\n") if body else []
    if lines:
        assert orjson.loads(lines[0])["ino"] == out.stat().st_ino
    keys: list[str] = []
    end = 0
    for line in lines[1:]:
        record = orjson.loads(line)
        assert record["end"] >= end and record["n"] == len(record["keys"]) > 0
        end = record["end"]
        keys += record["keys"]
        assert output[end - 1 : end] == b"\n"
        ids = [orjson.loads(line)["id"] for line in output[:end].split(b"\n")[:-1]]
        assert sorted(ids) == sorted(keys), f"the index record ending at {end} is wrong"
    if whole:
        assert not tail and end == len(output)
    return bool(tail)


def wait_for_torn_index(proc: subprocess.Popen[bytes], out: Path) -> None:
    """Poll (up to a second) until the key index ends inside a record."""
    index = out.with_name(out.name + ".keys")
    deadline = time.monotonic() + 1.0
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            data = index.read_bytes()
        except FileNotFoundError:
            data = b""
        if data and not data.endswith(b"\n"):
            return
        time.sleep(0.002)


def wait_for_lines(proc: subprocess.Popen[bytes], path: Path, target: int) -> bool:
    """Poll until the output holds ``target`` lines; False if the process ended first."""
    while proc.poll() is None:
        try:
            if path.read_bytes().count(b"\n") >= target:
                return True
        except FileNotFoundError:
            pass
        time.sleep(0.002)
    return False


def check_output(records: list[dict[str, Any]], items: int) -> None:
    """No duplicated line, and every line holds the right value."""
    ids = Counter(r["id"] for r in records)
    duplicated = [key for key, n in ids.items() if n > 1]
    assert not duplicated, f"duplicated output lines: {duplicated}"
    for record in records:
        assert record["status"] == "ok", record
        value = int(record["id"][1:])
        assert 0 <= value < items
        assert record["value"] == expected_value(value)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The output values of one uninterrupted run of 200 items."""
    files = Files(tmp_path_factory.mktemp("reference"))
    case = Case("reference", items=200)
    proc = start(case, files, 0, resume=False)
    assert proc.wait(timeout=60) == 0, (files.root / "run0.log").read_text()
    records, torn = read_output(files.out)
    assert torn == 0
    values = {r["id"]: r["value"] for r in records}
    assert len(values) == len(records) == 200
    assert values == {key_of(n): expected_value(n) for n in range(200)}
    calls = Counter((key, stage) for _, key, stage in read_calls(files.side))
    assert set(calls.values()) == {1}
    assert len(calls) == 2 * 200
    return values


@dataclass(frozen=True)
class KillPlan:
    """When the next kill lands: at ``target`` output lines (None: during start-up)."""

    target: int | None
    hold: int  # the run's loads after this many hang (-1: none), so it cannot finish first


def plan_kill(
    case: Case, files: Files, seen: set[tuple[str, str]], kills: int, rng: random.Random
) -> KillPlan:
    """
    Plan the next kill, spread over the run, and hold the run's loads a few past what its
    target needs: on a loaded machine the last lines come in a burst, and a run left to
    itself could finish before a kill aimed near its end.
    """
    records, _ = read_output(files.out)
    done = len(records)
    finished = {r["id"] for r in records}
    # In input order, the items left, and whether each restarts after a journaled
    # checkpoint (without a load).
    checkpointed = {key for key, _ in seen}
    restored = [
        key in checkpointed for n in range(case.items) if (key := key_of(n)) not in finished
    ]
    room = case.items - max(4, case.items // 8) - done  # lines this run may write first
    left = case.kills - kills
    phase = rng.choice(["startup", "early", "mid", "mid", "mid"])
    if left <= 2 and room > 2:
        phase = "late"
    if phase == "startup" or room < 1:
        target = None
    elif phase == "early":
        target = done + rng.randint(1, min(3, room))
    elif phase == "mid":
        share = max(1, 2 * room // left)  # each kill may use about its share of the room
        target = done + rng.randint(1, min(share, room))
    else:
        target = done + rng.randint(max(1, room - 6), room)
    # The loads the target's lines need, counted as if the output were ordered: the lines
    # before the first held item can always be written.  A few loads more, so that lines
    # are still being written when the kill lands; at least one item is always held.
    needed = 0 if target is None else restored[: target - done].count(False)
    hold = min(needed + rng.randint(0, 4), restored.count(False) - 1)
    return KillPlan(target, hold)


def crash_and_resume(case: Case, root: Path, reference: dict[str, Any]) -> tuple[int, int]:
    """
    Run one case to completion through SIGKILLs; return how many kills landed, and how
    many of them inside a journal compaction (its temporary file was left behind).
    """
    files = Files(root)
    rng = random.Random(f"crash/{case.name}/{case.seed}")
    forbidden: dict[int, set[tuple[str, str]]] = {}
    seen: set[tuple[str, str]] = set()
    kills = mid_compaction = mid_index = 0
    run_id = 0
    while True:
        forbidden[run_id] = set(seen)
        plan = plan_kill(case, files, seen, kills, rng) if kills < case.kills else None
        proc = start(case, files, run_id, resume=run_id > 0, hold=plan.hold if plan else -1)
        killed = False
        if plan is not None:
            if plan.target is None:
                # Before or while the journal and the output are opened (and cut).
                time.sleep(rng.uniform(0.0, 0.3))
                reached = proc.poll() is None
            else:
                reached = wait_for_lines(proc, files.out, plan.target)
                if case.index_pause:
                    wait_for_torn_index(proc, files.out)
                else:
                    time.sleep(rng.uniform(0.0, 0.01))  # land between writes, or in one
            if reached and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed = True
        rc = proc.wait(timeout=60)
        log = (files.root / f"run{run_id}.log").read_text(errors="replace")
        if killed and rc == -signal.SIGKILL:
            kills += 1
            mid_compaction += temporary(files.journal).exists()
            records, _ = read_output(files.out)
            check_output(records, case.items)
            mid_index += check_index(files.out)
            seen |= journaled(files.journal)
            if case.compact and kills % 2 == 0:
                anyio.run(Journal.compact, files.journal)
        else:
            assert rc == 0, f"run {run_id} exited {rc}:\n{log}"
            break
        run_id += 1
        assert run_id < case.kills + 10, "the runs make no progress"

    records, torn = read_output(files.out)
    assert torn == 0
    check_output(records, case.items)
    check_index(files.out, whole=True)
    if case.index_pause:
        assert mid_index >= 1, "no kill landed inside a write to the key index"
    assert {r["id"]: r["value"] for r in records} == {
        key_of(n): reference[key_of(n)] for n in range(case.items)
    }
    state = anyio.run(Journal.read, files.journal)
    assert state.torn == 0

    calls = read_calls(files.side)
    for run, key, stage in calls:
        assert (key, stage) not in forbidden[run], (
            f"run {run} called {stage} for {key} after its checkpoint was journaled"
        )
    called = {(key, stage) for _, key, stage in calls}
    assert seen <= called  # sanity: every journaled checkpoint came from a call
    assert {(key_of(n), s) for n in range(case.items) for s in CHECKPOINTED} <= called
    assert not temporary(files.journal).exists()
    return kills, mid_compaction


FAST = [
    Case("unordered", workers="4,2,8,2", kills=7, seed=1),
    Case(
        "ordered-narrow-fsync1",
        workers="1,1,2,1",
        ordered=True,
        fsync_every=1,
        kills=6,
        seed=2,
        sleep=0.005,
    ),
    Case(
        "unordered-wide-compact", workers="8,4,16,4", fsync_every=2, kills=6, compact=True, seed=3
    ),
    Case(
        "ordered-smallbuf-compact",
        workers="3,2,4,3",
        ordered=True,
        buffer=2,
        fsync_every=5,
        kills=6,
        compact=True,
        seed=4,
    ),
    # The journal is rewritten after every write, slowly: most kills land in a rewrite.
    Case(
        "kill-during-compaction",
        workers="4,2,8,2",
        fsync_every=3,
        kills=6,
        seed=5,
        compact_bytes=1,
        pause=0.02,
    ),
    # Every write to the output's key index pauses half way: kills tear its records.
    Case(
        "ordered-kill-during-index-write",
        workers="2,2,4,2",
        ordered=True,
        kills=6,
        seed=7,
        index_pause=0.1,
    ),
    Case(
        "ordered-kill-during-compaction",
        workers="2,2,4,2",
        ordered=True,
        kills=6,
        seed=6,
        compact_bytes=1,
        pause=0.01,
    ),
]

SLOW = [
    Case("slow-unordered", items=200, workers="6,3,12,3", fsync_every=1, kills=25, seed=11),
    Case(
        "slow-ordered",
        items=200,
        workers="2,2,5,2",
        ordered=True,
        fsync_every=3,
        kills=25,
        compact=True,
        seed=12,
    ),
]

# Every planned kill lands (the runs are held until they are killed): 43 over the fast cases.
assert sum(case.kills for case in FAST) >= 40


class TestCrash:
    @pytest.mark.parametrize("case", FAST, ids=str)
    def test_sigkill_and_resume(
        self, case: Case, tmp_path: Path, reference: dict[str, Any]
    ) -> None:
        """SIGKILL at random instants loses no item, duplicates none, re-runs no checkpoint."""
        kills, mid_compaction = crash_and_resume(case, tmp_path, reference)
        print(f"{case.name}: {kills} kills, {mid_compaction} inside a compaction")
        assert kills == case.kills
        if case.pause:
            assert mid_compaction >= 1

    @pytest.mark.slow
    @pytest.mark.parametrize("case", SLOW, ids=str)
    def test_many_kills(self, case: Case, tmp_path: Path, reference: dict[str, Any]) -> None:
        """Longer runs, more kills, fsync after nearly every journal write."""
        kills, _ = crash_and_resume(case, tmp_path, reference)
        print(f"{case.name}: {kills} kills")
        assert kills == case.kills
