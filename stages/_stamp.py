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

Red is measured against the paper. Pink or yellow paper (a carbon copy, coloured stock),
or a photo taken under warm light, is itself 25-45 redder than it is green or blue, so the
whole page would count as red ink, pass for one tall stamp, and lose the print's soft
edges (``D.I.Y.`` read as ``U.1.Y.``). When the paper's own redness is
over :data:`PAPER_TINT`, the page is white-balanced first (each channel scaled so the
paper's median is 255) and red is found on that; the SROIE scans' paper is at most 4. A
tinted page without a stamp is returned as it was, one with a stamp balanced as well as
lightened. Returning every tinted page balanced read 2 more of the development half's
80 fields in each of pink and warm (``benchmarks/robustness.py --half dev --transforms
pink,warm``), but lost 4 addresses by a comma or a space on 18 other tinted pages of
an audit, and gained none there: no better on the evidence, and it changes pages that
hold no stamp, so it is not done.

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

The grey a stamp leaves is not the paper's: pale pink ink is 216-235 in red on paper of
245-250 in the SROIE scans, and the detector still found the stamp's letters and date in
it: on the development receipts it read the tail of a stamp's ``2018`` as an ``O`` after
an address, and missed an address row that a stamp's date crossed. So the stamp's ink on
bare paper is wiped. Red ink takes the paper's colour (per channel, the median
of the pixels that are neither red ink nor print) where it is
- lighter in red than halfway from the print's red level to the paper's: not over print;
- in a shape taller than :data:`GLYPH_HEIGHT` characters: no glyph printed in red;
- no farther from the stamp's tall shapes than their median height (within the 3x3
  distance transform's 5 %): its date lies there.

A shape's height is that of its red ink joined 5 pixels apart, so 4 pixels more than the
ink's own. All other red ink turns grey as before, and so does all of it on a page where
no print is found: there is nothing to tell a stamp from print by.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from ._pixels import u8

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "GLYPH_HEIGHT",
    "MIN_RED_PIXELS",
    "PAPER_TINT",
    "RED_MARGIN",
    "STAMP_HEIGHT",
    "STAMP_SHARE",
    "lighten_red",
]

#: How far red must exceed green and blue (0-255) for a pixel to count as red ink. On the
#: 40 SROIE scans, pale pink stamp ink reaches 30-50 and the print and paper stay under it.
RED_MARGIN = 30

#: How much redder than green or blue the paper itself may be before red ink is measured
#: against it (see the module's docstring).
PAPER_TINT = 10

#: How many red pixels a page needs before anything changes. A JPEG's colour noise left at
#: most 152 on the SROIE scans without red ink; the seven with a stamp had 3,285 to 33,164
#: (`benchmarks/red_ink.py`).
MIN_RED_PIXELS = 1000

#: How many character heights tall a blob of red ink must be to be part of a stamp.
STAMP_HEIGHT = 3.0

#: The share of the red ink that must lie in such blobs for the page's red to be a stamp.
STAMP_SHARE = 0.3

#: A blob of red ink up to this many character heights tall may be a glyph printed in red:
#: it turns grey, and is never wiped to the paper's colour.
GLYPH_HEIGHT = 1.5


def lighten_red(image: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.uint8], float]:
    """
    ``image`` with its red ink turned to the grey of its red channel, when the ink is a
    stamp's; the stamp's ink on bare paper takes the paper's colour.

    Args:
        image: uint8 BGR (or BGRA) pixels; gray pixels hold no colour and are returned as
            they are.

    Returns:
        The image (the same object when nothing changed; white-balanced as well when its
        paper is tinted and it holds a stamp, see the module docstring) and the share of
        its pixels that were a stamp's red ink (``0.0`` when nothing changed: gray pixels,
        under :data:`MIN_RED_PIXELS`, or red print rather than a stamp).
    """
    if image.ndim != 3 or image.shape[2] < 3 or image.size == 0:
        return image, 0.0
    mask = _red_ink(image)
    if np.count_nonzero(mask) < MIN_RED_PIXELS:
        return image, 0.0
    gray = cv2.cvtColor(image[:, :, :3], cv2.COLOR_BGR2GRAY)
    dark = u8(cv2.threshold(gray, 0, 1, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)[1])
    balanced = _white_balanced(image, dark)
    if balanced is None:
        return _lighten(image, mask, dark)
    out, share = _lighten(balanced, _red_ink(balanced), dark)
    return (out, share) if share else (image, 0.0)


