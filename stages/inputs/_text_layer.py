"""
The text a born-digital PDF page carries: its lines read from the PDF instead of by OCR.

A PDF written by a program (an e-receipt, an exported invoice) holds its text exactly; OCR
of its rendering can only lose some. A scanned PDF holds a picture of the text, sometimes
with an invisible OCR layer a scanner added, whose quality is unknown: such pages are
OCR-ed as before.

Between the two, a page may draw text and pictures: an e-receipt with the shop's name
in its logo, an invoice written over a letterhead image. The text the page shows is taken
from the PDF; each picture is left to OCR (:func:`~stages.ocr.ocr_page` reads it and
keeps what the PDF's text does not already give).
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pypdfium2.raw as pdfium_c

from stages._page import Line, centre_in

from ._drawing import Box, Drawing, union

if TYPE_CHECKING:
    import pypdfium2 as pdfium

__all__ = ["TextLayer", "text_layer"]

#: Above this share of unreadable characters (no Unicode mapping in the font: U+FFFD,
#: control or private-use code points; or turned, not running left to right along the
#: page, which are left out of the lines), the text layer is not used: OCR reads the page.
_MAX_UNREADABLE = 0.05


@dataclass(frozen=True)
class TextLayer:
    """
    What a PDF page says of its own text.

    Attributes:
        lines: the lines the page shows, boxed in pixels from the page's top left; empty
            when OCR should read the whole page.
        pictures: ``[x1, y1, x2, y2]`` in the same pixels: the areas OCR reads, since the
            PDF has no text for them (pictures large enough to hold text, sideways text).
    """

    lines: list[Line] = field(default_factory=list)
    pictures: list[list[float]] = field(default_factory=list)


def _level(angle: float) -> bool:
    """Whether a glyph turned by ``angle`` (radians, counter-clockwise) runs left to
    right along the page, to a few degrees; `_Run` puts only such glyphs in lines."""
    return abs(math.remainder(angle, math.tau)) < 0.05


def _unreadable(char: str) -> bool:
    """No Unicode for the glyph: U+FFFD, a control, private-use or unpaired surrogate."""
    return char == "\ufffd" or unicodedata.category(char) in ("Cc", "Co", "Cs")


class _Run:
    """Characters on one line of the PDF's text with no wide gap: one `Line`."""

    def __init__(self, char: str, box: Box) -> None:
        self.text = char
        self.left, self.bottom, self.right, self.top = box

    def takes(self, box: Box) -> bool:
        """Whether a character boxed so continues the run: level with it (a comma
        reaches below the letters, so any overlap counts), and no more than a height
        (about two characters) to its right."""
        left, bottom, _, top = box
        height = max(self.top - self.bottom, top - bottom)
        level = min(top, self.top) > max(bottom, self.bottom)
        return level and -height <= left - self.right <= height

    def add(self, char: str, box: Box) -> None:
        self.text += char
        self.left, self.bottom = min(self.left, box[0]), min(self.bottom, box[1])
        self.right, self.top = max(self.right, box[2]), max(self.top, box[3])

    def line(self, frame: Box, scale: float) -> Line:
        return Line(
            text=" ".join(self.text.split()),
            box=_pixels((self.left, self.bottom, self.right, self.top), frame, scale),
            confidence=1.0,
        )


def _pixels(box: Box, frame: Box, scale: float) -> list[float]:
    """A box in points (left, bottom, right, top) as ``[x1, y1, x2, y2]`` in pixels from
    the top left of ``frame``, the page's crop box, unrotated."""
    left, bottom, right, top = box
    corner = (left - frame[0], frame[3] - top, right - frame[0], frame[3] - bottom)
    return [round(value * scale, 1) for value in corner]


def _shown(pdf_page: pdfium.PdfPage) -> Box:
    """The part of the page PDFium renders: the crop box within the media box, its
    corners in order (a PDF may give them in any order)."""
    rect = pdfium_c.FS_RECTF()
    if not pdfium_c.FPDF_GetPageBoundingBox(pdf_page.raw, rect):
        left, bottom, right, top = pdf_page.get_cropbox()
        return (float(left), float(bottom), float(right), float(top))
    return (float(rect.left), float(rect.bottom), float(rect.right), float(rect.top))


