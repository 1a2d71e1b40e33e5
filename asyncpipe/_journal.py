"""
The checkpoint journal: append-only JSON lines, one writer task, batched fsync.

Each line is one event::

    {"ev": "start", "at": 1700000000.0, "stages": ["load", "ocr"]}
    {"ev": "ok",   "k": KEY, "s": STAGE}                               a stage finished
    {"ev": "ckpt", "k": KEY, "s": STAGE, "fp": FP, "out": ..., "t": {...}}   ...with output
    {"ev": "fail", "k": KEY, "s": STAGE, "err": {...}}                 an item failed
    {"ev": "done", "k": KEY, "status": "ok" | "error"}                 its output is written

Crash safety: every batch is one ``os.write`` of whole lines, so after ``kill -9`` the
file holds every line written before the kill and at most one torn line at the end,
which `Journal.open` cuts off before appending.  ``fsync`` (for power loss) is batched
by count and time, and always done when the journal closes.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import orjson

from ._exceptions import JournalError
from ._stage import ErrorRecord

__all__ = ["Checkpoint", "Journal", "JournalState"]

log = logging.getLogger("asyncpipe.journal")


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

    Attributes:
        checkpoints: by item key, the latest checkpoint of each stage.
        done: by item key, the status of items whose output was written.
        failed: by item key, the last error record.
        lines: how many events were read.
        torn: how many bytes of a torn last line were cut off.
    """

    checkpoints: dict[str, dict[str, Checkpoint]] = field(default_factory=dict)
    done: dict[str, str] = field(default_factory=dict)
    failed: dict[str, ErrorRecord] = field(default_factory=dict)
    lines: int = 0
    torn: int = 0


def _read(path: Path) -> tuple[JournalState, int]:
    """
    Parse a journal; return its state and the length of its well-formed prefix.
    """
    state = JournalState()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return state, 0
    except OSError as exc:
        raise JournalError(f"cannot read journal {path}: {exc}") from exc
    good = 0
    lines = data.split(b"\n")
    # The last element is what follows the final newline: empty, or a torn line.
    for number, line in enumerate(lines[:-1], start=1):
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            if _has_good_line_after(lines[number:-1]):
                raise JournalError(
                    f"journal {path} is corrupt at line {number} (not a torn tail): "
                    "move it aside to start over"
                ) from None
            break
        try:
            _apply(state, event)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            # Well-formed JSON that is not a journal event: a whole line (it ends with a
            # newline), so not a torn write but corruption, or a file that is no journal.
            raise JournalError(
                f"journal {path} is corrupt at line {number} (not a journal event: "
                f"{type(exc).__name__}: {exc}): move it aside to start over"
            ) from None
        state.lines += 1
        good += len(line) + 1
    state.torn = len(data) - good
    return state, good


def _has_good_line_after(lines: list[bytes]) -> bool:
    for line in lines:
        try:
            orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        return True
    return False


def _apply(state: JournalState, event: Any) -> None:
    if not isinstance(event, dict):
        raise TypeError(f"a JSON {type(event).__name__}, not an object")
    kind = event.get("ev")
    if kind == "ckpt":
        state.checkpoints.setdefault(_str(event["k"]), {})[_str(event["s"])] = Checkpoint(
            _str(event["fp"]), event.get("out"), event.get("t") or {}
        )
    elif kind == "done":
        key, status = _str(event["k"]), _str(event["status"])
        state.done[key] = status
        if status == "ok":
            state.failed.pop(key, None)
    elif kind == "fail":
        err = event["err"]
        state.failed[_str(event["k"])] = ErrorRecord(
            _str(event["s"]), err["type"], err["message"], err["attempts"]
        )
    elif kind not in ("start", "ok"):
        raise ValueError(f"unknown event {kind!r}")


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


