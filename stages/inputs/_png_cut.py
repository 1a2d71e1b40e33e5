"""
A PNG whose file ends early (a copy cut short, a download that stopped): the rows of its
page that arrived whole, read.

A PNG holds its page top down, as one zlib stream split over its ``IDAT`` chunks; each
row is a filter byte and the row's bytes, filtered against the row before.  The stream
decompressed as far as the bytes that arrived go gives the top rows whole (and part of
one more, left out).  Written again as a PNG as tall as those rows, the decoder reads them
as any PNG, undoing the filters.  An interlaced (Adam7) PNG holds its page in seven passes
each over all of it, so its first bytes are no rows of the top: it is not read.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

__all__ = ["PngCut", "png_cut"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Samples a pixel by colour type: grey, RGB, palette index, grey + alpha, RGBA.
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


@dataclass(frozen=True)
class PngCut:
    """
    What a PNG that ends early still holds.

    Attributes:
        readable: a whole PNG of the rows that arrived (its header saying it is only as
            tall as they are), or ``None`` when not one row did.
        share: the share of the page's rows ``readable`` holds (0 without it).
    """

    readable: bytes | None
    share: float = 0.0


def png_cut(data: bytes) -> PngCut | None:
    """
    The rows of a PNG whose file ends before its ``IEND`` chunk.

    Args:
        data: the whole file.

    Returns:
        What the file holds; ``None`` for a file that reaches its ``IEND`` chunk (it is
        not cut short: whatever else is wrong with it stands), that is no PNG, or that is
        interlaced.
    """
    if not data.startswith(_SIGNATURE):
        return None
    header: bytes | None = None
    before: list[bytes] = []  # the whole chunks between the header and the picture data
    picture: list[bytes] = []
    at = len(_SIGNATURE)
    while at + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, at)
        body = data[at + 8 : at + 8 + length]
        if kind == b"IEND":
            return None
        if kind == b"IHDR" and len(body) == 13:
            header = body
        elif kind == b"IDAT":
            picture.append(body)  # the last one may have arrived in part: that part counts
        elif not picture and at + 12 + length <= len(data):
            before.append(data[at : at + 12 + length])  # a palette, transparency, gamma...
        at += 12 + length
    if header is None:
        return PngCut(None)
    width, height, depth, colour, _, _, interlaced = struct.unpack(">IIBBBBB", header)
    if interlaced or colour not in _CHANNELS or not width or not height:
        return None
    stride = 1 + (width * _CHANNELS[colour] * depth + 7) // 8
    try:
        # Never more than the page's rows, whatever the stream holds.
        rows = zlib.decompressobj().decompress(b"".join(picture), height * stride)
    except zlib.error:
        return None  # damaged before the file ends: not only cut short
    whole = min(len(rows) // stride, height)
    if not whole:
        return PngCut(None)
    top = struct.pack(">II", width, whole) + header[8:]
    readable = b"".join(
        [
            _SIGNATURE,
            _chunk(b"IHDR", top),
            *before,
            _chunk(b"IDAT", zlib.compress(rows[: whole * stride], 1)),
            _chunk(b"IEND", b""),
        ]
    )
    return PngCut(readable, whole / height)


def _chunk(kind: bytes, body: bytes) -> bytes:
    """A PNG chunk: its length, type, data and CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
