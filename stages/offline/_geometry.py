"""
Reading order for OCR lines: group boxes into visual rows, left to right inside a row.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from stages._page import Line

__all__ = ["reading_order_text", "rows"]


def _center_y(line: Line) -> float:
    return (line.box[1] + line.box[3]) / 2


def _height(line: Line) -> float:
    return max(line.box[3] - line.box[1], 1.0)


def rows(lines: Sequence[Line], *, tolerance: float = 0.5) -> list[list[Line]]:
    """
    Group OCR lines into visual rows, top to bottom, each row sorted left to right.

    A line joins the current row when its vertical centre is within ``tolerance`` times
    the median line height of the centre of the row's first line. Receipts are printed
    in fixed rows, so this simple sweep is enough; a skewed scan can split a long row.

    Args:
        lines: OCR lines with ``box = [x1, y1, x2, y2]`` in page pixels.
        tolerance: the allowed centre offset as a fraction of the median line height.

    Returns:
        The rows; lines with an empty or malformed box are left out.
    """
    usable = [line for line in lines if len(line.box) == 4 and line.text.strip()]
    if not usable:
        return []
    limit = tolerance * statistics.median(_height(line) for line in usable)
    result: list[list[Line]] = []
    anchor = 0.0
    for line in sorted(usable, key=_center_y):
        center = _center_y(line)
        if result and center - anchor <= limit:
            result[-1].append(line)
        else:
            result.append([line])
            anchor = center
    return [sorted(row, key=lambda line: line.box[0]) for row in result]


def reading_order_text(lines: Sequence[Line], *, tolerance: float = 0.5) -> str:
    """
    The text of OCR lines in reading order: one visual row per line, boxes joined by a space.

    Args:
        lines: OCR lines with boxes.
        tolerance: passed to :func:`rows`.

    Returns:
        The text, rows joined with ``\\n``.
    """
    return "\n".join(
        " ".join(line.text.strip() for line in row) for row in rows(lines, tolerance=tolerance)
    )
