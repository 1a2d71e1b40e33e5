"""
OCR the SROIE receipts once per engine variant, exactly as the document pipeline does,
and cache the lines so that field rules can be scored in seconds.

Each receipt goes through the pipeline's own path: ``discover`` -> ``load_page`` ->
``preprocess`` (default options) -> ``ocr_page`` with a :class:`RapidOcrEngine`. The
variants are the experiments of issue 10, point 4:

- ``default``: the engine as the pipeline builds it.
- ``unclip2``: the detector's ``unclip_ratio`` 2.0 instead of 1.6 (wider line boxes).
- ``score03``: ``text_score`` 0.3 instead of 0.5 (keep less confident lines).
- ``batch1``: ``rec_batch_num`` 1 instead of 6 (no padding to the widest line of a batch).
- ``header2x``: the default pass, then a second pass on the header region (the top of
  the page down to the first ``TEL``/``GST``/``INVOICE``/``DATE`` row, at most 40 % of
  the page) scaled up 2x; its lines replace the first pass's lines in that region.
- ``nogaps``: ``space_gap`` None: no spaces put in at ink-free gaps (the default puts one
  wherever the widest gap between two characters of a line is wider than 0.45 x the
  height of the line's crop, ``stages/ocr/_spacing.py``; swept in
  ``benchmarks/ocr_spacing.py``).
- ``widegaps``: ``narrow_gap`` None: only the 0.45 limit, as before round 18 (the default
  also spaces a narrower gap that stands out against the line's letter spacing).

Usage (from the project root)::

    .venv/bin/python benchmarks/fields_ocr.py --variant default [--data DIR] [--cache-dir DIR]

The cache is ``CACHE_DIR/ocr-VARIANT.json``: ``{receipt stem: {"lines": [...],
"seconds": OCR seconds}}``; receipts already in it are not read again.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from _root import ROOT

from stages._page import Line
from stages.inputs import discover, load_page
from stages.ocr import RapidOcrEngine
from stages.ocr._base import ocr_page
from stages.preprocess import PreprocessOptions, preprocess

__all__ = ["DEFAULT_CACHE_DIR", "DEFAULT_DATA", "VARIANTS", "load_cache", "main"]

DEFAULT_DATA = Path(os.environ.get("ASYNCPIPE_SROIE", ROOT.parent / "shared" / "data" / "sroie"))
DEFAULT_CACHE_DIR = Path("/tmp/fields-cache")

#: Engine keyword arguments per variant (``header2x`` adds a second pass to ``default``).
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "unclip2": {"params": {"Det.unclip_ratio": 2.0}},
    "score03": {"text_score": 0.3},
    "batch1": {"params": {"Rec.rec_batch_num": 1}},
    "header2x": {},
    "nogaps": {"space_gap": None},
    "widegaps": {"narrow_gap": None},
}

_HEADER_END = re.compile(r"\bTEL\b|TEL[\s:.]|\bGST\b|INVOICE|RECEIPT|\bDATE\b|\bFAX\b", re.I)


def _header_bottom(lines: list[Line], height: int) -> float:
    """The y where the header ends: the top of the first label row, at most 40 %."""
    limit = 0.4 * height
    for line in sorted(lines, key=lambda item: item.box[1]):
        if line.box[1] > limit:
            break
        if _HEADER_END.search(line.text):
            return line.box[1]
    return limit


def _header_pass(engine: RapidOcrEngine, image: Any, lines: list[Line]) -> list[Line]:
    """Read the header region again at 2x and put its lines in place of the first pass's."""
    import cv2

    height = image.shape[0]
    bottom = int(_header_bottom(lines, height))
    if bottom < 20:
        return lines
    crop = cv2.resize(image[:bottom], None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)
    header = [
        Line(
            line.text,
            [value / 2.0 for value in line.box],
            line.confidence,
            None if line.quad is None else [[x / 2.0, y / 2.0] for x, y in line.quad],
        )
        for line in engine.recognize(crop)
    ]
    if not header:
        return lines
    kept = [line for line in lines if (line.box[1] + line.box[3]) / 2 >= bottom]
    return header + kept


