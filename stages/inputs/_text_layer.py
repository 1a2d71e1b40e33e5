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

import ctypes
import math
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pypdfium2.raw as pdfium_c

from stages._page import Line

if TYPE_CHECKING:
    import pypdfium2 as pdfium

__all__ = ["MIN_PICTURE_SIDE", "TextLayer", "page_bounds", "text_layer"]

#: A box in points: left, bottom, right, top (PDF space, y up).
_Box = tuple[float, float, float, float]

#: Above this share of unreadable characters (no Unicode mapping in the font: U+FFFD,
#: control or private-use code points; or turned, not running left to right along the
#: page, which are left out of the lines), the text layer is not used: OCR reads the page.
_MAX_UNREADABLE = 0.05

#: A picture smaller than this on either side, in points (about 3 mm), holds no text OCR
#: could read: a rule, a bullet, an icon. Larger ones are read by OCR.
MIN_PICTURE_SIDE = 8.0


@dataclass(frozen=True)
class TextLayer:
    """
    What a PDF page says of its own text.

    Attributes:
        lines: the lines the PDF draws visibly outside every picture, boxed in pixels
            from the page's top left; empty when OCR should read the whole page.
        pictures: ``[x1, y1, x2, y2]`` in the same pixels, one per picture large enough
            to hold text: the regions OCR reads, since the PDF has no text for them.
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


def _union(one: _Box, other: _Box) -> _Box:
    return (
        min(one[0], other[0]),
        min(one[1], other[1]),
        max(one[2], other[2]),
        max(one[3], other[3]),
    )


class _Run:
    """Characters on one line of the PDF's text with no wide gap: one `Line`."""

    def __init__(self, char: str, box: _Box) -> None:
        self.text = char
        self.left, self.bottom, self.right, self.top = box

    def takes(self, box: _Box) -> bool:
        """Whether a character boxed so continues the run: level with it (a comma
        reaches below the letters, so any overlap counts), and no more than a height
        (about two characters) to its right."""
        left, bottom, _, top = box
        height = max(self.top - self.bottom, top - bottom)
        level = min(top, self.top) > max(bottom, self.bottom)
        return level and -height <= left - self.right <= height

    def add(self, char: str, box: _Box) -> None:
        self.text += char
        self.left, self.bottom = min(self.left, box[0]), min(self.bottom, box[1])
        self.right, self.top = max(self.right, box[2]), max(self.top, box[3])

    def line(self, frame: _Box, scale: float) -> Line:
        return Line(
            text=" ".join(self.text.split()),
            box=_pixels((self.left, self.bottom, self.right, self.top), frame, scale),
            confidence=1.0,
        )


def _pixels(box: _Box, frame: _Box, scale: float) -> list[float]:
    """A box in points (left, bottom, right, top) as ``[x1, y1, x2, y2]`` in pixels from
    the top left of ``frame``, the page's crop box, unrotated."""
    left, bottom, right, top = box
    corner = (left - frame[0], frame[3] - top, right - frame[0], frame[3] - bottom)
    return [round(value * scale, 1) for value in corner]


def page_bounds(obj: pdfium.PdfObject) -> _Box:
    """
    An object's bounds ``(left, bottom, right, top)`` on the page. PDFium gives the
    bounds of an object inside a form (pdfTeX's included graphics, a stamp) in the form's
    own space: each enclosing form's matrix places it on the page.
    """
    left, bottom, right, top = obj.get_bounds()
    corners = [(left, bottom), (left, top), (right, bottom), (right, top)]
    form = obj.container
    while form is not None:
        matrix = form.get_matrix()
        corners = [matrix.on_point(x, y) for x, y in corners]
        form = form.container
    xs, ys = [x for x, _ in corners], [y for _, y in corners]
    return (min(xs), min(ys), max(xs), max(ys))


#: Text render modes that paint nothing: invisible, and a clip path only.
_UNPAINTED = (pdfium_c.FPDF_TEXTRENDERMODE_INVISIBLE, pdfium_c.FPDF_TEXTRENDERMODE_CLIP)


def _opaque_rectangle(path: Any) -> bool:
    """Whether a path object is one rectangle filled with an opaque colour: what covers
    text (a redaction box). A grid or a chart is more than one rectangle, a highlight is
    translucent, and either leaves the text under it showing."""
    fill, stroke = ctypes.c_int(), ctypes.c_int()
    if not pdfium_c.FPDFPath_GetDrawMode(path, ctypes.byref(fill), ctypes.byref(stroke)):
        return False
    if fill.value == pdfium_c.FPDF_FILLMODE_NONE or pdfium_c.FPDFPath_CountSegments(path) > 5:
        return False
    red, green, blue, alpha = (ctypes.c_uint() for _ in range(4))
    colour = [ctypes.byref(value) for value in (red, green, blue, alpha)]
    return bool(pdfium_c.FPDFPageObj_GetFillColor(path, *colour)) and alpha.value == 255


