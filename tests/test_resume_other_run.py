"""
A resume refuses an output of another run than its journal's, and a library run gives
its journal and its `JsonlSink` one id of its own accord.

Resuming a journal into another run's output would take that run's items for its own,
done, and drop the journal's checkpoints of them: the items the journal's run left
unfinished would lose theirs and never be written.  The journal's first line and the
output's key index name their runs; where both do and the names differ, the resume
stops before it changes a byte.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import anyio
import orjson
import pytest
from clirun import run_cli
from countingruns import APP, LINES, args, ids, killed_run, paid_calls, run_ids

from asyncpipe import ConfigError, Journal, JsonlSink, Pipeline, Stage
from asyncpipe._cli import main
from asyncpipe._journal_state import journal_run
from asyncpipe._keyindex import index_path, index_run


def _unfinished(journal: Path, written: set[str]) -> dict[str, set[str]]:
    """The stages each item not in ``written`` has a checkpoint of, by its key."""
    stages: dict[str, set[str]] = {}
    for line in journal.read_bytes().splitlines():
        event = orjson.loads(line)
        if event["ev"] == "ckpt" and event["k"] not in written:
            stages.setdefault(event["k"], set()).add(event["s"])
    return stages


def _files(*paths: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in paths}


class TestCommand:
    @pytest.mark.timeout(240)
    def test_a_resume_into_another_runs_output_is_refused_and_changes_nothing(
        self, tmp_path: Path
    ) -> None:
        """``run --resume --out B --journal A`` exits 2, files unchanged, then A resumes."""
        mine = tmp_path / "a"
        killed_run(mine)
        journal, out = mine / "out.jsonl.journal", mine / "out.jsonl"
        written = set(ids(out))
        unfinished = _unfinished(journal, written)
        assert unfinished  # items in flight when it was killed, checkpointed
        other = tmp_path / "b"
        other.mkdir()
        (other / "n.txt").write_text((mine / "n.txt").read_text())
        done = run_cli(*args(other, "b"), cwd=other, env=APP, test_apps=True)
        assert done.returncode == 0, done.stderr
        theirs = other / "out.jsonl"
        before = _files(journal, out, index_path(out), theirs, index_path(theirs))

        wrong = ["n.txt", "--out", str(theirs), "--journal", str(journal)]
        opened = tmp_path / "opened.txt"  # the app writes it as it opens
        refused = run_cli(
            *wrong, "--side", str(mine / "calls.txt"), "--run-id", "x", "--resume",
            "--env-log", str(opened), cwd=mine, env=APP, test_apps=True,
        )  # fmt: skip
        assert refused.returncode == 2, refused.stderr
        said = " ".join(refused.stderr.split())
        assert f"{theirs} is another run's output, not the one of the journal {journal}" in said
        assert (
            f"names the run {index_run(theirs)}, the journal the run {journal_run(journal)}" in said
        )
        assert "Resume with the journal that belongs to" in said
        assert "or start a new run" in said
        assert _files(*before) == before
        assert not paid_calls(mine / "calls.txt", "x")
        assert not opened.exists()  # refused before the app started

        # The journal's own resume finishes the run; no paid call is made again.
        resumed = run_cli(*args(mine, "r"), "--resume", cwd=mine, env=APP, test_apps=True)
        assert resumed.returncode == 0, resumed.stderr
        assert Counter(ids(out)) == Counter(f"n.txt:{n}" for n in range(1, LINES + 1))
        paid = {key for key, stages in unfinished.items() if "paid" in stages}
        assert not set(paid_calls(mine / "calls.txt", "r")) & (written | paid)


async def _upper(value: str) -> str:
    return value.upper()


async def _snapshot(*paths: Path) -> dict[Path, bytes]:
    return await anyio.to_thread.run_sync(_files, *paths)


PIPELINE = Pipeline([Stage("upper", _upper, checkpoint=True)])


async def _run(folder: Path, values: list[str], *, resume: bool = False) -> None:
    await PIPELINE.run(
        values,
        sink=JsonlSink(folder / "out.jsonl"),
        journal=Journal(folder / "run.journal"),
        key=str,
        resume=resume,
    )


class TestLibrary:
    @pytest.mark.anyio
    async def test_a_run_gives_its_journal_and_sink_one_id(self, tmp_path: Path) -> None:
        """A new run's id is new and both files hold it; a resume keeps it."""
        first, second = tmp_path / "a", tmp_path / "b"
        await _run(first, ["a", "b"])
        await _run(second, ["a", "b"])
        ours = await run_ids(first / "run.journal", first / "out.jsonl")
        theirs = await run_ids(second / "run.journal", second / "out.jsonl")
        assert ours[0] is not None and ours[0] == ours[1]
        assert theirs[0] is not None and theirs[0] == theirs[1] != ours[0]
        await anyio.Path(index_path(first / "out.jsonl")).unlink()  # the resume writes anew
        await _run(first, ["a", "b", "c"], resume=True)
        assert await run_ids(first / "run.journal", first / "out.jsonl") == ours

    @pytest.mark.anyio
    async def test_a_resume_into_another_runs_output_is_refused(self, tmp_path: Path) -> None:
        """The journal of one library run and the output of another: refused, unchanged."""
        first, second = tmp_path / "a", tmp_path / "b"
        await _run(first, ["a"])
        await _run(second, ["a", "b"])
        journal, theirs = first / "run.journal", second / "out.jsonl"
        files = await _snapshot(journal, theirs, index_path(theirs))
        with pytest.raises(ConfigError, match="another run's output") as raised:
            await PIPELINE.run(
                ["a", "b", "c"],
                sink=JsonlSink(theirs),
                journal=Journal(journal),
                key=str,
                resume=True,
            )
        assert str(journal) in str(raised.value) and str(theirs) in str(raised.value)
        assert await _snapshot(*files) == files
        # And ``journal compact`` refuses it as it does a command's run's.
        code = await anyio.to_thread.run_sync(
            main, ["journal", "compact", str(journal), "--out", str(theirs)]
        )
        assert code == 2

    @pytest.mark.anyio
    async def test_an_output_naming_no_run_is_taken_at_its_word(self, tmp_path: Path) -> None:
        """An index without an id (an older version's, or none) is no reason to refuse."""
        first, second = tmp_path / "a", tmp_path / "b"
        await _run(first, ["a"])
        await _run(second, ["a", "b"])
        keys = index_path(second / "out.jsonl")
        head, rest = (await anyio.Path(keys).read_bytes()).split(b"\n", 1)
        header = orjson.loads(head)
        header.pop("run", None)
        await anyio.Path(keys).write_bytes(orjson.dumps(header) + b"\n" + rest)
        summary = await PIPELINE.run(
            ["a", "b", "c"],
            sink=JsonlSink(second / "out.jsonl"),
            journal=Journal(first / "run.journal"),
            key=str,
            resume=True,
        )
        assert (summary.skipped, summary.ok) == (2, 1)

    @pytest.mark.anyio
    async def test_ids_given_by_hand_are_kept_and_must_agree(self, tmp_path: Path) -> None:
        """``run_id=`` given to both is the run's; different ones are refused."""
        journal, out = tmp_path / "run.journal", tmp_path / "out.jsonl"
        await PIPELINE.run(
            ["a"], sink=JsonlSink(out, run_id="r1"), journal=Journal(journal, run_id="r1"), key=str
        )
        assert await run_ids(journal, out) == ("r1", "r1")
        files = await _snapshot(journal, out, index_path(out))
        with pytest.raises(ConfigError, match=r"run_id \(r1\) and the sink's \(r2\) differ"):
            await PIPELINE.run(
                ["a", "b"],
                sink=JsonlSink(out, run_id="r2"),
                journal=Journal(journal, run_id="r1"),
                key=str,
                resume=True,
            )
        assert await _snapshot(*files) == files
