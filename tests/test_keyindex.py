"""
The JSON-lines sink's key index (``out.jsonl.keys``) and the source's fast skip of the
output's keys: resume reads the index instead of the output, and never trusts it past
what the output holds.  (Kills inside index writes: ``tests/test_crash.py``.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

from asyncpipe import Journal, JsonlSink, Pipeline, Stage
from asyncpipe import _sink as sink_module
from asyncpipe._durable import LineScanner
from asyncpipe._keyindex import index_path

pytestmark = pytest.mark.anyio

KEYS = [f"k{n:04d}" for n in range(300)]


class Calls:
    """A one-stage pipeline that notes the keys it runs."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    async def stage(self, key: str) -> dict[str, str]:
        self.keys.append(key)
        return {"v": key.upper()}

    async def run(
        self, folder: Path, keys: list[str], *, resume: bool, retry_failed: bool = False
    ) -> Any:
        return await Pipeline([Stage("s", self.stage, checkpoint=True)]).run(
            keys,
            sink=JsonlSink(folder / "out.jsonl", fsync_interval=0.0),
            journal=Journal(folder / "j.jsonl"),
            resume=resume,
            retry_failed=retry_failed,
            key=str,
        )


def output_ids(folder: Path) -> list[str]:
    return [orjson.loads(line)["id"] for _, line in LineScanner(folder / "out.jsonl")]


