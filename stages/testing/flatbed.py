"""
Several receipts laid side by side on a flatbed and scanned as one page, for tests and
benchmarks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy.typing as npt

__all__ = ["PAGE", "side_by_side"]

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
