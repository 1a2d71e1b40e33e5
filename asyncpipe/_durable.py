"""
Durable files: read JSON-lines files up to their last whole line, cut a torn tail, and
replace a file atomically.

Every writer in asyncpipe appends whole lines, so a crash leaves at most one torn line at
the end of a file.  `LineScanner` streams a file's whole lines (never the whole file in
memory) and says where the torn tail starts; `cut_tail` drops it, durably.
`atomic_write` writes a new version beside a file and swaps it in: ``fsync`` of the new
file, ``rename`` over the old one, ``fsync`` of the directory.  After a crash or a power
loss the old or the new version is there, never a mix, and a left-over temporary file is
all that can remain of an unfinished rewrite.

The journal, the JSON-lines sink and the document app's CSV file all go through here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

__all__: list[str] = []  # internal: used by the journal, the sink and the document app

#: How much of a file is read at a time.  64 KiB: under glibc's default threshold for
#: ``mmap`` (128 KiB).  A larger buffer is mapped, and freeing it raises that threshold to
#: its size: from then on buffers that large come from heaps (one per thread), which keep
#: their free space.  Reading 1 MiB at a time made no resume faster (CPU time to open a
#: 1M-item resume: 0.57 s at 1 MiB, 0.49 s at 64 KiB).
CHUNK = 64 << 10


class LineScanner:
    """
    Stream the whole lines of a file, from ``start`` to its last newline.

    Iterating gives ``(offset, line)`` pairs (``line`` without its newline); `blocks`
    gives runs of whole lines at once, for callers that scan faster on large buffers.
    After the iteration, `end` is the offset just past the last whole line and `size`
    the size of the file: ``size - end`` bytes are a torn tail.  A missing file raises
    `FileNotFoundError` when the iteration starts.

    Args:
        path: the file.
        start: where to start reading (the start of a line).
        stop: where to stop reading (default: the end of the file).
        chunk_size: bytes per read.
    """

    def __init__(
        self, path: Path, *, start: int = 0, stop: int | None = None, chunk_size: int = CHUNK
    ) -> None:
        self.path = path
        self.start = start
        self.stop = stop
        self.chunk_size = chunk_size
        self.end = start
        self.size = start

    def blocks(self) -> Iterator[tuple[int, bytes]]:
        """
        Yield ``(offset, block)``: each block is one or more whole lines, ending in a newline.
        """
        with open(self.path, "rb", buffering=0) as fh:
            fh.seek(self.start)
            offset = self.start
            parts: list[bytes] = []  # a line longer than a chunk, in pieces
            while True:
                want = self.chunk_size
                if self.stop is not None:
                    want = min(want, self.stop - offset - sum(len(part) for part in parts))
                data = fh.read(want) if want > 0 else b""
                if not data:
                    break
                cut = data.rfind(b"\n") + 1
                if not cut:
                    parts.append(data)
                    continue
                if parts:
                    parts.append(data[:cut])
                    block = b"".join(parts)
                    parts = []
                else:
                    block = data if cut == len(data) else data[:cut]
                if cut < len(data):
                    parts.append(data[cut:])
                yield offset, block
                offset += len(block)
            self.end = offset
            self.size = offset + sum(len(part) for part in parts)

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        for offset, block in self.blocks():
            lines = block.split(b"\n")
            lines.pop()  # what follows the block's last newline: nothing
            for line in lines:
                yield offset, line
                offset += len(line) + 1

    @property
    def torn(self) -> int:
        """
        Bytes after the last whole line (valid once the iteration is over).
        """
        return self.size - self.end


def cut_tail(path: Path, length: int) -> None:
    """
    Cut ``path`` to ``length`` bytes and make the cut durable.
    """
    with open(path, "r+b") as fh:
        fh.truncate(length)
        fh.flush()
        os.fsync(fh.fileno())


def fsync_dir(directory: Path) -> None:
    """
    Make a rename in ``directory`` durable (a no-op where directories cannot be opened).
    """
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary(path: Path) -> Path:
    """
    The temporary file `atomic_write` uses for ``path``.
    """
    return path.with_name(path.name + ".tmp")


class FileWriter:
    """
    The new file an `atomic_write` block fills: whole writes, and kernel-side copies.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.size = 0

    def write_at(self, offset: int, data: bytes) -> None:
        """
        Overwrite ``data`` at ``offset`` (e.g. a header whose value is known at the end).
        """
        if os.pwrite(self.fd, data, offset) != len(data):
            raise OSError(f"short write at {offset}")

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """
        Append all of ``data``.
        """
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
            self.size += written

    def copy_from(self, source: int, offset: int, length: int) -> None:
        """
        Append ``length`` bytes of the open file ``source``, from ``offset``.
        """
        end = offset + length
        while offset < end:
            try:
                copied = os.copy_file_range(source, self.fd, end - offset, offset)
            except OSError:  # not on this file system: copy through user space
                copied = 0
            if not copied:
                data = os.pread(source, min(end - offset, CHUNK), offset)
                if not data:
                    raise OSError(f"{end - offset} bytes missing from the file copied")
                self.write(data)
                copied = len(data)
            else:
                self.size += copied
            offset += copied


@contextmanager
def atomic_write(path: Path) -> Iterator[FileWriter]:
    """
    Write a new version of ``path``: ``with atomic_write(path) as out: out.write(...)``.

    On a clean exit the data is fsynced, renamed over ``path`` and the directory fsynced;
    on an exception the temporary file is removed and ``path`` is left as it was.
    """
    tmp = temporary(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        yield FileWriter(fd)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    _swap(tmp, path)


@contextmanager
def atomic_write_text(path: Path) -> Iterator[TextIO]:
    """
    `atomic_write` for text: UTF-8, no newline translation (what `csv` wants).
    """
    tmp = temporary(path)
    fh = open(tmp, "w", encoding="utf-8", newline="")  # noqa: SIM115 (closed below)
    try:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())
    except BaseException:
        fh.close()
        tmp.unlink(missing_ok=True)
        raise
    fh.close()
    _swap(tmp, path)


def _swap(tmp: Path, path: Path) -> None:
    try:
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
