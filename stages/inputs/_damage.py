"""
A JPEG damaged in the middle: bytes overwritten, not cut off.

Pillow decodes such a file without a word: libjpeg resynchronises a few blocks on, so the
page comes out whole, smeared and often shifted in colour below the damage, and OCR reads
whatever is there (of 10 receipts with 64 random bytes at 60 % of
the file, 9 decoded silently and one total came out wrong).  libjpeg itself knows: it
warns "Corrupt JPEG data: ..." as it goes, and Pillow drops the warning.  simplejpeg's
strict mode turns libjpeg-turbo's warnings into an exception; decoding at an eighth of
the size still reads every byte of the compressed data, at about 5 ms a receipt.

Damage that puts a marker where picture data should be (``FF`` followed by a byte no
picture data holds) stops Pillow altogether ("broken data stream"). A baseline JPEG holds
its picture from the top down in one scan, so everything before that byte is the top of
the page: :func:`bad_marker` finds it, and the loader reads the page down to it, as it
reads a file that ends early.
"""

from __future__ import annotations

import simplejpeg

__all__ = ["bad_marker", "jpeg_damage"]

#: How libjpeg's warnings about damaged compressed data begin (jerror.h: JWRN_HIT_MARKER,
#: JWRN_EXTRANEOUS_DATA, JWRN_HUFF_BAD_CODE, JWRN_MUST_RESYNC, ...).  Its other warnings
#: (an unknown JFIF revision, an Adobe transform) say nothing about the pixels.
_CORRUPT = "Corrupt JPEG data"


#: Start-of-frame markers of a sequential (baseline or extended) Huffman JPEG: one scan
#: holds the whole page, top down.  A progressive JPEG's scans each cover the page.
_SEQUENTIAL = frozenset({0xC0, 0xC1})
_START_OF_SCAN = 0xDA
_END_OF_IMAGE = 0xD9
#: Bytes that may follow ``FF`` inside picture data: a stuffed zero, a restart marker
#: ``RST0``-``RST7``, and fill bytes (``FF FF``).
_IN_DATA = frozenset({0x00, 0xFF, *range(0xD0, 0xD8)})


def bad_marker(data: bytes) -> int | None:
    """
    Where a sequential JPEG's picture data is broken by a marker no picture data holds.

    Args:
        data: the whole file.

    Returns:
        The offset of that marker's ``FF``; ``None`` for a file whose picture data runs
        to its end-of-image marker (or to the file's end), for a progressive JPEG, and
        for a file whose segments before the picture data cannot be followed.
    """
    at, sequential = 2, False
    while at + 4 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker == 0xFF:  # fill before a marker
            at += 1
            continue
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        sequential = sequential or marker in _SEQUENTIAL
        if marker == _START_OF_SCAN:
            if not sequential:
                return None
            at += 2 + length
            while (at := data.find(b"\xff", at)) != -1 and at + 1 < len(data):
                following = data[at + 1]
                if following == _END_OF_IMAGE:
                    return None
                if following not in _IN_DATA:
                    return at
                at += 2 if following != 0xFF else 1
            return None
        at += 2 + length
    return None


def jpeg_damage(data: bytes) -> str | None:
    """
    libjpeg-turbo's warning about a JPEG's damaged compressed data, if it has one.

    Args:
        data: the whole file.

    Returns:
        The warning (``"Corrupt JPEG data: 7 extraneous bytes before marker 0xd9"``), or
        ``None`` for a file libjpeg reads without one, or cannot judge (a CMYK or
        12-bit JPEG, which it does not decode to gray: Pillow read it, and that stands).
    """
    try:
        # min_factor alone scales nothing: simplejpeg (1.9) picks the scale from the
        # smallest size asked for, so that is asked too, or the page is decoded whole (a
        # 125 KB file whose header says 60000 x 60000 took 3.5 GB).
        simplejpeg.decode_jpeg(
            data, colorspace="GRAY", min_factor=8, min_width=1, min_height=1, strict=True
        )
    except ValueError as exc:
        reason = str(exc)
        return reason if reason.startswith(_CORRUPT) else None
    return None
