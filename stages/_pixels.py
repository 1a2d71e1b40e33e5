"""
Small helpers for uint8 pixel arrays, shared by the preprocess steps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import cv2

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["to_gray", "u8"]


def u8(array: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
    """The array, typed as uint8: OpenCV's stubs type every result as a generic array."""
    return cast("npt.NDArray[np.uint8]", array)


def to_gray(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """One channel of gray from gray, BGR or BGRA pixels."""
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        return u8(cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY))
    return u8(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
