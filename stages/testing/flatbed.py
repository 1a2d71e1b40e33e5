"""
Several receipts laid side by side on a flatbed and scanned as one page, and pages of
print drawn from text, for tests and benchmarks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy.typing as npt

__all__ = ["PAGE", "drawn", "side_by_side"]

#: The flatbed's lid as a scan shows it: a white a little darker than fresh paper.
PAGE = 246


def side_by_side(
    images: Sequence[npt.NDArray[np.uint8]], gap: float = 0.08, stagger: int = 40
) -> tuple[npt.NDArray[np.uint8], list[tuple[int, int, int, int]]]:
    """
    ``images`` laid left to right on one white page, each lower than the one before.

    Args:
        images: uint8 BGR receipts as scanned.
        gap: the space between two receipts, and around them, as a fraction of the widest.
        stagger: how many pixels lower each receipt lies than the one before.

    Returns:
        The page, and where each receipt lies on it, ``(x0, y0, x1, y1)``.
    """
    space = round(gap * max(image.shape[1] for image in images))
    height = max(image.shape[0] for image in images) + 2 * space + stagger * (len(images) - 1)
    width = sum(image.shape[1] for image in images) + (len(images) + 1) * space
    page = np.full((height, width, 3), PAGE, np.uint8)
    placed: list[tuple[int, int, int, int]] = []
    x = space
    for index, image in enumerate(images):
        y = space + index * stagger
        h, w = image.shape[:2]
        page[y : y + h, x : x + w] = image
        placed.append((x, y, x + w, y + h))
        x += w + space
    return page, placed


def drawn(
    rows: Sequence[Sequence[tuple[int, str]]], width: int = 640, pitch: int = 30
) -> npt.NDArray[np.uint8]:
    """
    A printed page drawn from text: each row is a list of ``(x, text)``, drawn at ``x``
    pixels from the left in OpenCV's plain Hershey font, rows ``pitch`` pixels apart, on
    white paper ``width`` pixels wide (an empty row leaves a blank line).

    Args:
        rows: the page's rows, top to bottom.
        width: the page's width in pixels.
        pitch: the distance between two rows in pixels.

    Returns:
        uint8 BGR pixels.
    """
    page = np.full((pitch * (len(rows) + 2), width, 3), 255, np.uint8)
    for index, row in enumerate(rows, start=1):
        for x, text in row:
            cv2.putText(
                page,
                text,
                (x, index * pitch + pitch // 3),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.6,
                (0, 0, 0),
                1,
                cv2.LINE_AA,
            )
    return page
