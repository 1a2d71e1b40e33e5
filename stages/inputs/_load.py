"""
Page loading: decode one page of a JPEG, PNG, TIFF, HEIC, WebP, BMP, GIF or PDF into a
numpy image.
"""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING

import anyio
import cv2
import numpy as np
import pypdfium2.raw as pdfium_c
from PIL import (
    BmpImagePlugin,
    ExifTags,
    GifImagePlugin,
    Image,
    ImageFile,
    ImageOps,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)
from pillow_heif.as_plugin import HeifImageFile

from stages._page import Page, PageRef, PictureImage

from ._damage import bad_marker, jpeg_damage
from ._drawing import page_bounds
from ._errors import InputError
from ._pictures import finest_dpi, render_pictures
from ._pillow_warnings import pillow_warnings
from ._png_cut import png_cut
from ._salvage import SALVAGE_MIN, cut_unread, ended, is_truncated
from ._sniff import Hidden, describe, open_pdf, show_path
from ._text_layer import TextLayer, text_layer
from ._tiff_cut import tiff_cut

if TYPE_CHECKING:
    import numpy.typing as npt
    import pypdfium2 as pdfium

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_PDF_DPI",
    "MAX_SCAN_DPI",
    "encoded_bytes",
    "load_page",
    "page_bytes",
    "read_page",
]

#: Pages larger than this many pixels are refused as decompression bombs.  100 Mpx is an
#: A0 poster at 300 dpi (~140 Mpx) scaled down a little; a receipt at 300 dpi is ~5 Mpx.
DEFAULT_MAX_PIXELS = 100_000_000

#: The resolution PDF pages are rendered at; 200 dpi is plenty for OCR of body text.
DEFAULT_PDF_DPI = 200

#: A PDF page holding a scan is rendered at the scan's own resolution, up to this.
MAX_SCAN_DPI = 600

# The Pillow plugin classes read the header only.  Image.open() would also run Pillow's
# own decompression-bomb check with the process-wide Image.MAX_IMAGE_PIXELS (warning
# above ~89 Mpx); we check ``max_pixels`` ourselves instead, without touching globals.
_OPENERS: dict[str, type[ImageFile.ImageFile]] = {
    "jpeg": JpegImagePlugin.JpegImageFile,
    "png": PngImagePlugin.PngImageFile,
    "tiff": TiffImagePlugin.TiffImageFile,
    # A phone's photo (HEIC), a web page's (WebP), an old scanner's (BMP), a GIF: the
    # first picture of the file is its one page.
    "heif": HeifImageFile,
    "webp": WebPImagePlugin.WebPImageFile,
    "bmp": BmpImagePlugin.BmpImageFile,
    "gif": GifImagePlugin.GifImageFile,
}


