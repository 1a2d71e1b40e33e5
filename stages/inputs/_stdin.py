"""
Standard input as an input: the input ``-`` names one document piped in
(``curl -s https://.../invoice.pdf | asyncpipe run - --out r.jsonl``).

Standard input can be read once, so it is read whole, into memory, before discovery
starts; its pages are refs whose ``data`` holds those bytes (as `read_page` attaches a
file's), so no stage, thread or Ray worker ever looks for a file. Their source is
:data:`STDIN_SOURCE` and their ids ``<stdin>#<page>@<content hash>``: piping the same
bytes again gives the same ids, which is what a resume goes by.
"""

from __future__ import annotations

import contextlib
import io
import sys
import threading
from collections.abc import Sequence
from typing import BinaryIO

import anyio
import anyio.from_thread
import anyio.lowlevel

from asyncpipe import ConfigError
from stages._page import PageRef

from ._sniff import LockedPdf, count_pages, describe, examine_bytes

__all__ = [
    "DEFAULT_MAX_STDIN_BYTES",
    "STDIN",
    "STDIN_SOURCE",
    "StdinError",
    "as_file",
    "is_piped",
    "piped_input",
    "read_stdin",
    "stdin_refs",
]

#: The input that names standard input, as in ``cat``, ``tar`` and ``pdftotext``.
STDIN = "-"

#: The source of the pages piped in, in records, messages and ids (as Python names it).
STDIN_SOURCE = "<stdin>"

#: The most bytes read from standard input: it is held in memory whole, for the whole
#: run. 1 GiB is a guess at "larger than any scan or invoice one pipes" (the largest PDF
#: of scans in the tests is a few MB); a larger document is better read as a file, whose
#: pages are read from disk one at a time.
DEFAULT_MAX_STDIN_BYTES = 1 << 30

# Read in chunks so the limit holds however much is piped.
_CHUNK = 1 << 20


class StdinError(ConfigError):
    """
    Standard input cannot be read as a document: a terminal, closed, or too much (bad
    usage: the command exits 2).
    """