def ocr_variant(
    images: list[Path],
    variant: str,
    cache_dir: Path,
    options: Mapping[str, Any] | None = None,
    make: Callable[..., RapidOcrEngine] = RapidOcrEngine,
) -> dict[str, Any]:
    """
    The cached OCR of ``images`` under ``variant``, reading the missing ones.

    Args:
        images: the receipt images.
        variant: a key of :data:`VARIANTS`, or any name when ``options`` is given.
        cache_dir: the cache folder.
        options: :class:`RapidOcrEngine` keyword arguments for this variant (default
            ``VARIANTS[variant]``); ``benchmarks/ocr_sweep.py`` passes its settings here.
        make: the engine class or factory, called with the options.

    Returns:
        ``{stem: {"lines": [line json...], "seconds": wall s, "cpu_seconds": process CPU
        s}}`` (``cpu_seconds`` is missing from entries cached before it was recorded).
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"ocr-{variant}.json"
    stored: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    engine: RapidOcrEngine | None = None
    base_path = cache_dir / "ocr-default.json"
    base: dict[str, Any] = {}
    if variant == "header2x" and base_path.exists():
        base = json.loads(base_path.read_text())
    for image in images:
        if image.stem in stored:
            continue
        if engine is None:
            engine = make(**(VARIANTS[variant] if options is None else options))
        ref = next(iter(discover([image])))
        page = preprocess(load_page(ref), PreprocessOptions())
        pixels = page.image
        if variant == "header2x" and image.stem not in base and base_path.exists():
            base = json.loads(base_path.read_text())  # the default run may still be adding
        first = base.get(image.stem)
        started, cpu = time.perf_counter(), time.process_time()
        if first is not None and pixels is not None:
            # header2x: the first pass is the default variant's, already cached.
            lines = [Line.from_json(item) for item in first["lines"]]
            lines = _header_pass(engine, pixels, lines)
            seconds = first["seconds"] + time.perf_counter() - started
            cpu_seconds = first.get("cpu_seconds", 0.0) + time.process_time() - cpu
        else:
            lines = list(ocr_page(engine, page).lines or [])
            if variant == "header2x" and pixels is not None:
                lines = _header_pass(engine, pixels, lines)
            seconds = time.perf_counter() - started
            cpu_seconds = time.process_time() - cpu
        stored[image.stem] = {
            "lines": [line.to_json() for line in lines],
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
        }
        path.write_text(json.dumps(stored))
        print(f"{variant} {image.name}: {seconds:.1f}s ({cpu_seconds:.1f} CPU s)", file=sys.stderr)
    return stored


def receipts_parser(doc: str | None) -> argparse.ArgumentParser:
    """
    The argument parser of a benchmark over the SROIE receipts: described by the first
    paragraph of ``doc`` (the script's docstring), with ``--data``, the receipts' folder.
    """
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0] if doc else None)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    return parser


def load_cache(variant: str, cache_dir: Path = DEFAULT_CACHE_DIR) -> dict[str, list[Line]]:
    """
    The cached lines of one variant.

    Args:
        variant: a key of :data:`VARIANTS`.
        cache_dir: the cache folder.

    Returns:
        ``{stem: lines}``.
    """
    data: dict[str, Any] = json.loads((cache_dir / f"ocr-{variant}.json").read_text())
    return {stem: [Line.from_json(item) for item in entry["lines"]] for stem, entry in data.items()}


def main(argv: list[str] | None = None) -> int:
    """Run from the command line (``argv``: ``sys.argv[1:]`` when ``None``); returns 0."""
    parser = receipts_parser(__doc__)
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="default")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    parser.add_argument(
        "--half",
        choices=("dev", "held", "all"),
        default="all",
        help="only the development (even positions) or held-out (odd) receipts",
    )
    args = parser.parse_args(argv)
    images = sorted((args.data / "img").glob("*.jpg"))
    if args.half != "all":
        images = images[0::2] if args.half == "dev" else images[1::2]
    if not images:
        parser.error(f"no receipts in {args.data / 'img'}")
    stored = ocr_variant(images, args.variant, args.cache_dir)
    seconds = sum(stored[image.stem]["seconds"] for image in images)
    print(f"ocr variant={args.variant} receipts={len(images)} ocr_seconds={seconds:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