def load_page(
    ref: PageRef,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    pdf_dpi: int = DEFAULT_PDF_DPI,
    max_side: int | None = None,
    whole_pixels: int | None = None,
    pdf_text: bool = True,
    pdf_passwords: Sequence[str] = (),
) -> Page:
    """
    Decode one page into pixels.

    This is blocking (file I/O and decoding): run it in a worker thread.  JPEG, PNG and
    TIFF frames are decoded with Pillow (which, unlike OpenCV, refuses truncated files) after
    a header-only check of their size; JPEG EXIF orientation is applied.  A JPEG whose
    compressed data libjpeg finds damaged (bytes overwritten in the middle: Pillow decodes
    it silently, smeared below the damage) is read, and ``page.notes["load"]["damaged"]``
    holds libjpeg's warning (:func:`jpeg_damage`).  PDF pages are
    rendered with PDFium at ``pdf_dpi``, or at the resolution of the scan a page holds
    when that is finer (up to :data:`MAX_SCAN_DPI`): a scanner's or a phone app's PDF
    loses none of its scan's pixels.  A blank page renders fine (OCR then finds no text).

    Args:
        ref: the page, as found by :func:`~stages.inputs.discover`.
        max_pixels: refuse pages that would decode to more pixels than this
            (decompression bombs, absurd PDF page sizes): a PDF page's pixels as rendered,
            a JPEG's at the reduced scale ``max_side`` decodes it at, other images' whole;
            the default is :data:`DEFAULT_MAX_PIXELS` (100 million).
        pdf_dpi: the resolution PDF pages are rendered at (:data:`DEFAULT_PDF_DPI`).
        max_side: decode at most this many pixels on the longer side: the resolution OCR
            will use (rapidocr shrinks every page to its max_side_len).  JPEGs are decoded at
            the smallest 1/2, 1/4 or 1/8 scale by libjpeg that still leaves at least
            ``max_side`` (far cheaper than a full decode; left for the engine to shrink
            the rest of the way, as it did before: measured, a further area-averaging
            shrink cost accuracy), PDF pages are rendered at the lower scale (and
            ``max_pixels`` counts the pixels rendered), and PNG and TIFF pages are
            box-reduced by a whole factor in Pillow right after decoding, then shrunk to
            ``max_side`` with area averaging (the full-size page is never copied).
            ``page.scale`` says by how much, so OCR boxes come back in the pixels of the
            full-size page.
            ``None`` (the default) decodes at full size.
        whole_pixels: decode a page whole, whatever ``max_side``, when it has no more
            than this many pixels (an image by its header, a PDF page at its rendering
            resolution): a receipt on a big page, or a long one, keeps the pixels its print
            needs.  ``None``: ``max_side`` alone decides.
        pdf_text: take the lines of a PDF page that draws its own text from the PDF
            (:func:`~stages.inputs.text_layer`): ``page.lines`` and ``page.text`` are set,
            ``page.notes["load"]["text_layer"]`` counts the lines, and OCR keeps them
            instead of reading the pixels.  The page's pictures, listed in
            ``page.notes["load"]["pictures"]``, are left to OCR, and so is a scanned page
            (its text, if any, lies in its picture) or one whose text does not map to
            Unicode.
        pdf_passwords: the passwords to try, in turn, on an encrypted PDF that does not
            open without one (a PDF whose permissions alone are restricted does). They
            reach PDFium and nothing else: no message, ``ref`` or page carries them.

    Returns:
        A :class:`Page` whose ``image`` is a uint8 array: ``(h, w)`` gray or ``(h, w, 3)`` BGR.

    Raises:
        InputError: discovery already found a problem, or the file cannot be read or
            decoded (missing, truncated, encrypted without its password or with a wrong
            one, corrupt, too large); the message starts with the file's path.

    .. versionadded:: 0.1
    """
    if ref.problem is not None:
        raise InputError(ref.problem)
    path = Path(ref.source)
    shown = show_path(ref.source)  # as discovery gave it (a file named <stdin>: ./<stdin>)
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be at least 1, not {max_side}")
    if ref.region is not None:
        # A receipt's part of the page gets at least the pixels a page of its own would:
        # whole when the part has no more than ``whole_pixels``, else at least ``max_side``
        # along each of its sides.
        x0, y0, x1, y1 = ref.region
        width, height = max(x1 - x0, 1e-3), max(y1 - y0, 1e-3)
        if whole_pixels is not None:
            whole_pixels = math.ceil(whole_pixels / (width * height))
        if max_side is not None:
            max_side = math.ceil(max_side / min(width, height))
    layer = TextLayer()
    pictures: list[PictureImage] = []
    salvaged: float | None = None
    pillow_said: list[str] = []  # what Pillow warned of while reading the page
    frames = 1  # an animation's pictures, of which the first is read
    damaged: str | None = None  # what is wrong with a JPEG's data (`stages.inputs._damage`)
    # A page of a multi-page TIFF is named in its errors: its other pages may be fine.
    what = f"TIFF page {ref.page}" if ref.kind == "tiff" else ref.kind.upper()
    try:
        if ref.kind == "pdf":
            image, drafted, layer, pictures = _render_pdf(
                ref.data if ref.data is not None else path,
                ref.page,
                max_pixels=max_pixels,
                dpi=pdf_dpi,
                max_side=max_side,
                whole_pixels=whole_pixels,
                text=pdf_text,
                passwords=Hidden(pdf_passwords),
            )
        elif ref.kind in _OPENERS:
            # The file is read as the decoder needs it, never whole: one page of a
            # multi-page TIFF does not cost the bytes of all the others.  A JPEG is read
            # whole, once: its decode and libjpeg's look at its data (`jpeg_damage`) both
            # need all of it.
            data = ref.data
            if data is None and ref.kind == "jpeg":
                data = path.read_bytes()
            with (
                pillow_warnings() as pillow_said,
                io.BytesIO(data) if data is not None else path.open("rb") as stream,
            ):
                decode = partial(
                    _decode, max_pixels=max_pixels, max_side=max_side, whole_pixels=whole_pixels
                )
                try:
                    image, drafted, _ = decode(stream, ref.kind, ref.page)
                except (_TooLarge, Image.DecompressionBombError):
                    raise
                except Exception as exc:
                    if getattr(exc, "errno", None) is not None:
                        raise  # the file could not be read: not what its bytes say
                    image, drafted, salvaged, damaged = _salvage(stream, ref, decode, shown, exc)
                else:
                    if ref.kind == "jpeg" and data is not None and (warned := jpeg_damage(data)):
                        damaged = f"libjpeg: {warned}"
                    elif ref.kind in ("gif", "webp"):
                        frames = _frames(data if data is not None else path, ref.kind)
        else:
            raise ValueError(f"unsupported file type {ref.kind!r}")
    except InputError:
        raise
    except OSError as exc:
        if exc.errno is not None:
            raise InputError(f"{shown}: cannot read: {describe(exc)}") from exc
        # Pillow reports bad data as a plain OSError ("image file is truncated", "decoder
        # error -2").
        damaged = " (its compressed data is damaged)" if "decoder error" in str(exc) else ""
        raise InputError(f"{shown}: cannot decode {what}: {exc}{damaged}") from exc
    except Image.DecompressionBombError as exc:
        raise InputError(f"{shown}: page too large to decode safely ({exc})") from exc
    except _TooLarge as exc:
        raise InputError(f"{shown}: {exc}") from exc
    except ValueError as exc:
        raise InputError(f"{shown}: {exc}") from exc
    except Exception as exc:  # Pillow raises SyntaxError, struct.error, ... on bad data
        raise InputError(f"{shown}: cannot decode {what}: {describe(exc)}") from exc
    # The file's bytes have done their job: they must not travel on with the page.
    if ref.data is not None:
        ref = dataclasses.replace(ref, data=None)
    page = Page(ref=ref, image=image, scale=drafted)
    if pillow_said:
        page.notes.setdefault("load", {})["pillow"] = pillow_said
    if frames > 1:
        page.notes.setdefault("load", {})["frames"] = frames
    if damaged is not None:
        page.notes.setdefault("load", {})["damaged"] = damaged
        if salvaged is not None:
            page.notes["load"]["read"] = round(salvaged, 3)
    elif salvaged is not None:
        page.notes.setdefault("load", {})["truncated"] = round(salvaged, 3)
    if ref.region is not None:
        _cut_region(page, ref.region)
        # Discovery cuts only scans; a page that shows its own text now (the file
        # changed) is OCR-ed in the region, its lines being on the whole page.
        layer = TextLayer()
    if layer.lines:
        page.lines = layer.lines
        page.text = "\n".join(line.text for line in layer.lines)
        page.notes.setdefault("load", {})["text_layer"] = len(layer.lines)
        if layer.pictures:
            page.notes["load"]["pictures"] = layer.pictures
            page.picture_images = pictures
    return page


