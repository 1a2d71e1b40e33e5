"""
The heights at which lines sit in their printed rows, a curled page's bend taken out.

A receipt held for a phone is curled: every printed row bows, its middle higher than its
ends, so the parts of one row (a name on the left, the amount at the right end) lie at
different heights, and the axis-aligned box of a long line is taller than its print by
the bow. No one height holds a row together then. The detector's four-point boxes
(`Line.quad`) say more: each runs along its line, so its slope is the slope of the row
where the line sits (the chord of a bowed line has the bow's slope at the line's middle).

A held receipt curls the same way all down its length, so one curve, a function of the
width alone, describes every row: its slope is fitted as a straight line in ``x`` to the
slopes of the page's long lines, weighted by their length (the slopes of a parabola), and
integrated. Each line's height is then its centre's height less the curve's height
there, and its print height is its quad's side, not its box's: rows are grouped on those
as on a flat page. A straight tilt left over after `stages.ocr._level` is taken out too.
A bend of less than `MIN_BEND` print heights across the page is left alone: measured on
the 40 receipts as scanned, taking it out cost the held-out half 0.004 character accuracy
(reading order) and gained no field.

Lines without a quad (a PDF's text layer, a box file's truth) keep their boxes' centres
and heights, exactly as before quads were kept.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from stages._page import Line

__all__ = [
    "MAX_SLOPE",
    "MIN_BEND",
    "MIN_SLOPED",
    "MIN_SPREAD",
    "Bend",
    "page_bend",
    "page_bow",
    "row_heights",
]

#: Lines steeper than this slope (dy/dx; about 20 degrees) do not count towards the bend:
#: a page lying sideways is turned by ``orient``, and a stamp's words run where they like.
MAX_SLOPE = 0.36
#: The bend is fitted only from this many long lines or more (lines at least three times
#: as long as high); fewer, and the quads' centres and heights are used unbent. A guess:
#: two lines fit any line exactly, and a receipt has dozens.
MIN_SLOPED = 4
#: A bend that moves no line by more than this share of the median print height, relative
#: to the others, is left alone: the rows of such a page already hold together, and a
#: flat scan's fitted bend is the noise of its quads (as `stages.ocr._level.MIN_TILT`).
MIN_BEND = 0.5
#: The bend is fitted only when the long lines' centres spread across x (their standard
#: deviation, weighted by length) by this share of the print's width or more; else the
#: page is flat. A curl shows only as slopes changing along x, and the chord of a line
#: has the slope of the curve at its middle, so lines centred about one x (a centred
#: header, full-width lines) cannot show one: there the fit turns the quads' slope noise
#: into a curvature. Measured on the development half: curled 4 % and 8 %, 0.115 or more;
#: the top quarter of a flat receipt (centred name and address) 0.055 or less.
MIN_SPREAD = 0.08

#: A quad's centre line and print height (`_ends`).
_End = tuple[float, float, float, float, float]


def _ends(quad: Sequence[Sequence[float]]) -> _End:
    """A quad's centre line, ``(left x, left y, right x, right y, print height)``: the
    midpoints of its left and right sides, and their mean length."""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = (point[:2] for point in quad)
    height = (math.hypot(x3 - x0, y3 - y0) + math.hypot(x2 - x1, y2 - y1)) / 2
    return (x0 + x3) / 2, (y0 + y3) / 2, (x1 + x2) / 2, (y1 + y2) / 2, height


def _long_lines(ends: Sequence[_End]) -> list[tuple[float, float, float, float]]:
    """The long lines that tell the curve, as ``(centre x, centre y, slope, length)``:
    three times as long as high or more, and no steeper than `MAX_SLOPE`."""
    points = []
    for left_x, left_y, right_x, right_y, height in ends:
        length = right_x - left_x
        if length >= 3 * height > 0:
            slope = (right_y - left_y) / length
            if abs(slope) <= MAX_SLOPE:
                points.append(((left_x + right_x) / 2, (left_y + right_y) / 2, slope, length))
    return points


def _less_fit(
    values: Sequence[float], on: Sequence[float], weights: Sequence[float]
) -> list[float]:
    """``values`` less their straight-line fit on ``on`` (weighted least squares)."""
    total = sum(weights)
    mean_v = sum(v * w for v, w in zip(values, weights, strict=True)) / total
    mean_o = sum(o * w for o, w in zip(on, weights, strict=True)) / total
    spread = sum(w * (o - mean_o) ** 2 for o, w in zip(on, weights, strict=True))
    together = sum(
        w * (o - mean_o) * (v - mean_v) for v, o, w in zip(values, on, weights, strict=True)
    )
    gain = together / spread if spread > 0 else 0.0
    return [v - mean_v - gain * (o - mean_o) for v, o in zip(values, on, strict=True)]


def _change_along_x(
    xs: Sequence[float], slopes: Sequence[float], weights: Sequence[float], print_width: float
) -> float:
    """How fast the slopes change along x: their weighted least-squares slope on ``xs``,
    or 0 unless ``xs`` spread by `MIN_SPREAD` of ``print_width`` (lines all about one x,
    centred or in one column, say nothing about how the slope changes)."""
    spread = sum(w * x * x for x, w in zip(xs, weights, strict=True))
    together = sum(w * x * s for x, s, w in zip(xs, slopes, weights, strict=True))
    if spread <= sum(weights) * max(1.0, (MIN_SPREAD * print_width) ** 2):
        return 0.0
    return together / spread


def _print_width(ends: Sequence[_End]) -> float:
    return max(end[2] for end in ends) - min(end[0] for end in ends) if ends else 0.0


def _bend(ends: Sequence[_End]) -> tuple[float, float, float]:
    """
    The page's curve as ``(mean x, a, b)``: its slope at ``x`` is ``a + b * (x - mean x)``,
    fitted by least squares, weighted by length, to the long lines' slopes at their
    middles; ``(0, 0, 0)`` (flat) with too few, and ``b`` is 0 unless their middles spread
    across x by `MIN_SPREAD` of the print's width.
    """
    points = _long_lines(ends)
    if len(points) < MIN_SLOPED:
        return 0.0, 0.0, 0.0
    weights = [length for _, _, _, length in points]
    total = sum(weights)
    mean_x = sum(x * weight for x, _, _, weight in points) / total
    mean_s = sum(s * weight for _, _, s, weight in points) / total
    xs = [x - mean_x for x, _, _, _ in points]
    slopes = [s - mean_s for _, _, s, _ in points]
    return mean_x, mean_s, _change_along_x(xs, slopes, weights, _print_width(ends))


def _curl(ends: Sequence[_End]) -> float:
    """
    How fast the long lines' slopes change along x within one height of the page: as
    `_bend`'s ``b``, fitted to what of their slopes and centres x their centres' heights
    do not explain. 0 with fewer than `MIN_SLOPED` long lines.
    """
    points = _long_lines(ends)
    if len(points) < MIN_SLOPED:
        return 0.0
    weights = [length for _, _, _, length in points]
    ys = [y for _, y, _, _ in points]
    xs = _less_fit([x for x, _, _, _ in points], ys, weights)
    slopes = _less_fit([s for _, _, s, _ in points], ys, weights)
    return _change_along_x(xs, slopes, weights, _print_width(ends))


@dataclass(frozen=True, slots=True)
class Bend:
    """
    A page's fitted curve: a row through ``x`` sits `lift` higher (a smaller y) than
    where it would on a flat page, up to one height for the whole page.
    """

    #: The x about which the curve is fitted (the long lines' mean centre).
    mean_x: float
    #: The curve's slope at ``mean_x``.
    a: float
    #: How fast its slope changes along x.
    b: float

    def lift(self, x: float) -> float:
        """The curve's y at ``x``, relative to its y at ``mean_x``."""
        dx = x - self.mean_x
        return self.a * dx + self.b * dx * dx / 2


