"""
Image clean-up before OCR: crop to the paper, red ink lightened, grayscale, deskew,
denoise, binarize and resize.

Every step can be switched off in :class:`PreprocessOptions`. The defaults were chosen by
measuring OCR character error rate on the 40 SROIE receipts with the default rapidocr engine
(``benchmarks/ocr_accuracy.py``): raw image 0.0620, every step off 0.0620, the earlier
"grayscale + deskew + max_side 2000 + min_side 400" set 0.0689 (worse). Until each step is
shown to help on its own, it is off by default. On photographed or badly scanned pages
(grainy, faded, shadowed, recompressed, blurred) the denoise filters and the binarize
step were each measured alone, and none reads the fields better
(``benchmarks/robustness.py``; docs/pages.md, "Pages turned, tilted or lying on a table").
The exceptions are red ink lightened and the crops.

- Red ink lightened (a stamp over the print) leaves a page without red ink as it is, and
  read 5 more held-out companies of 20 under a stamp (``benchmarks/robustness.py
  --transforms stamp``).
- The crop to the paper changes nothing on a flat scan and put 4 more development
  addresses right on receipts framed by a dark border.
- The crop to the print read receipts on a white A4 page as well as their flat scans
  (held out: dates 13 → 20 of 20, totals 13 → 19 of 19), and on the 10 flat scans with
  wide white margins it cuts, one held-out address more (``benchmarks/robustness.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np

from asyncpipe import ConfigError, StageError

from ._paper import find_paper, find_print, is_blank
from ._pixels import to_gray, u8
from ._stamp import lighten_red

if TYPE_CHECKING:
    import numpy.typing as npt

    from stages._page import Page

__all__ = [
    "PreprocessOptions",
    "estimate_skew",
    "find_paper",
    "find_print",
    "is_blank",
    "preprocess",
    "rotate",
]


@dataclass(frozen=True, slots=True)
class PreprocessOptions:
    """
    What :func:`preprocess` does; each step can be switched off.

    Attributes:
        lighten_red: turn red ink stamped or written over the print (``PAID``, a date
            stamp) to the light grey of its red channel, and the stamp's ink on bare paper
            to the paper's colour, so OCR neither merges it with the text it crosses nor
            reads it (:func:`~stages._stamp.lighten_red`). Red is measured against the
            paper, so pink paper or warm light is no stamp. On by default: a page with no
            red ink is left as it is.
        grayscale: convert BGR to one channel (off by default; see the module docstring).
        crop_paper: cut away a dark background around the paper (a receipt scanned with
            the lid open, or photographed on a table), so the OCR's own size limit spends
            its pixels on the print (:func:`find_paper`). On by default: it leaves a page
            without such a background as it is.
        crop_print: cut a bright page down to the print when it fills less than half of
            it (a receipt scanned on an A4 flatbed), for the same reason
            (:func:`find_print`). On by default; tried after ``crop_paper``.
        deskew: estimate the text skew and rotate the page straight when
            ``min_skew <= |angle| < max_skew`` (off by default; SROIE scans are straight).
        min_skew: smallest angle, in degrees, worth a rotation (rotating resamples pixels).
        max_skew: largest angle believed; a bigger estimate is more likely wrong than real.
        denoise: ``None`` (off, the default), ``"median"`` (3x3 median blur), ``"bilateral"``
            or ``"nlmeans"`` (``cv2.fastNlMeansDenoising``, much slower). None of the
            three reads the development receipts better, as scanned or grainy, faded,
            shadowed, recompressed or blurred (``benchmarks/robustness.py --config
            median,bilateral,nlmeans``): the median loses 4 to 8 of 20 addresses, nlmeans
            doubles the OCR's CPU and loses some, bilateral moves a field by one either
            way. The recogniser is trained on noisy crops; smoothing costs it the
            small print's strokes.
        binarize: adaptive Gaussian threshold to black text on white (off by default). It
            reads every kind of page worse (``--config binarize``: as scanned, addresses
            13 -> 9 of 20; blurred, 7 -> 1).
        max_side: shrink the page so its longest side is at most this many pixels, or
            ``None`` (the default) to never shrink; rapidocr itself caps at 1500.
        min_side: enlarge the page so its shortest side is at least this many pixels, or
            ``None`` (the default) to never enlarge.
        skip_blank: mark a page that holds no ink (:func:`~stages._paper.is_blank`: the
            back of a sheet scanned two-sided) blank, so OCR does not read it: its record
            has no text and says "blank page". On by default: OCR took 1.7 to 2 CPU
            seconds on a blank A4 page, as long as on a receipt, and the check takes a few
            milliseconds.
        opencv_threads: threads OpenCV may use. 1 by default because the pipeline runs
            one preprocess call per worker thread; more threads only contend with the
            other workers. This is process-wide (``cv2.setNumThreads``).

    .. versionadded:: 0.1
    """

    lighten_red: bool = True
    grayscale: bool = False
    crop_paper: bool = True
    crop_print: bool = True
    deskew: bool = False
    min_skew: float = 0.3
    max_skew: float = 10.0
    denoise: Literal["median", "bilateral", "nlmeans"] | None = None
    binarize: bool = False
    max_side: int | None = None
    min_side: int | None = None
    skip_blank: bool = True
    opencv_threads: int = 1

    def __post_init__(self) -> None:
        if self.denoise not in (None, "median", "bilateral", "nlmeans"):
            raise ConfigError(
                f"denoise must be None, 'median', 'bilateral' or 'nlmeans', not {self.denoise!r}"
            )
        if self.max_side is not None and self.max_side < 32:
            raise ConfigError(f"max_side must be >= 32 or None, got {self.max_side}")
        if self.min_side is not None and self.min_side < 1:
            raise ConfigError(f"min_side must be >= 1 or None, got {self.min_side}")
        if (
            self.max_side is not None
            and self.min_side is not None
            and self.min_side > self.max_side
        ):
            raise ConfigError("min_side must not exceed max_side")
        if not 0 <= self.min_skew <= self.max_skew <= 45:
            raise ConfigError("need 0 <= min_skew <= max_skew <= 45")
        if self.opencv_threads < 0:
            raise ConfigError("opencv_threads must be >= 0")


def _profile_score(ink: npt.NDArray[np.uint8], angle: float) -> float:
    h, w = ink.shape
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    rotated = cv2.warpAffine(ink, matrix, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
    rows = rotated.sum(axis=1, dtype=np.float64)
    # Straight text gives sharp alternations of ink rows and blank rows between lines.
    return float(np.square(np.diff(rows)).sum())


def estimate_skew(image: npt.NDArray[np.uint8], max_angle: float = 10.0) -> float:
    """
    Estimate how far the text is rotated, by the projection-profile method.

    The page is shrunk to about 800 pixels, thresholded with Otsu's method, and rotated
    through candidate angles; the angle whose row sums alternate most sharply between ink
    and gaps is the one that makes the text lines horizontal. It looks at text rows rather
    than at the page outline, so a receipt's edges or a dark background do not mislead it.

    Args:
        image: uint8 gray or BGR pixels.
        max_angle: search ``[-max_angle, +max_angle]`` degrees.

    Returns:
        The angle in degrees (counter-clockwise positive, as ``cv2.getRotationMatrix2D``)
        by which to rotate the image to make it straight.
    """
    gray = to_gray(image)
    h, w = gray.shape
    shrink = min(1.0, 800 / max(h, w))
    if shrink < 1.0:
        size = (max(1, round(w * shrink)), max(1, round(h * shrink)))
        gray = u8(cv2.resize(gray, size, interpolation=cv2.INTER_AREA))
    _, ink = cv2.threshold(gray, 0, 1, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    ink_u8: npt.NDArray[np.uint8] = ink.astype(np.uint8)
    if not ink_u8.any():
        return 0.0
    best = 0.0
    step = 1.0
    low, high = -max_angle, max_angle
    while step >= 0.1:
        candidates = np.arange(low, high + step / 2, step)
        scores = [_profile_score(ink_u8, float(angle)) for angle in candidates]
        best = float(candidates[int(np.argmax(scores))])
        low, high = best - step, best + step
        step /= 4
    return round(best, 2)


def rotate(image: npt.NDArray[np.uint8], angle: float) -> npt.NDArray[np.uint8]:
    """
    Rotate an image about its centre on a canvas grown to hold all of it, filling the
    corners with white.

    Args:
        image: uint8 gray or BGR pixels.
        angle: degrees, counter-clockwise positive.

    Returns:
        The rotated image.
    """
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    # The canvas grows to hold the whole turned page, so no corner of the print is cut.
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    width, height = round(h * sin + w * cos), round(h * cos + w * sin)
    matrix[0, 2] += (width - w) / 2
    matrix[1, 2] += (height - h) / 2
    fill = 255 if image.ndim == 2 else (255,) * image.shape[2]
    rotated = cv2.warpAffine(
        image,
        matrix,
        (width, height),
        flags=cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=fill,
    )
    return u8(rotated)


def _resize_factor(h: int, w: int, options: PreprocessOptions) -> float:
    factor = 1.0
    if options.max_side is not None and max(h, w) > options.max_side:
        factor = options.max_side / max(h, w)
    elif options.min_side is not None and min(h, w) < options.min_side:
        factor = options.min_side / min(h, w)
        if options.max_side is not None:
            factor = min(factor, options.max_side / max(h, w))
    return factor


def _holding(
    crop: tuple[int, int, int, int],
    pictures: list[list[float]],
    scale: float,
    shape: tuple[int, ...],
) -> tuple[int, int, int, int]:
    """``crop`` grown to hold ``pictures`` (boxes in the pixels of the page as loaded,
    ``scale`` of them to the image's), within an image of ``shape``."""
    x0, y0, x1, y1 = crop
    for left, top, right, bottom in pictures:
        x0, y0 = min(x0, math.floor(left * scale)), min(y0, math.floor(top * scale))
        x1, y1 = max(x1, math.ceil(right * scale)), max(y1, math.ceil(bottom * scale))
    return max(0, x0), max(0, y0), min(shape[1], x1), min(shape[0], y1)


def preprocess(page: Page, options: PreprocessOptions) -> Page:
    """
    Clean up a loaded page for OCR.

    Steps, in order and each optional: crop to the paper, red ink lightened, grayscale,
    deskew, denoise, binarize, resize. A PDF page whose text the PDF gives (``notes["load"]
    ["text_layer"]``) is cropped to hold every picture as well, and not deskewed: OCR
    reads only its pictures, where the PDF put them. ``page.scale`` is multiplied by the
    resize factor, so OCR boxes divided by it are in the pixels of the page as loaded; a
    crop is recorded in ``page.notes["preprocess"]["crop"]`` (``[x0, y0, x1, y1]`` in
    those pixels) and
    :func:`~stages.ocr.ocr_page` adds its corner back. A deskew rotation is on a
    canvas grown to hold the whole page, so boxes then refer to the straightened page; the
    angle is recorded in
    ``page.notes["preprocess"]["skew"]``.

    Args:
        page: a page whose ``image`` holds uint8 gray or BGR pixels.
        options: which steps to run.

    Returns:
        The same page object with its new ``image``, ``scale`` and notes.

    Raises:
        StageError: the page has no image or an unusable one.
    """
    if page.image is None:
        raise StageError(f"{page.ref.id}: no image to preprocess (was the page loaded?)")
    image: npt.NDArray[np.uint8] = page.image
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or min(image.shape[:2]) < 1:
        raise StageError(
            f"{page.ref.id}: expected uint8 gray or BGR pixels, got {image.dtype} {image.shape}"
        )
    if cv2.getNumThreads() != options.opencv_threads:
        cv2.setNumThreads(options.opencv_threads)
    notes: dict[str, object] = {}
    load = page.notes.get("load", {})
    own_text = bool(load.get("text_layer"))
    if options.skip_blank and not own_text and is_blank(image):
        # Nothing to read: OCR skips the page (`ocr_page`), so no step here is worth it.
        page.notes["preprocess"] = {"blank": True, "scale": 1.0}
        return page
    paper = find_paper(image) if options.crop_paper else None
    if paper is None and options.crop_print:
        paper = find_print(image)
    if paper is not None and own_text:
        # OCR reads only the pictures of a page whose text the PDF gives: the crop holds
        # them all (the print's ink can miss a pale logo, and a dark band looks like a
        # table's edge to the crop to the paper).
        paper = _holding(paper, load.get("pictures", []), page.scale, image.shape[:2])
    if paper is not None:
        x0, y0, x1, y1 = paper
        image = image[y0:y1, x0:x1]
        # In the pixels of the page as loaded, as the OCR's boxes are given.
        notes["crop"] = [round(value / page.scale, 1) for value in paper]
    # After the crop: a warm table or hand around the paper is not red ink, and the crop
    # finds the paper by its contrast with them.
    if options.lighten_red and not own_text:
        # The pictures of a page whose text the PDF gives are the producer's own (a red
        # logo), not ink stamped over the print.
        image, red = lighten_red(image)
        if red:
            notes["red"] = round(red, 5)
    if options.grayscale:
        image = to_gray(image)
    if options.deskew and not own_text:
        skew = estimate_skew(image, options.max_skew)
        notes["skew"] = skew
        if options.min_skew <= abs(skew) < options.max_skew:
            image = rotate(image, skew)
            notes["rotated"] = True
    if options.denoise == "median":
        image = u8(cv2.medianBlur(image, 3))
    elif options.denoise == "bilateral":
        image = u8(cv2.bilateralFilter(image, 5, 40, 40))
    elif options.denoise == "nlmeans":
        if image.ndim == 2:
            image = u8(cv2.fastNlMeansDenoising(image, None, 7, 7, 21))
        else:
            image = u8(cv2.fastNlMeansDenoisingColored(image, None, 7, 7, 7, 21))
    if options.binarize:
        image = u8(
            cv2.adaptiveThreshold(
                to_gray(image), 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, 31, 15
            )
        )
    h, w = image.shape[:2]
    factor = _resize_factor(h, w, options)
    if not math.isclose(factor, 1.0):
        size = (max(1, round(w * factor)), max(1, round(h * factor)))
        interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
        image = u8(cv2.resize(image, size, interpolation=interpolation))
        # Use the realised factor (rounding to whole pixels) so boxes map back exactly.
        factor = size[0] / w
    notes["scale"] = round(factor, 5)
    page.image = np.ascontiguousarray(image)
    page.scale = page.scale * factor
    page.notes["preprocess"] = notes
    return page