def _salvage(
    stream: IO[bytes],
    ref: PageRef,
    decode: Callable[..., tuple[npt.NDArray[np.uint8], float, float]],
    shown: str,
    exc: Exception,
) -> tuple[npt.NDArray[np.uint8], float, float, str | None]:
    """
    The part of a page whose decoding failed with ``exc`` that its file holds (a JPEG,
    a PNG or a TIFF that ends early, a JPEG whose picture data a marker breaks): its pixels,
    their scale, the share of the page's rows they are, and what is damaged (``None``
    for a file that ends early).

    Raises:
        InputError: the file ends early or is broken, and too little of the page is
            before it.
        Exception: ``exc`` itself, when the file neither ends early nor is broken where
            it can be cut.
    """
    if ref.kind == "jpeg":
        stream.seek(0)
        data = stream.read()
        damage: str | None = None
        if isinstance(exc, OSError) and is_truncated(exc):
            end, why, where = len(data), "the file ends early (truncated)", "in it"
        elif (at := bad_marker(data)) is not None:
            # Read as though the file ended there: the rows above are intact.
            damage = f"a marker where picture data should be, at byte {at}"
            end, why, where = at, f"its data is damaged ({damage})", "before it"
        else:
            raise exc
        image, drafted, read = decode(ended(io.BytesIO(data[:end])), "jpeg", 1, salvage=True)
        if read < SALVAGE_MIN:
            raise InputError(
                f"{shown}: cannot decode JPEG: {why}, with under {SALVAGE_MIN:.0%} of its page "
                f"{where}"
            ) from exc
        return image, drafted, read, damage
    if ref.kind == "png":
        stream.seek(0)
        if (arrived := png_cut(stream.read())) is not None:
            if arrived.readable is None or arrived.share < SALVAGE_MIN:
                raise InputError(
                    f"{shown}: cannot decode PNG: the file ends early (truncated), with under "
                    f"{SALVAGE_MIN:.0%} of its page in it"
                ) from exc
            image, drafted, _ = decode(io.BytesIO(arrived.readable), "png", 1)
            return image, drafted, arrived.share, None
    if ref.kind == "tiff":
        # Only a failing page costs the file's bytes (all of them: its directory may lie
        # anywhere in it).
        stream.seek(0)
        cut = tiff_cut(stream.read(), ref.page)
        if cut is not None:
            if cut.readable is None or cut.share < SALVAGE_MIN:
                few = f", with under {SALVAGE_MIN:.0%} of the page in it" if cut.readable else ""
                raise InputError(f"{shown}: {cut.reason}{few}") from exc
            image, drafted, _ = decode(io.BytesIO(cut.readable), "tiff", ref.page)
            return image, drafted, cut.share, None
    raise exc


