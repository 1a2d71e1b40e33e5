from __future__ import annotations

import os
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from asyncpipe._durable import LineScanner, atomic_write, atomic_write_text, cut_tail, temporary
from asyncpipe._keyset import KeySet


class TestLineScanner:
    @pytest.mark.parametrize("chunk_size", [1, 3, 7, 1 << 20])
    def test_whole_lines_and_torn_tail(self, tmp_path: Path, chunk_size: int) -> None:
        """Every whole line comes out with its offset, whatever the chunk size; the rest is torn."""
        path = tmp_path / "f.jsonl"
        lines = [b"a", b"", b"ccc" * 10, b"dd"]
        data = b"".join(line + b"\n" for line in lines)
        path.write_bytes(data + b"torn")
        scanner = LineScanner(path, chunk_size=chunk_size)
        got = list(scanner)
        assert [line for _, line in got] == lines
        assert [offset for offset, _ in got] == [0, 2, 3, 34]
        assert (scanner.end, scanner.size, scanner.torn) == (len(data), len(data) + 4, 4)

    def test_start_and_stop(self, tmp_path: Path) -> None:
        """A scan can start and stop at line boundaries inside the file."""
        path = tmp_path / "f.jsonl"
        path.write_bytes(b"one\ntwo\nthree\nfour\n")
        scanner = LineScanner(path, start=4, stop=14, chunk_size=2)
        assert list(scanner) == [(4, b"two"), (8, b"three")]
        assert scanner.torn == 0

    def test_blocks_end_on_newlines(self, tmp_path: Path) -> None:
        """Blocks hold whole lines only and cover the file up to its last newline."""
        path = tmp_path / "f.jsonl"
        data = b"".join(b"x" * n + b"\n" for n in range(50))
        path.write_bytes(data + b"xx")
        blocks = list(LineScanner(path, chunk_size=64).blocks())
        assert all(block.endswith(b"\n") for _, block in blocks)
        assert b"".join(block for _, block in blocks) == data

    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing file raises FileNotFoundError when the scan starts."""
        with pytest.raises(FileNotFoundError):
            list(LineScanner(tmp_path / "none"))


class TestAtomicWrite:
    def test_replaces_and_cleans_up(self, tmp_path: Path) -> None:
        """The new content replaces the file, with kernel copies, and no temporary remains."""
        path = tmp_path / "f"
        path.write_bytes(b"old")
        source = tmp_path / "src"
        source.write_bytes(b"0123456789")
        fd = os.open(source, os.O_RDONLY)
        try:
            with atomic_write(path) as out:
                out.write(b"new ")
                out.copy_from(fd, 2, 5)
                out.write_at(0, b"NEW")
        finally:
            os.close(fd)
        assert path.read_bytes() == b"NEW 23456"
        assert out.size == 9
        assert not temporary(path).exists()

    def test_error_leaves_the_old_file(self, tmp_path: Path) -> None:
        """An exception inside the block keeps the old content and removes the temporary."""
        path = tmp_path / "f.csv"
        path.write_text("old")
        with pytest.raises(RuntimeError), atomic_write_text(path) as fh:
            fh.write("half")
            raise RuntimeError("boom")
        assert path.read_text() == "old"
        assert not temporary(path).exists()

    def test_cut_tail(self, tmp_path: Path) -> None:
        """cut_tail truncates to the given length."""
        path = tmp_path / "f"
        path.write_bytes(b"line\ntorn")
        cut_tail(path, 5)
        assert path.read_bytes() == b"line\n"


class TestKeySet:
    def test_membership_is_exact(self) -> None:
        """Added keys are in, others are not: no prefix, suffix or hash collision matches."""
        keys = [str(n) for n in range(5000)]
        ks = KeySet(keys)
        assert len(ks) == 5000
        assert all(key in ks for key in keys)
        assert not any(key in ks for key in ("5000", "1" * 6, "12345", "", "-1", " 1"))
        assert 1 not in ks  # not a string
        assert sorted(ks) == sorted(keys)

    def test_odd_keys(self) -> None:
        """Empty, non-ASCII, surrogate and NUL-holding keys round-trip."""
        odd = ["", "é", "日本", "a\0b", "\0", "\udc80", "x\ny"]
        ks = KeySet(odd)
        assert all(key in ks for key in odd)
        assert "a" not in ks and "b" not in ks and "a\0" not in ks
        assert sorted(ks) == sorted(odd)

    @pytest.mark.parametrize("odd", [[], ["a\0b"], ["\udc80"], ["", "日本"]])
    def test_bulk_load_is_exact(self, odd: list[str]) -> None:
        """update_new (the resume's bulk path, presized) agrees with add, odd keys or not."""
        keys = [str(n) for n in range(3000)] + odd
        bulk = KeySet()
        bulk.update_new(keys[:1000])
        bulk.update_new(keys[1000:])
        assert len(bulk) == len(keys)
        assert all(key in bulk for key in keys)
        assert not any(key in bulk for key in ("3000", "-1", "a", "b", "\udc81"))
        assert sorted(bulk) == sorted(KeySet(keys))

    def test_add_says_whether_it_added(self) -> None:
        """add adds a key once and says so, odd keys and all, across regrowths."""
        keys = [str(n) for n in range(3000)] + ["", "a\0b", "\udc80", "日本"]
        ks = KeySet()
        assert all(ks.add(key) for key in keys)
        assert not any(ks.add(key) for key in keys)
        assert len(ks) == len(keys) and sorted(ks) == sorted(keys)

    def test_duplicates_count_once(self) -> None:
        """Adding a key twice keeps one copy."""
        ks = KeySet(["a", "b", "a"])
        ks.add("b")
        assert len(ks) == 2
        assert sorted(ks) == ["a", "b"]

    def test_smaller_than_a_set(self) -> None:
        """20k short keys, as traced by tracemalloc, take under a fifth of a set's bytes."""
        keys = [str(n) for n in range(20_000)]

        def traced(build: Callable[[], object]) -> int:
            tracemalloc.start()
            try:
                kept = build()
                size = tracemalloc.get_traced_memory()[0]
                del kept
            finally:
                tracemalloc.stop()
            return size

        compact = traced(lambda: KeySet(keys))
        plain = traced(lambda: {key.encode().decode() for key in keys})  # new str objects
        assert compact * 5 < plain
        assert compact / len(keys) < 18


class TestOutputDiskFull:
    """A full disk under the output stops the run with an OutputError that says so."""

    async def test_full_disk_is_an_output_error(self, tmp_path: Path) -> None:
        """Written to /dev/full (every write: no space left), the run raises one
        OutputError naming the output, not an OSError raised again by the close (round 24's
        audit: a 60-line traceback, twice)."""
        from asyncpipe import JsonlSink, OutputError, Pipeline, Stage

        async def same(value: int) -> int:
            return value

        out = tmp_path / "out.jsonl"
        await anyio.Path(out).symlink_to("/dev/full")
        with pytest.raises(OutputError, match=f"cannot write the output {out}: No space left"):
            await Pipeline([Stage("same", same)]).run(range(10), sink=JsonlSink(out))
