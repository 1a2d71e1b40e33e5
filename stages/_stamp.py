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

Red *print* is kept: a two-colour thermal printer prints a total or a header in red, and
lightening it lost a total on a real receipt re-inked so. Print comes in glyphs of one
text height; a stamp is an oval, large letters and lines drawn across the page. So the
red ink is lightened only when at least :data:`STAMP_SHARE` of it lies in blobs (red
pixels under 5 pixels apart joined) taller than :data:`STAMP_HEIGHT` times the print's
character height (the median height of the dark, non-red ink's blobs). On the 40 SROIE
scans the seven stamps put 0.51-0.81 of their red ink in such blobs. With the total's or
the company's rows of the development receipts re-inked red, 5 of the 32 pages without a
stamp were changed all the same (a header in a large font, rows that join) and one
company was lost (``benchmarks/red_ink.py --red-rows``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from ._pixels import u8

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["MIN_RED_PIXELS", "RED_MARGIN", "STAMP_HEIGHT", "STAMP_SHARE", "lighten_red"]

#: How far red must exceed green and blue (0-255) for a pixel to count as red ink. On the
#: 40 SROIE scans, pale pink stamp ink reaches 30-50 and the print and paper stay under it.
RED_MARGIN = 30

#: How many red pixels a page needs before anything changes. A JPEG's colour noise left at
#: most 152 on the SROIE scans without red ink; the seven with a stamp had 3,285 to 33,164
#: (`benchmarks/red_ink.py`).
MIN_RED_PIXELS = 1000

#: How many character heights tall a blob of red ink must be to be part of a stamp.
STAMP_HEIGHT = 3.0

#: The share of the red ink that must lie in such blobs for the page's red to be a stamp.
STAMP_SHARE = 0.3


def lighten_red(image: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.uint8], float]:
    """
    ``image`` with its red ink turned to the grey of its red channel, when the ink is a
    stamp's.

    Args:
        image: uint8 BGR (or BGRA) pixels; gray pixels hold no colour and are returned as
            they are.

    Returns:
        The image (the same object when nothing changed) and the share of its pixels that
        were red ink (``0.0`` when nothing changed: gray pixels, under
        :data:`MIN_RED_PIXELS`, or red print rather than a stamp).
    """
    if image.ndim != 3 or image.shape[2] < 3 or image.size == 0:
        return image, 0.0
    blue, green, red = image[:, :, 0], image[:, :, 1], image[:, :, 2]
    # Saturating uint8 arithmetic: red - max(green, blue), 0 where red is not the largest.
    redness = cv2.subtract(red, cv2.max(green, blue))
    mask = redness > RED_MARGIN
    count = int(np.count_nonzero(mask))
    if count < MIN_RED_PIXELS or _stamp_share(image, mask) < STAMP_SHARE:
        return image, 0.0
    out = image.copy()
    for channel in (0, 1):
        out[:, :, channel][mask] = red[mask]
    return u8(out), count / mask.size


def _stamp_share(image: npt.NDArray[np.uint8], red: npt.NDArray[np.bool_]) -> float:
    """The share of the ``red`` pixels in blobs taller than `STAMP_HEIGHT` characters."""
    gray = cv2.cvtColor(image[:, :, :3], cv2.COLOR_BGR2GRAY)
    _, dark = cv2.threshold(gray, 0, 1, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    dark[red] = 0
    _, _, glyphs, _ = cv2.connectedComponentsWithStats(dark, connectivity=8)
    heights = glyphs[1:, cv2.CC_STAT_HEIGHT]
    # Specks (under 4 px tall or 8 px in all) are noise, not glyphs.
    heights = heights[(heights >= 4) & (glyphs[1:, cv2.CC_STAT_AREA] >= 8)]
    if heights.size == 0:
        return 1.0  # no print to lose
    character = float(np.median(heights))
    joined = cv2.dilate(red.astype(np.uint8), np.ones((5, 5), np.uint8))
    _, labels, blobs, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    tall = np.flatnonzero(blobs[:, cv2.CC_STAT_HEIGHT] > STAMP_HEIGHT * character)
    tall = tall[tall > 0]  # label 0 is the background
    if tall.size == 0:
        return 0.0
    return float(np.count_nonzero(np.isin(labels[red], tall))) / float(np.count_nonzero(red))