def _cut_region(page: Page, region: tuple[float, float, float, float]) -> None:
    """Keep a receipt's part of the page (fractions of its size); note where it lies, in
    the pixels of the page at full size (``notes["load"]["region"]``)."""
    assert page.image is not None
    h, w = page.image.shape[:2]
    x0, y0, x1, y1 = (
        min(size, max(0, round(fraction * size)))
        for fraction, size in zip(region, (w, h, w, h), strict=True)
    )
    if x1 <= x0 or y1 <= y0:
        raise InputError(f"{show_path(page.ref.source)}: empty receipt region {region}")
    page.image = np.ascontiguousarray(page.image[y0:y1, x0:x1])
    cut = [round(value / page.scale) for value in (x0, y0, x1, y1)]
    page.notes.setdefault("load", {})["region"] = cut


async def read_page(ref: PageRef) -> PageRef:
    """
    The page with its file's bytes attached (``ref.data``), read without blocking the loop.

    This is how a page travels to a worker that cannot read its path (a Ray node without
    the inputs' storage): the encoded file goes over the wire, and decoding happens there.
    A multi-page file travels whole with each of its pages.

    Raises:
        InputError: the file cannot be read; the message starts with its path.

    .. versionadded:: 0.1
    """
    if ref.problem is not None or ref.data is not None:
        return ref
    try:
        data = await anyio.Path(ref.source).read_bytes()
    except OSError as exc:
        raise InputError(f"{show_path(ref.source)}: cannot read: {describe(exc)}") from exc
    return dataclasses.replace(ref, data=data)


def encoded_bytes(value: object) -> float:
    """
    The bytes of a file a page carries (``PageRef.data``): the ``weight`` that bounds the
    queue in front of ``load`` when pages travel with their bytes.
    """
    data = getattr(value, "data", None)
    return float(len(data)) if isinstance(data, bytes) else 0.0


def page_bytes(value: object) -> float:
    """
    The bytes of pixels a page holds (0 once OCR has dropped them, or for anything else):
    the ``weight`` that bounds the queues in front of the image stages.
    """
    image = getattr(value, "image", None)
    pictures = getattr(value, "picture_images", None) or ()
    held = sum(picture.image.nbytes for picture in pictures)
    return float(image.nbytes + held) if isinstance(image, np.ndarray) else 0.0


