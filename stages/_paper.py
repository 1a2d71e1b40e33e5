"""
Where the receipt is on a bigger picture: the paper on a dark background
(:func:`find_paper`), or the print on a mostly empty bright page (:func:`find_print`).

The OCR shrinks every page to a fixed longest side before it looks for text (1500 pixels
for rapidocr), so a receipt that fills a small part of its picture is read at a fraction
of its resolution. Cutting to the receipt first gives the OCR's pixels to the print.
Both functions work on a gray copy shrunk to 600 or 1000 pixels and return a box in the
pixels of the image given, or ``None`` when there is nothing to cut away.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from ._pixels import to_gray, u8

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "BLANK_CONTRAST",
    "BLANK_TAIL",
    "find_paper",
    "find_print",
    "find_receipts",
    "is_blank",
]

Box = tuple[int, int, int, int]

#: Neighbouring parts of a page whose rows of print line up this well (the share of the
#: shorter part's rows) are columns of one document, not two receipts. Columns of drawn
#: receipts, an invoice and a two-column page: 0.88-1.0; two SROIE receipts side by side
#: (even ones, 2 and 3 a page, three vertical offsets): 0.0-0.46, 0.67 and 0.70 once each.
SHARED_ROWS = 0.8

#: Receipts lie one above the other where no print lies for this many rows of print (the
#: distance from one row's middle to the next, the median of the column's). None of the
#: 40 SROIE scans is cut, as scanned or after ``benchmarks/robustness.py``'s changes;
#: with each one's lower half moved down, 4 to 7.5 rows of blank cut one
#: (``benchmarks/receipts.py --singles``, ``--halves``). Two receipts laid one under the
#: other are parted by both their paper margins (a printer feeds the paper past its
#: cutter) and the space between them. Single documents with a wider blank exist (a card
#: slip's signature space, an invoice's footer): `STACKED_ROWS` keeps them whole.
STACKED_GAP = 5.0

#: ... and each part is this many rows long at least. The SROIE receipts hold 17 to 125
#: rows; what a blank parts within one document is mostly shorter: a card slip's
#: signature and the lines under it, an invoice's footer, a clinic's header.
STACKED_ROWS = 12


def _small_gray(image: npt.NDArray[np.uint8], side: int) -> tuple[npt.NDArray[np.uint8], float]:
    """The image in gray, shrunk so its longest side is at most ``side``; and the factor."""
    image = to_gray(image)
    h, w = image.shape
    shrink = min(1.0, side / max(h, w))
    if shrink < 1.0:
        size = (max(1, round(w * shrink)), max(1, round(h * shrink)))
        image = u8(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
    return image, shrink


def _scaled_box(
    x: int, y: int, bw: int, bh: int, margin: float, shrink: float, shape: tuple[int, ...]
) -> Box:
    """A box found in the shrunk copy, grown by ``margin``, in the full image's pixels."""
    h, w = shape[:2]
    return (
        max(0, int((x - margin) / shrink)),
        max(0, int((y - margin) / shrink)),
        min(w, int(np.ceil((x + bw + margin) / shrink))),
        min(h, int(np.ceil((y + bh + margin) / shrink))),
    )


