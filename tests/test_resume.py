from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

from asyncpipe import (
    ConfigError,
    Item,
    Journal,
    JournalError,
    JsonlSink,
    Pipeline,
    Retry,
    Sink,
    Stage,
    StageError,
)

pytestmark = pytest.mark.anyio

KEYS = [f"k{n:02d}" for n in range(12)]


class Boxed:
    """A stage output that is not JSON-safe, so its stage needs encode/decode."""

    def __init__(self, text: str) -> None:
        self.text = text


class Recorder:
    """Deterministic stages that count their calls, and can hang or fail chosen keys."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.decoded = 0
        self.hang: dict[str, set[str]] = {}
        self.fail: dict[str, set[str]] = {}

    def _enter(self, stage: str, key: str) -> None:
        self.calls[stage, key] += 1
        if key in self.fail.get(stage, set()):
            raise StageError(f"{stage} refuses {key}")

    async def _maybe_hang(self, stage: str, key: str) -> None:
        if key in self.hang.get(stage, set()):
            await anyio.sleep_forever()

    async def a(self, key: str) -> dict[str, str]:
        self._enter("a", key)
        await self._maybe_hang("a", key)
        return {"key": key, "a": key.upper()}

    def b(self, value: dict[str, str]) -> dict[str, str]:
        self._enter("b", value["key"])
        return {**value, "b": value["a"] + "!"}

    async def c(self, value: dict[str, str]) -> tuple[str, Boxed]:
        self._enter("c", value["key"])
        await self._maybe_hang("c", value["key"])
        return value["key"], Boxed(value["b"] * 2)

    async def d(self, value: tuple[str, Boxed]) -> dict[str, str]:
        key, boxed = value
        self._enter("d", key)
        await self._maybe_hang("d", key)
        return {"key": key, "d": boxed.text.lower()}

    def decode(self, data: list[str]) -> tuple[str, Boxed]:
        self.decoded += 1
        return data[0], Boxed(data[1])

    def stages(self, versions: dict[str, str] | None = None) -> list[Stage]:
        v = versions or {}
        once = Retry(attempts=1)
        return [
            Stage("a", self.a, workers=3, checkpoint=True, version=v.get("a", "1"), retry=once),
            Stage("b", self.b, kind="thread", workers=2, version=v.get("b", "1"), retry=once),
            Stage(
                "c",
                self.c,
                workers=4,
                checkpoint=True,
                version=v.get("c", "1"),
                retry=once,
                encode=lambda out: [out[0], out[1].text],
                decode=self.decode,
            ),
            Stage("d", self.d, workers=4, checkpoint=True, version=v.get("d", "1"), retry=once),
        ]

    def called(self, stage: str) -> set[str]:
        return {key for (s, key), n in self.calls.items() if s == stage and n}


def expected(key: str) -> dict[str, str]:
    """The final value of an item, computed by hand."""
    return {"key": key, "d": ((key.upper() + "!") * 2).lower()}


async def read_output(path: Path) -> list[dict[str, Any]]:
    """Parse every line of a sink file; the file must end on a whole line."""
    data = await anyio.Path(path).read_bytes()
    assert not data or data.endswith(b"\n")
    return [orjson.loads(line) for line in data.splitlines()]


async def assert_complete(path: Path, keys: Iterable[str]) -> None:
    """Each key has exactly one ok line holding the expected value."""
    records = await read_output(path)
    ids = [r["id"] for r in records]
    assert sorted(ids) == sorted(keys)
    for record in records:
        assert record["status"] == "ok", record
        assert record["value"] == expected(record["id"])


async def interrupted_run(
    recorder: Recorder,
    tmp_path: Path,
    keys: Sequence[str],
    *,
    ordered: bool = False,
    compact: bool = True,
    journal: Journal | None = None,
) -> None:
    """Run until every item that does not hang is written, then cancel the run."""
    sink = JsonlSink(tmp_path / "out.jsonl")
    if journal is None:
        journal = Journal(tmp_path / "j.jsonl", compact_bytes=None if not compact else 1)
    hung = set().union(*recorder.hang.values()) if recorder.hang else set()
    pipeline = Pipeline(recorder.stages())
    async with anyio.create_task_group() as tg:
        tg.start_soon(
            lambda: pipeline.run(keys, sink=sink, journal=journal, key=str, ordered=ordered)
        )
        with anyio.fail_after(10):
            # Ordered output holds back the items after a hung one, so wait for the stage
            # calls rather than for the output lines.
            while not (  # noqa: ASYNC110 (polls the stages' call counts)
                all(recorder.calls["d", key] for key in set(keys) - hung)
                and all(
                    recorder.calls[stage, key]
                    for stage, stuck in recorder.hang.items()
                    for key in stuck
                )
                and (ordered or sink.lines_written == len(set(keys) - hung))
            ):
                await anyio.sleep(0.01)
        await anyio.sleep(0.05)
        tg.cancel_scope.cancel()


async def resume(
    recorder: Recorder,
    tmp_path: Path,
    keys: Sequence[str],
    *,
    retry_failed: bool = False,
    versions: dict[str, str] | None = None,
    sink: Sink | None = None,
) -> Any:
    pipeline = Pipeline(recorder.stages(versions))
    return await pipeline.run(
        keys,
        sink=sink if sink is not None else JsonlSink(tmp_path / "out.jsonl"),
        journal=Journal(tmp_path / "j.jsonl"),
        resume=True,
        retry_failed=retry_failed,
        key=str,
    )


class TestResumeSkipsDone:
    async def test_finished_run_resumes_to_nothing(self, tmp_path: Path) -> None:
        """Resuming a finished run runs no stage and writes no line."""
        first = Recorder()
        await Pipeline(first.stages()).run(
            KEYS,
            sink=JsonlSink(tmp_path / "out.jsonl"),
            journal=Journal(tmp_path / "j.jsonl"),
            key=str,
        )
        await assert_complete(tmp_path / "out.jsonl", KEYS)
        state = await Journal.read(tmp_path / "j.jsonl")
        assert state.done == dict.fromkeys(KEYS, "ok")

        again = Recorder()
        summary = await resume(again, tmp_path, KEYS)
        assert not again.calls
        assert (summary.ok, summary.skipped) == (0, len(KEYS))
        await assert_complete(tmp_path / "out.jsonl", KEYS)

    async def test_new_items_run_old_ones_skip(self, tmp_path: Path) -> None:
        """Resuming with more input runs only the new items."""
        await Pipeline(Recorder().stages()).run(
            KEYS[:5],
            sink=JsonlSink(tmp_path / "out.jsonl"),
            journal=Journal(tmp_path / "j.jsonl"),
            key=str,
        )
        again = Recorder()
        summary = await resume(again, tmp_path, KEYS)
        assert again.called("a") == set(KEYS[5:])
        assert (summary.ok, summary.skipped) == (7, 5)
        await assert_complete(tmp_path / "out.jsonl", KEYS)

    @pytest.mark.parametrize("compacted", [False, True])
    async def test_sink_is_the_truth_not_the_journal(self, tmp_path: Path, compacted: bool) -> None:
        """An item the journal calls done but whose line is missing runs again, once."""
        # Without compaction the journal is as a power loss leaves it: the run died before
        # its close, and a compaction during the run keeps its last seconds as they are.
        await Pipeline(Recorder().stages()).run(
            KEYS,
            sink=JsonlSink(tmp_path / "out.jsonl"),
            journal=Journal(tmp_path / "j.jsonl", compact_bytes=None if not compacted else 1),
            key=str,
        )
        records = await read_output(tmp_path / "out.jsonl")
        lost = records.pop()["id"]
        await anyio.Path(tmp_path / "out.jsonl").write_bytes(
            b"".join(orjson.dumps(r) + b"\n" for r in records)
        )
        again = Recorder()
        await resume(again, tmp_path, KEYS)
        if compacted:
            # After a clean close the sink was fsynced, and the journal dropped what was
            # finished: a line lost after that (a hand edit) is computed again.
            assert set(again.calls.values()) == {1}
            assert {key for _, key in again.calls} == {lost}
        else:
            # Its checkpoint at "d" is still journaled, so no stage runs again.
            assert not again.calls
        await assert_complete(tmp_path / "out.jsonl", KEYS)
        assert (await read_output(tmp_path / "out.jsonl"))[-1]["id"] == lost


class TestRestartAtFirstUnfinishedStage:
    @pytest.mark.parametrize("ordered", [False, True])
    async def test_restart_after_last_checkpoint(self, tmp_path: Path, ordered: bool) -> None:
        """Items restart after their last checkpoint, with its value decoded."""
        first = Recorder()
        first.hang = {"c": {"k01", "k02"}, "d": {"k03", "k04"}}
        await interrupted_run(first, tmp_path, KEYS, ordered=ordered)
        state = await Journal.read(tmp_path / "j.jsonl")
        assert set(state.checkpoints["k01"]) == {"a"}
        assert set(state.checkpoints["k03"]) == {"a", "c"}
        assert state.checkpoints["k03"]["c"].output == ["k03", "K03!K03!"]
        written = len(await read_output(tmp_path / "out.jsonl"))
        # Ordered output held back the items behind the first hung one (k01).
        assert written == (1 if ordered else len(KEYS) - 4)

        second = Recorder()
        summary = await resume(second, tmp_path, KEYS)
        assert (summary.ok, summary.skipped) == (len(KEYS) - written, written)
        assert second.called("a") == set()
        # b is not checkpointed: items restarting after "a" run it again; after "c" they do not.
        assert second.called("b") == second.called("c") == {"k01", "k02"}
        assert second.called("d") == {"k01", "k02", "k03", "k04"}
        assert second.decoded == 2
        assert max(second.calls.values()) == 1
        await assert_complete(tmp_path / "out.jsonl", KEYS)

    async def test_checkpoints_survive_a_second_interruption(self, tmp_path: Path) -> None:
        """A resumed run that is interrupted again still resumes after the old checkpoints."""
        first = Recorder()
        first.hang = {"d": {"k05"}}
        await interrupted_run(first, tmp_path, KEYS)
        second = Recorder()
        second.hang = {"d": {"k05"}}
        pipeline = Pipeline(second.stages())
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                lambda: pipeline.run(
                    KEYS,
                    sink=JsonlSink(tmp_path / "out.jsonl"),
                    journal=Journal(tmp_path / "j.jsonl"),
                    resume=True,
                    key=str,
                )
            )
            with anyio.fail_after(10):
                while not second.calls["d", "k05"]:  # noqa: ASYNC110 (polls a call count)
                    await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
        assert set(second.calls) == {("d", "k05")}
        third = Recorder()
        await resume(third, tmp_path, KEYS)
        assert set(third.calls) == {("d", "k05")}
        await assert_complete(tmp_path / "out.jsonl", KEYS)


class TestCompaction:
    async def test_compacting_after_every_write_keeps_resume_exact(self, tmp_path: Path) -> None:
        """A journal rewritten after every write still restarts items after their checkpoint."""
        first = Recorder()
        first.hang = {"c": {"k01", "k02"}, "d": {"k03", "k04"}}
        journal = Journal(tmp_path / "j.jsonl", compact_bytes=1, compact_grace=0.0)
        await interrupted_run(first, tmp_path, KEYS, journal=journal)
        assert journal.compactions >= 2  # during the run, and at its close
        state = await Journal.read(tmp_path / "j.jsonl")
        # Only the unfinished items keep checkpoints; the finished ones keep a done line.
        assert set(state.checkpoints) == {"k01", "k02", "k03", "k04"}
        assert set(state.done) == set(KEYS) - {"k01", "k02", "k03", "k04"}

        second = Recorder()
        pipeline = Pipeline(second.stages())
        again = Journal(tmp_path / "j.jsonl", compact_bytes=1, compact_grace=0.0)
        summary = await pipeline.run(
            KEYS, sink=JsonlSink(tmp_path / "out.jsonl"), journal=again, resume=True, key=str
        )
        assert (summary.ok, summary.skipped) == (4, len(KEYS) - 4)
        assert second.called("a") == set()
        assert second.called("b") == second.called("c") == {"k01", "k02"}
        assert second.called("d") == {"k01", "k02", "k03", "k04"}
        assert max(second.calls.values()) == 1
        await assert_complete(tmp_path / "out.jsonl", KEYS)
        final = await Journal.read(tmp_path / "j.jsonl")
        assert final.checkpoints == {}
        assert final.done == dict.fromkeys(KEYS, "ok")

    async def test_finished_run_leaves_only_done_lines(self, tmp_path: Path) -> None:
        """At the end of a run the journal holds a header and one done line per item."""
        await Pipeline(Recorder().stages()).run(
            KEYS,
            sink=JsonlSink(tmp_path / "out.jsonl"),
            journal=Journal(tmp_path / "j.jsonl"),
            key=str,
        )
        lines = (await anyio.Path(tmp_path / "j.jsonl").read_bytes()).splitlines()
        events = [orjson.loads(line) for line in lines]
        assert events[0]["ev"] == "start"
        assert sorted(e["k"] for e in events[1:] if e["ev"] == "done") == KEYS
        assert len(events) == 1 + len(KEYS)

    async def test_failed_items_keep_checkpoints_for_retry(self, tmp_path: Path) -> None:
        """Compaction keeps the checkpoints of failed items, so retry_failed resumes them."""
        first = Recorder()
        first.fail = {"d": {"k02"}}
        await Pipeline(first.stages()).run(
            KEYS,
            sink=JsonlSink(tmp_path / "out.jsonl"),
            journal=Journal(tmp_path / "j.jsonl", compact_bytes=1, compact_grace=0.0),
            key=str,
        )
        state = await Journal.read(tmp_path / "j.jsonl")
        assert set(state.checkpoints) == {"k02"}
        assert set(state.checkpoints["k02"]) == {"a", "c"}
        retry = Recorder()
        summary = await resume(retry, tmp_path, KEYS, retry_failed=True)
        assert (summary.ok, summary.skipped) == (1, len(KEYS) - 1)
        assert set(retry.calls) == {("d", "k02")}
        await assert_complete(tmp_path / "out.jsonl", KEYS)


class TestVersionChange:
    @pytest.mark.parametrize(
        ("versions", "rerun"),
        [
            ({"d": "2"}, {"d"}),
            ({"c": "2"}, {"b", "c", "d"}),  # restarts after a, the last valid checkpoint
            ({"b": "2"}, {"b", "c", "d"}),  # b is not checkpointed, but c and d depend on it
            ({"a": "2"}, {"a", "b", "c", "d"}),
        ],
    )
    async def test_version_change_invalidates_later_checkpoints(
        self, tmp_path: Path, versions: dict[str, str], rerun: set[str]
    ) -> None:
        """A new stage version re-runs that stage and every stage after it."""
        first = Recorder()
        first.hang = {"d": {"k00"}}
        # k00 hangs in d after checkpointing a and c; with the output line removed below,
        # k01 is an item whose every stage is checkpointed (in a journal not compacted).
        await interrupted_run(first, tmp_path, KEYS[:2], compact=False)
        await anyio.Path(tmp_path / "out.jsonl").write_bytes(b"")
        second = Recorder()
        await resume(second, tmp_path, KEYS[:2], versions=versions)
        ran = {stage for stage, _ in second.calls}
        # k00 had no "d" checkpoint, so "d" always runs for it.
        assert ran == rerun | {"d"}
        assert {stage for stage, key in second.calls if key == "k01"} == rerun
        await assert_complete(tmp_path / "out.jsonl", KEYS[:2])


class TestRetryFailed:
    async def _failing_run(self, tmp_path: Path) -> Recorder:
        first = Recorder()
        first.fail = {"d": {"k02", "k07"}, "b": {"k09"}}
        summary = await Pipeline(first.stages()).run(
            KEYS,
            sink=JsonlSink(tmp_path / "out.jsonl"),
            journal=Journal(tmp_path / "j.jsonl"),
            key=str,
        )
        assert (summary.ok, summary.failed) == (9, 3)
        return first

    async def test_failed_items_are_kept_without_retry_failed(self, tmp_path: Path) -> None:
        """A plain resume leaves error records alone."""
        await self._failing_run(tmp_path)
        again = Recorder()
        summary = await resume(again, tmp_path, KEYS)
        assert not again.calls
        assert summary.skipped == len(KEYS)
        statuses = Counter(r["status"] for r in await read_output(tmp_path / "out.jsonl"))
        assert statuses == {"ok": 9, "error": 3}

    @pytest.mark.parametrize("compact", [False, True])
    async def test_retry_failed_reruns_from_last_checkpoint(
        self, tmp_path: Path, compact: bool
    ) -> None:
        """retry_failed runs failed items again after their checkpoint: one line per item."""
        await self._failing_run(tmp_path)
        if compact:
            await Journal.compact(tmp_path / "j.jsonl")
        again = Recorder()
        summary = await resume(again, tmp_path, KEYS, retry_failed=True)
        assert (summary.ok, summary.failed, summary.skipped) == (3, 0, 9)
        # k02 and k07 failed in d, after their checkpoints at a and c; k09 failed in b.
        assert again.called("a") == set()
        assert again.called("b") == again.called("c") == {"k09"}
        assert again.called("d") == {"k02", "k07", "k09"}
        await assert_complete(tmp_path / "out.jsonl", KEYS)


class TestJsonlSink:
    async def test_torn_tail_of_output_is_cut_and_item_written_once(self, tmp_path: Path) -> None:
        """A torn last output line is cut off and its item written again, exactly once."""
        # A torn line means a crash: the journal is as the crash left it, not compacted.
        await Pipeline(Recorder().stages()).run(
            KEYS,
            sink=JsonlSink(tmp_path / "out.jsonl"),
            journal=Journal(tmp_path / "j.jsonl", compact_bytes=None),
            key=str,
        )
        out = anyio.Path(tmp_path / "out.jsonl")
        data = await out.read_bytes()
        cut = data.rstrip(b"\n").rfind(b"\n") + 1
        torn_key = orjson.loads(data[cut:])["id"]
        await out.write_bytes(data[: cut + 20])  # the last line loses its end
        again = Recorder()
        summary = await resume(again, tmp_path, KEYS)
        assert (summary.ok, summary.skipped) == (1, len(KEYS) - 1)
        assert not again.calls  # its last checkpoint is journaled
        await assert_complete(tmp_path / "out.jsonl", KEYS)
        assert (await read_output(tmp_path / "out.jsonl"))[-1]["id"] == torn_key

    async def test_corrupt_output_mid_file_is_refused(self, tmp_path: Path) -> None:
        """A bad output line followed by good ones raises instead of cutting results off."""
        good = orjson.dumps({"id": "k00", "status": "ok"}) + b"\n"
        data = good + b"garbage\n" + good.replace(b"k00", b"k01")
        await anyio.Path(tmp_path / "out.jsonl").write_bytes(data)
        with pytest.raises(JournalError, match="line 2"):
            await JsonlSink(tmp_path / "out.jsonl").open(resume=True, retry_failed=False)
        assert await anyio.Path(tmp_path / "out.jsonl").read_bytes() == data

    async def test_corrupt_line_past_the_key_index_is_named_from_the_start(
        self, tmp_path: Path
    ) -> None:
        """A bad line after the part the key index vouches for is named by its line in the
        file, as an editor counts (round 24's audit: 'line 84 after byte 33661' for the
        file's line 250)."""
        out = tmp_path / "out.jsonl"
        await Pipeline(Recorder().stages()).run(KEYS, sink=JsonlSink(out), key=str)
        async with await anyio.open_file(out, "ab") as fh:
            await fh.write(b"\n")
        assert await anyio.Path(out.with_name(out.name + ".keys")).exists()
        with pytest.raises(JournalError, match=f"corrupt at line {len(KEYS) + 1} \\(not"):
            await JsonlSink(out).open(resume=True, retry_failed=False)

    async def test_refuses_to_overwrite_without_resume(self, tmp_path: Path) -> None:
        """An existing non-empty output is not replaced unless overwrite=True."""
        await Pipeline(Recorder().stages()).run(
            KEYS[:3],
            sink=JsonlSink(tmp_path / "out.jsonl"),
            journal=Journal(tmp_path / "j.jsonl"),
            key=str,
        )
        before = await anyio.Path(tmp_path / "out.jsonl").read_bytes()
        with pytest.raises(ConfigError, match="exists"):
            await Pipeline(Recorder().stages()).run(
                KEYS, sink=JsonlSink(tmp_path / "out.jsonl"), key=str
            )
        assert await anyio.Path(tmp_path / "out.jsonl").read_bytes() == before

        again = Recorder()
        await Pipeline(again.stages()).run(
            KEYS, sink=JsonlSink(tmp_path / "out.jsonl", overwrite=True), key=str
        )
        assert again.called("a") == set(KEYS)
        await assert_complete(tmp_path / "out.jsonl", KEYS)

    async def test_empty_output_may_be_reused(self, tmp_path: Path) -> None:
        """An existing empty output file is no reason to refuse."""
        await anyio.Path(tmp_path / "out.jsonl").write_bytes(b"")
        await Pipeline(Recorder().stages()).run(
            KEYS, sink=JsonlSink(tmp_path / "out.jsonl"), key=str
        )
        await assert_complete(tmp_path / "out.jsonl", KEYS)

    async def test_refused_overwrite_keeps_the_journal(self, tmp_path: Path) -> None:
        """Forgetting --resume is refused before the journal (and its paid checkpoints) is wiped."""
        first = Recorder()
        first.hang = {"d": {"k00", "k01"}}
        await interrupted_run(first, tmp_path, KEYS)
        before = await anyio.Path(tmp_path / "j.jsonl").read_bytes()
        with pytest.raises(ConfigError, match="exists"):
            await Pipeline(Recorder().stages()).run(
                KEYS,
                sink=JsonlSink(tmp_path / "out.jsonl"),
                journal=Journal(tmp_path / "j.jsonl"),
                key=str,
            )
        assert await anyio.Path(tmp_path / "j.jsonl").read_bytes() == before
        again = Recorder()
        await resume(again, tmp_path, KEYS)
        assert set(again.calls) == {("d", "k00"), ("d", "k01")}


class _ListSink(Sink):
    """A sink that cannot tell what it holds: open() returns None."""

    def __init__(self, items: list[Item]) -> None:
        self.items = items

    async def write(self, items: Sequence[Item]) -> None:
        self.items.extend(items)


class TestJournalFallback:
    async def test_done_lines_decide_when_the_sink_cannot(self, tmp_path: Path) -> None:
        """With a sink whose open() returns None, the journal's done lines say what to skip."""
        written: list[Item] = []
        first = Recorder()
        first.fail = {"c": {"k03"}}
        await Pipeline(first.stages()).run(
            KEYS, sink=_ListSink(written), journal=Journal(tmp_path / "j.jsonl"), key=str
        )
        assert len(written) == len(KEYS)

        again = Recorder()
        summary = await resume(again, tmp_path, KEYS, sink=_ListSink(written))
        assert not again.calls
        assert summary.skipped == len(KEYS)

        retry = Recorder()
        summary = await resume(retry, tmp_path, KEYS, retry_failed=True, sink=_ListSink(written))
        assert set(retry.calls) == {("b", "k03"), ("c", "k03"), ("d", "k03")}
        assert (summary.ok, summary.skipped) == (1, len(KEYS) - 1)

    async def test_callback_sink_resume(self, tmp_path: Path) -> None:
        """A plain callback sink resumes from the journal too."""
        seen: list[str] = []

        async def collect(item: Item) -> None:
            seen.append(item.key)

        await Pipeline(Recorder().stages()).run(
            KEYS[:4], sink=collect, journal=Journal(tmp_path / "j.jsonl"), key=str
        )
        again = Recorder()
        await Pipeline(again.stages()).run(
            KEYS, sink=collect, journal=Journal(tmp_path / "j.jsonl"), resume=True, key=str
        )
        assert sorted(seen) == KEYS
        assert again.called("a") == set(KEYS[4:])


class TestConfiguration:
    async def test_duplicate_keys_with_a_journal(self, tmp_path: Path) -> None:
        """Two inputs with one key are one item: the later one is skipped and counted, and
        the run (and a resume) ends with every key once (round 24's audit: the run stopped
        at the duplicate, and so did every resume, so it could never finish)."""
        out = tmp_path / "out.jsonl"
        values = [*KEYS[:5], KEYS[3], *KEYS[5:], KEYS[0]]
        for resume in (False, True):
            summary = await Pipeline(Recorder().stages()).run(
                values,
                sink=JsonlSink(out),
                journal=Journal(tmp_path / "j.jsonl"),
                key=str,
                resume=resume,
            )
            lines = [
                orjson.loads(line)["id"]
                for line in (await anyio.Path(out).read_bytes()).splitlines()
            ]
            assert lines == KEYS
            assert summary.duplicates == (0 if resume else 2)  # resumed: both were done

    async def test_a_record_without_its_key_is_refused(self, tmp_path: Path) -> None:
        """A custom record that writes another id than the item's key stops the run at the
        first line, before any is written (round 24's audit: every resume wrote every item
        again, as the output never held their keys)."""

        def record(item: Item) -> dict[str, Any]:
            return {"id": item.key.upper(), "value": item.value}

        out = tmp_path / "out.jsonl"
        with pytest.raises(ConfigError, match="must put the item's key in 'id': it put 'A'"):
            await Pipeline(Recorder().stages()).run(
                ["a", "b"], sink=JsonlSink(out, record=record), key=str
            )
        assert await anyio.Path(out).read_bytes() == b""
        # A number whose text is the key is the key, as resume reads it back (helper-95).

        def numbered(item: Item) -> dict[str, Any]:
            return {"id": int(item.key), "value": item.value}

        await Pipeline(Recorder().stages()).run(
            ["1", "2"], sink=JsonlSink(out, record=numbered, overwrite=True), key=str
        )
        assert (await anyio.Path(out).read_bytes()).count(b"\n") == 2

    async def test_a_key_that_is_not_a_str(self, tmp_path: Path) -> None:
        """A key function returning an int is a ConfigError saying so (round 24's audit:
        "'int' object has no attribute 'isascii'")."""
        with pytest.raises(ConfigError, match="the key function returned int 3 for input 0"):
            await Pipeline(Recorder().stages()).run(
                [3, 4], sink=JsonlSink(tmp_path / "out.jsonl"), key=lambda value: value
            )

    async def test_a_key_that_is_not_utf8_text(self, tmp_path: Path) -> None:
        """A key holding a file name's bytes that are not UTF-8 (a lone surrogate) is a
        ConfigError naming it, before anything is written (the journal used to fail on
        it with a TypeError)."""
        name = os.fsdecode(b"re\xe7u.jpg")
        with pytest.raises(ConfigError, match=r"not UTF-8 text"):
            await Pipeline(Recorder().stages()).run(
                [name],
                sink=JsonlSink(tmp_path / "out.jsonl"),
                journal=Journal(tmp_path / "j.jsonl"),
                key=str,
            )

    async def test_duplicate_keys_without_a_journal(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Without a journal too, two inputs with one key are one item, with the journal
        path's warning: JsonlSink wrote the id twice (h6's p7_misuse)."""
        out = tmp_path / "out.jsonl"
        values = [*KEYS[:5], KEYS[3], *KEYS[5:], KEYS[0]]
        summary = await Pipeline(Recorder().stages()).run(values, sink=JsonlSink(out), key=str)
        data = await anyio.Path(out).read_bytes()
        assert [orjson.loads(line)["id"] for line in data.splitlines()] == KEYS
        assert summary.ok == len(KEYS) and summary.duplicates == 2
        assert f"input 5 has the key {KEYS[3]!r} of an earlier input: skipped" in caplog.text

    async def test_positional_keys_are_never_duplicates(self) -> None:
        """With no key function, equal values are distinct items (their positions)."""
        summary = await Pipeline(Recorder().stages()).run(["a", "a", "a"])
        assert summary.ok == 3 and summary.duplicates == 0

    async def test_resume_needs_a_journal(self) -> None:
        """resume without a journal is a ConfigError."""
        with pytest.raises(ConfigError, match="journal"):
            await Pipeline(Recorder().stages()).run(KEYS, key=str, resume=True)

    async def test_retry_failed_needs_resume(self, tmp_path: Path) -> None:
        """retry_failed without resume is a ConfigError."""
        with pytest.raises(ConfigError, match="resume"):
            await Pipeline(Recorder().stages()).run(
                KEYS, key=str, journal=Journal(tmp_path / "j.jsonl"), retry_failed=True
            )

    async def test_corrupt_journal_stops_resume(self, tmp_path: Path) -> None:
        """Resume refuses a journal corrupt mid-file and does not touch it."""
        data = b"garbage\n" + orjson.dumps({"ev": "done", "k": "k00", "status": "ok"}) + b"\n"
        await anyio.Path(tmp_path / "j.jsonl").write_bytes(data)
        with pytest.raises(JournalError, match="line 1"):
            await resume(Recorder(), tmp_path, KEYS)
        assert await anyio.Path(tmp_path / "j.jsonl").read_bytes() == data
