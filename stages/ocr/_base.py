"""
The OCR engine protocol and the engine-independent parts of the OCR stage.

An engine turns pixels into :class:`~stages._page.Line` objects; :func:`ocr_page` runs one
engine on one :class:`~stages._page.Page`, maps the boxes back to original page pixels and
drops the pixels.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

import numpy as np

from asyncpipe import StageError
from stages._page import Line, Page, centre_in
from stages._rows import row_heights

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["OcrEngine", "four_corners", "ocr_page", "polygon_to_box", "reading_order"]


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


def four_corners(points: Sequence[Sequence[float]]) -> list[list[float]] | None:
    """
    A detector's box as `Line.quad`: its four corners ``[[x, y], ...]`` to a tenth of a
    pixel, or ``None`` when it has not four (a polygon detector's outline).

    Args:
        points: the box's corners ``(x, y)``, PP-OCR's order (top-left first, clockwise).
    """
    if len(points) != 4:
        return None
    return [[round(float(point[0]), 1), round(float(point[1]), 1)] for point in points]


def reading_order(lines: Iterable[Line]) -> list[Line]:
    """
    Sort lines top-to-bottom into rows, and each row left-to-right.

    A line joins the current row when its vertical centre lies inside the row's vertical
    extent (receipts put a label and its amount side by side, often a few pixels apart in
    height). Fragments on one row stay separate lines, so each keeps its own box; they are
    not merged. When every line has its quad, the centres and extents are those of
    `stages._rows.row_heights`: a curled page's bend taken out, so the two ends of a
    bowed row stay one row.

    Args:
        lines: lines with boxes in one coordinate system.

    Returns:
        A new list in reading order.
    """
    given = list(lines)
    heights = row_heights(given)
    by_top = sorted(zip(given, heights, strict=True), key=lambda pair: (pair[1][0], pair[0].box[0]))
    rows: list[list[Line]] = []
    row_top = row_bottom = 0.0
    for line, (centre, top, bottom) in by_top:
        if rows and row_top <= centre <= row_bottom:
            rows[-1].append(line)
        else:
            rows.append([line])
            row_top, row_bottom = top, bottom
    return [line for row in rows for line in sorted(row, key=lambda line: line.box[0])]


#: Pixels of the page kept around a picture when OCR reads it: the detector needs a
#: margin to find text that touches the picture's edge.
_PICTURE_MARGIN = 8


def _to_page(
    lines: Iterable[Line], scale: float, crop: Sequence[float], offset: tuple[int, int] = (0, 0)
) -> list[Line]:
    """Lines boxed in the pixels OCR read (a part of the image from ``offset`` on), in the
    pixels of the page as loaded: divided by the preprocess scale, the crop's corner put
    back."""
    return [
        replace(
            line,
            box=[
                round((value + offset[index % 2]) / scale + crop[index % 2], 1)
                for index, value in enumerate(line.box)
            ],
            quad=None
            if line.quad is None
            else [
                [
                    round((x + offset[0]) / scale + crop[0], 1),
                    round((y + offset[1]) / scale + crop[1], 1),
                ]
                for x, y in line.quad
            ],
        )
        for line in lines
    ]


def _in_image(
    box: Sequence[float], scale: float, crop: Sequence[float], offset: tuple[int, int] = (0, 0)
) -> list[float]:
    """A box in the pixels of the page as loaded, in the pixels OCR reads (a part of the
    image from ``offset`` on): the inverse of `_to_page`."""
    return [(value - crop[i % 2]) * scale - offset[i % 2] for i, value in enumerate(box)]


def _read_pictures(
    engine: OcrEngine, page: Page, image: npt.NDArray[np.uint8], scale: float
) -> list[Line]:
    """
    OCR of the pictures of a page whose text the PDF gave (``notes["load"]["pictures"]``,
    in the pixels of the page as loaded): each is cut from the preprocessed image with a
    margin and read; the lines whose centre falls in the picture are kept, unless lines
    already there hold them (`_given`): the PDF's (text drawn across the picture's edge),
    or ones read from another picture.

    The PDF's own lines are painted over first (`_on_canvas`), so OCR does not recognise
    them again. A cut is set on a canvas of its median colour as wide as the page's
    shorter side, so the engine sees its text at the scale it would on the whole page.
    Measured: rapidocr's detector enlarges an image to 736 px on its shorter side, and a
    60 px logo cut alone was read enlarged 12 times, slower than the whole page and worse.
    When the canvases would hold more pixels than the page (many small pictures), the
    page is read once instead, its lines painted over the same way.

    A picture the load stage rendered apart (``page.picture_images``: a large page shrunk
    its small fine scan) is read from that render instead, on a canvas of the same side.
    """
    crop = page.notes.get("preprocess", {}).get("crop") or (0.0, 0.0)
    height, width = image.shape[:2]
    side = min(height, width)
    pictures = page.notes["load"]["pictures"]
    apart = page.picture_images
    found: list[Line] = []
    for fine in apart:
        lines = engine.recognize(
            _on_canvas(fine.image, side, page.lines, fine.scale, fine.box[:2], (0, 0))
        )
        _keep(engine, lines, fine.scale, fine.box[:2], (0, 0), fine.image.shape, page, found)
    cuts = []
    for picture in pictures:
        if any(centre_in(picture, fine.box) for fine in apart):
            continue
        x0, y0, x1, y1 = _in_image(picture, scale, crop)
        left, top = max(0, int(x0) - _PICTURE_MARGIN), max(0, int(y0) - _PICTURE_MARGIN)
        right = min(width, int(x1) + _PICTURE_MARGIN)
        bottom = min(height, int(y1) + _PICTURE_MARGIN)
        if right > left and bottom > top:  # else cut away with the page's margins
            cuts.append((left, top, right, bottom))
    canvases = sum(max(side, x1 - x0) * max(side, y1 - y0) for x0, y0, x1, y1 in cuts)
    if canvases > height * width:
        cuts = [(0, 0, width, height)]
    for left, top, right, bottom in cuts:
        lines = engine.recognize(
            _on_canvas(image[top:bottom, left:right], side, page.lines, scale, crop, (left, top))
        )
        shape = (bottom - top, right - left)
        _keep(engine, lines, scale, crop, (left, top), shape, page, found)
    return found


def _keep(
    engine: OcrEngine,
    lines: list[Line],
    scale: float,
    crop: Sequence[float],
    offset: tuple[int, int],
    shape: Sequence[int],
    page: Page,
    found: list[Line],
) -> None:
    """Add to ``found`` the lines OCR read in a cut of ``shape`` (moved to the page by
    ``scale``, ``crop`` and ``offset``, as `_to_page` does) that fall in a picture and
    that no line already there holds (`_given`)."""
    if getattr(engine, "last_turns", 0) and lines:
        # Read turned (sideways text, a stamp): the boxes are in the turned cut, not in
        # the page. Its text, in its own reading order, stands as one line for the
        # picture.
        lines = [
            Line(
                " ".join(line.text for line in reading_order(lines)),
                [0.0, 0.0, float(shape[1]), float(shape[0])],
                min(line.confidence for line in lines),
            )
        ]
    pictures = page.notes["load"]["pictures"]
    for line in _to_page(lines, scale, crop, offset):
        if any(centre_in(line.box, picture) for picture in pictures) and not _given(
            line.box, [given.box for given in (*page.lines, *found)]
        ):
            found.append(line)


def _on_canvas(
    cut: npt.NDArray[np.uint8],
    side: int,
    lines: Sequence[Line],
    scale: float,
    crop: Sequence[float],
    offset: tuple[int, int],
) -> npt.NDArray[np.uint8]:
    """
    ``cut`` (the image from ``offset`` on) on a canvas of its median colour, at least
    ``side`` on both sides, with the lines the PDF gave painted over in that colour: a
    picture under the text (a letterhead) is then read for what only it holds. Each
    line's box grows by a quarter of its height, since glyph boxes are tight around the
    ink. A plain colour, not the cut's edge repeated: ink on the edge would run across
    the canvas as streaks.
    """
    height, width = cut.shape[:2]
    sample = cut[::4, ::4]
    ground = np.median(sample.reshape(sample.shape[0] * sample.shape[1], -1), axis=0)
    fill = ground.astype(np.uint8) if cut.ndim == 3 else np.uint8(ground[0])
    canvas = np.empty((max(side, height), max(side, width), *cut.shape[2:]), dtype=np.uint8)
    canvas[...] = fill
    canvas[:height, :width] = cut
    for line in lines:
        x0, y0, x1, y1 = _in_image(line.box, scale, crop, offset)
        margin = (y1 - y0) / 4
        left, top = max(0, int(x0 - margin)), max(0, int(y0 - margin))
        right, bottom = min(width, int(x1 + margin) + 1), min(height, int(y1 + margin) + 1)
        if right > left and bottom > top:
            canvas[top:bottom, left:right] = fill
    return canvas


def _given(box: Sequence[float], others: Sequence[Sequence[float]]) -> bool:
    """
    Whether lines already there hold the text OCR read in ``box``: the ones level with
    it (overlapping half the lower one's height), each widened by half its height on both
    sides, cover more than half its width. OCR's boxes are padded around the print, a
    PDF's glyph boxes are tight (a lone "1" is a third as wide as OCR's box for it), and
    OCR may read two of the PDF's lines as one, so neither a box's area nor one line
    decides.
    """
    spans = sorted(
        (
            max(box[0], other[0] - (other[3] - other[1]) / 2),
            min(box[2], other[2] + (other[3] - other[1]) / 2),
        )
        for other in others
        if min(box[3], other[3]) - max(box[1], other[1])
        > 0.5 * min(box[3] - box[1], other[3] - other[1])
    )
    covered, reach = 0.0, box[0]
    for start, stop in spans:
        start = max(start, reach)
        if stop > start:
            covered += stop - start
            reach = stop
    return covered > 0.5 * (box[2] - box[0])


def ocr_page(engine: OcrEngine, page: Page) -> Page:
    """
    Run OCR on a preprocessed page.

    A PDF page whose lines the load stage took from its text layer keeps them, put in
    reading order, and the engine reads only the page's pictures, if any (a logo holding
    the shop's name): ``page.notes["ocr"]["engine"]`` is ``"pdf text"``, or
    ``"pdf text + <engine>"`` and ``"pictures"`` counts the lines read from them
    (preprocess neither deskews such a page nor crops a picture away).

    Sets ``page.lines`` (boxes divided by ``page.scale`` and moved by the corner of a crop
    to the paper, and by the corner of a receipt's region of a page of several, so they
    are in the pixels of the whole page at full size; on a page or receipt the engine
    turned upright, in that turned page or receipt), ``page.text`` (the line texts joined
    with ``"\\n"``) and ``page.notes["ocr"]`` (engine name, line count, mean confidence,
    seconds; ``bend``, the pixels by which a curled page's curve rose and fell, when the
    engine straightened it and read it again), and drops ``page.image``.

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
    scale = page.scale if page.scale > 0 else 1.0
    load = page.notes.get("load", {})
    if load.get("text_layer"):
        # A PDF page that carries its own text: the load stage read its lines exactly, in
        # the order the PDF draws them, which a program may choose freely.
        started = time.perf_counter()
        pictured = _read_pictures(engine, page, page.image, scale) if "pictures" in load else []
        page.lines = reading_order([*page.lines, *pictured])
        page.text = "\n".join(line.text for line in page.lines)
        page.image, page.picture_images = None, []
        page.notes["ocr"] = {"engine": "pdf text", "lines": len(page.lines), "seconds": 0.0}
        if "pictures" in load:
            page.notes["ocr"].update(
                engine=f"pdf text + {engine.name}",
                pictures=len(pictured),
                seconds=round(time.perf_counter() - started, 3),
            )
        return page
    if page.notes.get("preprocess", {}).get("blank"):
        # Preprocess found no ink (`PreprocessOptions.skip_blank`): nothing to read.
        page.lines, page.text, page.image = [], "", None
        page.notes["ocr"] = {"engine": engine.name, "lines": 0, "blank": True, "seconds": 0.0}
        return page
    started = time.perf_counter()
    lines = engine.recognize(page.image)
    seconds = time.perf_counter() - started
    # A page cropped to its paper: put the crop's corner back (see `preprocess`); and a
    # receipt cut out of a page of several, its region's corner (see `load_page`).
    # A receipt the engine turned keeps its boxes in the turned receipt, as a page does.
    crop = page.notes.get("preprocess", {}).get("crop") or (0.0, 0.0)
    turns = getattr(engine, "last_turns", 0)
    region = load.get("region") if not turns else None
    if region:
        crop = (crop[0] + region[0], crop[1] + region[1])
    page.lines = _to_page(lines, scale, crop)
    page.text = "\n".join(line.text for line in page.lines)
    page.image = None
    confidences = [line.confidence for line in page.lines]
    heights = [line.box[3] - line.box[1] for line in page.lines]
    page.notes["ocr"] = {
        "engine": engine.name,
        "lines": len(page.lines),
        "mean_confidence": round(sum(confidences) / len(confidences), 4) if confidences else None,
        "median_confidence": round(float(np.median(confidences)), 4) if confidences else None,
        # The print's size (the median line box's height) in the scan's own pixels, and
        # in the pixels the engine read, which the record's small-print warning is
        # judged by: a page rendered or decoded smaller than its scan reads smaller print.
        "line_height": round(float(np.median(heights)), 1) if heights else None,
        "read_height": round(float(np.median(heights)) * scale, 1) if heights else None,
        "seconds": round(seconds, 3),
    }
    if turns:
        # The engine read the page turned upright; the boxes are in that turned page.
        page.notes["ocr"]["turns"] = turns
    bend = getattr(engine, "last_bend", 0.0)
    if bend:
        # The engine read the page again straightened (its bend in the pixels it read).
        page.notes["ocr"]["bend"] = bend
    return page
