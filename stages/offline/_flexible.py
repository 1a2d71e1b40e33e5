"""
Flexible character accuracy: OCR character accuracy that does not depend on reading order.

The measure of Clausner, Pletschacher and Antonacopoulos ("Flexible character accuracy
measure for reading-order-independent evaluation", Pattern Recognition Letters 131,
2020, doi:10.1016/j.patrec.2020.02.003), as far as it could be reconstructed without the
paper: from the unreleased implementation in qurator-spk/dinglehopper (source history
only; the PyPI release 0.11.0 does not ship it) and its tests of the paper's figures.
:func:`flexible_edits` computes, for lists of ground-truth and OCR lines:

1. Both lists are sorted longest first (empty lines dropped).
2. The longest ground-truth line (the first of equally long ones, in the order given)
   is compared with every OCR line: the shorter of the two slides along
   the longer, and the window with the fewest insertions + deletions (a substitution
   counting 2) is that pair's alignment.
3. The OCR line with the lowest *penalty* is chosen, where penalty =
   ``edit * window distance + length_diff * |len(gt) - len(ocr)|
   + offset * (distance of the window from the nearer end of the longer line)
   - length * window length``.
4. If the ground-truth line is the longer one, it is split at the window: the window
   and what is left on either side go back into the list as lines, and step 2 starts
   again (the piece can find a better partner later). Otherwise the ground-truth line is
   matched with the OCR window, which costs their Levenshtein distance in errors; the
   ground-truth line is removed and the OCR line is replaced by what is left of it on
   either side of the window.
5. Steps 2-4 repeat while both lists hold a line.
6. Every ground-truth character left is a deletion, every OCR character left an
   insertion (one error each).
7. Steps 1-6 run for every set of coefficients in :data:`COEFFICIENTS`; the fewest
   errors win.

Character accuracy is ``1 - errors / ground-truth characters``, so it can go below 0 when
the OCR adds much text, as the ordinary character accuracy can.

Known limitation: of two equally long ground-truth lines the first is matched first,
even when the OCR read only the second (the paper's figure 4 case E.2 scores 0.12, not
0.5); dinglehopper tries every tied line, which cost ten times the time on receipts,
whose short pieces tie often.

Deviation of our own: whitespace at the ends of a piece cut from a line is dropped
(step 4), so a space between two printed items that one side keeps in one line and the
other side in two boxes is not an error. The ground-truth characters counted are those
of the lines as given, so such a space stays in the denominator.
"""

from __future__ import annotations

from itertools import product
from typing import TYPE_CHECKING, NamedTuple

from rapidfuzz.distance import Indel, Levenshtein

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = ["COEFFICIENTS", "Coefficients", "flexible_character_accuracy", "flexible_edits"]


class Coefficients(NamedTuple):
    """
    The weights of the penalty of a candidate match (step 3 of the module docstring).

    Attributes:
        edit: per unit of window distance.
        length_diff: per character of length difference between the two lines.
        offset: per character the window sits away from the nearer end of the longer line.
        length: per character of window length (a reward: longer matches are better).
    """

    edit: int
    length_diff: int
    offset: int
    length: int


#: The coefficient sets tried (the grid of the dinglehopper implementation; the paper's
#: own grid was not available to us). 768 sets; the result is the best over all of them.
COEFFICIENTS: tuple[Coefficients, ...] = tuple(
    Coefficients(*values)
    for values in product(range(15, 31, 5), range(0, 24, 3), range(4), range(6))
)


class _Window(NamedTuple):
    distance: int  # insertions + deletions, a substitution counting 2
    gt_start: int  # where the window starts in the ground-truth line
    ocr_start: int  # where it starts in the OCR line
    size: int  # the window's length: the shorter line's


def _window(gt: str, ocr: str) -> _Window:
    """Slide the shorter line along the longer; the first window of least distance."""
    size = min(len(gt), len(ocr))
    best: _Window | None = None
    for shift in range(abs(len(gt) - len(ocr)) + 1):
        gt_start, ocr_start = (shift, 0) if len(gt) > len(ocr) else (0, shift)
        distance = Indel.distance(gt[gt_start : gt_start + size], ocr[ocr_start : ocr_start + size])
        if best is None or distance < best.distance:
            best = _Window(distance, gt_start, ocr_start, size)
            if distance == 0:
                break
    assert best is not None  # both lines are non-empty
    return best


