"""
What a compaction may drop of the items an output holds: the checkpoints of those
written ok whose done lines the journal lost, and only when the sink says which those
are (`Sink.written_ok`), or the caller of `Journal.compact` does (``written=``).

Each journal comes from a real run whose journal (never compacted) is then cut on disk
at a done line's start, as a power loss takes a journal's last lines.
"""

from __future__ import annotations

import os
from collections.abc import Container, Sequence
from pathlib import Path

import anyio
import pytest

from asyncpipe import Item, Journal, JsonlSink, Pipeline, Sink, Stage

pytestmark = pytest.mark.anyio

KEYS = ["a", "b", "c", "d"]


class _MemorySink(Sink):
    """A sink that keeps its items in memory and says which keys it holds, not how."""

    def __init__(self, held: set[str]) -> None:
        self.held = held

    async def open(self, *, resume: bool, retry_failed: bool) -> Container[str] | None:
        return set(self.held) if resume else set()

    async def write(self, items: Sequence[Item]) -> None:
        self.held.update(item.key for item in items)


async def _paid(value: str) -> str:
    return value.upper()


def _pipeline() -> Pipeline:
    return Pipeline([Stage("paid", _paid, checkpoint=True)])


async def _cut_run(root: Path, sink: Sink) -> Path:
    """
    A run of every key whose journal is never compacted, cut on disk at its first done
    line: every item is written, and the journal knows none as done.
    """
    path = root / "run.journal"
    journal = Journal(path, compact_bytes=None)
    await _pipeline().run(KEYS, sink=sink, journal=journal, key=str)
    data = await anyio.Path(path).read_bytes()
    os.truncate(path, data.index(b'\n{"ev":"done"') + 1)
    return path


class TestClosingCompaction:
    async def test_a_sink_that_cannot_tell_statuses_keeps_the_checkpoints(
        self, tmp_path: Path
    ) -> None:
        """A resume whose sink returns a plain set of keys keeps their checkpoints."""
        sink = _MemorySink(set())
        path = await _cut_run(tmp_path, sink)
        assert sink.held == set(KEYS)
        await _pipeline().run(KEYS, sink=sink, journal=Journal(path), key=str, resume=True)
        state = await Journal.read(path)
        assert set(state.checkpoints) == set(KEYS)

    async def test_the_jsonl_sink_drops_those_written_ok(self, tmp_path: Path) -> None:
        """A resume with `JsonlSink` drops the checkpoints of items it holds written ok."""
        out = tmp_path / "out.jsonl"
        path = await _cut_run(tmp_path, JsonlSink(out))
        assert set((await Journal.read(path)).checkpoints) == set(KEYS)
        sink = JsonlSink(out)
        await _pipeline().run(KEYS, sink=sink, journal=Journal(path), key=str, resume=True)
        assert (await Journal.read(path)).checkpoints == {}


class TestCompact:
    async def test_written_drops_the_dead_checkpoints(self, tmp_path: Path) -> None:
        """`Journal.compact` drops the checkpoints of the items ``written`` names."""
        path = await _cut_run(tmp_path, _MemorySink(set()))
        assert await Journal.compact(path) == (5, 5)  # the start line and 4 checkpoints
        assert set((await Journal.read(path)).checkpoints) == set(KEYS)
        await Journal.compact(path, written={"a", "c", "elsewhere"})
        state = await Journal.read(path)
        assert set(state.checkpoints) == {"b", "d"}
        assert state.done == {} and state.failed == {}
