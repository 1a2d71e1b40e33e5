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

from typing import TYPE_CHECKING

import cv2
import numpy as np

from ._pixels import to_gray, u8

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["find_paper", "find_print"]

Box = tuple[int, int, int, int]


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
    if not outside.any() or float(small[inside].mean()) - float(small[outside].mean()) < 60:
        return None
    return _scaled_box(x, y, bw, bh, 0.01 * max(sh, sw), shrink, image.shape)


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
