"""
Spaces the recogniser missed: an ink-free gap between two characters of a text line.

The PP-OCR recogniser often reads two words as one (``12,MAIN``) where the print has a
visible gap between them. Its CTC output says *where* along the line each character was
read (one column per output step); the line crop says where the ink is. A space goes between two
characters read next to each other when the widest run of ink-free pixel columns between
their positions is wider than ``space_gap`` x the height of the line's crop (the
detector's padded box: about 1.7x the height of the print on the SROIE receipts, median
of the development half).

A proportional face prints narrower spaces, which that limit misses (``NASIKANDAR``,
``NO.7,JALAN``). So a narrower gap is a space too when it is wider than ``narrow_gap`` x
the crop's height *and* :data:`LETTER_GAPS` times the line's median gap between
characters: it stands out against the line's own letter spacing. The narrow limit is used
only where a word space is printed narrow, between two letters and after a full stop,
comma, colon or semicolon that ends a word. Elsewhere a narrow glyph leaves a gap as wide
on its own: a ``1`` or a decimal point (``119.30`` would read ``1 19.30``, ``80.00``
``80 .00``), a colon after its label (``Date :``), a hyphen. See :func:`space_limits`.

Everything here is plain numpy on one crop, so it is tested without a model;
:class:`~stages.ocr.RapidOcrEngine` calls :func:`space_line` for every line it reads
unless built with ``space_gap=None``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "LETTER_GAPS",
    "char_centres",
    "gap_widths",
    "ink_mask",
    "insert_spaces",
    "space_limits",
    "space_line",
]

#: A narrow gap is a space only when it is this many times the line's median gap between
#: neighbouring characters (chosen with ``narrow_gap`` on rendered receipts of sets G to
#: Q; ``benchmarks/ocr_spacing.py --narrow``).
LETTER_GAPS = 2.5


def ink_mask(crop: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    """
    The dark pixels of a text-line crop: darker than Otsu's threshold of its grey levels.

    Args:
        crop: the line's pixels, gray ``(h, w)`` or BGR ``(h, w, 3)``, dark print on a
            light ground (receipts; a light-on-dark line has no ink-free gaps and so gets
            no spaces).

    Returns:
        A boolean ``(h, w)`` mask, all False for a flat crop.
    """
    gray = crop.mean(axis=2) if crop.ndim == 3 else crop.astype(np.float64)
    low, high = float(gray.min()), float(gray.max())
    if high - low < 32:  # a flat crop: no print to find (32 grey levels is a guess)
        return np.zeros(gray.shape, dtype=bool)
    threshold = _otsu(gray)
    return np.asarray(gray < threshold, dtype=bool)


def _otsu(gray: npt.NDArray[np.float64]) -> float:
    """Otsu's threshold of a gray image (0-255), in plain numpy."""
    counts, edges = np.histogram(gray, bins=64, range=(0.0, 256.0))
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(counts)
    total = weight[-1]
    mean = np.cumsum(counts * centres)
    below = weight[:-1]
    above = total - below
    valid = (below > 0) & (above > 0)
    mean_below = np.where(valid, mean[:-1] / np.maximum(below, 1), 0.0)
    mean_above = np.where(valid, (mean[-1] - mean[:-1]) / np.maximum(above, 1), 0.0)
    between = np.where(valid, below * above * (mean_below - mean_above) ** 2, -1.0)
    return float(edges[1:][int(np.argmax(between))])


def char_centres(columns: Sequence[int], steps: float, width: int) -> list[float]:
    """
    Where along a crop each character was read, from its CTC output column.

    Args:
        columns: the output step of each character (blanks and repeats removed).
        steps: how many output steps cover the crop's own width (the rest is padding).
        width: the crop's width in pixels.

    Returns:
        The x of each character's step centre, in crop pixels.
    """
    if steps <= 0:
        return [0.0 for _ in columns]
    scale = width / steps
    return [(column + 0.5) * scale for column in columns]


def gap_widths(
    ink_columns: Sequence[bool] | npt.NDArray[np.bool_], centres: Sequence[float]
) -> list[int]:
    """
    The widest run of ink-free columns between each pair of neighbouring characters.

    Args:
        ink_columns: per crop column, whether it holds ink.
        centres: the characters' x positions (see :func:`char_centres`), left to right.

    Returns:
        ``len(centres) - 1`` widths in columns; 0 where the centres do not increase.
    """
    ink = np.asarray(ink_columns, dtype=bool)
    widths = []
    for left, right in pairwise(centres):
        start, stop = max(int(np.ceil(left)), 0), min(int(np.floor(right)) + 1, ink.size)
        widest = run = 0
        for has_ink in ink[start:stop]:
            run = 0 if has_ink else run + 1
            widest = max(widest, run)
        widths.append(widest)
    return widths