def index_records(folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    lines = index_path(folder / "out.jsonl").read_bytes().splitlines()
    return orjson.loads(lines[0]), [orjson.loads(line) for line in lines[1:]]


async def check_index_whole(folder: Path) -> None:
    """`index_whole`, off the event loop."""
    await anyio.to_thread.run_sync(index_whole, folder)


async def ids_of(folder: Path) -> list[str]:
    """`output_ids`, off the event loop."""
    return await anyio.to_thread.run_sync(output_ids, folder)


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


def overwrite(path: Path, data: bytes, *, truncate: int | None = None) -> None:
    """Write ``data`` over the start of ``path``, in place (the same inode)."""
    with open(path, "r+b") as fh:
        fh.write(data)
        if truncate is not None:
            fh.truncate(truncate)


def index_whole(folder: Path) -> None:
    """The index names the output, and lists its keys up to its last byte."""
    header, records = index_records(folder)
    out = folder / "out.jsonl"
    assert header["ino"] == out.stat().st_ino
    assert records[-1]["end"] == out.stat().st_size
    assert sorted(key for r in records for key in r["keys"]) == sorted(output_ids(folder))


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The offsets the sink starts its scans of the output at."""
    starts: list[int] = []

    class Spy(LineScanner):
        def __init__(self, path: Path, **kwargs: Any) -> None:
            super().__init__(path, **kwargs)
            if path.name == "out.jsonl":
                starts.append(self.start)

    monkeypatch.setattr(sink_module, "LineScanner", Spy)
    return starts


class TestKeyIndex:
    async def test_a_run_indexes_every_key(self, tmp_path: Path) -> None:
        """After a run the index lists every key of the output, up to its end."""
        await Calls().run(tmp_path, KEYS, resume=False)
        await check_index_whole(tmp_path)

    async def test_resume_reads_the_index_not_the_output(
        self, tmp_path: Path, scans: list[int]
    ) -> None:
        """The output is scanned only past the index; the resume is exact."""
        await Calls().run(tmp_path, KEYS[:200], resume=False)
        size = (await anyio.Path(tmp_path / "out.jsonl").stat()).st_size
        scans.clear()
        calls = Calls()
        summary = await calls.run(tmp_path, KEYS, resume=True)
        assert scans == [size]
        assert summary.skipped == 200 and sorted(calls.keys) == KEYS[200:]
        assert sorted(await ids_of(tmp_path)) == KEYS
        await check_index_whole(tmp_path)

    async def test_output_past_the_index_is_scanned(self, tmp_path: Path) -> None:
        """Lines written after the last record (a crash before the fsync) still count."""
        await Calls().run(tmp_path, KEYS[:100], resume=False)
        lines = [orjson.dumps({"id": key, "status": "ok", "value": {}}) for key in KEYS[100:150]]
        # What a crashed run left, and a torn line.
        data = b"\n".join(lines) + b'\n{"id":"k0150","sta'
        await anyio.to_thread.run_sync(append, tmp_path / "out.jsonl", data)
        calls = Calls()
        await calls.run(tmp_path, KEYS, resume=True)
        assert sorted(calls.keys) == KEYS[150:]
        assert sorted(await ids_of(tmp_path)) == KEYS
        await check_index_whole(tmp_path)

    async def test_a_replaced_output_is_scanned_whole(
        self, tmp_path: Path, scans: list[int]
    ) -> None:
        """A new file with other lines (its inode may be the old one's, reused)."""
        await Calls().run(tmp_path, KEYS[:200], resume=False)
        out = anyio.Path(tmp_path / "out.jsonl")
        lines = (await out.read_bytes()).splitlines(keepends=True)
        await out.unlink()
        await out.write_bytes(b"".join(lines[100:150]))
        scans.clear()
        calls = Calls()
        await calls.run(tmp_path, KEYS, resume=True)
        assert scans == [0]
        assert sorted(calls.keys) == KEYS[:100] + KEYS[150:]
        assert sorted(await ids_of(tmp_path)) == KEYS
        await check_index_whole(tmp_path)

    async def test_an_output_cut_short_keeps_the_records_that_fit(
        self, tmp_path: Path, scans: list[int]
    ) -> None:
        """Records past the end of the output are dropped; those before it stand."""
        await Calls().run(tmp_path, KEYS[:100], resume=False)
        first = (await anyio.Path(tmp_path / "out.jsonl").stat()).st_size
        await Calls().run(tmp_path, KEYS[:200], resume=True)
        await anyio.to_thread.run_sync(  # the same file, cut
            lambda: overwrite(tmp_path / "out.jsonl", b"", truncate=first + 10)
        )
        scans.clear()
        calls = Calls()
        await calls.run(tmp_path, KEYS, resume=True)
        assert scans == [first]
        assert sorted(calls.keys) == KEYS[100:]
        assert sorted(await ids_of(tmp_path)) == KEYS
        await check_index_whole(tmp_path)

    async def test_an_output_edited_in_place_is_scanned_whole(
        self, tmp_path: Path, scans: list[int]
    ) -> None:
        """The last indexed line no longer holds the last indexed key: no index."""
        await Calls().run(tmp_path, KEYS[:100], resume=False)
        out = tmp_path / "out.jsonl"
        lines = (await anyio.Path(out).read_bytes()).splitlines(keepends=True)
        edited = b"".join(lines[:-1]) + lines[-1].replace(b"k0099", b"x0099")
        await anyio.to_thread.run_sync(overwrite, out, edited)  # same inode, same size
        scans.clear()
        calls = Calls()
        await calls.run(tmp_path, KEYS, resume=True)
        assert scans == [0]
        assert sorted(calls.keys) == KEYS[99:]
        await check_index_whole(tmp_path)

    @pytest.mark.parametrize("garbage", [b'{"end":12', b"\0" * 40, b"not json\n"])
    async def test_a_torn_index_record_is_cut(
        self, tmp_path: Path, scans: list[int], garbage: bytes
    ) -> None:
        """A torn (or zeroed) last record is dropped; the records before it are used."""
        await Calls().run(tmp_path, KEYS[:100], resume=False)
        size = (await anyio.Path(tmp_path / "out.jsonl").stat()).st_size
        await anyio.to_thread.run_sync(append, index_path(tmp_path / "out.jsonl"), garbage)
        scans.clear()
        calls = Calls()
        await calls.run(tmp_path, KEYS, resume=True)
        assert scans == [size]
        assert sorted(calls.keys) == KEYS[100:]
        await check_index_whole(tmp_path)

    async def test_retry_failed_rewrites_the_output_and_its_index(self, tmp_path: Path) -> None:
        """Dropping error lines makes a new file: its index starts again, and is right."""
        failing = {"k0003", "k0010"}

        class Failing(Calls):
            async def stage(self, key: str) -> dict[str, str]:
                if key in failing:
                    raise ValueError(key)
                return await super().stage(key)

        await Failing().run(tmp_path, KEYS[:50], resume=False)
        calls = Calls()
        await calls.run(tmp_path, KEYS, resume=True, retry_failed=True)
        assert sorted(calls.keys) == sorted([*failing, *KEYS[50:]])
        assert sorted(await ids_of(tmp_path)) == KEYS
        await check_index_whole(tmp_path)
        again = Calls()
        await again.run(tmp_path, KEYS, resume=True)
        assert again.keys == []

    async def test_superseded_lines_leave_the_output_and_its_index(self, tmp_path: Path) -> None:
        """Lines a resumed run supersedes leave the output as it closes, once the lines
        that replace them are in it (one whose replacement is not stays); the index of
        the new file is right, and the next resume runs nothing."""
        await Calls().run(tmp_path, KEYS[:50], resume=False)
        old = {"k0003", "k0010"}
        replaced = {"k0003": ["k0050"], "k0010": ["k0051", "k0052"], "k0020": ["k0099"]}
        calls = Calls()
        await Pipeline([Stage("s", calls.stage)]).run(
            KEYS[50:60],
            sink=JsonlSink(tmp_path / "out.jsonl", superseded=lambda: replaced),
            journal=Journal(tmp_path / "j.jsonl"),
            resume=True,
            key=str,
        )
        assert calls.keys == KEYS[50:60]
        assert await ids_of(tmp_path) == [k for k in KEYS[:60] if k not in old]
        await check_index_whole(tmp_path)
        again = Calls()
        await again.run(tmp_path, [k for k in KEYS[:60] if k not in old], resume=True)
        assert again.keys == []

    async def test_a_fresh_run_starts_a_new_index(self, tmp_path: Path) -> None:
        """Overwriting the output starts its index afresh."""
        await Calls().run(tmp_path, KEYS[:100], resume=False)
        await Pipeline([Stage("s", Calls().stage)]).run(
            KEYS[100:120],
            sink=JsonlSink(tmp_path / "out.jsonl", overwrite=True),
            journal=Journal(tmp_path / "j.jsonl"),
            key=str,
        )
        await check_index_whole(tmp_path)
        _, records = await anyio.to_thread.run_sync(index_records, tmp_path)
        assert records[0]["keys"][0] == "k0100"


class TestSkipDone:
    @pytest.mark.parametrize(
        "order",
        [
            pytest.param(lambda keys: keys, id="same-order"),
            pytest.param(lambda keys: keys[::-1], id="reversed"),
            pytest.param(lambda keys: keys[1::2] + keys[::2], id="interleaved"),
        ],
    )
    async def test_any_source_order_skips_exactly_the_done_keys(
        self, tmp_path: Path, order: Any
    ) -> None:
        """The fast skip in output order falls back to lookups when the order differs."""
        done = KEYS[:137]
        await Calls().run(tmp_path, done, resume=False)
        calls = Calls()
        summary = await calls.run(tmp_path, order(KEYS), resume=True)
        assert summary.skipped == len(done)
        assert sorted(calls.keys) == KEYS[137:]
        assert sorted(await ids_of(tmp_path)) == KEYS

    async def test_a_done_key_given_twice_is_skipped_twice(self, tmp_path: Path) -> None:
        """A key the output holds is skipped wherever it comes: it runs no second time."""
        await Calls().run(tmp_path, KEYS[:100], resume=False)
        calls = Calls()
        await calls.run(tmp_path, [*KEYS[:150], KEYS[5], *KEYS[150:]], resume=True)
        assert sorted(calls.keys) == KEYS[100:]
        assert sorted(await ids_of(tmp_path)) == KEYS

    async def test_the_source_may_end_inside_the_done_keys(self, tmp_path: Path) -> None:
        """A source shorter than the output's keys (by less than a chunk, and more)."""
        await Calls().run(tmp_path, KEYS[:200], resume=False)
        for stop in (190, 70):
            calls = Calls()
            summary = await calls.run(tmp_path, KEYS[:stop], resume=True)
            assert summary.skipped == stop and calls.keys == []

    async def test_the_skip_reads_no_value_far_ahead(self, tmp_path: Path) -> None:
        """Values are read at most a chunk ahead of the one the stage is given."""
        await Calls().run(tmp_path, KEYS[:100], resume=False)
        read: list[int] = []

        def source() -> Any:
            for n, key in enumerate(KEYS):
                read.append(n)
                yield key

        given: list[int] = []

        async def stage(key: str) -> str:
            given.append(len(read))
            return key

        await Pipeline([Stage("s", stage)]).run(
            source(),
            sink=JsonlSink(tmp_path / "out.jsonl"),
            journal=Journal(tmp_path / "j.jsonl"),
            resume=True,
            key=str,
        )
        assert given[0] <= 100 + 64
