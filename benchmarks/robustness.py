"""
Receipts as they are not in the shared sample: turned, tilted, on a dark table, small,
compressed. Exact fields per kind of page, with the page-handling steps on and off.

Each SROIE receipt of one half is loaded as the pipeline loads it, changed by one
transform, then preprocessed, OCR-ed (one ``RapidOcrEngine``, one thread) and run through
the offline correct -> fix -> structure stages; the four fields are scored exactly as
``benchmarks/accuracy_offline.py`` scores them. The transforms:

- ``none``: the receipt as scanned;
- ``rot90``, ``rot180``, ``rot270``: turned a quarter clockwise, upside down, a quarter
  counter-clockwise;
- ``tilt4``, ``tilt-2``: tilted 4 degrees counter-clockwise, 2 clockwise (white corners);
- ``table``: on a dark border 15 % of its long side wide (a receipt photographed on a
  table, or scanned with the lid open);
- ``photo``: tilted 3 degrees, then on the dark border;
- ``small``: shrunk to 0.6 of its size; ``tiny``: to 0.4; ``thumb``: to 0.25 (a scan at
  about 40 dpi, a thumbnail sent by mistake); ``large``: enlarged 2x;
- ``jpeg25``: saved again as a JPEG at quality 25;
- ``faded``: thermal print gone pale (the ink keeps 35 % of its darkness);
- ``shadow``: light falling from 100 % at the top left to 45 % at the bottom right;
- ``perspective``: photographed from below, the top 16 % narrower, on white;
- ``phone``: on the dark border, turned 2 degrees, then photographed from below (the
  picture's top 16 % narrower); ``phone30``: the same, 30 % narrower;
- ``a4``: in the top left of a white A4 page at the receipt's own resolution;
- ``blur``: out of focus (Gaussian, sigma 1.2 pixels);
- ``noise``: the grain of a dim photo (Gaussian, sigma 18 grey levels);
- ``stamp``: a red oval stamp, ``PAID`` and a date, pressed over the header
  (:func:`stages.testing.stamp.red_stamp`);
- ``curl``: curled across its width, the middle of each row 4 % of the width higher than
  its ends (a parabola; round 28); ``curl8``: 8 %;
- ``long``: a long receipt, its middle band repeated until it is 6 times as long as wide;
- ``pink``: printed on pink paper (a carbon copy, coloured stock): every pixel times
  (215, 190, 255) / 255 in BGR; ``warm``: photographed under warm light, an orange cast
  (180, 215, 255) / 255 (round 23);
- ``pdf``, ``pdf-long``, ``pdf-a4``: the receipt as scanned, ``long`` or ``a4``, saved as
  a PDF page (the JPEG inside at quality 95, the receipt 80 mm wide: a scanner app's PDF)
  and loaded back as the pipeline loads it (``stages.pipeline.page_loader``).

"turned upright" counts the pages the engine turned by exactly the quarter turns that
undo the transform (none for the others).

Configs: ``shipped`` (the defaults: ``orient``, ``level``, ``strips``, ``crop_paper``
and ``crop_print`` on), ``plain`` (all off: the engine and preprocess of round 6),
``round7`` (the defaults without ``crop_print`` and the engine's ``strips``), ``whole``
(the defaults without ``strips``: long pages read whole), ``deskew`` (the defaults with the
image deskew on, for tilts of 1.5 degrees or more; not shipped), and ``red_kept`` (the
defaults without ``lighten_red``: red ink read as it is), ``widegaps`` (the defaults
without round 18's ``narrow_gap``), and the preprocess steps that are off by default,
each on its own: ``median``, ``bilateral``, ``nlmeans`` (the denoise filters), ``gray``
and ``binarize`` (round 22; none is shipped), and ``bowed`` (the defaults without round
30's ``unbend``: a curled page read once, its lines bowed). ``plain`` and ``round7`` keep
red ink too, as those rounds did.

``--cost ROUNDS`` measures instead what the steps cost on pages as scanned: each receipt
of the half is read by every config in turn (each config first in its turn), ROUNDS
times, and the process CPU seconds of preprocess + OCR per page are printed per config
with their ratio to ``plain``, or to the first config named when ``plain`` is not.

Usage (from the project root)::

    .venv/bin/python benchmarks/robustness.py [--half held] [--config shipped,plain]
        [--transforms none,rot90,...]
    flock /tmp/asyncpipe-bench.lock .venv/bin/python benchmarks/robustness.py --cost 3 --half all

The held-out half (odd receipts) is the headline; the steps were built looking at the
development half's ``rot90``, ``rot180``, ``tilt4``, ``tilt-2`` and ``table`` only.
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import _root  # noqa: F401  (the project on sys.path)
import cv2
import numpy as np
import PIL.Image
from accuracy_offline import split
from fields_ocr import receipts_parser

from stages._page import Page
from stages.inputs import discover, load_page
from stages.ocr import RapidOcrEngine, ocr_page
from stages.offline import DEFAULT_FIELDS, exact_match, read_key_file
from stages.offline import extract_fields as extract
from stages.offline._correct import correct_lines
from stages.offline._layout import fix_layout
from stages.pipeline import DocumentSettings, page_loader
from stages.preprocess import PreprocessOptions, preprocess, rotate
from stages.testing.stamp import red_stamp

__all__ = ["CONFIGS", "TRANSFORMS", "main"]

Image = Any  # a uint8 numpy image


#: The colour of the table a receipt lies on (BGR).
TABLE = (70, 60, 50)


def _table(image: Image) -> Image:
    pad = int(0.15 * max(image.shape[:2]))
    return cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=TABLE)


def _faded(image: Image) -> Image:
    """Thermal print gone pale: the ink keeps 35 % of its darkness."""
    return (255 - (255 - image.astype(np.float32)) * 0.35).astype(np.uint8)


def _shadow(image: Image) -> Image:
    """A phone's shadow: light falls from 100 % at the top left to 45 % at the bottom right."""
    h, w = image.shape[:2]
    ramp = 1 - 0.55 * (np.linspace(0, 1, h)[:, None] + np.linspace(0, 1, w)[None, :]) / 2
    return (image * ramp[..., None]).astype(np.uint8)


