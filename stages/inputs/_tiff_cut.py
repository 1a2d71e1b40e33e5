"""
A TIFF whose file ends early: what is missing, said plainly, and the strips of its page
that did arrive, read.

A TIFF is a chain of directories, one a page, each giving its page's size and the byte
ranges ("strips") its rows are stored in, top to bottom.  Where they lie is up to the
writer: libtiff (and so Pillow, compressing) writes a page's strips first and its
directory after them, so a file cut inside a page has lost that page's directory, and
nothing says what the page even is; libraries then report "Missing dimensions".  A writer
that puts the directory first (Pillow's, uncompressed; many scanners) leaves the page's
size and its first strips: those rows are read, the page being made as tall as they are.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["TiffCut", "tiff_cut"]

_WIDTH, _LENGTH, _OFFSETS, _ROWS_PER_STRIP, _COUNTS, _PLANAR = 256, 257, 273, 278, 279, 284
_SIZES = {1: 1, 3: 2, 4: 4}  # BYTE, SHORT, LONG: the integer types these tags come in


@dataclass(frozen=True)
class TiffCut:
    """
    What a TIFF that ends early lacks of one page.

    Attributes:
        reason: what is wrong, for a message that starts with the file's path.
        readable: the file with the page's directory saying it is only as tall as the
            rows whose strips all arrived (the others are left out), or ``None`` when
            none of its rows can be read.
        share: the share of the page's rows ``readable`` holds (0 without it).
    """

    reason: str
    readable: bytes | None = None
    share: float = 0.0


class _Entry:
    """One tag of a directory: where its value lies, and how to read it."""

    def __init__(self, data: bytes, at: int, order: str) -> None:
        self.kind, count = struct.unpack_from(order + "HI", data, at + 2)
        size = _SIZES.get(self.kind, 0)
        self.count = count
        # A value of four bytes or fewer is in the entry; a longer one is pointed to.
        inline = size * count <= 4
        self.entry = at
        self.at = at + 8 if inline else struct.unpack_from(order + "I", data, at + 8)[0]
        self.size = size
        self.order = order

    def values(self, data: bytes) -> list[int] | None:
        """The tag's integers, or ``None`` when they lie past the end of ``data``."""
        if self.size == 0 or self.at + self.size * self.count > len(data):
            return None
        return list(struct.unpack_from(f"{self.order}{self.count}{self.code}", data, self.at))

    @property
    def code(self) -> str:
        return {1: "B", 2: "H", 4: "I"}[self.size]

    def keep(self, data: bytearray, values: list[int]) -> None:
        """Make the tag's value ``values``, the first of its own (in place, in ``data``)."""
        struct.pack_into(self.order + "I", data, self.entry + 4, len(values))
        if self.size * len(values) <= 4:  # now short enough to lie in the entry itself
            struct.pack_into(f"{self.order}{len(values)}{self.code}", data, self.entry + 8, *values)


def tiff_cut(data: bytes, page: int) -> TiffCut | None:
    """
    Whether the TIFF ``data`` ends before all of page ``page`` (counted from 1): what
    it lacks, and its rows that arrived; ``None`` when the page is all there (so what
    is wrong with it is something else) or the file is no classic TIFF.
    """
    end = len(data)
    head = data[:8]
    if len(head) < 8 or head[:4] not in (b"II*\x00", b"MM\x00*"):
        return None
    order = "<" if head[:2] == b"II" else ">"
    where = struct.unpack_from(order + "I", data, 4)[0]
    name = "its directory" if page == 1 else f"page {page}'s directory"
    for number in range(1, page + 1):
        if where == 0:
            return None  # no such page: load_page says so itself
        if where + 2 > end:
            return TiffCut(
                f"truncated TIFF: the file ends at byte {end}, before {name} (at byte "
                f"{where}), which gives the page's size and where its pixels lie; nothing of "
                "the page can be read"
            )
        count = struct.unpack_from(order + "H", data, where)[0]
        if where + 2 + 12 * count + 4 > end:
            return TiffCut(
                f"truncated TIFF: the file ends at byte {end}, inside {name} (at byte "
                f"{where}); nothing of the page can be read"
            )
        if number < page:
            where = struct.unpack_from(order + "I", data, where + 2 + 12 * count)[0]
    entries = {
        struct.unpack_from(order + "H", data, at)[0]: _Entry(data, at, order)
        for at in range(where + 2, where + 2 + 12 * count, 12)
    }
    return _strips(data, page, entries)


def _strips(data: bytes, page: int, entries: dict[int, _Entry]) -> TiffCut | None:
    """The rows of a page whose directory is whole, by the strips that arrived."""
    end = len(data)
    which = "the page" if page == 1 else f"page {page}"
    height = _first(entries.get(_LENGTH), data)
    offsets = entries[_OFFSETS].values(data) if _OFFSETS in entries else None
    counts = entries[_COUNTS].values(data) if _COUNTS in entries else None
    if height is None or _first(entries.get(_WIDTH), data) is None:
        return None
    if offsets is None or counts is None:
        if _OFFSETS not in entries or _COUNTS not in entries:
            return None  # a tiled page, or no strips at all: not a truncation
        return TiffCut(
            f"truncated TIFF: the file ends at byte {end}, before the list of where "
            f"{which}'s pixels lie; nothing of it can be read"
        )
    stored = max(o + c for o, c in zip(offsets, counts, strict=False))
    if stored <= end:
        return None
    reason = (
        f"truncated TIFF: the file ends at byte {end}, inside {which}'s pixel data "
        f"(which runs to byte {stored})"
    )
    whole = 0
    while whole < len(offsets) and offsets[whole] + counts[whole] <= end:
        whole += 1
    per_strip = min(height, _first(entries.get(_ROWS_PER_STRIP), data) or height)
    rows = min(height, whole * per_strip)
    if (_first(entries.get(_PLANAR), data) or 1) != 1:
        return TiffCut(f"{reason}; nothing of it can be read")  # a strip holds one colour
    if rows == 0:
        return TiffCut(
            f"{reason}; its first strip (rows 1 to {per_strip}) did not arrive whole: "
            "nothing of it can be read"
        )
    # The page is made as tall as its whole strips, and only those are listed (Pillow's
    # own decoder reads every strip listed, whatever the page's height).
    readable = bytearray(data)
    entries[_LENGTH].keep(readable, [rows])
    entries[_OFFSETS].keep(readable, offsets[:whole])
    entries[_COUNTS].keep(readable, counts[:whole])
    return TiffCut(reason, bytes(readable), rows / height)


def _first(entry: _Entry | None, data: bytes) -> int | None:
    values = entry.values(data) if entry is not None else None
    return values[0] if values else None