def _penalty(gt: str, ocr: str, window: _Window, coefficients: Coefficients) -> float:
    length_diff = abs(len(gt) - len(ocr))
    offset = 0.0
    if length_diff > 1:
        position = max(window.gt_start, window.ocr_start)
        offset = length_diff / 2 - abs(position - length_diff / 2)
    return (
        coefficients.edit * window.distance
        + coefficients.length_diff * length_diff
        + coefficients.offset * offset
        - coefficients.length * window.size
    )


def _rest(line: str, start: int, size: int) -> list[str]:
    """What is left of a line on either side of a window, cut whitespace dropped."""
    return [piece for piece in (line[:start].rstrip(), line[start + size :].lstrip()) if piece]


def _by_length(lines: Iterable[str]) -> list[str]:
    return sorted((line for line in lines if line), key=len, reverse=True)


def _errors(
    truth: Sequence[str],
    ocr: Sequence[str],
    coefficients: Coefficients,
    windows: dict[tuple[str, str], _Window],
) -> int:
    """Steps 1-6 for one set of coefficients: the number of errors."""
    gt_lines, ocr_lines = _by_length(truth), _by_length(ocr)
    errors = 0
    while gt_lines and ocr_lines:
        gt = gt_lines.pop(0)
        best_penalty, best_ocr, best_window = float("inf"), 0, None
        for index, line in enumerate(ocr_lines):
            window = windows.get((gt, line))
            if window is None:
                window = windows[gt, line] = _window(gt, line)
            penalty = _penalty(gt, line, window, coefficients)
            if penalty < best_penalty:
                best_penalty, best_ocr, best_window = penalty, index, window
        assert best_window is not None
        start, size = best_window.gt_start, best_window.size
        if size < len(gt):
            gt_lines = _by_length([*gt_lines, gt[start : start + size], *_rest(gt, start, size)])
            continue
        line = ocr_lines.pop(best_ocr)
        errors += Levenshtein.distance(
            gt, line[best_window.ocr_start : best_window.ocr_start + size]
        )
        ocr_lines = _by_length([*ocr_lines, *_rest(line, best_window.ocr_start, size)])
    return errors + sum(map(len, gt_lines)) + sum(map(len, ocr_lines))


def flexible_edits(
    truth: Sequence[str],
    ocr: Sequence[str],
    *,
    coefficients: Sequence[Coefficients] = COEFFICIENTS,
) -> tuple[int, int]:
    """
    The errors of OCR lines against ground-truth lines in any order (the module docstring).

    The lines are compared as given: normalise them (case, whitespace) first.

    Args:
        truth: the ground-truth lines.
        ocr: the OCR lines.
        coefficients: the penalty weights to try (at least one); the fewest errors win.

    Returns:
        ``(errors, ground-truth characters)``, to be summed over pages as the ordinary
        character error counts are.

    Raises:
        ValueError: ``coefficients`` is empty.
    """
    windows: dict[tuple[str, str], _Window] = {}
    best: int | None = None
    for each in coefficients:
        errors = _errors(truth, ocr, each, windows)
        best = errors if best is None else min(best, errors)
        if best == 0:
            break
    if best is None:
        raise ValueError("no coefficients to try")
    return best, sum(map(len, truth))


def flexible_character_accuracy(
    truth: Sequence[str],
    ocr: Sequence[str],
    *,
    coefficients: Sequence[Coefficients] = COEFFICIENTS,
) -> float:
    """
    The flexible character accuracy of OCR lines against ground-truth lines.

    Args:
        truth: the ground-truth lines.
        ocr: the OCR lines.
        coefficients: passed to :func:`flexible_edits`.

    Returns:
        ``1 - errors / ground-truth characters``; 1.0 when both are empty, and
        ``1 - errors`` when only the ground truth is.
    """
    errors, chars = flexible_edits(truth, ocr, coefficients=coefficients)
    return 1 - errors / (chars or 1)
