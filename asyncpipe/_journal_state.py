"""
Reading a checkpoint journal, and rewriting it without what no run needs any more.

The journal is JSON lines, one event a line (see `asyncpipe.Journal`).  A compacted
journal starts with a header and a run of ``done`` lines::

    {"ev":"start","at":1700000000.0,"run":"9f2c...","compacted":4096  ,"crc":31415926  }
    {"ev":"done","k":"a","status":"ok"}         the run of done lines: 4096 bytes,
    ...                                         whose CRC-32 is 31415926
    {"ev":"ckpt","k":"b",...}        checkpoints and failures of unfinished items,
    ...                              then whatever was appended since

The header says how long the run of ``done`` lines is, so a resume whose sink knows what
it holds seeks past them: its start-up reads only the part of the journal that holds
checkpoints of unfinished items; and its CRC-32, so a compaction checks the run it copies
cheaply (see `asyncpipe._doneblock`); and the id of the run that wrote the journal, if
it was given one (the start line's ``run``; see `journal_run`).  Old journals (no
header, or a header without a CRC or a run id) read as before.

Every reader streams the file: memory follows the items in flight, not the run's length.
"""

from __future__ import annotations

import os
import re
import time
import zlib
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ._doneblock import check_done_block, error_keys, scan_done_block
from ._durable import CHUNK, LineScanner, atomic_write
from ._exceptions import JournalError
from ._keyset import KeySet
from ._stage import ErrorRecord

__all__ = ["Checkpoint", "JournalState"]

