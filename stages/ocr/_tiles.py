"""
Long pages read in overlapping strips, so a long receipt keeps its resolution.

The OCR shrinks a page to a fixed longest side before it looks for text (1500 pixels for
rapidocr). A receipt six times as long as it is wide is then found at a quarter of its
size, and its print is too small to find. A page more than :data:`LONG_PAGE` times as
tall as it is wide is instead cut across its length into strips twice as long as it is
wide (but no longer than the OCR's own limit, unless the width is itself near it), each
overlapping the next by a quarter of its width, and each strip is read on its own.

A line is kept from the strip whose share of the page holds its centre: the strips'
shares meet in the middle of each overlap. A line up to half the overlap tall on either
side of that meeting point lies whole inside the strip that keeps it, so no line is lost
or read twice.

Degenerate pages are read in bounded time:
- a page is cut into at most :data:`MAX_STRIPS` strips, and only when it is at least
  :data:`NARROWEST_CUT` pixels wide (a 1x20000 pixel PNG was cut into 10,000 and read for
  more than 10 minutes; the detector scales a narrow strip's short side up to 736
  pixels, so 32 strips 30 pixels wide took 57 s where the whole page takes 6 s);
- what the detector gets is padded with white to at most :data:`MAX_ASPECT` times as long
  as wide (`readable`): it scales the short side up to 736 pixels, so a 625x17 strip
  became 27,000x736 and took 30 s;
- a side the OCR would shrink under 16 pixels is padded too: rapidocr rounds each side to
  a multiple of 32, and such a side became 0 (an empty ResizeImgError).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from stages._page import Line

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy.typing as npt

__all__ = [
    "LONG_PAGE",
    "MAX_ASPECT",
    "MAX_STRIPS",
    "MOST_ENLARGED",
    "NARROWEST_CUT",
    "THINNEST",
    "Strip",
    "detector_side",
    "read_in_strips",
    "readable",
    "strips",
]

#: A page more than this many times as tall as it is wide is read in strips.
#: The 40 SROIE receipts are at most 2.4 times as tall as wide, so none is cut.
LONG_PAGE = 3.0

#: The most strips a page is cut into: longer strips beyond it, each shrunk a little.
#: A receipt twenty times as long as it is wide needs 12.
MAX_STRIPS = 32

#: A narrower page is read whole: a strip of it would be scaled up anyway.
NARROWEST_CUT = 100

#: What the detector reads is at most this many times as long as wide (padded with white).
#: Its cost grows with the ratio: it scales the short side up to 736 pixels.
MAX_ASPECT = 8

#: A page with a side under this many pixels holds no print the detector finds.
THINNEST = 8

#: The detector enlarges a page at most this many times (`detector_side`). Chosen on
#: labels 60x20 pixels of three digits each, cropped to their print as a run does: of
#: 100 (every 5th of 000-499), 8 and 12 times read all 100 at 0.15 and 0.28 CPU s a
#: page; 4 times cut 10 of them into single digits (``0 7 0``). At 736 pixels (24
#: times) 26 of the first 100 were not found at all, at 1.3 CPU s a page.
MOST_ENLARGED = 8

# rapidocr rounds a side shrunk to its longest side to a multiple of 32: under 16 pixels
# it became 0, and the page failed with an empty ResizeImgError.
_LEAST_SIDE = 17


@dataclass(frozen=True, slots=True)
class Strip:
    """
    One strip along a page's long side: the pixels ``[start, stop)`` are read, and the
    lines whose centre lies in ``[keep_from, keep_to)`` are kept.
    """

    start: int
    stop: int
    keep_from: float
    keep_to: float


def strips(long: int, short: int, max_side: int = 1500) -> list[Strip]:
    """
    How a page with sides ``long`` and ``short`` is cut: one strip for the whole page when
    it is no more than :data:`LONG_PAGE` times as long as wide.

    Args:
        long: the page's long side, in pixels.
        short: its short side.
        max_side: the longest side the OCR reads without shrinking; a strip is at most
            this long (or 1.2 times the short side, when that is longer).

    Returns:
        Strips in order along the long side; together they cover it, and their kept
        shares partition it.
    """
    if short < NARROWEST_CUT or long <= LONG_PAGE * short:
        return [Strip(0, long, 0.0, float(long))]
    length = min(2 * short, max(max_side, math.ceil(1.2 * short)))
    overlap = short // 4
    length = max(length, math.ceil((long - overlap) / MAX_STRIPS) + overlap)
    count = math.ceil((long - overlap) / (length - overlap))
    # Spread the strips evenly over the page: each overlap is at least ``overlap``.
    starts = [round(i * (long - length) / (count - 1)) for i in range(count)]
    cuts = [0.0] + [(starts[i + 1] + starts[i] + length) / 2 for i in range(count - 1)]
    cuts.append(float(long))
    return [Strip(start, start + length, cuts[i], cuts[i + 1]) for i, start in enumerate(starts)]


def readable(image: npt.NDArray[np.uint8], max_side: int = 1500) -> npt.NDArray[np.uint8]:
    """
    ``image``, with white added below or to the right so that it is at most
    :data:`MAX_ASPECT` times as long as wide, and no side is shrunk under 16 pixels for a
    longest side of ``max_side``; its lines' boxes are the same in both.  A page 20
    pixels tall and 2000 wide failed with an empty error, and a 30 by 2000 one took 50 s.
    """
    height, width = image.shape[:2]
    ratio = min(1.0, max_side / max(height, width, 1))
    least = max(math.ceil(_LEAST_SIDE / ratio), math.ceil(max(height, width) / MAX_ASPECT))
    if height >= least and width >= least:
        return image
    pad = [(0, max(0, least - height)), (0, max(0, least - width))] + [(0, 0)] * (image.ndim - 2)
    return np.pad(image, pad, constant_values=255)


def detector_side(
    height: int, width: int, limit: int = 736, max_side: int = 1500, min_side: int = 30
) -> int:
    """
    The short side the text detector is to enlarge a page of ``height`` x ``width`` to:
    its own ``limit``, or :data:`MOST_ENLARGED` times the page's short side when that is
    less.

    The detector enlarges any page's short side to 736 pixels (rapidocr's
    ``Det.limit_side_len``). On a page of a receipt's size that is a little or nothing,
    but a label 60x20 pixels became 2208x736: as costly as a receipt, and its print, 736
    pixels tall, was often not found at all. A page whose short side is at least
    ``limit / MOST_ENLARGED`` (92 pixels) is detected as before.

    Args:
        height: the page's height as handed to rapidocr.
        width: its width.
        limit: the detector's own short side (``Det.limit_side_len``).
        max_side: rapidocr shrinks a longer page to this longest side first.
        min_side: and enlarges a page with a shorter side to this short side first.

    Returns:
        The short side, at most ``limit``.
    """
    short = min(height, width) * min(1.0, max_side / max(height, width, 1))
    return min(limit, math.ceil(MOST_ENLARGED * max(short, min_side)))


def read_in_strips(
    image: npt.NDArray[np.uint8],
    read: Callable[[npt.NDArray[np.uint8]], list[Line]],
    max_side: int = 1500,
) -> list[Line] | None:
    """
    The lines of a long page, read strip by strip, with boxes in the page's pixels; or
    ``None`` when the page is not tall enough to cut (read it whole).

    Only a page taller than wide is cut. A wide page is left whole: its lines may run
    along its length (a banner, one line cut out of a page), and a cut would break them;
    a long receipt lying sideways is cut once it is turned upright.

    Args:
        image: the page.
        read: reads one strip, returning lines with boxes in the strip's pixels.
        max_side: the longest side ``read`` reads without shrinking (see :func:`strips`).

    Returns:
        The kept lines of every strip, in strip order, or ``None``.
    """
    height, width = image.shape[:2]
    cuts = strips(height, width, max_side)
    if len(cuts) == 1:
        return None
    lines: list[Line] = []
    for strip in cuts:
        for line in read(np.ascontiguousarray(image[strip.start : strip.stop])):
            x0, y0, x1, y1 = line.box
            if strip.keep_from <= (y0 + y1) / 2 + strip.start < strip.keep_to:
                box = [x0, y0 + strip.start, x1, y1 + strip.start]
                quad = None if line.quad is None else [[x, y + strip.start] for x, y in line.quad]
                lines.append(replace(line, box=box, quad=quad))
    return lines
