"""
Checking a compacted journal's run of done lines without parsing it.

A compaction copies the run of done lines as it is, and a resume whose sink knows what it
holds seeks past it (see ``asyncpipe._journal_state``).  A line in it edited to another
length shows (the run no longer ends at the end of a line), but one edited to the same
length (a hand edit, a flipped bit) would never be read again, and each compaction
would copy it on.  So a run's compaction checks the run first: `scan_done_block` says
whether every line is a plain done line (else the compaction reads the run as it reads
the rest, and drops what is corrupt), and which items it says finished with an error.

A header that holds the run's CRC-32 (``"crc"``, written by each compaction) makes the
check `check_done_block`, a ``zlib.crc32`` of the run, several times cheaper than
matching every line with a regular expression (``benchmarks/done_block.py``); the keys
done with an error are then looked for only when the compaction needs them
(`error_keys`).  A journal with no CRC in its header (written before it was added) is
checked line by line, `scan_done_block`, as it always was; its next compaction writes
the CRC.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import orjson

from ._durable import CHUNK, LineScanner

__all__: list[str] = []  # internal: used by the journal's compaction

#: The text of a key as orjson writes it in a JSON string: no quote, backslash or control
#: character but in an escape (orjson writes ``\uXXXX`` for control characters only).
_KEY = rb'[^"\\\x00-\x1f]*(?:\\(?:["\\/bfnrt]|u00[01][0-9a-fA-F])[^"\\\x00-\x1f]*)*'
#: Lines that are all done lines as the journal writes them.
_DONE_LINES = re.compile(rb'(?:\{"ev":"done","k":"' + _KEY + rb'","status":"(?:ok|error)"\}\n)*')
#: A done line with an error status, from the newline before it: its key.
_ERROR_LINE = re.compile(rb'\n\{"ev":"done","k":"(' + _KEY + rb')","status":"error"\}')
_ERROR = b'"status":"error"}'


def check_done_block(path: Path, start: int, stop: int, crc: int) -> bool:
    """
    Whether a run of done lines matches the CRC-32 its header holds: then it is the run
    a compaction wrote, and its lines need no matching one by one.

    Plain reads, not split into lines: splitting (`LineScanner`) costs more than the
    CRC itself.
    """
    found = 0
    with open(path, "rb", buffering=0) as fh:
        fh.seek(start)
        left = stop - start
        while left > 0:
            data = fh.read(min(CHUNK, left))
            if not data:
                return False
            found = zlib.crc32(data, found)
            left -= len(data)
    return found == crc


def scan_done_block(path: Path, start: int, stop: int) -> tuple[set[str], int] | None:
    """
    The keys a run of done lines says finished with an error, and the run's CRC-32 (for
    the header of the compacted journal); or ``None`` if a line in it is no plain done
    line (corrupt, or written by hand).

    Args:
        path: the journal.
        start: where the run starts (after the header).
        stop: where it ends (at the end of a line).
    """
    errors: set[str] = set()
    crc = 0
    scanner = LineScanner(path, start=start, stop=stop)
    for _, block in scanner.blocks():
        crc = zlib.crc32(block, crc)
        if _DONE_LINES.fullmatch(block) is None:
            return None
        if not block.isascii():
            try:
                block.decode()  # a key's bytes are UTF-8, as in any JSON the reader takes
            except UnicodeDecodeError:
                return None
        if _ERROR in block:
            errors.update(_text(key) for key in _ERROR_LINE.findall(b"\n" + block))
    if scanner.end != stop:
        return None
    return errors, crc


def error_keys(path: Path, start: int, stop: int) -> set[str]:
    """
    The keys a run of done lines already checked (`check_done_block`) says finished with
    an error.
    """
    errors: set[str] = set()
    for _, block in LineScanner(path, start=start, stop=stop).blocks():
        if _ERROR in block:
            errors.update(_text(key) for key in _ERROR_LINE.findall(b"\n" + block))
    return errors


def _text(key: bytes) -> str:
    """
    A key's text, from its bytes in a JSON string.
    """
    text: str = orjson.loads(b'"' + key + b'"') if b"\\" in key else key.decode()
    return text
