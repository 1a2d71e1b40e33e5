"""
Which way up a page is: found from the text lines OCR just read, so an upright page
(almost every page) is read once and only a turned one again.

Two questions, each answered from what the first reading already has:

- **Sideways?** The detector finds text lines on a turned page too; on a page turned by a
  quarter they are taller than wide. The page is sideways when the tall boxes hold most
  of the boxes' length.
- **Upside down?** PP-OCR's text-line classifier (``ch_ppocr_mobile_v2.0_cls``, shipped in
  the rapidocr wheel) tells 0 from 180 degrees for one line. The widest lines, one per
  distinct text, are cut to their middle (the classifier squeezes a line to 4:1) and each
  votes with its score. A line read as digits and marks alone does not vote: ``0``,
  ``1``, ``6``, ``8`` and ``9`` read as digits either way up, so a page of numbers only
  (a label, ``006``) stays as it is.
  When the vote is close (the "180" share between 0.3 and 0.8), the recogniser reads
  those middles both ways and the way it reads with more confidence wins. (While this was
  built, a probe over the 40 SROIE receipts in all 4 turns saw a share of at most 0.45 on
  pages the right way up and at least 0.67 on pages upside down; the check kept is
  ``benchmarks/robustness.py``'s "turned upright" count.)

Plain numpy over boxes and crops, so it is tested with a stand-in classifier.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import numpy.typing as npt

    from stages._page import Line

    #: Crops in, one ``(label, score)`` per crop out; a label is ``"0"`` or ``"180"``.
    Classify = Callable[[list[npt.NDArray[np.uint8]]], Sequence[tuple[str, float]]]
    #: Crops in, the recogniser's confidence in its reading of each out.
    Read = Callable[[list[npt.NDArray[np.uint8]]], Sequence[float]]

__all__ = ["VOTERS", "is_sideways", "quarter_turns"]

#: How many of the widest lines vote on 0 against 180 degrees.
VOTERS = 15
# A box is tall (or wide) when its long side is this many times its short side.
_ELONGATED = 1.5
# Below this share of the votes' weight for "180" a page is the right way up, above the
# other upside down; in between, the recogniser decides.
_CLOSE_VOTE = (0.3, 0.8)


def _size(line: Line) -> tuple[float, float]:
    x0, y0, x1, y1 = line.box
    return max(x1 - x0, 0.0), max(y1 - y0, 0.0)


def is_sideways(lines: Sequence[Line]) -> bool:
    """
    Whether the text lines run up or down the page rather than across it.

    Args:
        lines: the lines read from the page as it is.

    Returns:
        True when boxes taller than wide (by 1.5x) hold more of the boxes' length than
        boxes wider than tall, and there are at least 3 of them.
    """
    tall = wide = 0.0
    count = 0
    for line in lines:
        width, height = _size(line)
        if height > _ELONGATED * width:
            tall += height
            count += 1
        elif width > _ELONGATED * height:
            wide += width
    return count >= 3 and tall > wide


def _has_letter(text: str) -> bool:
    """Whether a line read holds a letter: one of digits and marks alone is no evidence
    of its way up (``0``, ``1``, ``6``, ``8``, ``9`` read as digits either way up:
    ``006`` upside down is ``900``), and the classifier turned such lines at random."""
    return any(char.isalpha() for char in text)


def _voters(
    image: npt.NDArray[np.uint8], lines: Sequence[Line], sideways: bool
) -> list[npt.NDArray[np.uint8]]:
    """
    The middles of the widest lines that hold a letter, turned a quarter
    counter-clockwise if sideways; one per distinct text, so a line printed many times
    (a long receipt's repeated item, a row of dashes) votes once.
    """
    height, width = image.shape[:2]
    boxes = []
    for line in lines:
        w, h = _size(line)
        long, short = (h, w) if sideways else (w, h)
        if short >= 4 and long > 2 * short and _has_letter(line.text):
            boxes.append((long, short, " ".join(line.text.split()), line.box))
    boxes.sort(key=lambda item: item[0], reverse=True)
    texts: set[str] = set()
    distinct = []
    for long, short, text, box in boxes:
        if text not in texts:
            texts.add(text)
            distinct.append((long, short, box))
    crops = []
    for long, short, (x0, y0, x1, y1) in distinct[:VOTERS]:
        # The middle 4 x short of the line: the classifier squeezes a line to 4:1.
        half = min(long, 4 * short) / 2
        if sideways:
            mid = (y0 + y1) / 2
            y0, y1 = mid - half, mid + half
        else:
            mid = (x0 + x1) / 2
            x0, x1 = mid - half, mid + half
        top, bottom = max(int(y0), 0), min(int(np.ceil(y1)), height)
        left, right = max(int(x0), 0), min(int(np.ceil(x1)), width)
        if bottom - top < 4 or right - left < 4:
            continue
        crop = image[top:bottom, left:right]
        crops.append(np.ascontiguousarray(np.rot90(crop, 1) if sideways else crop))
    return crops


def quarter_turns(
    image: npt.NDArray[np.uint8],
    lines: Sequence[Line],
    classify: Classify,
    read: Read | None = None,
) -> int:
    """
    How many quarter turns counter-clockwise (``np.rot90(image, k)``) make a page upright.

    Args:
        image: the page's pixels as read.
        lines: the lines read from it (boxes in ``image`` pixels).
        classify: the text-line classifier (see :data:`Classify`).
        read: the recogniser's confidences (see :data:`Read`), asked only when the
            classifier's vote is close; ``None``: a close vote turns the page when
            "180" has more than half the weight.

    Returns:
        0 (upright), 1, 2 or 3.
    """
    sideways = is_sideways(lines)
    crops = _voters(image, lines, sideways)
    upside_down = 0.0
    total = 0.0
    if crops:
        for label, score in classify(crops):
            total += score
            if label == "180":
                upside_down += score
    share = upside_down / total if total > 0 else 0.0
    low, high = _CLOSE_VOTE
    if share <= low:
        flipped = False
    elif share >= high:
        flipped = True
    elif read is not None:
        as_is = read(crops)
        turned = read([np.ascontiguousarray(np.rot90(crop, 2)) for crop in crops])
        flipped = sum(turned) > sum(as_is)
    else:
        flipped = share > 0.5
    if sideways:
        # A quarter counter-clockwise puts the lines across; flipped, three quarters do.
        return 3 if flipped else 1
    return 2 if flipped else 0
