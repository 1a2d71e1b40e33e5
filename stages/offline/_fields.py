"""
The offline "structure" stage: receipt fields (company, date, address, total) by rules.
"""

from __future__ import annotations

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


def _row_texts(text: str, lines: Sequence[Line] | None) -> list[str]:
    """One string per visual row: from the boxes when given, else one per text line."""
    if lines:
        texts = text.split("\n")
        if len(texts) == len(lines):
            # The text is these lines after correct/fix: read the corrected words.
            lines = [
                Line(text=fixed, box=line.box, confidence=line.confidence)
                for fixed, line in zip(texts, lines, strict=True)
            ]
        grouped = rows(lines)
        if grouped:
            return [fix_layout(" ".join(line.text for line in row)) for row in grouped]
    return [line for line in fix_layout(text).split("\n") if line]


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
    extractors: dict[str, Callable[[Sequence[str]], str | None]] = {
        "company": find_company,
        "date": find_date,
        "address": find_address,
        "total": find_total,
    }
    result: dict[str, str | None] = {}
    for name in fields:
        extractor = extractors.get(name)
        result[name] = extractor(row_texts) if extractor else None
    return result