def space_limits(
    text: str,
    gaps: Sequence[float],
    height: float,
    space_gap: float,
    narrow_gap: float | None,
) -> list[float]:
    """
    The widest gap that is not a space, for each pair of neighbouring characters.

    Args:
        text: the recognised line.
        gaps: one ink-free gap per pair of neighbouring non-space characters.
        height: the crop's height.
        space_gap: the limit in crop heights (any pair).
        narrow_gap: the lower limit in crop heights for a gap that is also
            :data:`LETTER_GAPS` times the line's median gap, where a word space can be
            narrow (:func:`_word_space`); ``None``: ``space_gap`` everywhere.

    Returns:
        ``len(gaps)`` limits, in the gaps' unit.
    """
    wide = space_gap * height
    if narrow_gap is None or not gaps:
        return [wide] * len(gaps)
    narrow = min(wide, max(narrow_gap * height, LETTER_GAPS * statistics.median(gaps)))
    chars = [char for char in text if not char.isspace()]
    return [
        narrow if _word_space(chars[index - 1] if index else "", left, right) else wide
        for index, (left, right) in enumerate(pairwise(chars))
    ]


def _word_space(before: str, left: str, right: str) -> bool:
    """
    Whether a narrow gap between ``left`` and ``right`` can be a word space: two letters,
    or a mark that ends a word (``NO.7``, ``12,JALAN``) before a letter, or before a digit
    when a letter precedes the mark (``NO.7``; not ``80.00``).
    """
    if left.isalpha():
        return right.isalpha()
    if left not in ".,:;":
        return False
    return right.isalpha() or (right.isdigit() and before.isalpha())


def insert_spaces(
    text: str, gaps: Sequence[float], limit: float | Sequence[float], join: float = 0.0
) -> str:
    """
    ``text`` with a space wherever the gap after a character is wider than ``limit``,
    and without the spaces that sit in a gap narrower than ``join``.

    Args:
        text: the recognised line.
        gaps: one gap per pair of neighbouring non-space characters of ``text``, in order
            (the width between the 1st and 2nd, the 2nd and 3rd, ...).
        limit: the widest gap that is not a space: one for every gap, or one per gap.
        join: a space the recogniser read in a gap narrower than this is dropped
            (``0``: every space it read is kept).

    Returns:
        The text with spaces added or dropped; spaces are never doubled.

    Raises:
        ValueError: ``gaps`` does not fit the characters of ``text``.
    """
    chars = [char for char in text if not char.isspace()]
    if len(gaps) != max(len(chars) - 1, 0):
        raise ValueError(f"{len(gaps)} gaps for {len(chars)} characters in {text!r}")
    limits = [limit] * len(gaps) if isinstance(limit, int | float) else list(limit)
    if len(limits) != len(gaps):
        raise ValueError(f"{len(limits)} limits for {len(gaps)} gaps")
    out: list[str] = []
    index = -1  # the index of the last non-space character written
    for char in text:
        if not char.isspace():
            if index >= 0 and out:
                if out[-1].isspace():
                    if gaps[index] < join:
                        while out and out[-1].isspace():
                            out.pop()
                elif gaps[index] > limits[index]:
                    out.append(" ")
            index += 1
        out.append(char)
    return "".join(out)


def space_line(
    text: str,
    columns: Sequence[int],
    steps: float,
    crop: npt.NDArray[np.uint8],
    space_gap: float,
    narrow_gap: float | None = None,
) -> str:
    """
    One recognised line with a space in each ink-free gap wider than ``space_gap`` x the
    height of its crop, or than ``narrow_gap`` x that height where the gap stands out
    against the line's letter spacing (:func:`space_limits`).

    The crop's height is the measure because it needs nothing more than the crop: on the
    development half of the SROIE receipts the three measures tried came out level, each
    at its best setting (OCR character accuracy 0.9504 at 0.45 crop heights, 0.9503 at
    0.8 print heights, 0.9503 at 1.2 character pitches from the CTC columns, which come
    in steps of a sixth of the crop's height; 0.9499 without; ``benchmarks/ocr_spacing.py``).

    Args:
        text: the recogniser's text.
        columns: the CTC output step of each non-space character of ``text``.
        steps: how many output steps cover the crop's width.
        crop: the pixels the recogniser read.
        space_gap: the widest gap that is not a space, in crop heights.
        narrow_gap: the lower limit for a gap that stands out, in crop heights; ``None``
            for none.

    Returns:
        The text, spaced; unchanged when the columns do not fit the text or the crop
        has no print.
    """
    if len(columns) != sum(not char.isspace() for char in text) or len(columns) < 2:
        return text
    ink = ink_mask(crop)
    if not ink.any():
        return text
    centres = char_centres(columns, steps, crop.shape[1])
    gaps = gap_widths(np.asarray(ink.any(axis=0), dtype=bool), centres)
    limits = space_limits(text, gaps, crop.shape[0], space_gap, narrow_gap)
    return insert_spaces(text, gaps, limits)
