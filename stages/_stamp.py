"""
Red ink stamped over a receipt ("PAID", a date stamp, a pen mark), lightened before OCR.

Receipts are printed in black, or blue-violet on dot-matrix ribbons; a rubber stamp or a
pen mark added afterwards is often red. Where it crosses the print, the detector merges it
with the text lines it touches, and the recogniser reads its letters (a stamp's date can
pass for the receipt's). Seen through a red filter, red ink disappears into the paper while
black and blue print stay dark: every pixel whose red channel exceeds both others by more
than :data:`RED_MARGIN` takes its red level in all three channels, so red ink turns light
grey; every other pixel is left as it was. Dark print under the stamp is not red (the print
is darker than the ink over it) and stays; so does a warm cast of the paper, which only
turns a lighter grey.

A page with fewer than :data:`MIN_RED_PIXELS` red pixels is returned untouched, so plain
receipts read exactly as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from ._pixels import u8

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["MIN_RED_PIXELS", "RED_MARGIN", "lighten_red"]

#: How far red must exceed green and blue (0-255) for a pixel to count as red ink. On the
#: 40 SROIE scans, pale pink stamp ink reaches 30-50 and the print and paper stay under it.
RED_MARGIN = 30

#: How many red pixels a page needs before anything changes. A JPEG's colour noise left at
#: most 152 on the SROIE scans without red ink; the seven with a stamp had 3,285 to 33,164
#: (`benchmarks/red_ink.py`).
MIN_RED_PIXELS = 1000


def lighten_red(image: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.uint8], float]:
    """
    ``image`` with its red ink turned to the grey of its red channel.

    Args:
        image: uint8 BGR (or BGRA) pixels; gray pixels hold no colour and are returned as
            they are.

    Returns:
        The image (the same object when nothing changed) and the share of its pixels that
        were red ink (``0.0`` for gray pixels and under :data:`MIN_RED_PIXELS`).
    """
    if image.ndim != 3 or image.shape[2] < 3:
        return image, 0.0
    blue, green, red = image[:, :, 0], image[:, :, 1], image[:, :, 2]
    # Saturating uint8 arithmetic: red - max(green, blue), 0 where red is not the largest.
    redness = cv2.subtract(red, cv2.max(green, blue))
    mask = redness > RED_MARGIN
    count = int(np.count_nonzero(mask))
    if count < MIN_RED_PIXELS:
        return image, 0.0
    out = image.copy()
    for channel in (0, 1):
        out[:, :, channel][mask] = red[mask]
    return u8(out), count / mask.size
