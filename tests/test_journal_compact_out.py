"""
``asyncpipe journal compact --out OUTPUT`` takes only the output of the journal's own run.

Compaction drops the checkpoints of the items an output holds written ok whose done
lines the journal lost.  Another run's output over the same inputs holds items this run
never wrote, and taking it at its word would drop the checkpoints a resume needs.  Here
two real runs of ``tests/cliapp.py`` (``asyncpipe run``) go over the same input: the
first is killed with SIGKILL part way and its journal is then cut on disk at a done
line's start, as a power loss leaves it; the second runs to its end.  Each names its run
in its journal and its output's key index, and ``compact`` refuses the second's output
for the first's journal, while it takes the first's own, beside the journal or given.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import anyio
import orjson
import pytest
from clirun import run_cli
from countingruns import APP, LINES, args, ids, killed_run, paid_calls, run_ids

from asyncpipe import Journal, JsonlSink, Pipeline, Stage
from asyncpipe._cli import main
from asyncpipe._journal_state import journal_run, read_all
from asyncpipe._keyindex import index_path, index_run


def _cut(journal: Path, written: set[str]) -> tuple[set[str], set[str]] | None:
    """
    Cut the journal at the start of a done line, as a power loss takes its last lines,
    so that it holds checkpoints of items written (dead: their done lines are gone) and
    of items in flight, not written (checkpointed by ``square``, waiting for ``paid``).
    Returns those two sets (``None``: no cut left both).
    """
    data = journal.read_bytes()
    starts = [0, *(i + 1 for i, byte in enumerate(data[:-1]) if byte == ord("\n"))]
    for at in reversed(starts):
        if not data.startswith(b'{"ev":"done"', at):
            continue
        events = [orjson.loads(line) for line in data[:at].splitlines()]
        checkpointed = {e["k"] for e in events if e["ev"] == "ckpt"}
        done = {e["k"] for e in events if e["ev"] == "done"}
        dead, in_flight = (checkpointed & written) - done, checkpointed - written
        if dead and in_flight:
            with journal.open("r+b") as fh:
                fh.truncate(at)
            return dead, in_flight
    return None


def _cut_run(root: Path) -> tuple[Path, set[str], set[str]]:
    """A killed run whose journal is cut to hold dead and in-flight checkpoints."""
    for attempt in range(5):
        folder = root / f"a{attempt}"
        killed_run(folder)
        found = _cut(folder / "out.jsonl.journal", set(ids(folder / "out.jsonl")))
        if found is not None:
            return folder, *found
    raise AssertionError("no cut of five killed runs' journals left both kinds of item")


class TestAnotherRunsOutput:
    @pytest.mark.timeout(240)
    def test_compact_refuses_another_runs_output_and_takes_its_own(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Another run's output over the same input is refused; the run's own is taken."""
        folder, dead, in_flight = _cut_run(tmp_path)
        journal, out = folder / "out.jsonl.journal", folder / "out.jsonl"
        other = tmp_path / "b"
        other.mkdir()
        (other / "n.txt").write_text((folder / "n.txt").read_text())
        done = run_cli(*args(other, "b"), cwd=other, env=APP, test_apps=True)
        assert done.returncode == 0, done.stderr
        assert set(ids(other / "out.jsonl")) >= dead | in_flight  # every key overlaps
        before = journal.read_bytes()
        checkpoints = set(read_all(journal).checkpoints)
        assert in_flight <= checkpoints

        assert main(["journal", "compact", str(journal), "--out", str(other / "out.jsonl")]) == 2
        said = capsys.readouterr().err
        assert f"{other / 'out.jsonl'} (given as --out) is another run's output" in said
        assert "Give this run's own output as --out OUTPUT" in said
        assert journal.read_bytes() == before  # nothing dropped
        assert main(["journal", "show", str(journal), "--out", str(other / "out.jsonl")]) == 2
        capsys.readouterr()

        # The run's own output, found beside the journal, then given: after the crash it
        # holds lines whose done lines the journal lost, which is what compact is for.
        assert main(["journal", "show", str(journal)]) == 0
        assert f"dead checkpoints: {len(dead)} items written ok to {out}" in capsys.readouterr().out
        assert main(["journal", "compact", str(journal), "--out", str(out)]) == 0
        assert f"dropped those of {len(dead)} items written ok" in capsys.readouterr().out
        after = read_all(journal)
        assert in_flight <= set(after.checkpoints)
        assert not dead & set(after.checkpoints)
        assert journal_run(journal) == index_run(out) != index_run(other / "out.jsonl")

        written = set(ids(out))
        resumed = run_cli(*args(folder, "r"), "--resume", cwd=folder, env=APP, test_apps=True)
        assert resumed.returncode == 0, resumed.stderr
        assert Counter(ids(out)) == Counter(f"n.txt:{n}" for n in range(1, LINES + 1))
        assert not set(paid_calls(folder / "calls.txt", "r")) & written

    def test_an_output_whose_index_names_no_run_is_taken_at_its_word(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With the output's key index deleted nothing says whose it is: it is taken."""
        runs = []
        for name in ("a", "b"):
            folder = tmp_path / name
            folder.mkdir()
            (folder / "n.txt").write_text("1\n2\n")
            done = run_cli(*args(folder, name), cwd=folder, env=APP, test_apps=True)
            assert done.returncode == 0, done.stderr
            runs.append(folder)
        journal, other = runs[0] / "out.jsonl.journal", runs[1] / "out.jsonl"
        assert main(["journal", "compact", str(journal), "--out", str(other)]) == 2
        capsys.readouterr()
        index_path(other).unlink()
        assert main(["journal", "compact", str(journal), "--out", str(other)]) == 0


async def _upper(value: str) -> str:
    return value.upper()


class TestRunId:
    @pytest.mark.anyio
    async def test_the_id_outlasts_compactions_resumes_and_rewrites(self, tmp_path: Path) -> None:
        """A run's id stays in the journal's header and the index, through resumes."""
        journal, out = tmp_path / "run.journal", tmp_path / "out.jsonl"
        pipeline = Pipeline([Stage("upper", _upper, checkpoint=True)])
        await pipeline.run(
            ["a", "b"],
            sink=JsonlSink(out, run_id="r1"),
            journal=Journal(journal, run_id="r1"),
            key=str,
        )
        head = (await anyio.Path(journal).read_bytes()).split(b"\n", 1)[0]
        assert b'"compacted":' in head
        assert await run_ids(journal, out) == ("r1", "r1")
        await pipeline.run(
            ["a", "b", "c"],
            sink=JsonlSink(out),
            journal=Journal(journal),
            key=str,
            resume=True,
        )
        # A Journal given no id: its closing compaction keeps the header's.
        assert await run_ids(journal, out) == ("r1", "r1")
        await anyio.Path(index_path(out)).unlink()
        await pipeline.run(
            ["a", "b", "c", "d"],
            sink=JsonlSink(out, run_id="r1"),
            journal=Journal(journal, run_id="r1"),
            key=str,
            resume=True,
        )
        assert await run_ids(journal, out) == ("r1", "r1")  # the new index names the run

    def test_a_journal_without_an_id_reads_as_none(self, tmp_path: Path) -> None:
        """A journal of an older version names no run: its output is taken at its word."""
        journal = tmp_path / "old.journal"
        journal.write_bytes(b'{"ev":"start","at":1.0,"stages":["a"]}\n')
        assert journal_run(journal) is None