def find_paper(image: npt.NDArray[np.uint8]) -> Box | None:
    """
    Where the paper is on a darker background: the bounding box of the largest bright
    region.

    The page is shrunk to about 600 pixels and thresholded with Otsu's method; a closing
    fills the print into the paper, and the largest bright region is the paper. Nothing is
    found (``None``) when that region's box covers 90 % of the page or more (a flat scan),
    when the region is under 15 % of the page (no paper stands out), or when what lies
    outside the box is not clearly darker than the paper (60 grey levels; every threshold
    here is a guess, checked on the SROIE receipts with and without a background).

    Args:
        image: uint8 gray or BGR pixels.

    Returns:
        ``(x0, y0, x1, y1)`` in ``image`` pixels, with a margin of 1 % of the long side,
        or ``None``.
    """
    small, shrink = _small_gray(image, 600)
    _, bright = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (9, 9))
    bright = u8(cv2.morphologyEx(bright, cv2.MORPH_CLOSE, kernel))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=4)
    if count < 2:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, bw, bh, area = (int(value) for value in stats[largest])
    sh, sw = small.shape
    if area < 0.15 * sh * sw or bw * bh >= 0.9 * sh * sw:
        return None
    inside = labels == largest
    outside = np.ones_like(inside)
    outside[y : y + bh, x : x + bw] = False
    paper = float(small[inside].mean())
    if not outside.any() or paper - float(small[outside].mean()) < 60:
        return None
    if float((small[y : y + bh, x : x + bw] < paper - PRINT_BELOW_PAPER).mean()) < MIN_PRINT:
        # A blank bright region: the white lid of a flatbed around a greyer receipt, say,
        # not the paper (else the blank half of a long page is cut to, and the receipt
        # thrown away).
        return None
    return _scaled_box(x, y, bw, bh, 0.01 * max(sh, sw), shrink, image.shape)


#: A page whose darkest and lightest pixels lie closer than this many grey levels holds no
#: ink: a blank page (`is_blank`). Blank A4 pages, white or with a scanner's grain of
#: sigma 12, measure 0 to 10; the 20 development receipts 167 or more as scanned and 59
#: or more faded (benchmarks/robustness.py's ``faded``); a page holding one short word 213.
BLANK_CONTRAST = 24
#: The share of the page's pixels at each end left out of that range: specks of dust.
BLANK_TAIL = 0.0001


def is_blank(image: npt.NDArray[np.uint8]) -> bool:
    """
    Whether a page holds no ink to read: the back of a sheet scanned two-sided, a
    separator page.

    The page is shrunk to about 1000 pixels and its grain smoothed (a 3x3 median); it is
    blank when its darkest and lightest pixels, the extreme `BLANK_TAIL` at each end left
    out, differ by less than `BLANK_CONTRAST` grey levels. Print of any size or fading
    read here differs by far more; a page holding only a page number's few strokes counts
    as blank.

    Args:
        image: uint8 gray or BGR pixels.

    Returns:
        True when the page holds no ink.
    """
    small = cv2.medianBlur(_small_gray(image, 1000)[0], 3)
    counts = np.cumsum(cv2.calcHist([small], [0], None, [256], [0, 256]).ravel())
    tail = BLANK_TAIL * counts[-1]
    darkest = int(np.searchsorted(counts, tail))
    lightest = int(np.searchsorted(counts, counts[-1] - tail))
    return lightest - darkest < BLANK_CONTRAST


#: The paper found must hold print: at least MIN_PRINT of its box PRINT_BELOW_PAPER grey
#: levels darker than the paper.  The 80 crops of the development half (as scanned and
#: in benchmarks/robustness.py's variants) hold 1.8 % or more; a blank white region, 0.
PRINT_BELOW_PAPER = 40
MIN_PRINT = 0.002


