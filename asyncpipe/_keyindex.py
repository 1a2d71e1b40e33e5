"""
The key index of a JSON-lines output: which keys its first bytes hold, so that a resume
reads a few bytes a key instead of the whole output.

Beside ``out.jsonl`` the sink keeps ``out.jsonl.keys``: a header naming the output file
by its inode (and the id of the run that writes it, if it was given one: see
`index_run`), then a record each time the output is fsynced::

    {"index":1,"ino":1234,"run":"9f2c..."}
    {"end":1048576,"n":903,"keys":["a","b",...]}

A record says: the output's first ``end`` bytes hold, with the records before it,
exactly these ``n`` more keys.  It is appended only after the output is fsynced, so it
never claims bytes the disk may not hold, and a crash leaves at most a torn last record.

The output stays the truth.  A resume uses the index only if it names the same file,
each record fits the file, and the line that ends at the last record's ``end`` holds
that record's last key; it then scans the output past ``end`` as before.  A missing
index, a torn or unreadable record, a file replaced or cut short: the records that pass
are used, or none, and the output is scanned from there.  The index is a cache of the
output's keys, never a second truth.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Callable, Container, Iterator, Sequence, Sized
from pathlib import Path

import orjson

from ._durable import LineScanner
from ._keyset import KeySet

__all__: list[str] = []  # internal: the JSON-lines sink's

log = logging.getLogger("asyncpipe.sink")

_RECORD = re.compile(rb'\{"end":(\d+),"n":(\d+),"keys":\[')


class OrderedKeys(KeySet):
    """
    The keys of an output, which can also be listed in the order the output holds them
    (read back from its index: nothing more is kept in memory).
    """

    def __init__(self) -> None:
        super().__init__()
        # The index, where its records end, and the keys after them (not indexed yet).
        self.order: tuple[Path, int, list[str]] | None = None

    def in_order(self) -> Iterator[list[str]]:
        """
        The keys in output order, a record at a time.  It may stop short (an index that
        could not be written or read back): every key it gives is in the set.
        """
        if self.order is None:
            return
        path, stop, tail = self.order
        try:
            for offset, line in LineScanner(path, stop=stop):
                if offset:
                    keys = orjson.loads(line)["keys"]
                    if not isinstance(keys, list):
                        return
                    yield keys
        except (OSError, ValueError, KeyError, TypeError):
            return
        yield tail


class InputOrder:
    """
    The keys a resume's source gives, in its order, kept compactly (each key's UTF-8
    bytes and 4 bytes of length): asked ``key in order`` for each of them, it records the
    key and answers from ``done``, the keys to skip.  An ordered ``retry_failed`` resume
    reads it back to put the retried lines in input order (`JsonlSink.put_in_order`).
    """

    def __init__(self, done: Container[str]) -> None:
        self.done = done
        self._keys = bytearray()
        self._count = 0

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            data = key.encode("utf-8", "surrogatepass")
            self._keys += len(data).to_bytes(4, "little")
            self._keys += data
            self._count += 1
        return key in self.done

    def __len__(self) -> int:
        # What the progress line counts as done before: the keys to skip.
        return len(self.done) if isinstance(self.done, Sized) else 0

    def __iter__(self) -> Iterator[str]:
        keys, pos = self._keys, 0
        for _ in range(self._count):
            size = int.from_bytes(keys[pos : pos + 4], "little")
            yield keys[pos + 4 : pos + 4 + size].decode("utf-8", "surrogatepass")
            pos += 4 + size


def index_path(output: Path) -> Path:
    """
    The key index of the output ``output``.
    """
    return output.with_name(output.name + ".keys")


def index_run(output: Path) -> str | None:
    """
    The id of the run that wrote ``output``, as its key index's header holds it.

    ``None`` when that is not known: no index (deleted, or never written), one that
    names another file (its inode is not the output's: a copy, a replaced output), or a
    header without an id (a run given none, or a version that gave none).
    """
    try:
        with open(index_path(output), "rb") as fh:
            first = fh.readline(4096)
        header = orjson.loads(first)
        ino = os.stat(output).st_ino
    except (OSError, ValueError):
        return None
    if not isinstance(header, dict) or header.get("ino") != ino:
        return None
    run = header.get("run")
    return run if isinstance(run, str) else None


class KeyIndex:
    """
    The key index of one output file: read on resume, appended to as the output grows.

    Args:
        output: the output file.
    """

    def __init__(self, output: Path) -> None:
        self.output = output
        self.path = index_path(output)
        self._fd: int | None = None

    # -- reading ------------------------------------------------------------------------

    def load(
        self, *, size: int, ino: int, key_at: Callable[[int], str | None]
    ) -> tuple[OrderedKeys, int]:
        """
        The keys the index vouches for, and the output offset they cover.

        Args:
            size: the output's size.
            ino: the output's inode.
            key_at: the key of the output line that ends at an offset (``None``: no
                such line).

        Returns:
            The keys, and ``end``: the output's first ``end`` bytes hold exactly them.
            ``(empty, 0)`` when the index cannot be used; any torn or unusable records
            are cut off, so that appends follow the good ones.
        """
        try:
            good, end, count = self._check(size, ino)
        except FileNotFoundError:
            return OrderedKeys(), 0
        except OSError as exc:
            log.warning("key index %s unreadable (%s): the output is scanned whole", self.path, exc)
            return OrderedKeys(), 0
        if good is None:
            return OrderedKeys(), 0
        keys = OrderedKeys()
        keys.reserve(count)
        last: str | None = None
        try:
            for offset, line in LineScanner(self.path):
                if offset >= good:
                    break
                if offset == 0:
                    continue  # the header
                record = orjson.loads(line)
                batch = record["keys"]
                if len(batch) != record["n"]:
                    raise ValueError("a record's count does not match its keys")
                if batch:
                    keys.update_new(batch)
                    last = batch[-1]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("key index %s unusable (%s): the output is scanned whole", self.path, exc)
            return OrderedKeys(), 0
        if end and (last is None or key_at(end) != last):
            log.warning(
                "key index %s does not match the output (edited?): it is scanned whole", self.path
            )
            return OrderedKeys(), 0
        self._cut(good)
        return keys, end

    def _check(self, size: int, ino: int) -> tuple[int | None, int, int]:
        """
        Where the usable records end in the index, the output offset they cover, and how
        many keys they hold (``None``: not an index of this file).
        """
        scanner = LineScanner(self.path)
        good: int | None = None
        end = count = 0
        for offset, line in scanner:
            if offset == 0:
                try:
                    header = orjson.loads(line)
                except orjson.JSONDecodeError:
                    return None, 0, 0
                if not isinstance(header, dict) or header.get("ino") != ino:
                    return None, 0, 0
                good = len(line) + 1
                continue
            match = _RECORD.match(line)
            if match is None or not line.endswith(b"]}"):
                break  # a torn record (or worse): the records before it stand
            at, n = int(match[1]), int(match[2])
            if at < end or at > size:
                break
            end, count, good = at, count + n, offset + len(line) + 1
        return good, end, count

    def _cut(self, good: int) -> None:
        if os.stat(self.path).st_size > good:
            with open(self.path, "r+b") as fh:
                fh.truncate(good)

    # -- writing ------------------------------------------------------------------------

    def create(self, ino: int, run: str | None = None) -> None:
        """
        Start a new, empty index of the output with inode ``ino``, written by the run
        ``run`` (``None``: a run given no id).
        """
        self.close()
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND
            self._fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            log.warning("key index %s: not started (%s); resume will scan more", self.path, exc)
            with contextlib.suppress(OSError):
                self.path.unlink(missing_ok=True)  # it may describe another file
            return
        header: dict[str, object] = {"index": 1, "ino": ino}
        if run is not None:
            header["run"] = run
        self.append(orjson.dumps(header) + b"\n")

    def reopen(self) -> None:
        """
        Append to the index `load` accepted.
        """
        self.close()
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            log.warning("key index %s: not reopened (%s); resume will scan more", self.path, exc)

    @staticmethod
    def record(end: int, keys: Sequence[str]) -> bytes:
        """
        The record of ``keys``, whose lines end at output offset ``end``.
        """
        return orjson.dumps({"end": end, "n": len(keys), "keys": keys}) + b"\n"

    def append(self, data: bytes) -> None:
        """
        Append records (after the output they describe is fsynced).  A failure only
        stops the index: the next resume scans the output past its last record.
        """
        if self._fd is None or not data:
            return
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            log.warning("key index %s: not written (%s); resume will scan more", self.path, exc)
            self.close()

    def sync(self) -> None:
        """
        fsync the index (so that a resume after a power loss finds it whole).
        """
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                log.warning("key index %s: not synced (%s)", self.path, exc)

    def size(self) -> int:
        """
        The index file's size (0: it is not being written).
        """
        if self._fd is None:
            return 0
        try:
            return os.fstat(self._fd).st_size
        except OSError:
            return 0

    def close(self) -> None:
        """
        Stop appending.
        """
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
