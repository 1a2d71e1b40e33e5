"""
A red rubber stamp ("PAID" and a date) pressed over a page, for tests and benchmarks.

The ink is translucent, as a stamp's is: each stamped pixel is the page's pixel times the
ink's colour (a multiply blend), so print under the stamp stays darker than the stamp.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["INK", "red_stamp"]

#: The stamp's ink (BGR): a worn red, as a stamp pad leaves it.
INK = (70, 50, 225)


def red_stamp(
    image: npt.NDArray[np.uint8],
    words: tuple[str, ...] = ("PAID", "25 MAR 2019"),
    centre: tuple[float, float] = (0.5, 0.2),
    angle: float = -15.0,
) -> npt.NDArray[np.uint8]:
    """
    ``image`` with an oval stamp, its words inside, pressed at ``centre``.

    Args:
        image: uint8 BGR or gray pixels (gray pages come back BGR: the stamp is coloured).
        words: the stamp's lines, the first large and in thick strokes.
        centre: where the stamp's middle falls, as fractions of the width and height.
        angle: how far it is turned, in degrees counter-clockwise.

    Returns:
        A new BGR image of the same size.
    """
    page = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image[:, :, :3]
    h, w = page.shape[:2]
    # The stamp is drawn upright on its own canvas, 0.6 of the page wide, then turned.
    width = max(40, int(0.6 * w))
    height = width // 2
    mask = np.zeros((height, width), np.uint8)
    stroke = max(2, width // 60)
    cv2.ellipse(
        mask,
        (width // 2, height // 2),
        (width // 2 - stroke, height // 2 - stroke),
        0,
        0,
        360,
        255,
        stroke,
    )
    for index, text in enumerate(words):
        scale = (width / 180) if index == 0 else (width / 420)
        thickness = max(1, int(scale * (3 if index == 0 else 2)))
        (text_w, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, scale, thickness)
        y = int(height * (0.55 if index == 0 else 0.8))
        cv2.putText(
            mask,
            text,
            ((width - text_w) // 2, y),
            cv2.FONT_HERSHEY_DUPLEX,
            scale,
            255,
            thickness,
            cv2.LINE_AA,
        )
    x, y = centre[0] * w, centre[1] * h
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    turn[0, 2] += x - width / 2
    turn[1, 2] += y - height / 2
    placed = cv2.warpAffine(mask, turn, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    weight = (placed.astype(np.float32) / 255.0)[:, :, np.newaxis]
    ink = np.asarray(INK, np.float32) / 255.0
    out = page.astype(np.float32) * (1.0 - weight + weight * ink)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