def find_print(image: npt.NDArray[np.uint8]) -> Box | None:
    """
    Where the print is on a bright page it fills less than half of: a receipt scanned on
    an A4 flatbed, or photographed with a wide white margin.

    The page is shrunk to about 1000 pixels; its ink (darker than Otsu's threshold) is
    grown by 1.5 % of the long side so a block of print becomes one region, and regions
    under 4 times that growth's own area (dust, a speck on the glass) are dropped. The box
    around the rest is the print. Nothing is found (``None``) when that box covers half of
    the page or more, or when no ink is left.

    Args:
        image: uint8 gray or BGR pixels.

    Returns:
        ``(x0, y0, x1, y1)`` in ``image`` pixels, with a margin of 2 % of the long side,
        or ``None``.
    """
    small, shrink = _small_gray(image, 1000)
    sh, sw = small.shape
    threshold, ink = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    if threshold >= 250 or not ink.any():
        return None
    reach = max(3, round(0.015 * max(sh, sw)))
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (reach, reach))
    blocks = u8(cv2.dilate(ink, kernel))
    count, _, stats, _ = cv2.connectedComponentsWithStats(blocks, connectivity=8)
    kept = stats[1:count][stats[1:count, cv2.CC_STAT_AREA] >= 4 * reach * reach]
    if not len(kept):
        return None
    x0, y0 = (int(value) for value in kept[:, :2].min(axis=0))
    x1, y1 = (int(value) for value in (kept[:, :2] + kept[:, 2:4]).max(axis=0))
    if (x1 - x0) * (y1 - y0) >= 0.5 * sh * sw:
        return None
    return _scaled_box(x0, y0, x1 - x0, y1 - y0, 0.02 * max(sh, sw), shrink, image.shape)


def find_receipts(image: npt.NDArray[np.uint8]) -> list[Box]:
    """
    Where each receipt is on a scan holding several (a flatbed page of receipts laid next
    to each other, or in columns one under the other): one box per receipt, column by
    column and each column top to bottom, or ``[]`` when the page holds one receipt (or
    the split is not clear).

    The page is shrunk to about 1200 pixels (more when its print is then under 8 pixels
    high; a page whose print stays under 5 is left whole). Ink is what is darker than its
    surroundings (a receipt's paper may be greyer than the page around it). Blobs of ink
    of at least 2 x 2 pixels are glyphs, but lines taller than 6 glyphs (a paper's edge,
    a shadow, a fold, a dark table's edge) are not print. The glyphs tell which way the
    print runs: in a row of print, the glyph nearest to most glyphs is beside it; on a
    page scanned sideways, above or below it, and the receipts lie one above the other.
    A page whose print shows no clear direction is left whole.

    Across the print, a **gutter** is a band that no glyph touches from one edge of the
    page to the other, at least a glyph's height and 1 % of the page wide. A rule or a
    row of dashes across a receipt closes every band, but a receipt without one, or an
    invoice, has such bands between its columns too. So the parts the gutters leave must
    each look like a receipt, or they are joined to their nearer neighbour:

    - at least 40 glyphs, 0.8 of them in 6 rows of print or more (a row holds 3 glyphs
      or more: a note of four lines, specks and a scanner's grain are no receipt);
    - as wide as 8 glyphs are high, a tenth of the print and 0.3 of the widest part (an
      amount column alone is narrower than the items beside it);
    - printed on rows of its own: two neighbours whose rows line up (at least
      `SHARED_ROWS` of the shorter part's rows within 0.3 glyph of one of the other's)
      are columns of one document, and are joined.

    Along the print, each column is parted where no glyph (nor a barcode's bar) lies for
    `STACKED_GAP` rows of print (the column's median distance from one row to the next),
    between two parts that each hold a receipt's print (the first rule above) over
    `STACKED_ROWS` rows or more: a receipt's blank lines are narrower, its paper's margins
    and the space between two receipts wider, and what a wide blank parts within one
    document is mostly short (a card slip's signature block, an invoice's footer).

    Every threshold here is a guess, checked on the 40 SROIE scans (none is split, upright
    or turned, nor after any of the changes of ``benchmarks/robustness.py``), on pages of
    2 and 3 of them side by side, on white and on a dark table, and on drawn receipts and
    invoices with wide blank columns, and on pages of 2 in a column and of 4 in two
    columns (``benchmarks/receipts.py``,
    ``tests/stages/test_receipts.py``).

    Args:
        image: uint8 gray or BGR pixels.

    Returns:
        ``[(x0, y0, x1, y1), ...]`` in ``image`` pixels: each receipt's part of the page,
        cut in the middle of the gutters and gaps beside it; ``[]`` for one receipt.
    """
    small, shrink = _small_gray(image, 1200)
    glyphs = _glyphs(small)
    height = _letter_size(glyphs)
    if 0 < height < 8 and shrink < 1:
        # Print too small to tell letters apart (several receipts on a large scan): look
        # again at up to 8 pixels a glyph.
        small, shrink = _small_gray(image, min(4000, round(1200 * 8 / height)))
        glyphs = _glyphs(small)
        height = _letter_size(glyphs)
    if len(glyphs) < 80 or height < 5:
        return []  # no print, or too small to tell its rows apart: left whole
    runs = _runs_across(glyphs)
    if 0.4 <= runs <= 0.5:
        return []  # no clear direction of print: not a page to cut
    sideways = runs < 0.4
    if sideways:
        glyphs = glyphs[:, [1, 0, 3, 2]]  # rows become columns: the same search applies
    length = small.shape[0] if sideways else small.shape[1]
    # The letters' height along the rows (specks and a halftone logo's dots left out).
    letters = _letters(glyphs)
    height = float(np.median((letters if len(letters) else glyphs)[:, 3]))
    ink = glyphs
    glyphs = glyphs[glyphs[:, 3] <= 6 * height]
    spans = _ink_spans(glyphs, length, max(height, 0.01 * length))
    parts = _receipt_parts(glyphs, spans, height)
    across = small.shape[1] if sideways else small.shape[0]
    found = []
    for start, end in _cuts(parts, length):
        column = (_inside(glyphs, (start, end)), _inside(ink, (start, end)))
        for top, bottom in _cuts(_stacked(*column, end - start, across, height), across):
            x, y, w, h = (
                (top, start, bottom - top, end - start)
                if sideways
                else (start, top, end - start, bottom - top)
            )
            found.append(_scaled_box(x, y, w, h, 0.0, shrink, image.shape))
    return found if len(found) > 1 else []