def _red_ink(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    """The pixels whose red exceeds both green and blue by more than `RED_MARGIN`."""
    blue, green, red = image[:, :, 0], image[:, :, 1], image[:, :, 2]
    # Saturating uint8 arithmetic: red - max(green, blue), 0 where red is not the largest.
    return cv2.subtract(red, cv2.max(green, blue)) > RED_MARGIN


def _white_balanced(
    image: npt.NDArray[np.uint8], dark: npt.NDArray[np.uint8]
) -> npt.NDArray[np.uint8] | None:
    """``image`` with each channel scaled so that the paper (the median of the pixels that
    are not print, ``dark`` 0) is white, when the paper is tinted red over
    `PAPER_TINT`; else ``None``."""
    light = (dark == 0).astype(np.uint8)
    paper = [max(_median(image, channel, light), 1.0) for channel in range(3)]
    if paper[2] - max(paper[0], paper[1]) <= PAPER_TINT:
        return None
    channels = [cv2.convertScaleAbs(image[:, :, c], alpha=255 / paper[c]) for c in range(3)]
    return u8(cv2.merge(channels))


def _lighten(
    image: npt.NDArray[np.uint8], mask: npt.NDArray[np.bool_], dark: npt.NDArray[np.uint8]
) -> tuple[npt.NDArray[np.uint8], float]:
    """`lighten_red` on a page whose red ink is ``mask`` and print ``dark``."""
    red = image[:, :, 2]
    count = int(np.count_nonzero(mask))
    if count < MIN_RED_PIXELS:
        return image, 0.0
    dark = dark.copy()
    dark[mask] = 0
    stamp, unlike_print, size = _stamp_ink(u8(dark), mask)
    if np.count_nonzero(stamp) < STAMP_SHARE * count:
        return image, 0.0
    out = image.copy()
    for channel in (0, 1):
        out[:, :, channel][mask] = red[mask]
    light = ~mask & (dark == 0)
    if np.any(light) and np.any(dark):
        # The stamp's ink on bare paper (lighter in red than halfway from the print to the
        # paper) takes the paper's colour: no grey trace to read.
        paper_mask, print_mask = light.astype(np.uint8), (dark > 0).astype(np.uint8)
        paper = [_median(image, channel, paper_mask) for channel in range(3)]
        halfway = (_median(image, 2, print_mask) + paper[2]) / 2
        out[:, :, :3][unlike_print & _near(stamp, size) & (red >= halfway)] = paper
    return u8(out), count / mask.size


def _stamp_ink(
    dark: npt.NDArray[np.uint8], red: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_], float]:
    """
    The ``red`` pixels in blobs taller than `STAMP_HEIGHT` characters (the stamp's
    shapes), those in blobs taller than `GLYPH_HEIGHT` characters (no glyph of the
    print), and the stamp's shapes' median height. The character height is measured on
    ``dark`` (1 where the print is, red ink left out); on a page without print all the red
    ink is the stamp's, and none is known to be unlike print.
    """
    _, _, glyphs, _ = cv2.connectedComponentsWithStats(dark, connectivity=8)
    heights = glyphs[1:, cv2.CC_STAT_HEIGHT]
    # Specks (under 4 px tall or 8 px in all) are noise, not glyphs.
    heights = heights[(heights >= 4) & (glyphs[1:, cv2.CC_STAT_AREA] >= 8)]
    if heights.size == 0:
        return red, np.zeros(red.shape, bool), 0.0  # no print to lose, nor to measure by
    character = float(np.median(heights))
    joined = cv2.dilate(red.astype(np.uint8), np.ones((5, 5), np.uint8))
    _, labels, blobs, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    height = blobs[:, cv2.CC_STAT_HEIGHT]
    tall, large = height > STAMP_HEIGHT * character, height > GLYPH_HEIGHT * character
    tall[0] = large[0] = False  # label 0 is the background
    stamp, unlike_print = np.zeros(red.shape, bool), np.zeros(red.shape, bool)
    if not tall.any():
        return stamp, unlike_print, 0.0
    ink = labels[red]  # only the red pixels' labels: a lookup over the page costs more
    stamp[red], unlike_print[red] = tall[ink], large[ink]
    return stamp, unlike_print, float(np.median(height[tall]))


def _near(stamp: npt.NDArray[np.bool_], reach: float) -> npt.NDArray[np.bool_]:
    """
    Within ``reach`` of the stamp's tall shapes (their median height): its date and small
    letters lie there, a row printed in red elsewhere on the page does not.
    """
    # The distance to the nearest stamp pixel: linear in the page, where dilating by a
    # disc this wide cost as much as the OCR.
    near = np.zeros(stamp.shape, bool)
    rows, columns = np.nonzero(np.any(stamp, axis=1))[0], np.nonzero(np.any(stamp, axis=0))[0]
    if rows.size == 0:
        return near
    # Only the stamp's bounding box, widened by the reach, can be near it.
    top, left = max(0, int(rows[0] - reach)), max(0, int(columns[0] - reach))
    bottom, right = int(rows[-1] + reach) + 1, int(columns[-1] + reach) + 1
    box = (slice(top, bottom), slice(left, right))
    away = cv2.distanceTransform((~stamp[box]).astype(np.uint8), cv2.DIST_L2, 3)
    near[box] = away <= reach
    return near


def _median(image: npt.NDArray[np.uint8], channel: int, where: npt.NDArray[np.uint8]) -> float:
    """
    The median of one channel's values where ``where`` is not 0, from their histogram (a
    sort cost 0.4 s on an A4 scan).
    """
    counts = cv2.calcHist([image], [channel], where, [256], [0, 256]).ravel()
    total = np.cumsum(counts)
    return float(np.searchsorted(total, total[-1] / 2))
