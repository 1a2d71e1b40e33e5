"""
The text a born-digital PDF page carries: its lines read from the PDF instead of by OCR.

A PDF written by a program (an e-receipt, an exported invoice) holds its text exactly; OCR
of its rendering can only lose some. A scanned PDF holds a picture of the text, sometimes
with an invisible OCR layer a scanner added, whose quality is unknown: such pages are
OCR-ed as before.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

import pypdfium2.raw as pdfium_c

from stages._page import Line

if TYPE_CHECKING:
    import pypdfium2 as pdfium

__all__ = ["text_layer_lines"]

#: Above this share of unreadable characters (no Unicode mapping in the font: U+FFFD,
#: control or private-use code points), the text layer is not used: OCR reads the page.
_MAX_UNREADABLE = 0.05


def _visible_text(pdf_page: pdfium.PdfPage) -> bool:
    """Whether the page draws any text (a scanner's OCR layer is drawn invisible)."""
    return any(
        pdfium_c.FPDFTextObj_GetTextRenderMode(text.raw) != pdfium_c.FPDF_TEXTRENDERMODE_INVISIBLE
        for text in pdf_page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_TEXT,), max_depth=2)
    )


def _unreadable(text: str) -> int:
    return sum(
        char == "\ufffd" or unicodedata.category(char) in ("Cc", "Co")
        for char in text
        if not char.isspace()
    )


def text_layer_lines(pdf_page: pdfium.PdfPage, scale: float) -> list[Line]:
    """
    The visible text of a PDF page as lines, one per run of text PDFium finds (a run is
    text on one baseline with no wide gap, as an OCR engine's line box is).

    Args:
        pdf_page: an open page (the caller holds the PDFium lock).
        scale: pixels per point of the page's image, for the boxes.

    Returns:
        Lines with boxes ``[x1, y1, x2, y2]`` in pixels from the top left and confidence
        1.0, in PDFium's order; ``[]`` when the page draws no text, or when its text does
        not map to Unicode (more than 5 % of it unreadable), so that OCR reads it.
    """
    if not _visible_text(pdf_page):
        return []
    height = pdf_page.get_height()
    textpage = pdf_page.get_textpage()
    try:
        lines = []
        for index in range(textpage.count_rects()):
            left, bottom, right, top = textpage.get_rect(index)
            text = " ".join(textpage.get_text_bounded(left, bottom, right, top).split())
            if text:
                box = [left, height - top, right, height - bottom]
                box = [round(value * scale, 1) for value in box]
                lines.append(Line(text=text, box=box, confidence=1.0))
    finally:
        textpage.close()
    characters = sum(len(line.text) for line in lines)
    unreadable = sum(_unreadable(line.text) for line in lines)
    if not characters or unreadable > _MAX_UNREADABLE * characters:
        return []
    return lines
