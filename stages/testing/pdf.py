"""
Born-digital PDF pages for tests and benchmarks: text drawn with a standard font, and
pictures, as a program that writes e-receipts would, using PDFium's own page-object API.
"""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

    import numpy as np
    import numpy.typing as npt

__all__ = ["pdf_file", "pdf_stream", "raw_pdf", "text_pdf"]


def text_pdf(
    target: Path,
    lines: Iterable[tuple[str, float, float, float]],
    width: float,
    height: float,
    *,
    invisible: bool = False,
    font: str = "Helvetica",
    pictures: Iterable[tuple[npt.NDArray[np.uint8], float, float, float]] = (),
    pictures_on_top: bool = False,
) -> Path:
    """
    Write a one-page PDF that draws text.

    Args:
        target: the file to write.
        lines: ``(text, x, top, size)`` in points from the page's top left: each text is
            drawn in ``font`` at ``size`` points, its glyphs' tops near ``top``.
        width: the page's width in points.
        height: the page's height in points.
        invisible: draw the text invisibly (render mode 3), as a scanner's OCR layer is.
        font: one of the 14 standard PDF fonts.
        pictures: ``(pixels, x, top, width)`` in points from the page's top left: each
            gray or RGB image is drawn ``width`` points wide at its own aspect, under the
            text.
        pictures_on_top: draw the pictures after the text, covering it (text under a scan).

    Returns:
        ``target``.
    """
    document = pdfium.PdfDocument.new()
    try:
        page = document.new_page(width, height)
        if not pictures_on_top:
            _draw_pictures(document, page, pictures, height)
        for text, x, top, size in lines:
            obj = pdfium_c.FPDFPageObj_NewTextObj(document.raw, font.encode(), ctypes.c_float(size))
            data = (text + "\0").encode("utf-16-le")
            buffer = ctypes.create_string_buffer(data, len(data))
            pdfium_c.FPDFText_SetText(obj, ctypes.cast(buffer, ctypes.POINTER(pdfium_c.FPDF_WCHAR)))
            if invisible:
                pdfium_c.FPDFTextObj_SetTextRenderMode(obj, pdfium_c.FPDF_TEXTRENDERMODE_INVISIBLE)
            # The baseline sits about 0.8 of the size below the glyphs' tops.
            pdfium_c.FPDFPageObj_Transform(obj, 1, 0, 0, 1, x, height - top - 0.8 * size)
            pdfium_c.FPDFPage_InsertObject(page.raw, obj)
        if pictures_on_top:
            _draw_pictures(document, page, pictures, height)
        if not pdfium_c.FPDFPage_GenerateContent(page.raw):
            raise RuntimeError("PDFium could not write the page's content")
        page.close()
        document.save(target)
    finally:
        document.close()
    return target


def _draw_pictures(
    document: pdfium.PdfDocument,
    page: pdfium.PdfPage,
    pictures: Iterable[tuple[npt.NDArray[np.uint8], float, float, float]],
    height: float,
) -> None:
    for pixels, x, top, wide in pictures:
        image = pdfium.PdfImage.new(document)
        bitmap = pdfium.PdfBitmap.from_pil(Image.fromarray(pixels))
        image.set_bitmap(bitmap)
        bitmap.close()
        high = wide * pixels.shape[0] / pixels.shape[1]
        image.set_matrix(pdfium.PdfMatrix().scale(wide, high).translate(x, height - top - high))
        page.insert_obj(image)


def raw_pdf(
    target: Path,
    content: bytes,
    *,
    resources: str = "",
    objects: Iterable[bytes] = (),
    media: tuple[float, float, float, float] = (0, 0, 300, 300),
    crop: tuple[float, float, float, float] | None = None,
) -> Path:
    """
    Write a one-page PDF from its content stream, as a producer might that
    :func:`text_pdf` cannot imitate (forms, a crop box, fonts with a ToUnicode map).

    Args:
        target: the file to write.
        content: the page's content stream. Font ``/F1`` is Helvetica.
        resources: more entries of the page's ``/Resources`` dictionary, e.g.
            ``"/XObject << /Im1 5 0 R >>"``; objects are numbered from 5 in the order of
            ``objects`` (1 catalog, 2 pages, 3 page, 4 content).
        objects: the bodies of objects 5, 6, ... (see :func:`pdf_stream`).
        media: the media box.
        crop: the crop box, if any.

    Returns:
        ``target``.
    """
    page = f"<< /Type /Page /Parent 2 0 R /MediaBox [{' '.join(map(str, media))}]"
    if crop is not None:
        page += f" /CropBox [{' '.join(map(str, crop))}]"
    font = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    page += f" /Resources << /Font << /F1 {font} >> {resources} >> /Contents 4 0 R >>"
    bodies = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        page.encode(),
        pdf_stream(b"", content),
        *objects,
    ]
    return pdf_file(target, bodies)


def pdf_file(target: Path, objects: Sequence[bytes], *, trailer: bytes = b"") -> Path:
    """
    Write a PDF file of numbered objects, with its cross-reference table.

    Args:
        target: the file to write.
        objects: the bodies of objects 1, 2, ...; object 1 is the catalog.
        trailer: more entries of the trailer dictionary (``/Encrypt``, ``/ID``).

    Returns:
        ``target``.
    """
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R %s >>\n" % (len(objects) + 1, trailer)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    target.write_bytes(bytes(out))
    return target


def pdf_stream(entries: bytes, data: bytes) -> bytes:
    """A stream object's body: its dictionary's ``entries`` and ``data``."""
    return b"<< %s /Length %d >>\nstream\n%s\nendstream" % (entries, len(data), data)
