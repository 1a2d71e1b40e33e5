"""
The checkpoint journal: append-only JSON lines, one writer task, batched fsync, and
compaction that keeps it about as large as the work in flight.

Each line is one event::

    {"ev": "start", "at": 1700000000.0, "stages": ["load", "ocr"], "run": "9f2c..."}
    {"ev": "ckpt", "k": KEY, "s": STAGE, "fp": FP, "out": ..., "t": {...}}   a stage output
    {"ev": "fail", "k": KEY, "s": STAGE, "err": {...}}                 an item failed
    {"ev": "done", "k": KEY, "status": "ok" | "error"}                 its output is written

(Journals written by early versions of this package also hold ``{"ev": "ok", "k": KEY,
"s": STAGE}`` lines, which nothing needed: they are read and dropped.)

Crash safety: every ``os.write`` is of whole lines, so after ``kill -9`` the
file holds every line written before the kill and at most one torn line at the end,
which `Journal.open` cuts off before appending.  ``fsync`` (for power loss) is batched
by count and time, and always done when the journal closes.

Size: the checkpoint of an item is dead weight once its output is written.  When the
part written since the last compaction outgrows ``compact_bytes`` (and the done lines),
the writer rewrites the file without it (see `_journal_state.compact`), and it does so
once more when the journal closes.  Each rewrite goes to a temporary file that replaces
the journal atomically, so a crash at any instant leaves the old or the new journal.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Container
from pathlib import Path
from typing import Any

import anyio
import orjson

from . import _runlock
from ._durable import CHUNK, temporary
from ._exceptions import JournalError
from ._journal_state import (
    JOURNAL_HEAD,
    Checkpoint,
    JournalState,
    Layout,
    compact,
    corrupt_lines,
    read_all,
    read_for_resume,
    read_header,
)
from ._stage import ErrorRecord

__all__ = ["Checkpoint", "Journal", "JournalState"]

log = logging.getLogger("asyncpipe.journal")

#: Compact when this much was written since the last compaction (and more than the done
#: lines take): 16 MiB, a guess; a resume reads at most about this much of skipped checkpoints.
COMPACT_BYTES = 16 << 20

#: The run waits (`Journal.room`) while more than this many bytes of events are queued:
#: a writer busy compacting a large journal must hold the run back, not let it queue
#: events in memory at the pipeline's full rate.
MAX_PENDING = 8 << 20

#: Bytes of lines joined for one ``os.write``: the same size as a read, for the same
#: reason (below glibc's ``mmap`` threshold; see `CHUNK` and `Journal._write_lines`).
WRITE_CHUNK = CHUNK


def _skipped(corrupt: list[str]) -> str:
    """
    What a run says of the corrupt lines it skipped.
    """
    return (
        f"the corrupt {corrupt_lines(corrupt)} (not a torn tail, no journal event): "
        "what it held is lost, at worst a checkpoint whose stage runs again for its item "
        "(the output says which items are done)"
    )


class Journal:
    """
    An append-only JSON-lines journal with one writer task.

    Callers on the event loop queue events with the ``*_nowait`` methods (cheap, never
    blocking); `run_writer` writes them in batches from a worker thread.

    Args:
        path: the journal file.
        fsync_every: fsync after this many events...
        fsync_interval: ...or this many seconds, whichever comes first.
        compact_bytes: rewrite the journal without the checkpoints of finished items when
            the part written since the last rewrite exceeds this many bytes, the done
            lines and twice what the last rewrite kept; and once more on `aclose`.
            ``None``: never rewrite it.
        compact_grace: a rewrite during the run keeps the lines of the last this many
            seconds as they are.  Their "done" lines may stand for output the sink has
            not fsynced yet; after a power loss such an item runs again, and it must
            still find its checkpoints.  Keep it above the sink's fsync interval.
        max_pending: `room` waits while more than this many bytes of events are queued
            for the writer, so memory stays bounded while it writes or compacts.
        run_id: the id of the run, written in its start lines and kept by every
            compaction in the journal's header; its output's key index keeps it too, so
            that a resume and ``asyncpipe journal compact`` tell this run's output from
            another run's, and refuse the other's.  ``None`` (the default): a run with
            a `JsonlSink` gives both one id, a new one for a new run and on resume the
            one the journal holds, which a resume keeps over one given here.

    .. versionadded:: 0.1
    .. versionchanged:: Unreleased
        ``run_id``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fsync_every: int = 1000,
        fsync_interval: float = 1.0,
        compact_bytes: int | None = COMPACT_BYTES,
        compact_grace: float = 2.0,
        max_pending: int = MAX_PENDING,
        run_id: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.run_id = run_id
        self.fsync_every = fsync_every
        self.fsync_interval = fsync_interval
        self.compact_bytes = compact_bytes
        self.compact_grace = compact_grace
        self.max_pending = max_pending
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._room = anyio.Event()
        self._wakeup = anyio.Event()
        self._fd: int | None = None
        self._lock: int | None = None  # see `_runlock`
        self._unsynced = 0
        self._last_sync = time.monotonic()
        self._closed = False
        self._layout = Layout()
        self._clean = 0  # the end of what the last compaction left
        self._marks: deque[tuple[float, int]] = deque()  # (time, size) after each write
        self._old = 0  # the end of the lines written ``compact_grace`` seconds ago
        self._stuck = False  # a compaction failed: stop trying
        self._more = False  # more chunks of the batch follow this write
        self.failure: BaseException | None = None
        self.written = 0
        self.compactions = 0

    # -- reading -----------------------------------------------------------------------

    async def lock(self) -> None:
        """
        Take the journal's run lock now, before `open`: a run takes it before it touches
        its output, so that a second start of the same job stops before it empties the
        first one's file.  `open` takes it itself if it is not held; `aclose` lets it go.

        Raises:
            JournalError: another run holds the lock (this object's own run included: one
                `Journal` serves one run at a time), or it cannot be taken.
        """
        if self._lock is not None or self._fd is not None:
            raise JournalError(
                f"journal {self.path} is in use by another run (this Journal object's): "
                "one Journal serves one run at a time"
            )
        self._lock = await anyio.to_thread.run_sync(_runlock.take, self.path)

    def _release_lock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            _runlock.release(lock)

    async def open(
        self,
        *,
        resume: bool,
        done: Container[str] | None = None,
        retry_failed: bool = False,
    ) -> JournalState:
        """
        Open the journal for appending and return what a resume needs of earlier runs.

        Without ``resume`` an existing journal is started afresh.  With it, the journal
        is streamed: the state holds the checkpoints and failures of unfinished items
        only, and in ``done_keys`` what to skip.  A torn last line is cut off so new
        events start on a clean line.

        Args:
            resume: continue the journal.
            done: the keys the sink holds, if it can tell: they decide what is finished
                (after a power loss the journal may say "done" for a line that never
                reached the disk), and become ``done_keys``.
            retry_failed: items done with an error count as unfinished (when the
                journal decides).

        Raises:
            JournalError: the journal cannot be read or opened, or is corrupt mid-file.
        """
        return await anyio.to_thread.run_sync(self._open_sync, resume, done, retry_failed)

    def _open_sync(
        self, resume: bool, done: Container[str] | None, retry_failed: bool
    ) -> JournalState:
        if self._fd is not None:
            raise JournalError(f"journal {self.path} is already open")
        if self._lock is None:
            self._lock = _runlock.take(self.path)
        try:
            state = self._open_file(resume, done, retry_failed)
        except BaseException:
            self._release_lock()
            raise
        # A journal object may serve several runs, one after another.
        self._pending = []
        self._wakeup = anyio.Event()
        self._unsynced = 0
        self._last_sync = time.monotonic()
        self._closed = False
        # What follows the done lines of a journal read back counts as new: the run before
        # may have crashed before compacting it.
        self._clean = self._old = self._layout.tail
        self._marks.clear()
        self._stuck = False
        self.failure = None
        return state

    def _open_file(
        self, resume: bool, done: Container[str] | None, retry_failed: bool
    ) -> JournalState:
        state = JournalState()
        self._layout = Layout()
        try:
            # What a compaction cut short left behind: the journal itself is whole.
            temporary(self.path).unlink(missing_ok=True)
            if resume:
                state, self._layout = read_for_resume(
                    self.path, done=done, retry_failed=retry_failed
                )
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                if state.torn:
                    log.warning(
                        "journal %s: cut off a torn last line (%d bytes)", self.path, state.torn
                    )
                    os.ftruncate(self._fd, self._layout.size)
                    os.fsync(self._fd)
                if state.corrupt:
                    log.warning("journal %s: skipped %s", self.path, _skipped(state.corrupt))
            else:
                flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC
                self._fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            raise JournalError(f"cannot open journal {self.path}: {exc}") from exc
        if self.run_id is not None:
            self._layout.run = self.run_id  # which its compactions keep in the header
        return state

    @staticmethod
    async def read(path: str | os.PathLike[str]) -> JournalState:
        """
        Read everything a journal holds, without opening it for writing.

        Unlike `open`, this keeps every checkpoint and done status in memory: it is for
        inspection, not for resuming a long run.
        """
        return await anyio.to_thread.run_sync(read_all, Path(path))

    # -- queueing events (event loop, never blocks) -------------------------------------

    def _append(self, event: dict[str, Any]) -> None:
        if self._closed:
            raise JournalError("the journal is closed")
        line = orjson.dumps(event, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"
        self._pending.append(line)
        self._pending_bytes += len(line)
        self._wakeup.set()

    async def room(self) -> None:
        """
        Wait while more than ``max_pending`` bytes of events wait for the writer.

        The ``*_nowait`` methods never block; the run calls this after each batch of
        finished items, so a writer that falls behind (a slow disk, a long compaction)
        holds the pipeline back through its bounded queues instead of filling memory.
        """
        while self._pending_bytes > self.max_pending and self.failure is None and not self._closed:
            if self._room.is_set():
                self._room = anyio.Event()
            await self._room.wait()

    def start_nowait(self, stages: list[str]) -> None:
        event: dict[str, Any] = {"ev": "start", "at": time.time(), "stages": stages}
        if self.run_id is not None:
            event["run"] = self.run_id
        self._append(event)

    def checkpoint_nowait(
        self, key: str, stage: str, fingerprint: str, output: Any, timings: dict[str, float]
    ) -> None:
        self._append(
            {"ev": "ckpt", "k": key, "s": stage, "fp": fingerprint, "out": output, "t": timings}
        )

    def failed_nowait(self, key: str, error: ErrorRecord) -> None:
        self._append({"ev": "fail", "k": key, "s": error.stage, "err": error.to_json()})

    def done_nowait(self, key: str, status: str) -> None:
        self._append({"ev": "done", "k": key, "status": status})

    # -- writing (one task) -------------------------------------------------------------

    async def run_writer(self) -> None:
        """
        Write queued events until cancelled; run it as one task in the pipeline's group.
        """
        while True:
            await self._wakeup.wait()
            self._wakeup = anyio.Event()
            await self.flush()

    async def flush(self, *, sync: bool = False) -> None:
        """
        Write every queued event now (from a worker thread); fsync if due or asked.
        """
        batch, self._pending = self._pending, []
        self._pending_bytes = 0
        self._room.set()
        if batch or sync:
            # Shielded: once the batch has left ``_pending`` it must reach the file.  An
            # unshielded ``run_sync`` can be cancelled at its first checkpoint, before the
            # thread starts, and the batch (often the last "done" events) would be lost.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._write_lines, [batch], sync)

    def _write_lines(self, box: list[list[bytes]], sync: bool) -> None:
        """
        Write a batch of lines, ``WRITE_CHUNK`` bytes a write (in the writer's thread).

        The batch comes in a box that this empties: the worker thread keeps the arguments
        of its last call until its next one, and must not keep megabytes of lines alive.
        Joining a whole batch (up to ``max_pending`` bytes) into one buffer would be worse
        still: glibc serves an allocation that large by ``mmap``, then raises its threshold
        for ``mmap`` to that size, after which every buffer below it comes from heaps it
        seldom gives back (the resume's peak RSS grew by tens of MB this way).
        """
        lines = box.pop()
        chunk: list[bytes] = []
        size = 0
        self._more = True  # a batch is fsynced (if due) once, after its last chunk
        try:
            for line in lines:
                chunk.append(line)
                size += len(line)
                if size >= WRITE_CHUNK:
                    self._write(b"".join(chunk), len(chunk), False)
                    chunk.clear()
                    size = 0
        finally:
            self._more = False
        del lines
        self._write(b"".join(chunk), len(chunk), sync)

    def _write(self, data: bytes, count: int, sync: bool) -> None:
        if self._fd is None:
            raise JournalError("the journal is not open")
        try:
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            self.written += count
            self._unsynced += count
            self._layout.size += len(data)
            now = time.monotonic()
            due = self._unsynced >= self.fsync_every or now - self._last_sync >= self.fsync_interval
            if sync or (due and not self._more):
                os.fsync(self._fd)
                self._unsynced = 0
                self._last_sync = now
        except OSError as exc:
            # A failed write may have left part of a line: a later resume cuts it off.
            self.failure = exc
            raise JournalError(f"cannot write journal {self.path}: {exc}") from exc
        if data and self.compact_bytes is not None and not self._stuck:
            self._marks.append((now, self._layout.size))
            if self._due():
                self._compact(grace=True)

    def _safe(self) -> int:
        """
        The end of the lines written at least ``compact_grace`` seconds ago.
        """
        horizon = time.monotonic() - self.compact_grace
        while self._marks and self._marks[0][0] <= horizon:
            self._old = self._marks.popleft()[1]
        return max(self._old, self._clean)

    def _due(self) -> bool:
        assert self.compact_bytes is not None
        grown = self._safe() - self._clean
        kept = self._clean - self._layout.tail
        return grown >= max(self.compact_bytes, self._layout.done, kept)

    def _compact(self, *, grace: bool, sink_keys: Container[str] | None = None) -> None:
        """
        Rewrite the journal without finished items' checkpoints (in the writer's thread);
        with ``sink_keys``, without those of the items the sink holds too (see `aclose`).

        A rewrite that fails (say, the disk is full) leaves the journal as it was: it is
        logged, and the run goes on without compacting.
        """
        assert self._fd is not None
        safe = self._safe() if grace else self._layout.size
        before = self._layout.size
        try:
            self._layout, _, _, corrupt, _ = compact(
                self.path, self._layout, safe=safe, sink_keys=sink_keys
            )
            if corrupt:
                log.warning("journal %s: compacted without %s", self.path, _skipped(corrupt))
        except JournalError as exc:
            log.warning("journal %s: not compacted: %s", self.path, exc)
            self._stuck = True
            try:
                replaced = os.stat(self.path).st_ino != os.fstat(self._fd).st_ino
            except OSError:
                replaced = True
            if not replaced:
                return
            # The rename happened, and then something failed: append to the new file.
            self._layout = read_header(self.path)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            self.failure = exc
            raise JournalError(f"cannot reopen journal {self.path}: {exc}") from exc
        old, self._fd = self._fd, fd
        os.close(old)
        # Everything in the new file was fsynced by the rewrite.
        self._unsynced = 0
        self._last_sync = time.monotonic()
        # The lines after ``safe`` were copied as they were, this much further up.
        shift = before - self._layout.size
        self._clean = self._layout.size - (before - safe)
        self._old = self._clean
        self._marks = deque((t, size - shift) for t, size in self._marks)
        self.compactions += 1
        log.debug("journal %s: compacted %d -> %d bytes", self.path, before, self._layout.size)

    async def aclose(self, *, written: Container[str] | None = None) -> None:
        """
        Write what is queued, fsync, compact (if enabled) and close.  Safe to call twice,
        and under cancellation.

        Compacting drops the checkpoints of items whose "done" line is written: close
        the sink first, so that their output lines are durable (the pipeline does).

        Args:
            written: the keys of the items the sink held when it opened written ok
                (without an error record), once it has closed (its output durable; see
                `Sink.written_ok`): the compaction drops the checkpoints of those items
                too, when the journal lost their done lines (a crash between the
                output's write and the journal's, a corrupt line).  It keeps those of
                items the journal knows failed.  An item written with an error must not
                be in it: its checkpoints spare a ``retry_failed`` resume its paid calls.

        .. versionchanged:: Unreleased
            ``written``.
        """
        if self._fd is None or self._closed:
            self._release_lock()  # taken by `lock`, and the run stopped before `open`
            return
        with anyio.CancelScope(shield=True):
            try:
                if self.failure is None:
                    await self.flush(sync=True)
                    if (
                        self.compact_bytes is not None
                        and not self._stuck
                        and self._layout.size > self._clean
                    ):
                        await anyio.to_thread.run_sync(
                            lambda: self._compact(grace=False, sink_keys=written)
                        )
            finally:
                self._closed = True
                fd, self._fd = self._fd, None
                if fd is not None:
                    await anyio.to_thread.run_sync(os.close, fd)
                self._release_lock()

    # -- maintenance --------------------------------------------------------------------

    @staticmethod
    async def compact(
        path: str | os.PathLike[str],
        *,
        keep_done: Callable[[str], bool] | None = None,
        written: Container[str] | None = None,
    ) -> tuple[int, int]:
        """
        Rewrite a journal with only what resume needs: one ``done`` line per finished
        item, and for every other item the latest checkpoint of each stage and its last
        failure.

        Items finished with an error keep their checkpoints too, so that a resume with
        ``retry_failed`` still restarts them after their last checkpoint.  Never compact
        a journal that a run has open (a run compacts its own journal as it goes): that
        raises `JournalError`.

        Args:
            path: the journal file.  The new file replaces it atomically.
            keep_done: which finished items stay finished, e.g. ``lambda key: key in
                written`` with the keys the sink holds (the sink is the truth: after a power
                loss the journal may say "done" for a line that never reached the disk).
                An item it rejects is kept as unfinished, with its checkpoints.  Default:
                every item the journal says is done.
            written: the keys of the items the output holds written ok (without an error
                record): those the journal knows neither as done nor as failed lost
                their done lines, and their checkpoints go, as a run's closing
                compaction drops them (see `aclose`).  Default: every checkpoint of an
                item the journal does not know as done ok stays.

        Returns:
            The number of lines before and after.

        Raises:
            JournalError: the journal cannot be read, is no journal, or cannot be
                rewritten.  Corrupt lines are dropped, with a warning that names them.

        .. versionchanged:: Unreleased
            ``written``.
        """
        before, after, corrupt, _ = await anyio.to_thread.run_sync(
            lambda: compact_file(Path(path), keep_done, written=written)
        )
        if corrupt:
            log.warning("journal %s: compacted without %s", path, _skipped(corrupt))
        return before, after


def compact_file(
    file: Path,
    keep_done: Callable[[str], bool] | None = None,
    *,
    written: Container[str] | None = None,
) -> tuple[int, int, list[str], int]:
    """
    `Journal.compact`, in the calling thread; also returns where the corrupt lines it
    dropped were and how many items' checkpoints went as written (for ``asyncpipe journal
    compact`` to say).

    Args:
        file: the journal.
        keep_done: as for `Journal.compact`.
        written: the keys of the items the output holds written without an error: those
            the journal knows neither as done nor as failed lost their done lines, and
            their checkpoints go, as a run's closing compaction drops them.
    """
    if not file.exists():
        raise JournalError(f"cannot compact journal {file}: it does not exist")
    with file.open("rb") as stream:
        head = stream.read(len(JOURNAL_HEAD))
    if head and head != JOURNAL_HEAD:
        # Compacting keeps the events it can read: of a file that holds none (a
        # JPEG, a CSV, an output given by mistake) it would keep nothing.
        raise JournalError(
            f"cannot compact {file}: it is not a journal (line 1 is no journal event)"
        )
    lock = _runlock.take(file, advice=_LIVE)  # not while a run has it open
    try:
        temporary(file).unlink(missing_ok=True)
        layout = Layout(size=file.stat().st_size, run=read_header(file).run)
        _, before, after, corrupt, dropped = compact(
            file, layout, keep_done=keep_done, full=True, sink_keys=written
        )
    finally:
        _runlock.release(lock)
    return before, after, corrupt, dropped


#: What `compact_file` says of a journal a run has open.
_LIVE = "let it compact the journal itself (a run compacts its own as it goes)"