def _cuts(parts: list[tuple[int, int]], length: int) -> list[tuple[int, int]]:
    """Each part's band of ``range(length)``, cut in the middle of the gaps between parts."""
    cuts = [0] + [(left[1] + right[0]) // 2 for left, right in itertools.pairwise(parts)]
    return list(itertools.pairwise([*cuts, length]))


def _glyphs(small: npt.NDArray[np.uint8]) -> npt.NDArray[np.int32]:
    """The ``(x, y, w, h)`` boxes of the blobs of ink (darker than their surroundings) of
    at least 2 x 2 pixels and 4 pixels in all."""
    ink = cv2.adaptiveThreshold(small, 1, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, 31, 20)
    _, _, stats, _ = cv2.connectedComponentsWithStats(u8(ink), connectivity=8)
    boxes = stats[1:, :4].astype(np.int32)
    return boxes[(boxes[:, 2] >= 2) & (boxes[:, 3] >= 2) & (stats[1:, cv2.CC_STAT_AREA] >= 4)]


def _letters(glyphs: npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
    """The glyphs of 3 pixels or more each way: specks of 2 pixels are noise."""
    letters: npt.NDArray[np.int32] = glyphs[glyphs[:, 2:4].min(axis=1) >= 3]
    return letters


def _letter_size(glyphs: npt.NDArray[np.int32]) -> float:
    """A letter's height, or its width on a page turned a quarter (the smaller of the
    two); 0 with no letters."""
    letters = _letters(glyphs)
    return float(np.median(letters[:, 2:4].min(axis=1))) if len(letters) else 0.0


def _runs_across(glyphs: npt.NDArray[np.int32]) -> float:
    """
    The share of the glyphs whose nearest glyph lies beside them rather than above or
    below: 0.70 to 0.96 on the SROIE scans upright or upside down, 0.04 to 0.29 turned a
    quarter; 0.59 to 0.94 and 0.06 to 0.29 on pages of 2 or 3 of the even ones side by
    side. Up to 1500 glyphs, evenly picked, are asked for their nearest among all.
    """
    letters = _letters(glyphs)
    centres = (letters[:, :2] + letters[:, 2:4] / 2).astype(np.float32)
    if len(centres) < 2:
        return 0.5
    picked = np.arange(0, len(centres), -(-len(centres) // 1500))
    across = 0
    for chunk in np.array_split(picked, -(-len(picked) // 250)):
        # 250 glyphs' distances to all: 4 MB for 4000 glyphs.
        distances = ((centres[chunk, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        distances[np.arange(len(chunk)), chunk] = np.inf
        step = centres[distances.argmin(axis=1)] - centres[chunk]
        across += int(np.sum(np.abs(step[:, 0]) > np.abs(step[:, 1])))
    return across / len(picked)


def _ink_spans(boxes: npt.NDArray[np.int32], width: int, gutter: float) -> list[tuple[int, int]]:
    """The runs of columns some glyph touches, split where at least ``gutter`` columns
    in a row are touched by none: ``[(x0, x1), ...]`` left to right."""
    touched = np.zeros(width + 1, np.int32)
    np.add.at(touched, boxes[:, 0], 1)
    np.add.at(touched, boxes[:, 0] + boxes[:, 2], -1)
    covered = np.cumsum(touched)[:width] > 0
    columns = np.flatnonzero(covered)
    spans: list[tuple[int, int]] = []
    start = previous = int(columns[0])
    for column in columns[1:]:
        if column - previous > gutter:
            spans.append((start, previous + 1))
            start = int(column)
        previous = int(column)
    spans.append((start, previous + 1))
    return spans


def _receipt_parts(
    boxes: npt.NDArray[np.int32], spans: list[tuple[int, int]], height: float
) -> list[tuple[int, int]]:
    """
    The spans joined until each looks like a receipt, and no two neighbours print on the
    same rows (see `find_receipts`).
    """
    parts = list(spans)
    while len(parts) > 1:
        widest = max(x1 - x0 for x0, x1 in parts)
        across = parts[-1][1] - parts[0][0]
        weak = next(
            (
                i
                for i, part in enumerate(parts)
                if not _like_receipt(boxes, part, widest, across, height)
            ),
            None,
        )
        if weak is not None:
            parts = _joined(parts, weak)
            continue
        columns = next(
            (
                i
                for i in range(1, len(parts))
                if _shared_rows(
                    _rows(_inside(boxes, parts[i - 1]), height),
                    _rows(_inside(boxes, parts[i]), height),
                    height,
                )
                >= SHARED_ROWS
            ),
            None,
        )
        if columns is None:
            break
        parts[columns - 1 : columns + 1] = [(parts[columns - 1][0], parts[columns][1])]
    return parts


def _stacked(
    glyphs: npt.NDArray[np.int32],
    ink: npt.NDArray[np.int32],
    width: int,
    length: int,
    height: float,
) -> list[tuple[int, int]]:
    """
    The receipts of one column that lie one above the other: ``[(y0, y1), ...]`` top to
    bottom, parted where no ink lies for `STACKED_GAP` rows of print, each part the print
    of a receipt (see `find_receipts`) `STACKED_ROWS` rows long; one span for one.

    ``glyphs`` are the column's print, ``ink`` all its blobs.
    """
    middles = _rows(glyphs, height)
    if len(middles) < 2 * STACKED_ROWS:
        return [(0, length)]
    pitch = float(np.median(np.diff(middles)))
    # What closes a gap: the print, and a barcode's bars (thin, up to 16 glyphs tall; a
    # paper's edge along the column is longer, a shadow or logo wider); a paper's edge
    # across the column (wide and thin) does not.
    bars = ink[(ink[:, 3] > 6 * height) & (ink[:, 3] <= 16 * height) & (ink[:, 2] <= height / 2)]
    closing = np.concatenate([glyphs, bars])
    closing = closing[~((closing[:, 2] >= width / 2) & (closing[:, 3] <= height / 2))]
    parts = _ink_spans(closing[:, [1, 0, 3, 2]], length, STACKED_GAP * pitch)
    while len(parts) > 1:
        weak = next(
            (
                i
                for i, part in enumerate(parts)
                if part[1] - part[0] < (STACKED_ROWS - 1) * pitch
                or not _like_print(_below(glyphs, part), height)
            ),
            None,
        )
        if weak is None:
            break
        parts = _joined(parts, weak)
    return parts


def _joined(parts: list[tuple[int, int]], weak: int) -> list[tuple[int, int]]:
    """``parts`` with the part at ``weak`` joined to its nearer neighbour."""
    if weak == 0 or (
        weak < len(parts) - 1
        and parts[weak + 1][0] - parts[weak][1] < parts[weak][0] - parts[weak - 1][1]
    ):
        weak += 1
    return [*parts[: weak - 1], (parts[weak - 1][0], parts[weak][1]), *parts[weak + 1 :]]


def _inside(boxes: npt.NDArray[np.int32], part: tuple[int, int]) -> npt.NDArray[np.int32]:
    """The glyphs that start in a band of columns."""
    return boxes[(boxes[:, 0] >= part[0]) & (boxes[:, 0] < part[1])]


def _below(boxes: npt.NDArray[np.int32], part: tuple[int, int]) -> npt.NDArray[np.int32]:
    """The glyphs that start in a band of rows."""
    return boxes[(boxes[:, 1] >= part[0]) & (boxes[:, 1] < part[1])]


def _like_receipt(
    boxes: npt.NDArray[np.int32], part: tuple[int, int], widest: int, across: int, height: float
) -> bool:
    """The print of a receipt (`_like_print`), in a part as wide as 8 glyphs are high, a
    tenth of the print and 0.3 of the widest part."""
    x0, x1 = part
    if x1 - x0 < max(0.3 * widest, 8 * height, 0.1 * across):
        return False
    return _like_print(_inside(boxes, part), height)


def _like_print(boxes: npt.NDArray[np.int32], height: float) -> bool:
    """At least 40 glyphs, 0.8 of them in 6 rows of print or more."""
    if len(boxes) < 40:
        return False
    # Print comes in rows of several glyphs (0.94-1.0 of a SROIE scan's glyphs lie in
    # them); specks and a scanner's grain do not (0.54 of grain's, blurred, beside 027).
    groups = _grouped(boxes, height)
    return len(groups) >= 6 and sum(len(group) for group in groups) >= 0.8 * len(boxes)


def _rows(boxes: npt.NDArray[np.int32], height: float) -> npt.NDArray[Any]:
    """The middles of the rows of print of some glyphs, top to bottom."""
    return np.array([np.median(group) for group in _grouped(boxes, height)])


def _grouped(boxes: npt.NDArray[np.int32], height: float) -> list[npt.NDArray[Any]]:
    """Glyphs' middles grouped into rows where they are more than half a glyph apart; a
    row of print holds 3 glyphs or more (fewer are specks)."""
    middles = np.sort(boxes[:, 1] + boxes[:, 3] / 2)
    groups = np.split(middles, np.flatnonzero(np.diff(middles) > 0.5 * height) + 1)
    return [group for group in groups if len(group) >= 3]


def _shared_rows(left: npt.NDArray[Any], right: npt.NDArray[Any], height: float) -> float:
    """The share of the rows of the part with fewer that lie within 0.3 glyph of a row of
    the other: columns of one document print on the same rows."""
    if not len(left) or not len(right):
        return 0.0
    fewer, more = (left, right) if len(left) <= len(right) else (right, left)
    nearest = np.abs(fewer[:, None] - more[None, :]).min(axis=1)
    return float(np.mean(nearest <= 0.3 * height))
