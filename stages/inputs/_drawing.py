"""
What a PDF page draws, in the order it draws it: which text shows, and which pictures
hold text the PDF does not give.
"""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any

import pypdfium2.raw as pdfium_c

from stages._page import centre_in

if TYPE_CHECKING:
    import pypdfium2 as pdfium

__all__ = ["MIN_PICTURE_SIDE", "Box", "Drawing", "page_bounds", "union"]

#: A box in points: left, bottom, right, top (PDF space, y up).
Box = tuple[float, float, float, float]

#: A picture smaller than this on either side, in points (about 3 mm), holds no text OCR
#: could read: a rule, a bullet, an icon. Larger ones are read by OCR.
MIN_PICTURE_SIDE = 8.0


def page_bounds(obj: pdfium.PdfObject) -> Box:
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


class Drawing:
    """
    The page's text objects and pictures in the order the page draws them: what is drawn
    later covers what was drawn before it.
    """

    def __init__(self, pdf_page: pdfium.PdfPage) -> None:
        #: Place in the drawing order of each text object, by `_address`.
        self.texts: dict[int, int] = {}
        #: ``(place, (left, bottom, right, top))`` of each picture large enough to hold text.
        self.pictures: list[tuple[int, Box]] = []
        #: ``(place, bounds)`` of each opaque filled rectangle: text under one is hidden
        #: (a redaction), and there is nothing in it to read.
        self.covers: list[tuple[int, Box]] = []
        #: Where the text objects with turned glyphs lie, by `_address`: OCR reads them.
        self.turned: dict[int, Box] = {}
        kinds = (
            pdfium_c.FPDF_PAGEOBJ_TEXT,
            pdfium_c.FPDF_PAGEOBJ_IMAGE,
            pdfium_c.FPDF_PAGEOBJ_PATH,
        )
        place = -1
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
        #: Past the last place: where a text object the walk did not find counts as drawn.
        self.top = place + 1

    def turn(self, obj: Any, box: Box) -> None:
        """A glyph of ``obj`` that does not run along the page: its area goes to OCR."""
        key = _address(obj)
        self.turned[key] = union(self.turned[key], box) if key in self.turned else box

    def hidden(self, obj: Any, box: Box) -> bool:
        """Whether a character of the text object ``obj`` does not show: drawn invisible
        (a scanner's OCR layer) or only as a clip, or under a picture or an opaque
        rectangle drawn after it."""
        if pdfium_c.FPDFTextObj_GetTextRenderMode(obj) in _UNPAINTED:
            return True
        place = self.texts.get(_address(obj), self.top)
        return any(
            later > place and centre_in(box, area) for later, area in (*self.pictures, *self.covers)
        )

    def to_read(self) -> list[Box]:
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


def _contains(outer: Box, inner: Box) -> bool:
    return (
        outer[0] <= inner[0]
        and outer[1] <= inner[1]
        and inner[2] <= outer[2]
        and inner[3] <= outer[3]
    )


def union(one: Box, other: Box) -> Box:
    return (
        min(one[0], other[0]),
        min(one[1], other[1]),
        max(one[2], other[2]),
        max(one[3], other[3]),
    )
