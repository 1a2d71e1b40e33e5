"""
The pictures of a large PDF page rendered apart, at a resolution that keeps their pixels.

A page whose text the PDF gives is OCR-ed in its pictures only. A large page (an A0
drawing) renders at the engine's working size as a whole, so a small fine scan on it (a
stamp, a receipt printed an inch wide) ends a few dozen pixels wide: each such picture is
rendered again on its own, at the resolution of the finest image on the page.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pypdfium2.raw as pdfium_c

from stages._page import PictureImage

from ._drawing import page_bounds

if TYPE_CHECKING:
    import pypdfium2 as pdfium

__all__ = ["finest_dpi", "render_pictures"]

#: Points of the page kept around a picture rendered apart: the detector needs a margin
#: to find text that touches the picture's edge (as OCR keeps 8 pixels of a whole page).
_MARGIN_PT = 4.0

#: How much finer than the page's render a picture must come out to be rendered apart;
#: a guess that keeps a picture the page already shows nearly as well from costing a
#: second render.
_FINER = 1.5


def finest_dpi(pdf_page: pdfium.PdfPage) -> float:
    """
    The resolution of the finest image drawn on a PDF page, in dots per inch of the page
    (along the image's longer side); 0 when the page draws none.
    """
    finest = 0.0
    for image in pdf_page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,)):
        left, bottom, right, top = page_bounds(image)
        longest = max(right - left, top - bottom)
        if longest > 0:
            finest = max(finest, 72.0 * max(image.get_px_size()) / longest)
    return finest


def render_pictures(
    pdf_page: pdfium.PdfPage,
    areas: Sequence[Sequence[float]],
    *,
    scale: float,
    shown: float,
    dpi: float,
    size: tuple[float, float],
    turn: int,
    max_side: int | None,
    budget: int,
) -> list[PictureImage]:
    """
    Render apart each picture the page's own render shows coarser than ``dpi``.

    Args:
        pdf_page: the page (the caller holds the PDFium lock).
        areas: the pictures, ``[x0, y0, x1, y1]`` in the page's pixels at ``scale``.
        scale: those pixels per point.
        shown: the pixels per point the page was rendered at.
        dpi: the resolution to render the pictures at.
        size: the page's width and height in points, as rendered (after ``turn``).
        turn: the rotation the page was rendered with, in degrees.
        max_side: the longest side a picture may have (the cap the page has), or ``None``.
        budget: the pixels all pictures may have together: those left are read in the
            page as before.

    Returns:
        The pictures rendered apart, in the order of ``areas``.
    """
    width_pt, height_pt = size
    made: list[PictureImage] = []
    for area in areas:
        x0, y0, x1, y1 = (value / scale for value in area)
        x0, y0 = max(0.0, x0 - _MARGIN_PT), max(0.0, y0 - _MARGIN_PT)
        x1, y1 = min(width_pt, x1 + _MARGIN_PT), min(height_pt, y1 + _MARGIN_PT)
        if x1 - x0 < 1 or y1 - y0 < 1:
            continue
        render = dpi / 72.0
        longest = max(x1 - x0, y1 - y0) * render
        if max_side is not None and longest > max_side:
            render *= max_side / longest
        pixels = (x1 - x0) * (y1 - y0) * render**2
        if render < shown * _FINER or pixels > budget:
            continue
        budget -= math.ceil(pixels)
        crop = (x0, height_pt - y1, width_pt - x1, y0)  # left, bottom, right, top
        bitmap = pdf_page.render(scale=render, rotation=(360 - turn) % 360, crop=crop)
        try:
            array = np.array(bitmap.to_numpy(), dtype=np.uint8)
        finally:
            bitmap.close()
        if array.ndim == 3 and array.shape[2] == 4:  # BGRx / BGRA: drop the fourth byte
            array = np.ascontiguousarray(array[:, :, :3])
        # PDFium's bitmap starts at the crop rounded up to a whole pixel (pypdfium2).
        left, top = math.ceil(x0 * render) / render, math.ceil(y0 * render) / render
        height, width = array.shape[:2]
        box = [left, top, left + width / render, top + height / render]
        made.append(PictureImage([value * scale for value in box], render / scale, array))
    return made
