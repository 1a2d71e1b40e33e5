"""
Sinks: where finished items go.  The JSON-lines sink writes each item exactly once,
across any number of crashes and resumes.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import re
from collections import Counter
from collections.abc import (
    Awaitable,
    Callable,
    Collection,
    Container,
    Iterable,
    Mapping,
    Sequence,
)
from pathlib import Path
from typing import Any

import aiofiles
import anyio
import orjson

from . import _runlock
from ._durable import (
    CHUNK,
    LineScanner,
    atomic_write,
    cut_tail,
    temporary,
)
from ._exceptions import ConfigError, JournalError, OutputError
from ._journal_state import NotAnOutput, Written, read_statuses
from ._keyindex import KeyIndex, OrderedKeys
from ._keyset import KeySet
from ._stage import ErrorRecord, Item

__all__ = ["CallbackSink", "JsonlSink", "Sink"]

#: Scanned on resume, the keys of up to this much output past its index wait for the
#: run's first fsync to be indexed; more is fsynced first and indexed as it is read.
_DEFERRED = 64 << 20


class Sink:
    """
    Base class for sinks.  Subclass it and override `write`.

    The pipeline calls `open` once, then `write` with batches of finished items (in input
    order when the run is ordered), then `aclose`, from a single task: a sink needs no
    locks.

    .. versionadded:: 0.1
    """

    async def open(self, *, resume: bool, retry_failed: bool) -> Container[str] | None:
        """
        Get ready to write.

        Args:
            resume: keep what an earlier run wrote.
            retry_failed: with ``resume``, forget earlier error records so that those
                items run again (and are written once more, not twice).

        Returns:
            The keys of items already written (a ``set``, or anything that supports
            ``in``), which the run will skip; or ``None`` if the sink cannot tell, and the
            journal's word is taken instead.
        """
        return None

    def written_ok(self) -> Container[str] | None:
        """
        Which of the keys `open` returned the sink holds written without an error record,
        once it has closed; ``None`` (the default) if it cannot tell.

        A journaled run's closing compaction drops the checkpoints of those items whose
        done lines the journal lost (a crash between the output's write and the
        journal's), and keeps them for every other item: one written with an error may
        be retried (``retry_failed``), and its checkpoints spare its paid calls.  A sink
        that returns ``None`` here keeps them all, which costs only their bytes.  ``in``
        is asked in a worker thread, after `aclose`, so it may read the output.

        .. versionadded:: Unreleased
        """
        return None

    async def write(self, items: Sequence[Item]) -> None:
        """
        Write finished items.  An item counts as done once this returns.
        """
        raise NotImplementedError

    async def aclose(self) -> None:
        """
        Flush and release what the sink holds.
        """


class CallbackSink(Sink):
    """
    A sink that awaits ``callback(item)`` for each item.

    The batch's items count as done once the callback has returned for all of them: when
    it raises (or the run stops) half way, a resume hands it the whole batch again, items
    it already took included.  Make it idempotent (an upsert, say).

    Raises:
        ConfigError: from `write`, ``callback`` returned what cannot be awaited (a plain
            ``def``; one that returns a coroutine, a ``lambda`` say, is fine).
    """

    def __init__(self, callback: Callable[[Item], Awaitable[object]]) -> None:
        self._callback = callback

    async def write(self, items: Sequence[Item]) -> None:
        for item in items:
            result = self._callback(item)
            if not inspect.isawaitable(result):
                # A plain def is known only by what it returns (a plain one may return a
                # coroutine); it was "object NoneType can't be used in 'await' expression".
                name = getattr(self._callback, "__qualname__", repr(self._callback))
                raise ConfigError(
                    f"the sink {name} returned {type(result).__name__}, not an awaitable: "
                    "a sink callback is an async def f(item) (a plain def would block the "
                    "event loop)"
                )
            await result


def default_record(item: Item) -> dict[str, Any]:
    """
    The JSON line written for an item by default.
    """
    record: dict[str, Any] = {"id": item.key, "status": "ok" if item.ok else "error"}
    if item.error is not None:
        record["error"] = item.error.to_json()
    else:
        record["value"] = item.value
    record["timings"] = item.timings
    return record


class JsonlSink(Sink):
    """
    Write one JSON line per item with aiofiles and orjson.

    The file itself says which items are done: on resume its keys (in ``key_field``)
    are read back (kept in memory compactly), a torn last line is cut off, and those
    items are skipped.  A line that does not parse anywhere else is corruption: `open`
    raises `JournalError` naming the line rather than cut off the results after it.  So
    an item whose line was written before a crash is never written again, and one whose
    line was not is written exactly once by the resumed run.

    Beside the file, ``<path>.keys`` indexes its keys as they become durable (see
    ``asyncpipe._keyindex``): a resume reads a few bytes a key from it instead of the
    whole output, checks it against the output, and scans only the output past it.
    Delete it at will: the next resume scans the output whole and writes it again.

    A ``retry_failed`` resume keeps each error line until the line that replaces it is
    written, and drops it as the run closes; ``<path>.retrying`` marks the output
    meanwhile, so that a resume after a run killed half way drops the error lines whose
    replacements are in (and keeps those whose are not): a kill never leaves an item
    with neither line.  The marker lists the retried keys: when the run is ordered, the
    closing rewrite also moves each retried item's line to its place in input order
    (`put_in_order`), and a run killed before that leaves the marker for the next
    ordered resume to do it.

    Args:
        path: the output file.
        record: builds the JSON-safe line of an item (default: id, status, value or error,
            timings).  It must put the item key in ``key_field``.  NaN and the
            infinities are written as ``null`` (JSON has none of them).
        key_field: the field that holds the item key.
        fsync_interval: seconds between fsyncs of the output (power-loss safety); it is
            always fsynced on close.
        overwrite: without resume, replace an existing non-empty file.  If false, an
            existing file is an error: results are not thrown away by accident.
        superseded: called as the run closes, returns the keys of lines an earlier run
            wrote that this run replaces (their input changed since), each with the keys
            of the lines that replace it.  Once all of those are in the file, it is
            rewritten without the old line, atomically, like the error lines of a
            retry; a run stopped before keeps the old line for the next resume to
            replace, so that a stop never leaves neither version.
        run_id: the id of the run, written in the header of the key index each time
            the index is started (not in the output's lines).  ``None`` (the default):
            a run with a `Journal` gives both one id (see `Journal`'s ``run_id``).  A
            sink and a journal given different ids are refused.

    .. versionadded:: 0.1
    .. versionchanged:: Unreleased
        ``superseded``, ``run_id``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        record: Callable[[Item], dict[str, Any]] = default_record,
        key_field: str = "id",
        fsync_interval: float = 1.0,
        overwrite: bool = False,
        superseded: Callable[[], Mapping[str, Collection[str]]] | None = None,
        run_id: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.run_id = run_id
        self._record = record
        self._key_field = key_field
        self._fsync_interval = fsync_interval
        self._overwrite = overwrite
        self._superseded = superseded
        self._file: Any = None
        self._lock: int | None = None  # see `_runlock`
        self._broken = False  # a write failed: the file holds what it could take
        self._last_sync = 0.0
        self._index = KeyIndex(self.path)
        self._offset = 0  # the output's size
        self._unindexed: list[str] = []  # the keys written since the last index record
        self._retrying: set[str] = set()  # error lines this run replaces (`_drop_retried`)
        self._movable: set[str] = set()  # the marker's keys: lines out of input order
        self._order: Iterable[str] | None = None  # `put_in_order`
        self._marker = self.path.with_name(self.path.name + ".retrying")
        self._held: Container[str] | None = None  # the keys `open` returned
        self.lines_written = 0

    async def open(self, *, resume: bool, retry_failed: bool) -> Container[str] | None:
        # Before the file is touched: a second run writing here (with another journal)
        # stops before it empties the file or adds its own lines.
        self._lock = await anyio.to_thread.run_sync(_runlock.take_output, self.path)
        try:
            keys = await anyio.to_thread.run_sync(self._prepare, resume, retry_failed)
            self._file = await aiofiles.open(self.path, "ab")
        except BaseException:
            self._release_lock()
            raise
        self._last_sync = anyio.current_time()
        self._held = keys
        return keys

    def written_ok(self) -> Container[str] | None:
        # The statuses are read from the closed output only if a compaction asks: the
        # keys came from the index and a scan that parses no line.
        if self._held is None:
            return None
        return Written(self._held, self._statuses)

    def _statuses(self) -> tuple[Container[str], Container[str]]:
        """
        The keys of the output's lines written ok and with an error (`read_statuses`).
        An output that cannot be read, or holds a line that is no record, counts every
        key as an error.
        """
        try:
            return read_statuses(self.path, self._key_field, strict=True)
        except (OSError, NotAnOutput):
            return KeySet(), set()

    def _release_lock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            _runlock.release(lock)

    def _prepare(self, resume: bool, retry_failed: bool) -> OrderedKeys:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary(self.path).unlink(missing_ok=True)  # left by a rewrite cut short
        self._unindexed = []
        self._retrying = set()
        self._movable = set()
        self._order = None
        if not resume:
            if self.path.exists() and self.path.stat().st_size and not self._overwrite:
                raise ConfigError(
                    f"{self.path} exists: resume the run, choose another output, or allow "
                    "overwriting it"
                )
            self.path.write_bytes(b"")
            self._marker.unlink(missing_ok=True)
            self._offset = 0
            self._index.create(self.path.stat().st_ino, self.run_id)
            return OrderedKeys()
        with open(self.path, "ab") as fh:
            stat = os.fstat(fh.fileno())
        # The index vouches for the keys of the output's first ``start`` bytes (unless
        # error lines are to be retried, or a retry cut short left some beside their
        # replacements: it does not know which lines are errors).
        replacing = retry_failed or self._marker.exists()
        marked = self._marked() if replacing else set()
        keys, start = OrderedKeys(), 0
        if not replacing:
            keys, start = self._index.load(
                size=stat.st_size, ino=stat.st_ino, key_at=self._key_ending_at
            )
        # The index describes durable output only.  The keys of a short tail (what the
        # crashed run wrote after its last fsync) wait for this run's first fsync; a
        # long part is made durable first and indexed as it is scanned.
        tail: list[str] | None = []
        if start:
            self._index.reopen()
        else:
            self._index.create(stat.st_ino, self.run_id)
        if stat.st_size - start > _DEFERRED:
            with open(self.path, "ab") as fh:
                os.fsync(fh.fileno())
            tail = None
        # Every write is of whole lines, so a crash leaves at most one torn line, the part
        # after the last newline.  Anything else that does not parse is corruption: cutting
        # the file there would throw away the results after it, so refuse instead.
        scanner = LineScanner(self.path, start=start)
        errors: Counter[str] = Counter()
        self._scan(scanner, keys, replacing, tail, errors)
        failed: set[str] = set()  # the keys whose last line is an error
        if errors:
            # Every line is indexed, error lines too (the scan left them out of ``keys``).
            if not self._drop_replaced(scanner.end, errors):
                cut_tail(self.path, scanner.end)  # (and fsync it, before it is indexed)
                self._index.create(self.path.stat().st_ino, self.run_id)
                self._scan(LineScanner(self.path), None, False, None)
            failed = {key for key in errors if key not in keys}
            tail = None
        elif scanner.torn:
            cut_tail(self.path, scanner.end)
        if failed and retry_failed:
            # Their error lines stay until replaced: mark the output before any is.
            self._retrying = failed
            self._movable = marked | failed
            with atomic_write(self._marker) as out:
                out.write(orjson.dumps(sorted(self._movable)))
        else:
            if failed:
                keys.update_new(list(failed))  # failed and not to be retried: done
            self._movable = marked
            if replacing and not marked:
                self._marker.unlink(missing_ok=True)
        self._offset = self.path.stat().st_size
        self._unindexed = list(tail or ())  # (the source reads ``tail`` meanwhile)
        # The index and the tail list every key, in output order: the source skips them
        # fast.  Not with items to retry: the index lists their error lines.
        if not self._retrying:
            keys.order = (self._index.path, self._index.size(), tail or [])
        return keys

    def _marked(self) -> set[str]:
        """
        The keys the ``.retrying`` marker lists (none if it is absent or unreadable).
        """
        try:
            keys = orjson.loads(self._marker.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return set()
        return {key for key in keys if isinstance(key, str)} if isinstance(keys, list) else set()

    @property
    def reordering(self) -> bool:
        """
        Whether the output holds lines of a retry out of input order (after `open`): an
        ordered run then gives `put_in_order` its keys.
        """
        return bool(self._movable)

    def put_in_order(self, keys: Iterable[str]) -> None:
        """
        The run is ordered: have `aclose` put the lines of the retried items in the order
        of ``keys``, the keys of the run's source in input order, as far as it read it
        (read in `aclose`).
        """
        self._order = keys

    def _scan(
        self,
        scanner: LineScanner,
        keys: KeySet | None,
        retry_failed: bool,
        tail: list[str] | None,
        errors: Counter[str] | None = None,
    ) -> None:
        """
        Add the key of every whole line to ``keys`` (if given), and to ``tail`` or else
        the index, block by block.  With ``retry_failed`` every line is parsed, and the
        keys of error lines go to ``errors`` instead, counted.
        """
        if keys is None:
            keys = KeySet()  # unused: only the index is filled
            add: Callable[..., object] = _ignore
            add_new: Callable[[list[str]], None] = _ignore
        else:
            add, add_new = keys.add, keys.update_new
        # The default record starts with the key: read it off the line without parsing
        # the whole line.  Any other line is parsed.
        prefix = b"{" + orjson.dumps(self._key_field) + b':"'
        skip = len(prefix)
        # A block at once: every line starts with the key and ends with "}"?
        pattern = re.compile(b"\n" + re.escape(prefix) + b'([^"\\\\\n\x00]*)"')
        number = 0
        for offset, block in scanner.blocks():
            batch: list[str] = []
            if not retry_failed:
                found = pattern.findall(b"\n" + block)
                lines = block.count(b"\n")
                if len(found) == lines and block.count(b"}\n") >= lines:
                    try:
                        batch = [key.decode() for key in found]
                    except UnicodeDecodeError:
                        pass
                    else:
                        add_new(batch)
                        number += lines
            pos = len(block) if batch else 0
            while pos < len(block):
                stop = block.index(b"\n", pos)
                number += 1
                if not retry_failed and block.startswith(prefix, pos):
                    quote = block.find(b'"', pos + skip, stop)
                    if quote > 0 and block[stop - 1] == 0x7D and b"\\" not in block[pos:quote]:
                        try:
                            key = block[pos + skip : quote].decode()
                            add(key, new=True)
                            batch.append(key)
                            pos = stop + 1
                            continue
                        except UnicodeDecodeError:
                            pass
                key, status = self._parse(block[pos:stop], number, scanner.start)
                if retry_failed and status == "error":
                    if errors is not None:
                        errors[key] += 1
                else:
                    add(key)
                    batch.append(key)
                pos = stop + 1
            if tail is not None:
                tail.extend(batch)
            elif batch:
                self._index.append(KeyIndex.record(offset + len(block), batch))

    def _line(self, item: Item) -> bytes:
        """
        The item's JSON line.  A value JSON cannot hold (a set, an object) makes the item
        an error record that says so, instead of stopping the run with no item named.
        """
        record = self._record(item)  # a bug in a custom record is no item's fault: raised
        if str(record.get(self._key_field)) != item.key:
            # The file is the record of what is done: a line without its item's key would
            # make every resume write the item again.  The key is read back as text, so a
            # number whose text is the key will do.
            raise ConfigError(
                f"the record function must put the item's key in {self._key_field!r}: it put "
                f"{record.get(self._key_field)!r} for the item {item.key!r}"
            )
        try:
            return orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"
        except orjson.JSONEncodeError as exc:
            if item.error is not None:
                raise
            message = f"cannot write its output as JSON: {exc}"
            item.error = ErrorRecord("output", type(exc).__name__, message, 1)
            item.value = None
            return orjson.dumps(self._record(item), option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"

    def _key_ending_at(self, end: int) -> str | None:
        """
        The key of the output line that ends at offset ``end`` (``None``: none does).
        """
        with open(self.path, "rb") as fh:
            size = 4096
            while True:
                start = max(0, end - size)
                fh.seek(start)
                data = fh.read(end - start)
                if len(data) != end - start or not data.endswith(b"\n"):
                    return None
                newline = data.rfind(b"\n", 0, len(data) - 1)
                if newline >= 0 or start == 0:
                    break
                size *= 8
        try:
            return self._parse(data[newline + 1 : -1], 0)[0]
        except JournalError:
            return None

    def _parse(self, line: bytes, number: int, start: int = 0) -> tuple[str, object]:
        """The key and status of a line, the ``number``-th after byte ``start``."""
        try:
            record = orjson.loads(line)
            key = record[self._key_field]
        except (orjson.JSONDecodeError, KeyError, TypeError, IndexError):
            # Counted from the file's start, as an editor counts (only now: the key index
            # saved this resume reading the lines before ``start``).
            number += self._lines_before(start)
            raise JournalError(
                f"{self.path} is corrupt at line {number} (not a JSON object with a "
                f"{self._key_field!r} field): repair it or move it aside"
            ) from None
        return str(key), record.get("status")

    def _lines_before(self, start: int) -> int:
        lines = 0
        with open(self.path, "rb") as fh:
            while start > 0 and (chunk := fh.read(min(CHUNK, start))):
                lines += chunk.count(b"\n")
                start -= len(chunk)
        return lines

    def _drop_lines(self, end: int, drop: Callable[[str, object], bool]) -> None:
        """
        Rewrite the file's first ``end`` bytes without the lines whose key and status
        ``drop`` picks, atomically; then index the new file (a new inode) anew.
        """
        with atomic_write(self.path) as out:
            kept = bytearray()
            for number, (_, line) in enumerate(LineScanner(self.path, stop=end), start=1):
                if not drop(*self._parse(line, number)):
                    kept += line
                    kept += b"\n"
                    if len(kept) >= CHUNK:
                        out.write(kept)
                        kept.clear()
            out.write(kept)
        self._index.create(self.path.stat().st_ino, self.run_id)
        self._scan(LineScanner(self.path), None, False, None)

    def _drop_replaced(self, end: int, keys: Collection[str]) -> bool:
        """
        Drop every line of ``keys`` but each key's last one (an error line a retry has
        replaced), within the file's first ``end`` bytes; return whether any was.
        """
        lines = Counter(
            key
            for number, (_, line) in enumerate(LineScanner(self.path, stop=end), start=1)
            if (key := self._parse(line, number)[0]) in keys
        )
        earlier = {key: count - 1 for key, count in lines.items() if count > 1}
        if not earlier:
            return False

        def drop(key: str, status: object) -> bool:
            if earlier.get(key, 0) > 0:
                earlier[key] -= 1
                return True
            return False

        self._drop_lines(end, drop)
        return True

    async def write(self, items: Sequence[Item]) -> None:
        data = b"".join(map(self._line, items))
        try:
            await self._file.write(data)
            await self._file.flush()
        except OSError as exc:
            raise self._cannot_write(exc) from exc
        self.lines_written += len(items)
        self._offset += len(data)
        self._unindexed.extend(item.key for item in items)
        now = anyio.current_time()
        if now - self._last_sync >= self._fsync_interval:
            self._last_sync = now
            try:
                await anyio.to_thread.run_sync(self._sync, self._index_record())
            except OSError as exc:
                raise self._cannot_write(exc) from exc

    def _cannot_write(self, exc: OSError) -> OutputError:
        self._broken = True  # `aclose` must not try the same write again
        reason = exc.strerror or str(exc)
        return OutputError(f"cannot write the output {self.path}: {reason}")

    def _index_record(self) -> bytes:
        keys, self._unindexed = self._unindexed, []
        return KeyIndex.record(self._offset, keys) if keys else b""

    def _sync(self, record: bytes, *, last: bool = False) -> None:
        """
        fsync the output, then index what is now durable.
        """
        os.fsync(self._file.fileno())
        self._index.append(record)
        if last:
            self._index.sync()
            self._index.close()

    def _drop_superseded(self) -> None:
        """
        Rewrite the closed file without the lines ``superseded`` names whose replacements
        are all in it.
        """
        replaced = self._superseded() if self._superseded is not None else {}
        if not replaced:
            return
        present = {
            self._parse(line, number)[0]
            for number, (_, line) in enumerate(LineScanner(self.path), start=1)
        }
        keys = frozenset(
            old for old, new in replaced.items() if new and all(k in present for k in new)
        )
        if keys:
            self._drop_lines(self.path.stat().st_size, lambda key, status: key in keys)
            self._index.sync()
            self._index.close()

    def _drop_retried(self) -> None:
        """
        Rewrite the closed file without the error lines this run has replaced (those of
        items it stopped before stay), and in input order if `put_in_order` gave it.
        """
        if self._order is not None and self._movable:
            self._reorder(self._order)
            self._index.sync()
            self._index.close()
            self._marker.unlink(missing_ok=True)
        else:
            if self._retrying and self._drop_replaced(self.path.stat().st_size, self._retrying):
                self._index.sync()
                self._index.close()
            if self._movable:
                self._marker.unlink(missing_ok=True)

    def _reorder(self, order: Iterable[str]) -> None:
        """
        Rewrite the closed file with the last line of each marked key (the earlier ones
        are error lines it replaced) put after the line of the key before it in ``order``
        that the file holds; atomically, then index it anew.  The other lines keep their
        order (an ordered run wrote them in input order), and so does the last line of a
        marked key that ``order`` lacks.  Held meanwhile: the offsets of the marked keys'
        lines, the keys of the others.
        """
        movable = self._movable
        last: dict[str, tuple[int, int]] = {}
        others = KeySet()
        for number, (offset, line) in enumerate(LineScanner(self.path), start=1):
            key = self._parse(line, number)[0]
            if key in movable:
                last[key] = (offset, len(line) + 1)
            else:
                others.add(key)
        after: dict[str | None, list[str]] = {}
        anchor: str | None = None
        placed: set[str] = set()
        seen = KeySet()  # a key the source gave twice is placed at its first
        for key in order:
            if key in last:
                if key not in placed:
                    after.setdefault(anchor, []).append(key)
                    placed.add(key)
            elif key in others and seen.add(key):
                anchor = key
        with atomic_write(self.path) as out, open(self.path, "rb") as fh:

            def put(keys: Iterable[str]) -> None:
                for key in keys:
                    if (where := last.pop(key, None)) is not None:
                        out.write(os.pread(fh.fileno(), where[1], where[0]))

            put(after.pop(None, ()))
            kept = bytearray()
            for number, (offset, line) in enumerate(LineScanner(self.path), start=1):
                key = self._parse(line, number)[0]
                if key in movable:
                    if key in placed or last.get(key, (-1, 0))[0] != offset:
                        continue
                    last.pop(key)
                kept += line
                kept += b"\n"
                if key in after or len(kept) >= CHUNK:
                    out.write(kept)
                    kept.clear()
                    put(after.pop(key, ()))
            out.write(kept)
        self._index.create(self.path.stat().st_ino, self.run_id)
        self._scan(LineScanner(self.path), None, False, None)

    async def aclose(self) -> None:
        try:
            if self._file is not None:
                with anyio.CancelScope(shield=True):
                    if self._broken:
                        # What could not be written stays unwritten (and unjournaled):
                        # the resume writes it.  Closing would try the write again.
                        with contextlib.suppress(OSError):
                            await self._file.close()
                    else:
                        try:
                            await self._file.flush()
                            await anyio.to_thread.run_sync(
                                lambda: self._sync(self._index_record(), last=True)
                            )
                            await self._file.close()
                            await anyio.to_thread.run_sync(self._drop_superseded)
                            await anyio.to_thread.run_sync(self._drop_retried)
                        except OSError as exc:
                            error = self._cannot_write(exc)
                            with contextlib.suppress(OSError):
                                await self._file.close()
                            raise error from exc
                self._file = None
        finally:
            self._release_lock()


def _ignore(*args: Any, **kwargs: Any) -> None:
    pass
