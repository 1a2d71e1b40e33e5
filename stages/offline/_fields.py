"""
The offline "structure" stage: receipt fields (company, date, address, total) by rules.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import replace
from typing import TYPE_CHECKING

from stages._page import Line

from ._address import find_address
from ._company import find_company
from ._dates import find_date
from ._geometry import rows
from ._layout import fix_layout
from ._total import find_total

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["DEFAULT_FIELDS", "extract_fields"]

#: The SROIE key-information fields.
DEFAULT_FIELDS = ("company", "date", "address", "total")


#: Boxes on one row further apart than this many line heights are in two columns (a
#: header's name and address on the left, the document's number and date on the
#: right). Between the header boxes of the 40 SROIE scans' development half the widest
#: gap is 6.2 (a salesperson and the time, below the header); the two-column headers
#: of the drawn receipts of new layouts (docs/accuracy.md) are 4.8 or more apart.
COLUMN_GAP = 4.0

# What lies right of a row's gap when it is the row's own value, not a second column:
# amounts ("189.00", "RM 12.50", "1 5.50 5.50"), counts and tax codes.
_AMOUNTS = re.compile(r"(?:(?:RM|MYR|\$)?\s*-?\d[\d,]*(?:\.\d{1,2})?\s*[A-Z]?\s*)+")


def _rows(text: str, lines: Sequence[Line] | None) -> list[list[Line]]:
    """The visual rows of the boxes, with the words of ``text`` when it has one line per
    box (the text after correct and fix); none without boxes."""
    if not lines:
        return []
    texts = text.split("\n")
    if len(texts) == len(lines):
        # The text is these lines after correct/fix: read the corrected words.
        lines = [replace(line, text=fixed) for fixed, line in zip(texts, lines, strict=True)]
    return rows(lines)


def _row_texts(text: str, lines: Sequence[Line] | None) -> list[str]:
    """One string per visual row: from the boxes when given, else one per text line."""
    grouped = _rows(text, lines)
    if grouped:
        return [fix_layout(" ".join(line.text for line in row)) for row in grouped]
    return [line for line in fix_layout(text).split("\n") if line]


def _column_texts(text: str, lines: Sequence[Line] | None) -> list[str] | None:
    """
    The rows read column by column: each row's part before its first gap wider than
    `COLUMN_GAP` line heights in place, the parts after such gaps after every row (where
    the name and address, read from the top, never reach them). ``None`` when no row
    has such a gap.
    """
    grouped = _rows(text, lines)
    if not grouped:
        return None
    height = statistics.median(
        max(line.box[3] - line.box[1], 1.0) for row in grouped for line in row
    )
    cuts = [_cut(row, height) for row in grouped]
    # A second column is one: its parts line up (their left or right edges within a line
    # height and a half) on two rows or more. One row's far part alone is the row's own
    # (a shop's name read as two boxes far apart on one row is still one name).
    edges = [
        (row[cut].box[0], row[-1].box[2]) for row, cut in zip(grouped, cuts, strict=True) if cut
    ]
    left: list[str] = []
    right: list[str] = []
    for row, cut in zip(grouped, cuts, strict=True):
        if cut and _in_a_column((row[cut].box[0], row[-1].box[2]), edges, 1.5 * height):
            left.append(fix_layout(" ".join(line.text for line in row[:cut])))
            right.append(fix_layout(" ".join(line.text for line in row[cut:])))
        else:
            left.append(fix_layout(" ".join(line.text for line in row)))
    return [*left, *right] if right else None


def _cut(row: list[Line], height: float) -> int:
    """Where ``row`` splits into two columns (its first gap wider than `COLUMN_GAP` line
    heights, unless what follows is the row's amounts or a label's value), or 0."""
    for index in range(1, len(row)):
        if row[index].box[0] - row[index - 1].box[2] > COLUMN_GAP * height:
            rest = fix_layout(" ".join(line.text for line in row[index:]))
            head = fix_layout(" ".join(line.text for line in row[:index]))
            if _AMOUNTS.fullmatch(rest) or rest.startswith(":") or head.endswith(":"):
                return 0
            return index
    return 0


def _in_a_column(
    edges: tuple[float, float], others: list[tuple[float, float]], tolerance: float
) -> bool:
    """Whether another row's far part starts or ends where this one does."""
    matches = sum(
        abs(edges[0] - other[0]) <= tolerance or abs(edges[1] - other[1]) <= tolerance
        for other in others
    )
    return matches >= 2  # itself, and one more


def extract_fields(
    text: str,
    lines: Sequence[Line] | None = None,
    *,
    fields: Sequence[str] = DEFAULT_FIELDS,
) -> dict[str, str | None]:
    """
    Extract receipt fields from OCR text with deterministic rules.

    Values follow the SROIE ground-truth convention: as printed, in upper case; the date
    without its time; the total without ``RM``/``MYR`` (a printed ``$`` is kept).

    When ``lines`` (OCR boxes) are given, rows are rebuilt from their geometry so that a
    label and the amount printed to its right on the same row are read together, which
    is more reliable than the engine's line order. If ``text`` has exactly one line per
    OCR line (the correct and fix stages keep lines), its corrected words are used with
    the boxes; otherwise the boxes' own texts. Without ``lines``, ``text`` alone is used.

    Args:
        text: the OCR text (after the correct and fix stages), one line per OCR line.
        lines: the OCR lines with boxes, or ``None`` for text-only extraction.
        fields: the fields to return; names other than ``company``, ``date``,
            ``address`` and ``total`` map to ``None``.

    Returns:
        ``{field: value or None}`` for every name in ``fields``, in that order.

    .. versionadded:: 0.1
    """
    row_texts = _row_texts(text, lines)
    # The name and the address are read a column at a time; the date and the total
    # from whole rows, whose label and amount lie far apart.
    header_texts = _column_texts(text, lines) or row_texts
    extractors: dict[str, tuple[Callable[[Sequence[str]], str | None], list[str]]] = {
        "company": (find_company, header_texts),
        "date": (find_date, row_texts),
        "address": (find_address, header_texts),
        "total": (find_total, row_texts),
    }
    result: dict[str, str | None] = {}
    for name in fields:
        extractor, texts = extractors.get(name, (None, row_texts))
        result[name] = extractor(texts) if extractor else None
    return result
