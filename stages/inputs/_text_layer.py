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


def _unreadable(char: str) -> bool:
    return char == "\ufffd" or unicodedata.category(char) in ("Cc", "Co")


class _Run:
    """Characters on one line of the PDF's text with no wide gap: one `Line`."""

    def __init__(self, char: str, box: tuple[float, float, float, float]) -> None:
        self.text = char
        self.left, self.bottom, self.right, self.top = box

    def takes(self, box: tuple[float, float, float, float]) -> bool:
        """Whether a character boxed so continues the run: level with it (a comma
        reaches below the letters, so any overlap counts), and no more than a height
        (about two characters) to its right."""
        left, bottom, _, top = box
        height = max(self.top - self.bottom, top - bottom)
        level = min(top, self.top) > max(bottom, self.bottom)
        return level and -height <= left - self.right <= height

    def add(self, char: str, box: tuple[float, float, float, float]) -> None:
        self.text += char
        self.left, self.bottom = min(self.left, box[0]), min(self.bottom, box[1])
        self.right, self.top = max(self.right, box[2]), max(self.top, box[3])

    def line(self, height: float, scale: float) -> Line:
        box = [self.left, height - self.top, self.right, height - self.bottom]
        return Line(
            text=" ".join(self.text.split()),
            box=[round(value * scale, 1) for value in box],
            confidence=1.0,
        )


def text_layer_lines(pdf_page: pdfium.PdfPage, scale: float) -> list[Line]:
    """
    The visible text of a PDF page as lines: the characters of each line of text PDFium
    finds, cut where a gap wider than the text's height (about two characters) separates
    them, as an OCR engine's line boxes are.

    Args:
        pdf_page: an open page (the caller holds the PDFium lock).
        scale: pixels per point of the page's image, for the boxes.

    Returns:
        Lines with boxes ``[x1, y1, x2, y2]`` in pixels from the top left and confidence
        1.0, in PDFium's order; ``[]`` when the page draws no text, or when its text does
        not map to Unicode (more than 5 % of its characters), so that OCR reads it.
    """
    if not _visible_text(pdf_page):
        return []
    textpage = pdf_page.get_textpage()
    runs: list[_Run] = []
    run: _Run | None = None
    spaced = False  # a space since the run's last character
    characters = unreadable = 0
    try:
        for index in range(textpage.count_chars()):
            char = chr(pdfium_c.FPDFText_GetUnicode(textpage.raw, index))
            if char in "\r\n":
                run = None
                continue
            if char.isspace() or pdfium_c.FPDFText_IsGenerated(textpage.raw, index) == 1:
                spaced = True
                continue
            characters += 1
            if _unreadable(char) or pdfium_c.FPDFText_HasUnicodeMapError(textpage.raw, index) == 1:
                unreadable += 1
            box = textpage.get_charbox(index)
            if run is not None and run.takes(box):
                run.add(" " + char if spaced else char, box)
            else:
                run = _Run(char, box)
                runs.append(run)
            spaced = False
    finally:
        textpage.close()
    if not characters or unreadable > _MAX_UNREADABLE * characters:
        return []
    height = pdf_page.get_height()
    return [run.line(height, scale) for run in runs]