def _shrink(
    image: npt.NDArray[np.uint8], max_side: int | None
) -> tuple[npt.NDArray[np.uint8], float]:
    """
    Shrink ``image`` (area averaging) to at most ``max_side`` on its longer side; return it
    and the factor it was shrunk by (1.0 when it was small enough).
    """
    height, width = image.shape[:2]
    if max_side is None or max(width, height) <= max_side:
        return image, 1.0
    ratio = max_side / max(width, height)
    size = (max(1, round(width * ratio)), max(1, round(height * ratio)))
    shrunk = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(shrunk, dtype=np.uint8), size[0] / width


class _TooLarge(Exception):
    """
    A page has more pixels than ``max_pixels``.
    """


def _check_size(width: float, height: float, max_pixels: int, what: str) -> None:
    if width * height > max_pixels:
        raise _TooLarge(
            f"{what} is {int(width)}x{int(height)} pixels, more than max_pixels={max_pixels}; "
            "refusing it as a likely decompression bomb or absurd page size (asyncpipe run "
            "--max-pixels raises the limit)"
        )


def _decode(
    stream: IO[bytes],
    kind: str,
    page: int,
    *,
    max_pixels: int,
    max_side: int | None,
    whole_pixels: int | None,
    salvage: bool = False,
) -> tuple[npt.NDArray[np.uint8], float, float]:
    """
    Decode page ``page`` of ``stream``: its pixels, the scale they were decoded at, and
    the share of the page's rows they hold (below 1 only when ``salvage`` says the
    stream is a JPEG that ended early, put right by `ended`: its rows past the end are
    cut).
    """
    with _OPENERS[kind](stream) as image:
        if page > 1:
            frames = int(getattr(image, "n_frames", 1))
            if page > frames:
                raise ValueError(f"page {page} asked for, but the file has {frames}")
            image.seek(page - 1)
        width, height = image.size
        if whole_pixels is not None and width * height <= whole_pixels:
            max_side = None
        if kind == "jpeg" and (divisor := _jpeg_divisor(width, height, max_side, max_pixels)) > 1:
            image.draft(image.mode, (width // divisor, height // divisor))
        # The pixels decoded count, as a PDF page's rendered ones do: a 1200 dpi JPEG
        # scan decoded at 1/8 is no bomb (the same page in a PDF is read).
        what = f"page {page}" if kind == "tiff" else "the image"
        _check_size(*image.size, max_pixels, what)
        image.load()
        if kind == "jpeg":
            # A JPEG stops at its reduced decode (at least max_side, at most twice it): the
            # engine's own resize then sees what it saw before, from 4x fewer pixels.
            drafted = image.size[0] / width
            read_image, read = cut_unread(image) if salvage else (image, 1.0)
            transposed = ImageOps.exif_transpose(read_image)
            return _to_array(transposed or read_image), drafted, read
        # The resolution tags speak of the stored axes, which turning upright may swap.
        stored_dpi = image.info.get("dpi")
        turned = kind in _TAGGED and image.getexif().get(ExifTags.Base.Orientation, 1) >= 5
        upright = _upright(image) if kind in _TAGGED else image
        if stored_dpi is not None and turned:  # orientations 5 to 8 swap the axes
            stored_dpi = tuple(reversed(stored_dpi))
        reduced = _square(_reduce(upright, max_side), stored_dpi, max_pixels, what)
        if reduced is not image:
            image.close()  # the full-size pixels go now, before any conversion copies them
        try:
            array, shrunk = _shrink(_to_array(reduced), max_side)
            return array, reduced.size[0] / width * shrunk, 1.0
        finally:
            reduced.close()


def _frames(source: bytes | Path, kind: str) -> int:
    """The pictures of an animated GIF or WebP (1 for a still one, or one whose count
    cannot be read: the picture read is what counts). The file is opened again: decoding an
    animated GIF's first picture closes its stream."""
    try:
        with (
            io.BytesIO(source) if isinstance(source, bytes) else source.open("rb") as stream,
            _OPENERS[kind](stream) as image,
        ):
            return max(1, int(getattr(image, "n_frames", 1)))
    except Exception:  # Pillow raises many types on a damaged animation's later frames
        return 1


def _jpeg_divisor(width: int, height: int, max_side: int | None, max_pixels: int) -> int:
    """
    What to divide a ``width`` x ``height`` JPEG's sides by in decoding it (libjpeg's 1, 2,
    4 or 8): the largest that still gives ``max_side`` on the longer side (1 without it),
    doubled while the pixels it gives pass ``max_pixels``.  So a page too large to decode
    whole, such as a 1200 dpi flatbed scan of several receipts (139 Mpx), is read at 600
    dpi rather than refused; one too large even at 1/8 is refused.
    """
    divisor = 1
    if max_side is not None and max(width, height) > max_side:
        # As Pillow's draft picks it for a request of at least max_side (as before).
        ratio = max_side / max(width, height)
        fits = min(width // math.ceil(width * ratio), height // math.ceil(height * ratio))
        divisor = max(d for d in (1, 2, 4, 8) if d <= max(1, fits))
    while divisor < 8 and (width // divisor) * (height // divisor) > max_pixels:
        divisor *= 2
    return divisor


#: A scan's pixels are made square when its resolution across and down differ by more
#: than SQUARE_PIXELS: a fax in standard mode is 204 x 98 dpi, each pixel twice as tall
#: as wide, and read as stored its print is half as tall as it should be.  Tags further
#: apart than MAX_STRETCH are no scanner's (a fax's fine mode is 204 x 196): ignored.
SQUARE_PIXELS = 1.2
MAX_STRETCH = 4.0


def _square(image: Image.Image, dpi: object, max_pixels: int, what: str) -> Image.Image:
    """
    ``image`` stretched along its coarser axis to square pixels, as its resolution tags
    ``dpi`` (TIFF's X/Y resolution, PNG's pHYs: across and down as stored, swapped if the
    image was turned) say the page prints, or ``image`` itself.

    Raises:
        _TooLarge: the stretched page would have more than ``max_pixels`` pixels.
    """
    try:
        across, down = (float(value) for value in dpi)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return image
    if not (across > 0 and down > 0):
        return image
    stretch = max(across, down) / min(across, down)
    if not SQUARE_PIXELS < stretch <= MAX_STRETCH:
        return image
    width, height = image.size
    size = (width, round(height * stretch)) if across > down else (round(width * stretch), height)
    _check_size(*size, max_pixels, f"{what}, made square as its {across:g} x {down:g} dpi say,")
    gray = image.convert("L") if image.mode == "1" else image
    return gray.resize(size, Image.Resampling.BICUBIC)


# The kinds whose EXIF orientation tag is honoured here, besides JPEG's: a photo stored
# sideways with the tag saying so.
_TAGGED = frozenset({"png", "webp", "heif"})


def _upright(image: Image.Image) -> Image.Image:
    """``image`` turned as its EXIF orientation tag says, or ``image`` itself."""
    if image.getexif().get(ExifTags.Base.Orientation, 1) == 1:
        return image
    return ImageOps.exif_transpose(image)


def _reduce(image: Image.Image, max_side: int | None) -> Image.Image:
    """
    ``image`` shrunk by the largest whole factor that still leaves ``max_side`` on its
    longer side (box averaging), or ``image`` itself.

    A PNG or TIFF has no reduced decoding: the full page is decoded (4 bytes a pixel in
    Pillow, 139 MB for a 600-dpi A4 scan), so shrinking it right away, before the
    conversions to a BGR array each copy it, bounds what one load costs.
    """
    if max_side is None:
        return image
    factor = max(image.size) // max_side
    if factor < 2 or image.mode not in _REDUCIBLE:
        return image
    return image.reduce(factor)


# The modes Image.reduce handles ("1", "P" and the 16-bit ones are converted as they are).
_REDUCIBLE = frozenset({"L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "I", "F", "PA", "La", "RGBa"})


def _to_array(image: Image.Image) -> npt.NDArray[np.uint8]:
    """
    Pillow image → uint8 gray ``(h, w)`` or BGR ``(h, w, 3)``; transparency goes on white.
    """
    mode = image.mode
    if mode in ("1", "L"):
        return np.asarray(image.convert("L"), dtype=np.uint8).copy()
    if mode in ("I", "F") or mode.startswith("I;"):
        wide = np.asarray(image, dtype=np.float64)
        low, high = float(wide.min()), float(wide.max())
        scaled = (wide - low) * (255.0 / (high - low)) if high > low else np.zeros_like(wide)
        return np.clip(scaled + 0.5, 0, 255).astype(np.uint8)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    rgb = np.asarray(image if mode == "RGB" else image.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1])


def _scan_dpi(pdf_page: pdfium.PdfPage, page_area: float) -> float:
    """
    The resolution of the largest image on a PDF page (a scan), in dots per inch of the
    page; 0 when no image covers a tenth of it.  Taken along the image's longer side, so
    a scan that fills its page renders pixel for pixel, and one turned a quarter on the
    page measures the same.
    """
    largest, dpi = 0.0, 0.0
    for image in pdf_page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,)):
        left, bottom, right, top = page_bounds(image)
        area = (right - left) * (top - bottom)
        if area > largest:
            largest = area
            dpi = 72.0 * max(image.get_px_size()) / max(right - left, top - bottom)
    return dpi if largest >= 0.1 * page_area else 0.0


def _render_pdf(
    path: Path | bytes,
    page: int,
    *,
    max_pixels: int,
    dpi: int,
    max_side: int | None,
    whole_pixels: int | None,
    text: bool,
    passwords: Sequence[str],
) -> tuple[npt.NDArray[np.uint8], float, TextLayer, list[PictureImage]]:
    if dpi <= 0:
        raise ValueError(f"pdf_dpi must be positive, not {dpi}")
    scale = dpi / 72.0
    with open_pdf(path, passwords) as document:
        if page > len(document):
            raise ValueError(f"page {page} asked for, but the PDF has {len(document)}")
        # open_pdf holds the PDFium lock for the whole block, rendering included.
        pdf_page = document[page - 1]
        try:
            width_pt, height_pt = pdf_page.get_size()
            scan = min(_scan_dpi(pdf_page, width_pt * height_pt), MAX_SCAN_DPI)
            # Boxes in the pixels of the page at pdf_dpi, as OCR's come back (page.scale).
            layer = text_layer(pdf_page, scale) if text else TextLayer()
            # A page whose text the PDF gives renders as that text runs, before the
            # page's own rotation, so the text's boxes and the pixels agree.
            turn = pdf_page.get_rotation() if layer.lines else 0
            if turn in (90, 270):
                width_pt, height_pt = height_pt, width_pt
            render = max(scale, scan / 72.0)
            wanted = render
            longest = max(width_pt, height_pt) * render
            whole = whole_pixels is not None and width_pt * height_pt * render**2 <= whole_pixels
            if max_side is not None and longest > max_side and not whole:
                render = render * max_side / longest
            # What is rendered is what costs memory: a page sized in points like a 600-dpi
            # scan (4961x7016 pt) is fine at OCR's scale, though too large at pdf_dpi.
            _check_size(
                math.ceil(width_pt * render),
                math.ceil(height_pt * render),
                max_pixels,
                f"page {page} at {render * 72.0:.4g} dpi",
            )
            # pypdfium2 rounds the bitmap's sides up, and PDF sizes are 32-bit floats: a
            # hair under the scale keeps a scan that fills its page from gaining a column.
            bitmap = pdf_page.render(scale=render * (1 - 1e-6), rotation=(360 - turn) % 360)
            try:
                array: npt.NDArray[np.uint8] = np.array(bitmap.to_numpy(), dtype=np.uint8)
            finally:
                bitmap.close()
            pictures: list[PictureImage] = []
            if layer.pictures and render < wanted:
                # A page shrunk to its cap shrinks its pictures too, past reading when a
                # fine scan is small on a large page: each renders apart at the finest
                # image's resolution (at least the page's own), within the same caps.
                fine = max(wanted * 72.0, min(finest_dpi(pdf_page), MAX_SCAN_DPI))
                pictures = render_pictures(
                    pdf_page,
                    layer.pictures,
                    scale=scale,
                    shown=render,
                    dpi=fine,
                    size=(width_pt, height_pt),
                    turn=turn,
                    max_side=max_side,
                    budget=min(max_pixels, whole_pixels or max_pixels),
                )
        finally:
            pdf_page.close()
    if array.ndim == 3 and array.shape[2] == 4:  # BGRx / BGRA: drop the fourth byte
        array = np.ascontiguousarray(array[:, :, :3])
    shrunk = 1.0
    if not whole:  # PDFium may round a side up past max_side
        array, shrunk = _shrink(array, max_side)
    return array, render / scale * shrunk, layer, pictures
