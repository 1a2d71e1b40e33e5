"""
Reading order for OCR lines: group boxes into visual rows, left to right inside a row.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING

from stages._rows import row_heights

if TYPE_CHECKING:
    from collections.abc import Sequence

    from stages._page import Line

__all__ = ["reading_order_text", "rows"]


def rows(lines: Sequence[Line], *, tolerance: float = 0.5) -> list[list[Line]]:
    """
    Group OCR lines into visual rows, top to bottom, each row sorted left to right.

    A line joins the current row when its vertical centre is within ``tolerance`` times
    the median line height of the centre of the row's first line. Receipts are printed
    in fixed rows, so this simple sweep is enough; a skewed scan can split a long row.
    When every line has its quad, centres and heights are those of
    `stages._rows.row_heights`: a curled page's bend taken out, so the two ends of a
    bowed row stay one row.

    Args:
        lines: OCR lines with ``box = [x1, y1, x2, y2]`` in page pixels.
        tolerance: the allowed centre offset as a fraction of the median line height.

    Returns:
        The rows; lines with an empty or malformed box are left out.
    """
    usable = [line for line in lines if len(line.box) == 4 and line.text.strip()]
    if not usable:
        return []
    heights = row_heights(usable)
    limit = tolerance * statistics.median(max(bottom - top, 1.0) for _, top, bottom in heights)
    result: list[list[Line]] = []
    anchor = 0.0
    for line, (center, _, _) in sorted(
        zip(usable, heights, strict=True), key=lambda pair: pair[1][0]
    ):
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
