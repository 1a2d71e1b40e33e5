"""
The OCR engine protocol and the engine-independent parts of the OCR stage.

An engine turns pixels into :class:`~stages._page.Line` objects; :func:`ocr_page` runs one
engine on one :class:`~stages._page.Page`, maps the boxes back to original page pixels and
drops the pixels.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

from asyncpipe._exceptions import StageError
from stages._page import Line, Page

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["OcrEngine", "ocr_page", "polygon_to_box", "reading_order"]


class OcrEngine(Protocol):
    """
    **Protocol:** an OCR engine that one worker thread owns.

    Engines are not shared between threads: the pipeline builds one per worker with a
    factory (see :func:`stages.ocr.make_engine`) and closes it when the worker ends.
    """

    name: str

    def recognize(self, image: npt.NDArray[np.uint8]) -> list[Line]:
        """
        Find and read the text lines of one image.

        Args:
            image: uint8 pixels, gray ``(h, w)`` or BGR ``(h, w, 3)``.

        Returns:
            One :class:`Line` per detected text line, in reading order (see
            :func:`reading_order`), with boxes ``[x1, y1, x2, y2]`` in *image* pixels.

        Raises:
            StageError: the engine failed on this image.
        """
        ...

    def close(self) -> None:
        """
        Release the engine's models and sessions; the engine cannot be used afterwards.
        """
        ...


def polygon_to_box(points: Iterable[Sequence[float]]) -> list[float]:
    """
    The axis-aligned box ``[x1, y1, x2, y2]`` that encloses a polygon.

    Args:
        points: the polygon's corner points ``(x, y)`` (an engine's 4-point quad).

    Returns:
        ``[min x, min y, max x, max y]`` as floats.
    """
    xs: list[float] = []
    ys: list[float] = []
    for point in points:
        xs.append(float(point[0]))
        ys.append(float(point[1]))
    return [min(xs), min(ys), max(xs), max(ys)]


def reading_order(lines: Iterable[Line]) -> list[Line]:
    """
    Sort lines top-to-bottom into rows, and each row left-to-right.

    A line joins the current row when its vertical centre lies inside the row's vertical
    extent (receipts put a label and its amount side by side, often a few pixels apart in
    height). Fragments on one row stay separate lines, so each keeps its own box; they are
    not merged.

    Args:
        lines: lines with boxes in one coordinate system.

    Returns:
        A new list in reading order.
    """
    by_top = sorted(lines, key=lambda line: ((line.box[1] + line.box[3]) / 2, line.box[0]))
    rows: list[list[Line]] = []
    row_top = row_bottom = 0.0
    for line in by_top:
        centre = (line.box[1] + line.box[3]) / 2
        if rows and row_top <= centre <= row_bottom:
            rows[-1].append(line)
        else:
            rows.append([line])
            row_top, row_bottom = line.box[1], line.box[3]
    return [line for row in rows for line in sorted(row, key=lambda line: line.box[0])]


def ocr_page(engine: OcrEngine, page: Page) -> Page:
    """
    Run OCR on a preprocessed page.

    A PDF page whose lines the load stage took from its text layer keeps them, put in
    reading order: the engine is not run, and ``page.notes["ocr"]["engine"]`` is
    ``"pdf text"``.

    Sets ``page.lines`` (boxes divided by ``page.scale`` and moved by the corner of a crop
    to the paper, so they are in the pixels of the page as loaded; on a page the engine
    turned upright, in that turned page), ``page.text`` (the line texts joined with ``"\\n"``) and
    ``page.notes["ocr"]`` (engine name, line count, mean confidence, seconds), and drops
    ``page.image``.

    Args:
        engine: the calling worker's own engine.
        page: a page that still holds its pixels.

    Returns:
        The same page object, updated.

    Raises:
        StageError: the page has no pixels, or the engine failed.
    """
    if page.image is None:
        raise StageError(f"{page.ref.id}: no image to OCR (was it loaded, or OCRed already?)")
    if page.notes.get("load", {}).get("text_layer"):
        # A PDF page that carries its own text: the load stage read its lines exactly, in
        # the order the PDF draws them, which a program may choose freely.
        page.lines = reading_order(page.lines)
        page.text = "\n".join(line.text for line in page.lines)
        page.image = None
        page.notes["ocr"] = {"engine": "pdf text", "lines": len(page.lines), "seconds": 0.0}
        return page
    started = time.perf_counter()
    lines = engine.recognize(page.image)
    seconds = time.perf_counter() - started
    scale = page.scale if page.scale > 0 else 1.0
    # A page cropped to its paper: put the crop's corner back (see `preprocess`).
    crop = page.notes.get("preprocess", {}).get("crop") or (0.0, 0.0)
    page.lines = [
        Line(
            text=line.text,
            box=[round(value / scale + crop[index % 2], 1) for index, value in enumerate(line.box)],
            confidence=line.confidence,
        )
        for line in lines
    ]
    page.text = "\n".join(line.text for line in page.lines)
    page.image = None
    confidences = [line.confidence for line in page.lines]
    page.notes["ocr"] = {
        "engine": engine.name,
        "lines": len(page.lines),
        "mean_confidence": round(sum(confidences) / len(confidences), 4) if confidences else None,
        "seconds": round(seconds, 3),
    }
    turns = getattr(engine, "last_turns", 0)
    if turns:
        # The engine read the page turned upright; the boxes are in that turned page.
        page.notes["ocr"]["turns"] = turns
    return page
