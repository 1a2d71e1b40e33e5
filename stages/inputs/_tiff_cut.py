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

A BigTIFF (``II+``/``MM+``, for files over 4 GB) is laid out the same way with wider
numbers: 8-byte offsets and entry counts, 20-byte directory entries.  `_Layout` holds
these differences, so both are read by the same code.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["TiffCut", "tiff_cut"]

_WIDTH, _LENGTH, _OFFSETS, _ROWS_PER_STRIP, _COUNTS, _PLANAR = 256, 257, 273, 278, 279, 284
#: The integer types these tags come in, by their size: BYTE, SHORT, LONG, LONG8.
_SIZES = {1: 1, 3: 2, 4: 4, 16: 8}
_CODES = {1: "B", 2: "H", 4: "I", 8: "Q"}


@dataclass(frozen=True)
class _Layout:
    """
    What sets classic TIFF and BigTIFF apart: how wide their numbers are.

    Attributes:
        order: the byte order, ``"<"`` (``II``) or ``">"`` (``MM``), as `struct` says it.
        offset: the `struct` code of an offset, and of an entry's value count.
        tags: the `struct` code of a directory's count of entries.
        first: where the header says the first directory lies.
    """

    order: str
    offset: str
    tags: str
    first: int

    @property
    def width(self) -> int:
        """The bytes of an offset: also what an entry holds of a value itself."""
        return struct.calcsize(self.offset)

    @property
    def entry(self) -> int:
        """The bytes of a directory entry: its tag, type, count and value (or offset)."""
        return 4 + 2 * self.width

    def read(self, code: str, data: bytes, at: int) -> int:
        """The integer of `struct` code ``code`` at byte ``at`` of ``data``."""
        return int(struct.unpack_from(self.order + code, data, at)[0])


_LAYOUTS = {
    b"II*\x00": _Layout("<", "I", "H", 4),
    b"MM\x00*": _Layout(">", "I", "H", 4),
    b"II+\x00": _Layout("<", "Q", "Q", 8),
    b"MM\x00+": _Layout(">", "Q", "Q", 8),
}


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

    def __init__(self, data: bytes, at: int, layout: _Layout) -> None:
        self.kind = layout.read("H", data, at + 2)
        self.count = layout.read(layout.offset, data, at + 4)
        self.size = _SIZES.get(self.kind, 0)
        # A value that fits in the entry is in it; a longer one is pointed to.
        value = at + 4 + layout.width
        inline = self.size * self.count <= layout.width
        self.at = value if inline else layout.read(layout.offset, data, value)
        self.entry = at
        self.layout = layout

    def values(self, data: bytes) -> list[int] | None:
        """The tag's integers, or ``None`` when they lie past the end of ``data``."""
        if self.size == 0 or self.at + self.size * self.count > len(data):
            return None
        return list(struct.unpack_from(self._format(self.count), data, self.at))

    def _format(self, count: int) -> str:
        return f"{self.layout.order}{count}{_CODES[self.size]}"

    def keep(self, data: bytearray, values: list[int]) -> None:
        """Make the tag's value ``values``, the first of its own (in place, in ``data``)."""
        layout = self.layout
        struct.pack_into(layout.order + layout.offset, data, self.entry + 4, len(values))
        if self.size * len(values) <= layout.width:  # now short enough to lie in the entry
            struct.pack_into(
                self._format(len(values)), data, self.entry + 4 + layout.width, *values
            )


def tiff_cut(data: bytes, page: int) -> TiffCut | None:
    """
    Whether the TIFF ``data`` (classic or BigTIFF) ends before all of page ``page``
    (counted from 1): what it lacks, and its rows that arrived; ``None`` when the page is
    all there (so what is wrong with it is something else) or the file is no TIFF.
    """
    end = len(data)
    layout = _LAYOUTS.get(data[:4])
    if layout is None or end < layout.first + layout.width:
        return None
    where = layout.read(layout.offset, data, layout.first)
    name = "its directory" if page == 1 else f"page {page}'s directory"
    tags = struct.calcsize(layout.tags)
    for number in range(1, page + 1):
        if where == 0:
            return None  # no such page: load_page says so itself
        if where + tags > end:
            return TiffCut(
                f"truncated TIFF: the file ends at byte {end}, before {name} (at byte "
                f"{where}), which gives the page's size and where its pixels lie; nothing of "
                "the page can be read"
            )
        count = layout.read(layout.tags, data, where)
        after = where + tags + layout.entry * count  # where the next directory's offset is
        if after + layout.width > end:
            return TiffCut(
                f"truncated TIFF: the file ends at byte {end}, inside {name} (at byte "
                f"{where}); nothing of the page can be read"
            )
        if number < page:
            where = layout.read(layout.offset, data, after)
    entries = {
        layout.read("H", data, at): _Entry(data, at, layout)
        for at in range(where + tags, after, layout.entry)
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