def read_stdin(stream: BinaryIO, *, max_bytes: int = DEFAULT_MAX_STDIN_BYTES) -> bytes:
    """
    Everything piped in on ``stream`` (standard input's binary stream), read to its end.

    This blocks until the writer closes the pipe: run it in a worker thread.

    Args:
        stream: where the document comes from, e.g. ``sys.stdin.buffer``.
        max_bytes: refuse more than this many bytes (the document is held in memory).

    Returns:
        The bytes; empty when nothing was piped.

    Raises:
        StdinError: ``stream`` is a terminal (nothing is piped: reading would wait for
            typing), or holds more than ``max_bytes``, or cannot be read.
    """
    try:
        if stream.isatty():
            raise StdinError(
                "the input - reads a document from standard input, but standard input is a "
                "terminal: pipe one in (curl -s URL | asyncpipe run - ...), or name a file"
            )
        chunks: list[bytes] = []
        size = 0
        while chunk := stream.read(min(_CHUNK, max_bytes + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise StdinError(
                    f"standard input holds more than {max_bytes / 2**20:.4g} MB, the most "
                    "read into memory (--max-stdin): save it to a file and name the file, "
                    "or raise --max-stdin"
                )
    except OSError as exc:
        raise StdinError(f"cannot read standard input: {describe(exc)}") from exc
    except ValueError as exc:
        # A closed standard input (``0<&-``): "I/O operation on closed file".
        raise StdinError(f"cannot read standard input: {exc}") from exc
    return b"".join(chunks)


async def piped_input(
    inputs: Sequence[str], *, max_bytes: int = DEFAULT_MAX_STDIN_BYTES
) -> bytes | None:
    """
    The document piped in on standard input when an input is ``-`` (`read_stdin`), or
    ``None`` when none is.

    The read runs on a daemon thread of its own, and waiting for it can be cancelled:
    a Ctrl-C while the writer has not closed the pipe (``sleep 60 | asyncpipe run -``)
    exits at once. On one of anyio's worker threads the exit waited for the pipe to
    close: the interpreter joins them as it ends, and the thread was blocked reading.

    Raises:
        StdinError: ``-`` is given twice (standard input holds one document, and can
            be read once), or standard input is a terminal, closed, or holds more than
            ``max_bytes``.
    """
    given = sum(1 for item in inputs if item == STDIN)
    if not given:
        return None
    if given > 1:
        raise StdinError(
            "the input - (standard input) is given more than once: it holds one document "
            "and can be read once"
        )
    stream = sys.stdin
    if stream is None:  # started with standard input closed (0<&-)
        raise StdinError("the input - reads standard input, but it is closed")
    token = anyio.lowlevel.current_token()
    done = anyio.Event()
    outcome: list[bytes | BaseException] = []

    def read() -> None:
        try:
            # The file descriptor unbuffered, not ``sys.stdin.buffer``: a buffered reader
            # holds its lock for as long as a read waits, and the interpreter, ending
            # while this thread still waits, may try to close it.
            try:
                fd = stream.fileno()
            except (OSError, ValueError) as exc:  # replaced by a stream without one
                raise StdinError(f"cannot read standard input: {exc}") from exc
            with io.FileIO(fd, "rb", closefd=False) as raw:
                outcome.append(read_stdin(raw, max_bytes=max_bytes))
        except BaseException as exc:
            outcome.append(exc)
        # The loop is gone when the run was stopped meanwhile: nobody waits any more.
        with contextlib.suppress(Exception):
            anyio.from_thread.run_sync(done.set, token=token)

    threading.Thread(target=read, name="asyncpipe stdin", daemon=True).start()
    await done.wait()
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def stdin_refs(data: bytes, *, pdf_passwords: Sequence[str] = ()) -> list[PageRef]:
    """
    The pages of the document piped in, each carrying ``data``: one ref per page of a PDF
    or TIFF, one for an image; one ref with a ``problem`` when it is empty, no document
    or damaged (its error record says why).

    Args:
        data: what `read_stdin` read.
        pdf_passwords: the passwords to try on an encrypted PDF.
    """
    found = examine_bytes(data, STDIN_SOURCE)
    pages, locked = 1, False
    if not data:
        found = type(found)(
            found.kind, found.digest, f"{STDIN_SOURCE}: nothing was piped in (0 bytes)"
        )
    elif found.problem is None:
        try:
            pages = count_pages(data, found.kind, passwords=pdf_passwords)
        except (OSError, ValueError) as exc:
            locked = isinstance(exc, LockedPdf)
            problem = f"{STDIN_SOURCE}: {describe(exc)}"
            found = type(found)(found.kind, found.digest, problem)
    return [
        PageRef(
            f"{STDIN_SOURCE}#{page}@{found.digest}",
            STDIN_SOURCE,
            page,
            found.kind,
            found.problem,
            data=data,
            locked=locked,
        )
        for page in range(1, pages + 1)
    ]


def as_file(text: str) -> str:
    """
    A file's path or id path as it may stand beside the pages piped in: a file named
    ``<stdin>`` is ``./<stdin>`` (in its id, source and messages), so its pages never
    share a key or a source with the document piped in, however alike their bytes.

    Only the exact name needs it: a file's id is ``<path>#<page>@<hash>`` with a hash of
    12 hex digits, which equals a piped page's ``<stdin>#<page>@<hash>`` only when the
    path is ``<stdin>`` (a page number holds no ``#``).
    """
    return f"./{text}" if text == STDIN_SOURCE else text


def is_piped(ref: PageRef) -> bool:
    """
    Whether ``ref`` is a page piped in on standard input (a file named ``<stdin>`` has
    the source ``./<stdin>``, `as_file`).
    """
    return ref.source == STDIN_SOURCE and ref.data is not None