def _perspective(
    image: Image, fill: tuple[int, int, int] = (255, 255, 255), inset: float = 0.08
) -> Image:
    """Photographed from below the bottom edge: the top ``2 * inset`` narrower, ``fill``
    around."""
    h, w = image.shape[:2]
    inset *= w
    corners = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    seen = np.float32([[inset, 0], [w - inset, 0], [w, h], [0, h]])
    matrix = cv2.getPerspectiveTransform(corners, seen)
    return cv2.warpPerspective(image, matrix, (w, h), borderValue=fill)


def _phone(image: Image, inset: float = 0.08) -> Image:
    """On the dark border, the whole picture turned 2 degrees, then seen from below."""
    framed = _table(image)
    h, w = framed.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), 2.0, 1.0)
    turned = cv2.warpAffine(framed, matrix, (w, h), flags=cv2.INTER_CUBIC, borderValue=TABLE)
    return _perspective(turned, TABLE, inset)


def _a4(image: Image) -> Image:
    """
    Scanned on a white A4 flatbed at the receipt's own resolution: the receipt, taken as
    80 mm wide, in the top left of a page 210/80 times its width (at most 4960 pixels
    wide, A4 at 600 dpi; a wider receipt is shrunk to fit).
    """
    h, w = image.shape[:2]
    scale = min(1.0, 4960 * 80 / 210 / w)
    if scale < 1.0:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        h, w = image.shape[:2]
    page_w = round(w * 210 / 80)
    page_h = max(round(page_w * 297 / 210), h + w // 5)
    page = np.full((page_h, page_w, 3), 246, np.uint8)
    page[w // 10 : w // 10 + h, w // 10 : w // 10 + w] = image
    return page


def _long(image: Image) -> Image:
    """A long receipt: the band from 45 to 60 % of its height repeated until the page is 6
    times as long as it is wide (more item lines; the header and the total as scanned)."""
    h, w = image.shape[:2]
    top, bottom = int(0.45 * h), int(0.6 * h)
    copies = max(0, math.ceil((6 * w - h) / (bottom - top)))
    return np.ascontiguousarray(
        np.vstack([image[:bottom]] + [image[top:bottom]] * copies + [image[bottom:]])
    )


#: How the pipeline loads a page, with its default settings.
LOAD = page_loader(DocumentSettings(malloc_tuning=False))


def _as_pdf(image: Image) -> Image:
    """Saved as a one-page PDF, the page as wide as 80 mm at the scan's resolution (a
    receipt 80 mm wide), then loaded as the pipeline loads it."""
    dpi = image.shape[1] * 25.4 / 80
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "page.pdf"
        PIL.Image.fromarray(image[:, :, ::-1]).save(path, "PDF", resolution=dpi, quality=95)
        loaded = LOAD(next(iter(discover([path]))))
    return loaded.image


def _curl(image: Image, depth: float = 0.04) -> Image:
    """A receipt curled across its width, as held for a phone: the middle of every row
    ``depth`` times the width higher than its ends (a parabola), white below."""
    h, w = image.shape[:2]
    x = np.arange(w, dtype=np.float32)
    lift = depth * w * (1 - (2 * x / max(w - 1, 1) - 1) ** 2)
    map_x = np.tile(x, (h, 1))
    map_y = np.arange(h, dtype=np.float32)[:, None] + lift[None, :]
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderValue=(255, 255, 255))


def _noise(image: Image) -> Image:
    """Sensor noise of a dim photo: Gaussian, sigma 18 grey levels."""
    grain = np.random.default_rng(0).normal(0, 18, image.shape)
    return np.clip(image + grain, 0, 255).astype(np.uint8)


def _tint(image: Image, bgr: tuple[int, int, int]) -> Image:
    """Paper of another colour, or light of another colour, over the page."""
    return (image.astype(np.float32) * (np.array(bgr, np.float32) / 255)).astype(np.uint8)


def _jpeg(image: Image, quality: int) -> Image:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


#: Transform name -> what it does to a loaded page's pixels.
TRANSFORMS: dict[str, Callable[[Image], Image]] = {
    "none": lambda image: image,
    "rot90": lambda image: np.ascontiguousarray(np.rot90(image, -1)),
    "rot180": lambda image: np.ascontiguousarray(np.rot90(image, 2)),
    "rot270": lambda image: np.ascontiguousarray(np.rot90(image, 1)),
    "tilt4": lambda image: rotate(image, 4.0),
    "tilt-2": lambda image: rotate(image, -2.0),
    "table": _table,
    "photo": lambda image: _table(rotate(image, 3.0)),
    "small": lambda image: cv2.resize(image, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA),
    "tiny": lambda image: cv2.resize(image, None, fx=0.4, fy=0.4, interpolation=cv2.INTER_AREA),
    "thumb": lambda image: cv2.resize(image, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA),
    "large": lambda image: cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC),
    "jpeg25": lambda image: _jpeg(image, 25),
    "faded": _faded,
    "shadow": _shadow,
    "perspective": _perspective,
    "phone": _phone,
    "phone30": lambda image: _phone(image, 0.15),
    "a4": _a4,
    "blur": lambda image: cv2.GaussianBlur(image, (0, 0), 1.2),
    "noise": _noise,
    "stamp": red_stamp,
    "long": _long,
    "curl": _curl,
    "curl8": lambda image: _curl(image, 0.08),
    "pink": lambda image: _tint(image, (215, 190, 255)),
    "warm": lambda image: _tint(image, (180, 215, 255)),
    "pdf": _as_pdf,
    "pdf-long": lambda image: _as_pdf(_long(image)),
    "pdf-a4": lambda image: _as_pdf(_a4(image)),
}

