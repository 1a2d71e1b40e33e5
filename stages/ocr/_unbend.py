"""
A curled page straightened before it is read again.

`stages._rows` groups the rows of a curled page from its bend, but the recogniser still
reads each line cut out along a straight four-point box, and a bowed line does not fit
one: its middle or its ends are cut off, and a long line is found in pieces. When the
first reading's longest line bows by more than `MIN_BOW` print heights under the page's
curl (`stages._rows.page_bow`: how its lines' slopes change along x at one height, so a
keystone, which tilts whole lines by their height, is no curl), each column of the page
is shifted up or down by the height of the page's fitted curve there (``cv2.remap``), so
the curve becomes straight, and the page is read again. A flat page is read once, as
before; so is a wide page whose lines are short beside the curl, which bows them little,
and a page whose lines are all centred about one x, which cannot show a curl
(`stages._rows.MIN_SPREAD`). The second reading is kept only when it reads about as much
as the first or more (`MIN_KEPT`).

The curve is fitted from the first reading's quads after `stages.ocr._level` has
turned them back by the page's tilt, and applied to the pixels as given: for a page
both tilted (half a degree or more) and curled the two differ by that small turn.

The lines of the second reading are put back on the page as given: every corner of a
quad moves down by the shift of its column, and a box grows to hold its line's bow (the
shift's extremes between its ends), so boxes and quads are in the pixels of the image
the engine was given, as for a flat page.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy.typing as npt

    from stages._page import Line
    from stages._rows import Bend

__all__ = ["MIN_BOW", "MIN_KEPT", "bend_back", "confident_characters", "straighten"]

#: A page whose longest line bows by more than this share of the median print height
#: (`stages._rows.page_bow`) is straightened and read again. Measured on the development
#: half: as scanned, at most 0.11 (one receipt, a photograph warped from top to bottom;
#: the others 0.021 or less); curled 4 %, 0.04 to 0.49, the narrow receipts 0.23 or
#: more; curled 8 %, 0.12 to 0.52; ``phone``, ``perspective``, ``tilt4`` and ``photo``
#: (``benchmarks/robustness.py``), at most 0.19 (that receipt; 0.21 when the bow was the
#: fitted curve's, which took its keystone for a curl), the others 0.07 or less.
MIN_BOW = 0.2
#: The straightened page's reading replaces the first only when it reads at least this
#: share of the first's `confident_characters`; else the straightening lost print (a line
#: split or dropped) and the first reading is kept. A guess between what was measured on
#: the development half: the curled pages straightened read 0.993 to 1.41 times as much,
#: the flat headers and the centred label that the old fit bent 0.19 to 1.01 (0.60 and
#: 0.71 where a line was lost).
MIN_KEPT = 0.95


def confident_characters(lines: Sequence[Line]) -> float:
    """
    How much a reading read: its characters, each weighted by its line's confidence
    (`MIN_KEPT`).
    """
    return sum(line.confidence * len(line.text) for line in lines)


def _shifts(bend: Bend, width: int) -> npt.NDArray[np.float32]:
    """Per column, how far the straightened page lies below the page as given (<= 0)."""
    dx = np.arange(width, dtype=np.float64) - bend.mean_x
    lift = bend.a * dx + bend.b * dx * dx / 2
    shift: npt.NDArray[np.float32] = (lift - lift.max()).astype(np.float32)
    return shift


def straighten(
    image: npt.NDArray[np.uint8], bend: Bend
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
    """
    The page with its bend taken out, and the shift of each column.

    Column ``x`` of the result is column ``x`` of ``image`` moved down by ``-shift[x]``
    pixels (``shift <= 0``): pixel ``(x, y)`` of the result is pixel ``(x, y + shift[x])``
    of ``image``. The result is taller by the curve's range, so nothing is cut off; what
    lies outside ``image`` is the page's median colour (its edge row repeated would draw
    streaks down from any ink cut by the edge).

    Args:
        image: uint8 pixels, gray or BGR.
        bend: the page's curve, in ``image`` pixels.
    """
    height, width = image.shape[:2]
    shift = _shifts(bend, width)
    grown = height + int(np.ceil(-shift.min()))
    map_x = np.tile(np.arange(width, dtype=np.float32), (grown, 1))
    map_y = np.arange(grown, dtype=np.float32)[:, None] + shift[None, :]
    sample = image[::4, ::4]
    ground = np.median(sample.reshape(sample.shape[0] * sample.shape[1], -1), axis=0)
    fill = tuple(float(value) for value in ground)
    straight = cv2.remap(
        image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=fill
    )
    return np.ascontiguousarray(straight), shift


def bend_back(lines: Sequence[Line], shift: npt.NDArray[np.float32], height: int) -> list[Line]:
    """
    Lines read on a `straighten`-ed page, in the pixels of the page as given.

    Each quad corner ``(x, y)`` goes to ``(x, y + shift[x])``; each box keeps its x and
    spans its top and bottom moved by the least and the most shift between its ends;
    heights are kept inside the page (a line found where the straightened page reaches
    past the page's top or bottom).

    Args:
        lines: lines in the straightened page's pixels, in reading order (kept).
        shift: the shifts `straighten` returned.
        height: the height of the page as given.
    """
    width = len(shift)

    def at(x: float) -> float:
        return float(shift[min(max(round(x), 0), width - 1)])

    def inside(y: float) -> float:
        return round(min(max(y, 0.0), float(height)), 1)

    placed = []
    for line in lines:
        x0, y0, x1, y1 = line.box
        left, right = min(max(round(x0), 0), width - 1), min(max(round(x1), 0), width - 1)
        span = shift[left : right + 1] if right >= left else shift[left : left + 1]
        box = [x0, inside(y0 + float(span.min())), x1, inside(y1 + float(span.max()))]
        quad = (
            None
            if line.quad is None
            else [[x, inside(y + at(x))] for x, y in (point[:2] for point in line.quad)]
        )
        placed.append(replace(line, box=box, quad=quad))
    return placed