#: Width of the header's byte count and of its CRC: written as placeholders, filled in at
#: the end.
_WIDTH = 20
_CRC_WIDTH = 10
_FLUSH = CHUNK  # bytes of the new file gathered per write (see `CHUNK`)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """
    A journaled stage output: the stage fingerprint, the encoded output and timings.
    """

    fingerprint: str
    output: Any
    timings: dict[str, float]


@dataclass
class JournalState:
    """
    What a journal says about earlier runs.

    `Journal.read` fills every field with everything the file holds.  `Journal.open`, for
    a resume, keeps only what the run needs: the checkpoints and failures of unfinished
    items, and in `done_keys` the items to skip; `done` stays empty.

    Attributes:
        checkpoints: by item key, the latest checkpoint of each stage.
        done: by item key, the status of items whose output was written.
        failed: by item key, the last error record.
        lines: how many events were read.
        torn: how many bytes of a torn last line were cut off.
        corrupt: where the lines that are no journal event are ("line 100"; "byte N"
            when a resume read from the middle): they were skipped.
        done_keys: the keys a resume skips (`Journal.open` only).
    """

    checkpoints: dict[str, dict[str, Checkpoint]] = field(default_factory=dict)
    done: dict[str, str] = field(default_factory=dict)
    failed: dict[str, ErrorRecord] = field(default_factory=dict)
    lines: int = 0
    torn: int = 0
    corrupt: list[str] = field(default_factory=list)
    done_keys: Container[str] = field(default_factory=KeySet, compare=False)


class Written(Container[str]):
    """
    The keys of the items an output holds written ok, read on demand: a compaction drops
    the checkpoints of those whose done lines the journal lost.

    `held` says cheaply which keys the output holds, whatever their status; ``in`` also
    asks ``statuses`` once, for the keys written ok and those written with an error
    (which costs a read of the output), so a compaction asks it only of the items whose
    checkpoints would otherwise go.  A key held but written with an error (an output
    the sink could not encode has no ``fail`` line in the journal), or no longer in the
    output, is not in it.
    """

    def __init__(
        self,
        held: Container[str],
        statuses: Callable[[], tuple[Container[str], Container[str]]],
    ) -> None:
        self.held = held
        self._statuses = statuses
        self._read: tuple[Container[str], Container[str]] | None = None

    def __contains__(self, key: object) -> bool:
        if key not in self.held:
            return False
        if self._read is None:
            self._read = self._statuses()
        ok, errors = self._read
        return key in ok and key not in errors


class NotAnOutput(ValueError):
    """
    A line of a file read as a run's output is no record with the key field.
    """

    def __init__(self, number: int) -> None:
        super().__init__(f"line {number} is no record with the key field")
        self.number = number


def read_statuses(
    path: Path, key_field: str = "id", *, strict: bool = False
) -> tuple[KeySet, set[str]]:
    """
    The keys of a run's output's lines with status ``ok``, and those of its lines with
    any other status (or none: a record without one may stand for an error).

    A line that is no record with ``key_field`` (one garbled) is skipped, as if its item
    were not written: it keeps its checkpoints, which costs at most their bytes.  Its
    first line is not skipped: a file that begins so is no run's output.

    Args:
        path: the output.
        key_field: the field of a record that holds its item's key.
        strict: any line that is no record makes the file no run's output.

    Raises:
        NotAnOutput: its first line (with ``strict``, any line) is no record.
        OSError: it cannot be read (`FileNotFoundError`, `IsADirectoryError`...).
    """
    ok, errors = KeySet(), set()
    for number, (_, line) in enumerate(LineScanner(path), start=1):
        try:
            record = orjson.loads(line)
            key = str(record[key_field])
        except (orjson.JSONDecodeError, KeyError, TypeError, IndexError):
            if strict or number == 1:
                raise NotAnOutput(number) from None
            continue
        if record.get("status") == "ok":
            ok.add(key)
        else:
            errors.add(key)
    return ok, errors


@dataclass
class Layout:
    """
    Where the parts of a journal file are: header, run of done lines, whole lines; the
    run's CRC-32, if the header holds it; and the id of the run that wrote the journal,
    if its first line holds one (see `journal_run`).
    """

    header: int = 0
    done: int = 0
    size: int = 0
    crc: int | None = None
    run: str | None = None

    @property
    def tail(self) -> int:
        """
        Where the lines after the run of done lines start.
        """
        return self.header + self.done


#: How every journal line begins (orjson writes the event's ``ev`` first, unspaced): a
#: file whose first line begins otherwise is no journal, and is never rewritten as one.
JOURNAL_HEAD = b'{"ev":'


class EventReader:
    """
    The events of a journal, from ``start``, with the rule for lines that are no event.

    A line that does not parse, followed only by lines that do not parse either, is a
    torn tail (a write cut by a crash; zeros after a power loss): `torn` bytes, left out.
    Any other line that is no event (it does not parse, but a good line follows; or it
    parses, but is no journal event: see `reject`) is a corrupt line: it is skipped, and
    named in `corrupt`.  What it recorded is lost, and costs at most the redo of that one
    record (a checkpoint, a failure; a done line, where the output cannot say what it
    holds: `read_for_resume` refuses that case).  A first line that is corrupt and does
    not begin as a journal line says the file is no journal: `JournalError`.

    After the iteration `good` is the offset past the last good line.
    """

    def __init__(
        self,
        path: Path,
        *,
        start: int = 0,
        stop: int | None = None,
        skip: Callable[[bytes], bool] | None = None,
        skip_block: Callable[[bytes], int] | None = None,
    ) -> None:
        self.path = path
        self.start = start
        self.skip = skip
        self.skip_block = skip_block
        self.scanner = LineScanner(path, start=start, stop=stop)
        self.lines = 0
        self.good = start
        self.torn = 0
        self.corrupt: list[str] = []

    def where(self, number: int, offset: int) -> str:
        """
        Name a line for a message: its number, or where a read from the middle started
        (after a compacted journal's done lines), its byte offset.
        """
        return f"line {number}" if self.start == 0 else f"byte {offset}"

    def reject(self, where: str, line: bytes) -> None:
        """
        Count a line as corrupt: it is skipped, and named in `corrupt`.

        Raises:
            JournalError: it is the first line of the file, and does not begin as a
                journal line does: the file is no journal (an output, a CSV...).
        """
        if where == "line 1" and not line.startswith(JOURNAL_HEAD):
            raise JournalError(
                f"{self.path} is not a journal (line 1 is no journal event; a journal's "
                f"lines begin {JOURNAL_HEAD.decode()})"
            )
        self.corrupt.append(where)

    def drop(self, where: str, line: bytes) -> None:
        """
        `reject` a line given out as an event whose fields turned out wrong.
        """
        self.lines -= 1
        self.reject(where, line)

    def __iter__(self) -> Iterator[tuple[str, bytes, Any]]:
        # Lines that do not parse, not yet known to be corrupt (a good line follows) or
        # a torn tail (none does).
        pending: list[tuple[str, bytes]] = []
        number = 0
        try:
            skip = self.skip
            skip_block = self.skip_block
            for offset, block in self.scanner.blocks():
                count = skip_block(block) if skip_block is not None else 0
                if count:
                    self._settle(pending)
                    number += count
                    self.lines += count
                    self.good = offset + len(block)
                    continue
                lines = block.split(b"\n")
                lines.pop()  # what follows the block's last newline: nothing
                for line in lines:
                    number += 1
                    where = self.where(number, offset)
                    if skip is not None and skip(line):
                        self._settle(pending)
                        self.lines += 1
                        offset += len(line) + 1
                        self.good = offset
                        continue
                    try:
                        event = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        pending.append((where, line))
                        offset += len(line) + 1
                        continue
                    self._settle(pending)
                    offset += len(line) + 1
                    self.good = offset
                    try:
                        _kind(event)
                    except (TypeError, ValueError):
                        self.reject(where, line)
                        continue
                    self.lines += 1
                    yield where, line, event
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise JournalError(f"cannot read journal {self.path}: {exc}") from exc
        if not pending:
            self.good = self.scanner.end
        self.torn = self.scanner.size - self.good

    def _settle(self, pending: list[tuple[str, bytes]]) -> None:
        """
        A good line follows the lines that did not parse: they are corrupt, not torn.
        """
        for where, line in pending:
            self.reject(where, line)
        pending.clear()


def corrupt_lines(corrupt: list[str]) -> str:
    """
    Name the corrupt lines for a message: ``line 100`` or ``3 lines (line 7, ...)``.
    """
    shown = ", ".join(corrupt[:5]) + (", ..." if len(corrupt) > 5 else "")
    return shown if len(corrupt) == 1 else f"{len(corrupt)} lines ({shown})"


#: What reading the fields of an event raises when the line is no event after all.
_NOT_AN_EVENT = (AttributeError, KeyError, TypeError, ValueError)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _kind(event: Any) -> str:
    if not isinstance(event, dict):
        raise TypeError(f"a JSON {type(event).__name__}, not an object")
    kind = event.get("ev")
    if kind not in ("start", "ok", "ckpt", "fail", "done"):
        raise ValueError(f"unknown event {kind!r}")
    return str(kind)


def _checkpoint(event: dict[str, Any]) -> Checkpoint:
    return Checkpoint(_str(event["fp"]), event.get("out"), event.get("t") or {})


def _error(event: dict[str, Any]) -> ErrorRecord:
    err = event["err"]
    return ErrorRecord(_str(event["s"]), err["type"], err["message"], err["attempts"])


_CKPT = b'{"ev":"ckpt","k":"'
_FAIL = b'{"ev":"fail","k":"'
_DONE = b'{"ev":"done",'


def _finished(done: Container[str]) -> Callable[[bytes], bool]:
    """
    A test for lines a resume can skip unparsed: the sink's word makes done lines moot,
    and checkpoints and failures of finished items are most of a crashed journal.
    """

    def skip(line: bytes) -> bool:
        if line.startswith(_DONE):
            return line.endswith(b"}")
        if line.startswith(_CKPT) or line.startswith(_FAIL):
            end = line.find(b'"', 18)
            key = line[18:end]
            if end > 0 and b"\\" not in key and line.endswith(b"}"):
                try:
                    return key.decode() in done
                except UnicodeDecodeError:
                    return False
        return False

    return skip


#: The start of every line of a block of done lines and the checkpoints and failures of
#: keys without escapes (``done`` and ``start`` lines give an empty key).
_LINE = re.compile(rb'\n\{"ev":"(?:(?:ckpt|fail)","k":"([^"\\\n]*)"|done",|start",)')


def _finished_block(done: Container[str]) -> Callable[[bytes], int]:
    """
    `_finished` for a whole block of lines at once: if every line is one it skips (or a
    start line), found with one regular-expression pass and one lookup per key, the
    number of lines; else 0.
    """

    def skip(block: bytes) -> int:
        found = _LINE.findall(b"\n" + block)
        lines = len(found)
        if lines != block.count(b"\n") or block.count(b"}\n") != lines:
            return 0
        try:
            return lines if all(key.decode() in done for key in set(found) if key) else 0
        except UnicodeDecodeError:
            return 0

    return skip


def read_header(path: Path) -> Layout:
    """
    The header of a compacted journal (a `Layout` of zeros for any other file).

    A header whose run of done lines does not end at the end of a line (a line in it
    edited to another length) or past the file is ignored: the whole file is read then,
    which only takes longer.  Seeking by it would start mid-line, and a resume would cut
    what follows as a torn tail.
    """
    try:
        with open(path, "rb") as fh:
            first = fh.readline(4096)
            size = os.fstat(fh.fileno()).st_size
            event = _header(first)
            run = event.get("run") if event is not None else None
            run = run if isinstance(run, str) else None
            done = event.get("compacted") if event is not None else None
            if not isinstance(done, int) or done < 0 or len(first) + done > size:
                return Layout(size=size, run=run)
            if done and os.pread(fh.fileno(), 1, len(first) + done - 1) != b"\n":
                return Layout(size=size, run=run)
            crc = event.get("crc") if event is not None else None
            if not isinstance(crc, int) or isinstance(crc, bool) or not 0 <= crc < 1 << 32:
                crc = None  # none (an older journal), or not one: the run is read line by line
    except FileNotFoundError:
        return Layout()
    except OSError as exc:
        raise JournalError(f"cannot read journal {path}: {exc}") from exc
    return Layout(len(first), done, size, crc, run)


def journal_run(path: Path) -> str | None:
    """
    The id of the run that wrote a journal: the ``run`` of its first line, the start
    line of that run or the header a compaction carried it to (``None``: a journal of a
    run given no id, or of a version that gave none).

    Raises:
        JournalError: the journal cannot be read.
    """
    return read_header(path).run


def _header(first: bytes) -> dict[str, Any] | None:
    """
    A compacted journal's header event, from its first line, or None.
    """
    try:
        event = orjson.loads(first) if first.endswith(b"\n") else None
    except orjson.JSONDecodeError:
        return None
    if not isinstance(event, dict) or event.get("ev") != "start":
        return None
    return event


def read_all(path: Path) -> JournalState:
    """
    Everything a journal holds (for `Journal.read`: inspection, tests, the CLI).
    """
    state = JournalState()
    events = EventReader(path)
    try:
        for where, line, event in events:
            try:
                kind = _kind(event)
                if kind == "ckpt":
                    key, stage = _str(event["k"]), _str(event["s"])
                    state.checkpoints.setdefault(key, {})[stage] = _checkpoint(event)
                elif kind == "done":
                    key, status = _str(event["k"]), _str(event["status"])
                    state.done[key] = status
                    if status == "ok":
                        state.failed.pop(key, None)
                elif kind == "fail":
                    state.failed[_str(event["k"])] = _error(event)
            except _NOT_AN_EVENT:
                events.drop(where, line)
    except FileNotFoundError:
        return state
    state.lines, state.torn, state.corrupt = events.lines, events.torn, events.corrupt
    return state


def read_for_resume(
    path: Path, *, done: Container[str] | None, retry_failed: bool
) -> tuple[JournalState, Layout]:
    """
    What a resume needs, streamed: checkpoints and failures of the items not done.

    Args:
        path: the journal.
        done: the keys the sink holds (the truth, if given): their events are skipped, and
            so is a compacted journal's run of done lines.  ``None``: the journal's done
            lines decide.
        retry_failed: items done with an error are not done.

    Returns:
        The state, and the layout of the file's good part (``size`` = where it ends).
    """
    layout = read_header(path)
    state = JournalState()
    keys: Container[str] = done if done is not None else KeySet()
    learn = keys if isinstance(keys, KeySet) and done is None else None
    start = layout.tail if done is not None else 0
    events = EventReader(
        path,
        start=start,
        skip=_finished(done) if done is not None else None,
        skip_block=_finished_block(done) if done is not None else None,
    )
    try:
        for where, line, event in events:
            try:
                kind = _kind(event)
                if kind == "ckpt":
                    key, stage = _str(event["k"]), _str(event["s"])
                    if key not in keys:
                        state.checkpoints.setdefault(key, {})[stage] = _checkpoint(event)
                elif kind == "fail":
                    key = _str(event["k"])
                    if key not in keys:
                        state.failed[key] = _error(event)
                elif kind == "done":
                    key, status = _str(event["k"]), _str(event["status"])
                    if learn is not None and (status == "ok" or not retry_failed):
                        learn.add(key)
                        state.checkpoints.pop(key, None)
                        state.failed.pop(key, None)
            except _NOT_AN_EVENT:
                events.drop(where, line)
    except FileNotFoundError:
        state.done_keys = keys
        return state, Layout()
    if events.corrupt and done is None:
        # The line may have been an item's done line, and nothing else says it was
        # written: the item would run, and be written, again.
        raise JournalError(
            f"journal {path} is corrupt at {corrupt_lines(events.corrupt)} (not a torn "
            "tail), and this run's sink cannot say what it holds, so the journal's done "
            "lines decide what is finished: a lost one would run its item and write it "
            "again.  To resume anyway, delete those lines (what they recorded is redone)"
        )
    state.lines, state.torn, state.corrupt = events.lines, events.torn, events.corrupt
    state.done_keys = keys
    layout.size = events.good
    if layout.tail > layout.size:  # the header claims more than the good part holds
        raise JournalError(f"journal {path} is corrupt: its header does not fit the file")
    return state, layout


def compact(
    path: Path,
    layout: Layout,
    *,
    safe: int | None = None,
    keep_done: Callable[[str], bool] | None = None,
    full: bool = False,
    sink_keys: Container[str] | None = None,
) -> tuple[Layout, int, int, list[str], int]:
    """
    Rewrite a journal without the checkpoints of finished items, atomically.

    The new file: a header (the run of done lines' length and CRC-32, and the layout's
    ``run``, the id of the run that wrote the journal), the old run of done
    lines (checked by its CRC, or by `scan_done_block` where the header holds none, then
    copied by the kernel, not parsed), the done lines found after it, then for each
    unfinished item (or item done with an error, which ``retry_failed`` restarts) its
    latest checkpoint of each stage and its last failure, then the lines from ``safe``
    on, unchanged.  Start lines go, and so do the corrupt lines of the part read (see
    `EventReader`); a run of done lines that fails its CRC, or (with none) holds a line
    that is no plain done line, is read as the rest is, so its corrupt lines go too.

    Args:
        path: the journal; no one may append to it meanwhile.
        layout: its layout (``size``: where its good part ends; a torn tail is dropped).
        safe: lines from here on are copied as they are: their "done" lines may stand
            for output lines the sink has not fsynced yet.  Default: the end.
        keep_done: which finished items stay finished (the others keep their
            checkpoints).  Implies ``full``.
        full: read and check the whole file, the run of done lines too.
        sink_keys: the keys of the items the sink holds written ok, durably (its output
            is closed; a `Written` reads their statuses only if needed): an item among
            them that the journal knows neither as done nor as failed was written, and its
            done line lost (a crash between the output's write and the journal's, a
            corrupt line): its checkpoints go.  Those of items done with an error stay,
            whether the journal or the output says so.

    Returns:
        The new layout, the number of lines of the part read and of the new file
        (done lines copied unparsed are in neither), where the corrupt lines dropped
        were, and how many items' checkpoints went as written (``sink_keys``).
    """
    full = full or keep_done is not None
    errored: set[str] = set()  # items the journal says are done with an error
    # The error keys of a run of done lines checked by its CRC, looked for only if needed.
    block_errors: Callable[[], set[str]] | None = None
    crc = 0  # of the new run of done lines, so far
    if not full and layout.done and layout.crc is not None:
        if check_done_block(path, layout.header, layout.tail, layout.crc):
            crc = layout.crc
            block_errors = lambda: error_keys(path, layout.header, layout.tail)  # noqa: E731
        else:
            full = True  # the run is not the one its header describes: read it as the rest
    elif not full and layout.done:
        found = scan_done_block(path, layout.header, layout.tail)
        if found is None:
            full = True  # a line in it is no plain done line: read it as the rest
        else:
            errored, crc = found
    start = 0 if full else layout.tail
    stop = layout.size if safe is None else max(start, min(safe, layout.size))
    checkpoints: dict[str, dict[str, bytes]] = {}
    failures: dict[str, bytes] = {}
    header = b'{"ev":"start","at":%.3f,' % time.time()
    if layout.run is not None:
        header += b'"run":' + orjson.dumps(layout.run) + b","  # the run's id stays
    header += b'"compacted":'
    read = written = 1  # the header
    dropped = 0
    try:
        source = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise JournalError(f"cannot read journal {path}: {exc}") from exc
    try:
        with atomic_write(path) as out:
            buffer = bytearray(_header_line(header, b"", b""))
            out.write(buffer)
            buffer.clear()
            if not full and layout.done:
                out.copy_from(source, layout.header, layout.done)
            events = EventReader(path, start=start, stop=stop)
            read = 0
            for where, line, event in events:
                try:
                    kind = _kind(event)
                    if kind == "ckpt":
                        key, stage = _str(event["k"]), _str(event["s"])
                        checkpoints.setdefault(key, {})[stage] = line
                    elif kind == "fail":
                        failures[_str(event["k"])] = line
                    elif kind == "done":
                        key, status = _str(event["k"]), _str(event["status"])
                        if keep_done is None or keep_done(key):
                            buffer += line
                            buffer += b"\n"
                            written += 1
                            if status == "ok":
                                checkpoints.pop(key, None)
                                failures.pop(key, None)
                                errored.discard(key)
                            else:
                                errored.add(key)
                            if len(buffer) >= _FLUSH:
                                crc = zlib.crc32(buffer, crc)
                                out.write(buffer)
                                buffer.clear()
                except _NOT_AN_EVENT:
                    events.drop(where, line)
            read = events.lines
            if sink_keys is not None:
                dropped = _drop_written(checkpoints, sink_keys, failures, errored, block_errors)
            crc = zlib.crc32(buffer, crc)
            out.write(buffer)
            buffer.clear()
            done = out.size - _header_size(header)
            for line in _chain(checkpoints, failures):
                buffer += line
                buffer += b"\n"
                written += 1
                if len(buffer) >= _FLUSH:
                    out.write(buffer)
                    buffer.clear()
            out.write(buffer)
            if stop < layout.size:
                out.copy_from(source, stop, layout.size - stop)
            out.write_at(0, _header_line(header, b"%d" % done, b"%d" % crc))
            size = out.size
    except OSError as exc:
        raise JournalError(f"cannot compact journal {path}: {exc}") from exc
    finally:
        os.close(source)
    layout = Layout(_header_size(header), done, size, crc, layout.run)
    return layout, read, written, events.corrupt, dropped


def _header_line(start: bytes, done: bytes, crc: bytes) -> bytes:
    """
    A compacted journal's header: ``start`` and the run of done lines' length and CRC-32,
    each padded to its width so that the header is written first and filled in last.
    """
    return start + done.ljust(_WIDTH) + b',"crc":' + crc.ljust(_CRC_WIDTH) + b"}\n"


def _header_size(start: bytes) -> int:
    return len(_header_line(start, b"", b""))


def _drop_written(
    checkpoints: dict[str, dict[str, bytes]],
    sink_keys: Container[str],
    failures: dict[str, bytes],
    errored: set[str],
    block_errors: Callable[[], set[str]] | None = None,
) -> int:
    """
    Drop the checkpoints of items the sink holds written ok that the journal knows
    neither as done nor as failed: their done lines were lost (see `compact`).
    ``block_errors`` gives the items done with an error in a run of done lines not read
    yet, and a `Written` the output's statuses: each is asked only when some item's
    checkpoints would still go, the output last.  Returns how many items' checkpoints
    went.
    """
    held = sink_keys.held if isinstance(sink_keys, Written) else sink_keys
    lost = [key for key in checkpoints if key in held]
    lost = [key for key in lost if key not in failures and key not in errored]
    if lost and block_errors is not None:
        errored = block_errors()
        lost = [key for key in lost if key not in errored]
    if lost and held is not sink_keys:
        lost = [key for key in lost if key in sink_keys]  # the output's statuses, read now
    for key in lost:
        del checkpoints[key]
    return len(lost)


def _chain(checkpoints: dict[str, dict[str, bytes]], failures: dict[str, bytes]) -> Iterator[bytes]:
    for stages in checkpoints.values():
        yield from stages.values()
    yield from failures.values()