def text_layer(pdf_page: pdfium.PdfPage, scale: float) -> TextLayer:
    """
    The text a PDF page shows, as lines, and the pictures OCR must read.

    A line is the characters of one line of text PDFium finds, cut where a gap wider than
    the text's height (about two characters) separates them, as an OCR engine's line
    boxes are. A character that does not show is left out (`Drawing.hidden`): one outside
    the crop box, one drawn invisible (a scanner's OCR layer), or one a picture or an
    opaque box drawn after it covers (text under a scan, a redaction). Text drawn over a
    picture (an invoice on a letterhead image) shows, and is kept.

    Args:
        pdf_page: an open page (the caller holds the PDFium lock).
        scale: pixels per point of the page's image, for the boxes.

    Returns:
        Lines with boxes ``[x1, y1, x2, y2]`` in pixels from the top left of the page's
        crop box, as the page is drawn before its own rotation (``/Rotate``), and
        confidence 1.0, in PDFium's order; with the boxes of the pictures (at least
        `MIN_PICTURE_SIDE` on both sides, none inside another) and of any text set
        sideways, for OCR to read. Characters that do not map to Unicode are left out.
        No lines (and no pictures) when the page shows no text (a scan), or when more
        than 5 % of its characters do not map to Unicode or do not run left to right
        along the page (a table set sideways), so that OCR reads the page.
    """
    drawing = Drawing(pdf_page)
    if not drawing.texts:
        return TextLayer()
    frame = _shown(pdf_page)
    textpage = pdf_page.get_textpage()
    runs: list[_Run] = []
    run: _Run | None = None
    spaced = False  # a space since the run's last character
    characters = unreadable = 0
    count = textpage.count_chars()
    index = -1
    try:
        while (index := index + 1) < count:
            code = pdfium_c.FPDFText_GetUnicode(textpage.raw, index)
            box = textpage.get_charbox(index)
            if 0xD800 <= code < 0xDC00 and index + 1 < count:
                # PDFium gives a character past U+FFFF (an emoji) as two UTF-16 halves.
                low = pdfium_c.FPDFText_GetUnicode(textpage.raw, index + 1)
                if 0xDC00 <= low < 0xE000:
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    box = union(box, textpage.get_charbox(index + 1))
                    index += 1
            char = chr(code)
            if pdfium_c.FPDFText_IsHyphen(textpage.raw, index) == 1:
                # PDFium reports a hyphen that ends a line as U+0002 (a word it thinks
                # was broken there); the page prints "-", as OCR would read.
                char = "-"
            if char in "\r\n":
                run = None
                continue
            if char.isspace() or pdfium_c.FPDFText_IsGenerated(textpage.raw, index) == 1:
                spaced = True
                continue
            obj = pdfium_c.FPDFText_GetTextObject(textpage.raw, index)
            if not centre_in(box, frame) or drawing.hidden(obj, box):
                run = None
                continue
            characters += 1
            if not _level(pdfium_c.FPDFText_GetCharAngle(textpage.raw, index)):
                unreadable += 1  # turned text (a stamp, a sideways table): OCR reads it
                drawing.turn(obj, box)
                continue
            if _unreadable(char) or pdfium_c.FPDFText_HasUnicodeMapError(textpage.raw, index) == 1:
                unreadable += 1  # left out: no text to give for it
                continue
            if run is not None and run.takes(box):
                run.add(" " + char if spaced else char, box)
            else:
                run = _Run(char, box)
                runs.append(run)
            spaced = False
    finally:
        textpage.close()
    if not characters or unreadable > _MAX_UNREADABLE * characters:
        return TextLayer()
    return TextLayer(
        lines=[run.line(frame, scale) for run in runs],
        pictures=[_pixels(area, frame, scale) for area in drawing.to_read()],
    )