def _fitted(
    lines: Sequence[Line],
) -> tuple[Bend, list[_End]] | None:
    """The page's fitted curve and its lines' `_ends`, or ``None`` unless every line has
    a quad."""
    if not lines or any(line.quad is None or len(line.quad) != 4 for line in lines):
        return None
    ends = [_ends(line.quad) for line in lines if line.quad is not None]
    return Bend(*_bend(ends)), ends


def page_bend(lines: Sequence[Line]) -> Bend | None:
    """
    The page's bend, when every line has a quad and the bend moves some line by more
    than `MIN_BEND` median print heights relative to the others; else ``None``.

    Args:
        lines: lines in one page's pixels.
    """
    fitted = _fitted(lines)
    return None if fitted is None else _believed(*fitted)


def _believed(bend: Bend, ends: Sequence[_End]) -> Bend | None:
    """``bend``, unless it moves no line (of these `_ends`) by more than `MIN_BEND`."""
    lifts = [bend.lift((left_x + right_x) / 2) for left_x, _, right_x, _, _ in ends]
    if max(lifts) - min(lifts) <= MIN_BEND * statistics.median(end[4] for end in ends):
        return None
    return bend


def page_bow(lines: Sequence[Line]) -> tuple[Bend, float] | None:
    """
    The page's fitted curve and how much a curl bows its lines: the largest sagitta of a
    line under the curl (how far the middle of the line's bow lies from its chord,
    ``|b| * length ** 2 / 8``), in median print heights. A straight tilt bows no line.

    The bow's ``b`` is the change of slope along x within one height of the page
    (`_curl`), not the curve's: a page photographed from below (a keystone) or bent from
    top to bottom tilts its lines by their height, each line straight, and where the long
    lines of the top and of the bottom sit at different x, the curve reads that as a curl.

    Args:
        lines: lines in one page's pixels.

    Returns:
        ``(curve, bow)``, or ``None`` unless every line has a quad.
    """
    if (fitted := _fitted(lines)) is None:
        return None
    bend, ends = fitted
    height = statistics.median(end[4] for end in ends)
    if height <= 0:
        return None
    longest = max(right_x - left_x for left_x, _, right_x, _, _ in ends)
    return bend, abs(_curl(ends)) * longest**2 / 8 / height


def row_heights(lines: Sequence[Line]) -> list[tuple[float, float, float]]:
    """
    Where each line sits in height, to group lines into rows by.

    Args:
        lines: lines in one page's pixels.

    Returns:
        ``(centre y, top, bottom)`` per line, in order. When every line has a quad: the
        centre of its quad less the page's bend there (`page_bend`), and that centre less
        and plus half the mean length of the quad's left and right sides. Otherwise: the
        centre, top and bottom of its box.
    """
    if (fitted := _fitted(lines)) is None:
        return [((line.box[1] + line.box[3]) / 2, line.box[1], line.box[3]) for line in lines]
    bend = _believed(*fitted)
    heights = []
    for left_x, left_y, right_x, right_y, height in fitted[1]:
        lift = bend.lift((left_x + right_x) / 2) if bend is not None else 0.0
        centre = (left_y + right_y) / 2 - lift
        heights.append((centre, centre - height / 2, centre + height / 2))
    return heights
