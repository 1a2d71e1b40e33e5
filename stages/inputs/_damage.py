"""
A JPEG damaged in the middle: bytes overwritten, not cut off.

Pillow decodes such a file without a word: libjpeg resynchronises a few blocks on, so the
page comes out whole, smeared and often shifted in colour below the damage, and OCR reads
whatever is there (helper-114, round 29: of 10 receipts with 64 random bytes at 60 % of
the file, 9 decoded silently and one total came out wrong).  libjpeg itself knows: it
warns "Corrupt JPEG data: ..." as it goes, and Pillow drops the warning.  simplejpeg's
strict mode turns libjpeg-turbo's warnings into an exception; decoding at an eighth of
the size still reads every byte of the compressed data, at about 5 ms a receipt.
"""

from __future__ import annotations

import simplejpeg

__all__ = ["jpeg_damage"]

#: How libjpeg's warnings about damaged compressed data begin (jerror.h: JWRN_HIT_MARKER,
#: JWRN_EXTRANEOUS_DATA, JWRN_HUFF_BAD_CODE, JWRN_MUST_RESYNC, ...).  Its other warnings
#: (an unknown JFIF revision, an Adobe transform) say nothing about the pixels.
_CORRUPT = "Corrupt JPEG data"


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
        simplejpeg.decode_jpeg(data, colorspace="GRAY", min_factor=8, strict=True)
    except ValueError as exc:
        reason = str(exc)
        return reason if reason.startswith(_CORRUPT) else None
    return None
