"""
A JPEG whose file ends early (a copy cut short, a download that stopped): the part of
the picture that arrived is read, and the page says how much.

A baseline JPEG holds its picture from the top down, so the bytes that arrived are the top
of the page.  Ended with the marker that closes a JPEG, the file decodes whole: the rows
past the last byte come out one flat colour (libjpeg's mid-grey), and are cut off here.  A
progressive JPEG holds the whole page at a lower quality in its first bytes; it decodes
whole, a little blurred, and nothing is cut.
"""

from __future__ import annotations

import io
from typing import IO

import numpy as np
from PIL import Image

__all__ = ["SALVAGE_MIN", "cut_unread", "ended", "is_truncated"]

#: A truncated JPEG is read only when at least this share of its rows arrived; with less
#: there is hardly a line of print to read, and the page stays an error.
SALVAGE_MIN = 0.1

_END_OF_IMAGE = b"\xff\xd9"
_FILLER = (128, 127)  # what libjpeg decodes a block with no bytes to (YCbCr/grey, Adobe CMYK)


def is_truncated(exc: OSError) -> bool:
    """Whether Pillow's ``exc`` says the file ended before its picture did."""
    return exc.errno is None and "truncated" in str(exc)


def ended(stream: IO[bytes]) -> IO[bytes]:
    """The whole file of ``stream``, with the marker that ends a JPEG put back."""
    stream.seek(0)
    return io.BytesIO(stream.read() + _END_OF_IMAGE)


def cut_unread(image: Image.Image) -> tuple[Image.Image, float]:
    """
    ``image`` (decoded from an `ended` file) without the rows at its bottom that no byte
    of the file reached, and the share of its rows that are left.

    libjpeg decodes the page's blocks left to right, top to bottom, and fills those it
    has no bytes for with mid-grey (128; 127 in an Adobe CMYK file).  The rows cut are
    those, from the bottom up, whose right end (its last 8 pixels) is that grey: the rows
    no byte reached, and the row of blocks the file ends in, which it reached only in
    part.  A page whose last row is not all that grey is left whole: a progressive JPEG,
    whose first passes hold the whole page, or one that lost only its last bytes, whose
    paper may end in a flat white that is no filler (a receipt missing only its last 2
    bytes would otherwise be cut to nothing).
    """
    pixels = np.asarray(image)
    rows = pixels.reshape(pixels.shape[0], -1)
    fill = rows[-1, 0]
    if fill not in _FILLER or not (rows[-1] == fill).all():
        return image, 1.0
    channels = rows.shape[1] // image.size[0]
    unread = (rows[:, -8 * channels :] == fill).all(axis=1)
    read = int(len(unread) - np.argmin(unread[::-1])) if not unread.all() else 0
    width, height = image.size
    return image.crop((0, 0, width, read)), read / height