class Journal:
    """
    An append-only JSON-lines journal with one writer task.

    Callers on the event loop queue events with the ``*_nowait`` methods (cheap, never
    blocking); `run_writer` writes them in batches from a worker thread.

    Args:
        path: the journal file.
        fsync_every: fsync after this many events...
        fsync_interval: ...or this many seconds, whichever comes first.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fsync_every: int = 1000,
        fsync_interval: float = 1.0,
    ) -> None:
        self.path = Path(path)
        self.fsync_every = fsync_every
        self.fsync_interval = fsync_interval
        self._pending: list[bytes] = []
        self._wakeup = anyio.Event()
        self._fd: int | None = None
        self._unsynced = 0
        self._last_sync = time.monotonic()
        self._closed = False
        self.failure: BaseException | None = None
        self.written = 0

    # -- reading -----------------------------------------------------------------------

    async def open(self, *, resume: bool) -> JournalState:
        """
        Open the journal for appending and return what earlier runs recorded.

        Without ``resume`` an existing journal is started afresh.  With it, a torn last
        line is cut off so new events start on a clean line.

        Raises:
            JournalError: the journal cannot be read or opened, or is corrupt mid-file.
        """
        return await anyio.to_thread.run_sync(self._open_sync, resume)

    def _open_sync(self, resume: bool) -> JournalState:
        if self._fd is not None:
            raise JournalError(f"journal {self.path} is already open")
        state = JournalState()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if resume:
                state, good = _read(self.path)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                if state.torn:
                    log.warning(
                        "journal %s: cut off a torn last line (%d bytes)", self.path, state.torn
                    )
                    os.ftruncate(self._fd, good)
                    os.fsync(self._fd)
            else:
                flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC
                self._fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            raise JournalError(f"cannot open journal {self.path}: {exc}") from exc
        # A journal object may serve several runs, one after another.
        self._pending = []
        self._wakeup = anyio.Event()
        self._unsynced = 0
        self._last_sync = time.monotonic()
        self._closed = False
        self.failure = None
        return state

    @staticmethod
    async def read(path: str | os.PathLike[str]) -> JournalState:
        """
        Read a journal without opening it for writing.
        """
        state, _ = await anyio.to_thread.run_sync(_read, Path(path))
        return state

    # -- queueing events (event loop, never blocks) -------------------------------------

    def _append(self, event: dict[str, Any]) -> None:
        if self._closed:
            raise JournalError("the journal is closed")
        self._pending.append(orjson.dumps(event, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n")
        self._wakeup.set()

    def start_nowait(self, stages: list[str]) -> None:
        self._append({"ev": "start", "at": time.time(), "stages": stages})

    def stage_ok_nowait(self, key: str, stage: str) -> None:
        self._append({"ev": "ok", "k": key, "s": stage})

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
        if batch or sync:
            # Shielded: once the batch has left ``_pending`` it must reach the file.  An
            # unshielded ``run_sync`` can be cancelled at its first checkpoint, before the
            # thread starts, and the batch (often the last "done" events) would be lost.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._write, b"".join(batch), len(batch), sync)

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
            now = time.monotonic()
            due = self._unsynced >= self.fsync_every or now - self._last_sync >= self.fsync_interval
            if sync or due:
                os.fsync(self._fd)
                self._unsynced = 0
                self._last_sync = now
        except OSError as exc:
            # A failed write may have left part of a line: a later resume cuts it off.
            self.failure = exc
            raise JournalError(f"cannot write journal {self.path}: {exc}") from exc

    async def aclose(self) -> None:
        """
        Write what is queued, fsync and close.  Safe to call twice, and under cancellation.
        """
        if self._fd is None or self._closed:
            return
        with anyio.CancelScope(shield=True):
            try:
                if self.failure is None:
                    await self.flush(sync=True)
            finally:
                self._closed = True
                fd, self._fd = self._fd, None
                await anyio.to_thread.run_sync(os.close, fd)

    # -- maintenance --------------------------------------------------------------------

    @staticmethod
    async def compact(
        path: str | os.PathLike[str], *, keep_done: Callable[[str], bool] | None = None
    ) -> tuple[int, int]:
        """
        Rewrite a journal with only what resume needs: one ``done`` line per finished
        item, and for every other item the latest checkpoint of each stage and its last
        failure.

        Items finished with an error keep their checkpoints too, so that a resume with
        ``retry_failed`` still restarts them after their last checkpoint.  Never compact
        a journal that a run has open.

        Args:
            path: the journal file.  The new file replaces it atomically.
            keep_done: which finished items stay finished, e.g. ``lambda key: key in
                written`` with the keys the sink holds (the sink is the truth: after a power
                loss the journal may say "done" for a line that never reached the disk).
                An item it rejects is kept as unfinished, with its checkpoints.  Default:
                every item the journal says is done.

        Returns:
            The number of events before and after.

        Raises:
            JournalError: the journal cannot be read, is corrupt, or cannot be rewritten.
        """
        return await anyio.to_thread.run_sync(_compact, Path(path), keep_done)


def _compact(path: Path, keep_done: Callable[[str], bool] | None) -> tuple[int, int]:
    state, _ = _read(path)
    done = {
        key: status for key, status in state.done.items() if keep_done is None or keep_done(key)
    }
    out: list[bytes] = []
    for key, status in done.items():
        out.append(orjson.dumps({"ev": "done", "k": key, "status": status}))
    for key, stages in state.checkpoints.items():
        if done.get(key) == "ok":
            continue
        for stage, ck in stages.items():
            out.append(
                orjson.dumps(
                    {
                        "ev": "ckpt",
                        "k": key,
                        "s": stage,
                        "fp": ck.fingerprint,
                        "out": ck.output,
                        "t": ck.timings,
                    }
                )
            )
    for key, err in state.failed.items():
        if done.get(key) != "ok":
            out.append(orjson.dumps({"ev": "fail", "k": key, "s": err.stage, "err": err.to_json()}))
    tmp = path.with_name(path.name + ".compact")
    try:
        with open(tmp, "wb") as fh:
            fh.write(b"".join(line + b"\n" for line in out))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        raise JournalError(f"cannot compact journal {path}: {exc}") from exc
    return state.lines, len(out)


def _fsync_dir(directory: Path) -> None:
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