#: Config name -> (engine options, preprocess options).
CONFIGS: dict[str, tuple[dict[str, Any], PreprocessOptions]] = {
    "shipped": ({}, PreprocessOptions()),
    "plain": (
        {"orient": False, "level": False},
        PreprocessOptions(lighten_red=False, crop_paper=False, crop_print=False),
    ),
    "round7": ({"strips": False}, PreprocessOptions(lighten_red=False, crop_print=False)),
    "whole": ({"strips": False}, PreprocessOptions()),
    "deskew": ({}, PreprocessOptions(deskew=True, min_skew=1.5)),
    "red_kept": ({}, PreprocessOptions(lighten_red=False)),
    # round 17's spacing: the wide ink gap alone, without round 18's narrow_gap
    "widegaps": ({"narrow_gap": None}, PreprocessOptions()),
    # the preprocess clean-ups that are off by default, each on its own
    "median": ({}, PreprocessOptions(denoise="median")),
    "bilateral": ({}, PreprocessOptions(denoise="bilateral")),
    "nlmeans": ({}, PreprocessOptions(denoise="nlmeans")),
    "gray": ({}, PreprocessOptions(grayscale=True)),
    "binarize": ({}, PreprocessOptions(binarize=True)),
    # round 29: a curled page's rows grouped, but its bowed lines read as they are
    "bowed": ({"unbend": False}, PreprocessOptions()),
}


#: The quarter turns that put each transform's page upright again.
UPRIGHT = {"rot90": 1, "rot180": 2, "rot270": 3}


