"""
Scoring the offline stages on SROIE-style receipts (used by the benchmark and tests).

A receipt folder holds ``img/NNN.jpg``, ``box/NNN.csv`` (OCR ground truth: one line per
row, ``x1,y1,...,x4,y4,transcript``) and ``key/NNN.json`` (the four key fields).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from stages._page import Line

from ._correct import correct_lines
from ._fields import DEFAULT_FIELDS, extract_fields
from ._flexible import flexible_edits
from ._geometry import reading_order_text
from ._layout import fix_layout
from ._metrics import comparable_text, edit_distance, exact_match, text_similarity

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

__all__ = ["ReceiptScore", "lines_from_polygons", "read_box_file", "read_key_file", "score_receipt"]


def _box(points: Sequence[Sequence[float]]) -> list[float]:
    xs = [float(point[0]) for point in points]
    ys = [float(point[1]) for point in points]
    return [min(xs), min(ys), max(xs), max(ys)]


def lines_from_polygons(
    texts: Iterable[str], polygons: Iterable[Sequence[Sequence[float]]], scores: Iterable[float]
) -> list[Line]:
    """
    OCR lines from an engine's parallel results (rapidocr: ``.txts``, ``.boxes``, ``.scores``).

    Args:
        texts: the recognised texts.
        polygons: one 4-point polygon ``[[x, y], ...]`` per text.
        scores: one confidence per text.

    Returns:
        The lines, each with the axis-aligned box of its polygon.
    """
    return [
        Line(text=text, box=_box(polygon), confidence=float(score))
        for text, polygon, score in zip(texts, polygons, scores, strict=True)
    ]


def read_box_file(path: Path) -> list[Line]:
    """
    The ground-truth lines of a ``box/NNN.csv`` file (the transcript may contain commas).

    Args:
        path: the CSV file.

    Returns:
        One :class:`~stages._page.Line` per row, confidence 1.0.
    """
    lines: list[Line] = []
    for row in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = row.split(",", 8)
        if len(parts) < 9:
            continue
        coords = [float(value) for value in parts[:8]]
        points = [(coords[i], coords[i + 1]) for i in range(0, 8, 2)]
        lines.append(Line(text=parts[8], box=_box(points), confidence=1.0))
    return lines


def read_key_file(path: Path) -> dict[str, str]:
    """
    The key fields of a ``key/NNN.json`` file.

    Args:
        path: the JSON file.

    Returns:
        ``{field: value}`` with every value a string.
    """
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return {str(key): str(value) for key, value in data.items()}


@dataclass(slots=True)
class ReceiptScore:
    """
    The scores of one receipt.

    CER counts are kept as ``(edits, reference length)`` so that a corpus CER is the sum
    of edits over the sum of lengths (receipts weigh by their length).

    Attributes:
        reference_chars: length of the normalised ground-truth text.
        edits: edit distance to the reference for ``raw``, ``corrected`` (after
            :func:`correct_lines`) and ``fixed`` (after :func:`correct_lines` then
            :func:`fix_layout`).
        expected: the ground-truth fields.
        predicted: the extracted fields.
        matched: per field, whether it is an exact match (:func:`exact_match`, the SROIE
            rule); fields with an empty ground truth are left out (SROIE has a few
            unannotated values).
        similarity: per scored field, :func:`text_similarity` of the two values (0.0
            when nothing was extracted), a diagnostic beside ``matched``.
        nospace: ``(edits, reference length)`` of the raw OCR text against the reference
            with every space removed from both: a diagnostic of what spacing costs the
            character accuracy, never the score.
        flexible: ``(errors, reference length)`` of the raw OCR lines against the
            ground-truth lines in any order (:func:`flexible_edits`), a diagnostic of
            what reading order costs the character accuracy; ``None`` unless asked for.
            The reference length counts the lines' characters without the spaces that
            join them into rows, so it is a little below ``reference_chars``.
    """

    reference_chars: int
    edits: dict[str, int]
    expected: dict[str, str]
    predicted: dict[str, str | None]
    matched: dict[str, bool] = field(default_factory=dict)
    similarity: dict[str, float] = field(default_factory=dict)
    nospace: tuple[int, int] = (0, 0)
    flexible: tuple[int, int] | None = None


def score_receipt(
    ocr_lines: Sequence[Line],
    truth_lines: Sequence[Line],
    key: dict[str, str],
    *,
    fields: Sequence[str] = DEFAULT_FIELDS,
    flexible: bool = False,
) -> ReceiptScore:
    """
    Run correct -> fix -> extract on one receipt's OCR lines and score every step.

    Both texts are put in the same reading order (:func:`reading_order_text`) and
    compared case-insensitively with whitespace runs collapsed to one space.

    Args:
        ocr_lines: the engine's lines.
        truth_lines: the ground-truth lines (:func:`read_box_file`).
        key: the ground-truth fields (:func:`read_key_file`).
        fields: the fields to extract and score.
        flexible: also compute :attr:`ReceiptScore.flexible` (a second or more per
            receipt: off unless asked for).

    Returns:
        The receipt's :class:`ReceiptScore`.
    """
    reference = comparable_text(reading_order_text(truth_lines))
    raw = reading_order_text(ocr_lines)
    texts = correct_lines(ocr_lines)
    corrected = reading_order_text(
        [replace(line, text=text) for line, text in zip(ocr_lines, texts, strict=True)]
    )
    fixed = fix_layout(corrected)
    edits = {
        name: edit_distance(reference, comparable_text(text))
        for name, text in (("raw", raw), ("corrected", corrected), ("fixed", fixed))
    }
    # The pipeline hands the structure stage the corrected text in engine line order.
    text = fix_layout("\n".join(texts))
    predicted = extract_fields(text, ocr_lines, fields=fields)
    bare = re.sub(r"\s", "", reference)
    nospace = (edit_distance(bare, re.sub(r"\s", "", comparable_text(raw))), len(bare))
    score = ReceiptScore(len(reference), edits, dict(key), predicted, nospace=nospace)
    if flexible:
        # Each side's own lines (boxes), not its rows: how either side groups boxes into
        # rows is reading order too.
        score.flexible = flexible_edits(
            [comparable_text(line.text) for line in truth_lines],
            [comparable_text(line.text) for line in ocr_lines],
        )
    for name in fields:
        if key.get(name, "").strip():
            value = predicted[name]
            score.matched[name] = exact_match(key[name], value)
            score.similarity[name] = text_similarity(key[name], value) if value else 0.0
    return score