def _address(raw: Any) -> int:
    """A page object's identity: the address PDFium gave it."""
    return ctypes.cast(raw, ctypes.c_void_p).value or 0


class _Drawing:
    """
    The page's text objects and pictures in the order the page draws them: what is drawn
    later covers what was drawn before it.
    """

    def __init__(self, pdf_page: pdfium.PdfPage) -> None:
        #: Place in the drawing order of each text object, by `_address`.
        self.texts: dict[int, int] = {}
        #: ``(place, (left, bottom, right, top))`` of each picture large enough to hold text.
        self.pictures: list[tuple[int, _Box]] = []
        #: ``(place, bounds)`` of each opaque filled rectangle: text under one is hidden
        #: (a redaction), and there is nothing in it to read.
        self.covers: list[tuple[int, _Box]] = []
        #: Where the text objects with turned glyphs lie, by `_address`: OCR reads them.
        self.turned: dict[int, _Box] = {}
        kinds = (
            pdfium_c.FPDF_PAGEOBJ_TEXT,
            pdfium_c.FPDF_PAGEOBJ_IMAGE,
            pdfium_c.FPDF_PAGEOBJ_PATH,
        )
        for place, obj in enumerate(pdf_page.get_objects(filter=kinds)):
            if obj.type == pdfium_c.FPDF_PAGEOBJ_TEXT:
                self.texts[_address(obj.raw)] = place
            elif obj.type == pdfium_c.FPDF_PAGEOBJ_PATH:
                if _opaque_rectangle(obj.raw):
                    self.covers.append((place, page_bounds(obj)))
            else:
                left, bottom, right, top = bounds = page_bounds(obj)
                if min(right - left, top - bottom) >= MIN_PICTURE_SIDE:
                    self.pictures.append((place, bounds))

    def turn(self, obj: Any, box: _Box) -> None:
        """A glyph of ``obj`` that does not run along the page: its area goes to OCR."""
        key = _address(obj)
        self.turned[key] = _union(self.turned[key], box) if key in self.turned else box

    def hidden(self, obj: Any, box: _Box) -> bool:
        """Whether a character of the text object ``obj`` does not show: drawn invisible
        (a scanner's OCR layer) or only as a clip, or under a picture or an opaque
        rectangle drawn after it."""
        if pdfium_c.FPDFTextObj_GetTextRenderMode(obj) in _UNPAINTED:
            return True
        # A character in an object the walk did not find counts as on top.
        place = self.texts.get(_address(obj), len(self.texts) + len(self.pictures))
        return any(
            later > place and _inside(box, area) for later, area in (*self.pictures, *self.covers)
        )

    def to_read(self) -> list[_Box]:
        """The areas OCR should read: the pictures, and the turned text (with a margin:
        its glyph boxes are tight); each one not inside another (that one's cut holds
        it)."""
        areas = [area for _, area in self.pictures]
        areas += [(box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2) for box in self.turned.values()]
        return [
            area
            for index, area in enumerate(areas)
            if not any(
                other != index and _contains(outer, area) and (outer != area or other < index)
                for other, outer in enumerate(areas)
            )
        ]


def _shown(pdf_page: pdfium.PdfPage) -> _Box:
    """The part of the page PDFium renders: the crop box within the media box, its
    corners in order (a PDF may give them in any order)."""
    rect = pdfium_c.FS_RECTF()
    if not pdfium_c.FPDF_GetPageBoundingBox(pdf_page.raw, rect):
        left, bottom, right, top = pdf_page.get_cropbox()
        return (float(left), float(bottom), float(right), float(top))
    return (float(rect.left), float(rect.bottom), float(rect.right), float(rect.top))


def _inside(box: _Box, area: _Box) -> bool:
    """Whether the centre of ``box`` lies in ``area`` (both left, bottom, right, top)."""
    x, y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return area[0] <= x <= area[2] and area[1] <= y <= area[3]


def _contains(outer: _Box, inner: _Box) -> bool:
    return (
        outer[0] <= inner[0]
        and outer[1] <= inner[1]
        and inner[2] <= outer[2]
        and inner[3] <= outer[3]
    )


def text_layer(pdf_page: pdfium.PdfPage, scale: float) -> TextLayer:
    """
    The text a PDF page shows, as lines, and the pictures OCR must read.

    A line is the characters of one line of text PDFium finds, cut where a gap wider than
    the text's height (about two characters) separates them, as an OCR engine's line
    boxes are. A character that does not show is left out: one outside the crop box, one
    drawn invisible (a scanner's OCR layer), or one a picture drawn after it covers (text
    under a scan).
    Text drawn over a picture (an invoice on a letterhead image) shows, and is kept.

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
    drawing = _Drawing(pdf_page)
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
                    box = _union(box, textpage.get_charbox(index + 1))
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
            if not _inside(box, frame) or drawing.hidden(obj, box):
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