def run(
    data: Path, names: list[str], transform: str, engine: RapidOcrEngine, options: PreprocessOptions
) -> tuple[dict[str, tuple[int, int]], float, int]:
    """
    One transform over some receipts: ``({field: (exact, scored)}, OCR process CPU s,
    pages the engine turned by exactly the quarter turns that put them upright)``.
    """
    counts = {field: [0, 0] for field in DEFAULT_FIELDS}
    cpu = 0.0
    upright = 0
    for name in names:
        page = _load(data, name)
        page.image = TRANSFORMS[transform](page.image)
        started = time.process_time()
        page = ocr_page(engine, preprocess(page, options))
        cpu += time.process_time() - started
        upright += page.notes["ocr"].get("turns", 0) == UPRIGHT.get(transform, 0)
        text = fix_layout("\n".join(correct_lines(page.lines)))
        got = extract(text, page.lines)
        key = read_key_file(data / "key" / f"{name}.json")
        for field in DEFAULT_FIELDS:
            if key.get(field, "").strip():
                counts[field][1] += 1
                counts[field][0] += exact_match(key[field], got[field])
    return {field: (ok, n) for field, (ok, n) in counts.items()}, cpu, upright


@contextmanager
def _engines(configs: list[str]) -> Iterator[dict[str, RapidOcrEngine]]:
    """One engine per config, closed at the end."""
    engines = {config: RapidOcrEngine(**CONFIGS[config][0]) for config in configs}
    try:
        yield engines
    finally:
        for engine in engines.values():
            engine.close()


def _load(data: Path, name: str) -> Page:
    return load_page(next(iter(discover([data / "img" / f"{name}.jpg"]))))


def cost(data: Path, names: list[str], configs: list[str], rounds: int) -> None:
    """Print the CPU seconds per page of preprocess + OCR per config, pages as scanned."""
    seconds = dict.fromkeys(configs, 0.0)
    with _engines(configs) as engines:
        for turn in range(rounds):
            for index, name in enumerate(names):
                # each config goes first in turn, so none always meets a cold cache
                first = (turn + index) % len(configs)
                for config in configs[first:] + configs[:first]:
                    page = _load(data, name)
                    started = time.process_time()
                    ocr_page(engines[config], preprocess(page, CONFIGS[config][1]))
                    seconds[config] += time.process_time() - started
    pages = rounds * len(names)
    base_name = "plain" if "plain" in seconds else configs[0]
    base = seconds[base_name]
    for config, total in seconds.items():
        ratio = f" ({total / base:.3f} of {base_name})" if base and config != base_name else ""
        print(f"{config}: {total / pages:.3f} CPU s/page over {pages} pages{ratio}")


def main(argv: list[str] | None = None) -> int:
    """Run from the command line (``argv``: ``sys.argv[1:]`` when ``None``); returns 0."""
    parser = receipts_parser(__doc__)
    parser.add_argument("--half", choices=("dev", "held", "all"), default="held")
    parser.add_argument("--cost", type=int, metavar="ROUNDS", help="time the steps instead")
    parser.add_argument("--config", default="shipped,plain")
    parser.add_argument("--transforms", default=",".join(TRANSFORMS))
    args = parser.parse_args(argv)
    stems = sorted(image.stem for image in (args.data / "img").glob("*.jpg"))
    names = stems if args.half == "all" else split(stems)[args.half]
    configs = args.config.split(",")
    transforms = args.transforms.split(",")
    unknown = sorted({*configs} - set(CONFIGS)) + sorted({*transforms} - set(TRANSFORMS))
    if unknown:
        parser.error(f"unknown config or transform: {', '.join(unknown)}")
    if args.cost:
        cost(args.data, names, configs, args.cost)
        return 0
    header = " | ".join(DEFAULT_FIELDS)
    print(
        f"| pages ({args.half}, {len(names)} receipts) | config | {header} | OCR CPU s "
        "| turned upright |"
    )
    print("|---|---|" + "---|" * (len(DEFAULT_FIELDS) + 2), flush=True)
    with _engines(configs) as engines:
        for transform in transforms:
            for config in configs:
                counts, cpu, upright = run(
                    args.data, names, transform, engines[config], CONFIGS[config][1]
                )
                cells = " | ".join(f"{ok}/{n}" for ok, n in counts.values())
                print(
                    f"| {transform} | {config} | {cells} | {cpu:.0f} | {upright}/{len(names)} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
