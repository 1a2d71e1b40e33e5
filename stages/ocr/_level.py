"""
The boxes of a page scanned a little askew, levelled.

The recogniser reads a tilted line well (each line is cut out along its own four-point
box), but an axis-aligned box around a tilted line is too tall, and two parts of one
printed row (``TOTAL`` on the left, the amount on the right) sit at different heights,
so rows come apart. The lines' own boxes say how the page is tilted: the median slope of
the top edges of the long ones. Turning every box's corners back by that angle levels
the geometry without touching, or reading again, a pixel.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

__all__ = ["MAX_TILT", "MIN_TILT", "level_quads", "tilt"]

#: Smaller tilts (degrees) are left alone: the rows of such a page already hold together.
MIN_TILT = 0.5
#: Lines steeper than this (degrees) do not count: a page lying sideways is turned by
#: ``orient``, not levelled.
MAX_TILT = 20.0

#: A box's four corners, ``(x, y)`` each.
Quad = Sequence[Sequence[float]]


def tilt(quads: Sequence[Quad]) -> float:
    """
    How far the text of a page is tilted, from its lines' four-point boxes.

    Args:
        quads: the detector's boxes, each its corners top-left, top-right, bottom-right,
            bottom-left (PP-OCR's order).

    Returns:
        The median angle in degrees of the top edges of the lines at least three times
        as long as high and tilted less than :data:`MAX_TILT` (clockwise positive, as
        image y runs down); 0.0 without one.
    """
    angles = []
    for quad in quads:
        (x0, y0), (x1, y1) = quad[0][:2], quad[1][:2]
        (x3, y3) = quad[3][:2]
        length = math.hypot(x1 - x0, y1 - y0)
        height = math.hypot(x3 - x0, y3 - y0)
        angle = math.degrees(math.atan2(y1 - y0, x1 - x0))
        if length >= 3 * height > 0 and abs(angle) < MAX_TILT:
            angles.append(angle)
    return statistics.median(angles) if angles else 0.0


def level_quads(quads: Sequence[Quad], width: float, height: float) -> list[list[list[float]]]:
    """
    The boxes turned back about the page's centre by its :func:`tilt`, when it is at least
    :data:`MIN_TILT`; the corners stay inside the page.

    Args:
        quads: the detector's boxes (see :func:`tilt`).
        width: the page's width in pixels.
        height: the page's height.

    Returns:
        The corners, levelled (or as given, as lists of floats).
    """
    angle = tilt(quads)
    points = [[[float(value) for value in point[:2]] for point in quad] for quad in quads]
    if abs(angle) < MIN_TILT:
        return points
    radians = math.radians(-angle)
    cos, sin = math.cos(radians), math.sin(radians)
    cx, cy = width / 2, height / 2
    return [
        [
            [
                min(max(cx + (x - cx) * cos - (y - cy) * sin, 0.0), width),
                min(max(cy + (x - cx) * sin + (y - cy) * cos, 0.0), height),
            ]
            for x, y in quad
        ]
        for quad in points
    ]
