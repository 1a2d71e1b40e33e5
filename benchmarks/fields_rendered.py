"""
The written receipts printed as images and read by the real OCR: the field rules on
unseen layouts, end to end.

`fields_written.py` judges the rules on the reviewers' receipt texts, with the noise the
reviewers typed. Here each *clean* receipt of a set (the ones its author left without
noise) is drawn as a receipt scan, and the OCR adds the noise it really makes: rows are
drawn in Pillow's own proportional font (Aileron, 19 px; most of the SROIE scans print in
a proportional sans-serif too) on a 640-px-wide slip, grey ink on grey paper, blurred,
with grain, saved as JPEG at quality 70. ``--font mono`` draws them in a fixed-width face
instead, as some thermal printers print (DejaVu Sans Mono, 21 px, 48 characters across;
a row too long for the slip is squeezed to fit, where in Aileron it runs off the slip's
edges, as it did in rounds 15 to 17). Each image then goes through the pipeline's own
path (``discover`` -> ``load_page`` -> ``preprocess`` -> ``ocr_page`` with a default
:class:`RapidOcrEngine`), and the fields are extracted from the OCR's lines and scored
exact, as SROIE scores them. Beside it, the same receipts' fields read from their typed
rows: the difference is what the OCR costs.

The images are synthetic: one font at one size, flat paper, no folds, no fading. They
judge how the rules meet real OCR output (its spacing, its reading of punctuation, its
line boxes) on layouts the 40 shared scans lack; they do not stand in for scans.

Usage (from the project root)::

    .venv/bin/python benchmarks/fields_rendered.py [--sets g,h,i,j,k] [--tree DIR]
        [--cache-dir DIR] [--misses] [--font mono|aileron] [--scale 0.5]

The OCR is cached per set in ``CACHE_DIR/rendered-SET.json`` (the mono font's in
``rendered-mono-SET.json``; default ``/tmp/asyncpipe-rendered``); ``--tree`` scores
another checkout's rules on it. The mono font comes from matplotlib's data (the ``bench``
extra). ``--scale 0.5`` shrinks each slip to half its size after drawing it (before the
JPEG), as a scan at half the resolution: capitals about 7 pixels high instead of 14 (cached as
``rendered-SET-x0.5.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from fields_written import layout, part_lefts, row_parts
from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = Path(__file__).resolve().parent
FIELDS = ("company", "date", "address", "total")
#: The slip's width, its side margins, the first row's top and the row pitch, in pixels;
#: the font's size.
WIDTH, MARGIN, TOP, PITCH, SIZE = 640, 16, 30, 32, 19
#: The fonts a receipt can be printed in: ``aileron`` (the default), Pillow's own
#: proportional font, as rounds 15 to 17 printed them (rows too long for the slip run off
#: its edges, as they did); ``mono``, a fixed-width face, 48 characters across the slip.
FONTS = ("aileron", "mono")
#: DejaVu Sans Mono's size: its advance is 0.602 of it, so 48 characters fill 608 px.
MONO_SIZE = 21


def load_font(name: str) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """One of :data:`FONTS`. ``mono`` is read from matplotlib's data (the bench extra)."""
    if name == "aileron":
        return ImageFont.load_default(size=SIZE)
    try:
        import matplotlib
    except ImportError as exc:
        raise SystemExit(
            "--font mono prints in matplotlib's DejaVu Sans Mono: "
            "`.venv/bin/pip install -e '.[bench]'`, or pass --font aileron"
        ) from exc
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSansMono.ttf"
    return ImageFont.truetype(str(path), MONO_SIZE)


def _fits(lefts: list[float], widths: list[float], gap: float) -> bool:
    """Whether parts starting at ``lefts`` stay on the slip, ``gap`` apart or more."""
    ends = [left + width for left, width in zip(lefts, widths, strict=True)]
    apart = all(end + gap <= left for end, left in zip(ends, lefts[1:], strict=False))
    return apart and lefts[0] >= 0 and ends[-1] <= WIDTH


def render(rows: list[str], seed: int, font_name: str = "aileron") -> Image.Image:
    """
    A receipt's rows printed on a grey slip, as a scanner would give them.

    In the ``mono`` font a row too long for the slip is printed condensed to fit it, as
    a printer's narrow face would print it: drawn on a wider strip, then squeezed across.
    """
    font = load_font(font_name)
    image = Image.new("L", (WIDTH, TOP * 2 + PITCH * len(rows)), 236)
    draw = ImageDraw.Draw(image)
    for index, raw in enumerate(rows):
        align, parts = row_parts(raw)
        top = TOP + index * PITCH
        widths = [font.getlength(part) for part in parts]
        lefts = part_lefts(widths, align, WIDTH, MARGIN)
        if font_name == "aileron" or _fits(lefts, widths, font.getlength("  ")):
            for left, part in zip(lefts, parts, strict=True):
                draw.text((left, top), part, fill=40, font=font)
            continue
        # The parts overlap or overrun: set them two spaces apart (the last one still
        # flush right when there is room), then squeeze the row to the slip.
        gap = font.getlength("  ")
        span = max(WIDTH, round(sum(widths) + gap * (len(parts) - 1) + 2 * MARGIN))
        strip = Image.new("L", (span, PITCH), 236)
        strip_draw = ImageDraw.Draw(strip)
        left = MARGIN if len(parts) > 1 else part_lefts(widths, align, span, MARGIN)[0]
        for k, (part, width) in enumerate(zip(parts, widths, strict=True)):
            if k and k == len(parts) - 1:
                left = max(left, span - MARGIN - width)
            strip_draw.text((left, 0), part, fill=40, font=font)
            left += width + gap
        image.paste(strip.resize((WIDTH, PITCH), Image.Resampling.LANCZOS), (0, top))
    image = image.filter(ImageFilter.GaussianBlur(0.8))
    grain = np.random.default_rng(seed).normal(0, 7, (image.height, image.width))
    pixels = np.clip(np.asarray(image, dtype=np.float32) + grain, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def ocr_set(
    name: str,
    cases: list[dict[str, Any]],
    cache_dir: Path,
    font: str = "aileron",
    scale: float = 1.0,
) -> dict[str, Any]:
    """The OCR lines of each case's rendering in ``font``, ``scale`` times the size."""
    from stages.inputs import discover, load_page
    from stages.ocr import RapidOcrEngine, ocr_page
    from stages.preprocess import PreprocessOptions, preprocess

    cache_dir.mkdir(parents=True, exist_ok=True)
    # Rounds 15 to 17 cached Aileron's readings without the font in the name.
    stem = name if font == "aileron" else f"{font}-{name}"
    if scale != 1:
        stem = f"{stem}-x{scale:g}"
    path = cache_dir / f"rendered-{stem}.json"
    stored: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    engine = None
    for case in cases:
        if case["id"] in stored:
            continue
        engine = engine or RapidOcrEngine()
        image = cache_dir / f"{stem}-{case['id']}.jpg"
        drawn = render(case["rows"], zlib.crc32(case["id"].encode()), font)
        if scale != 1:
            size = (round(drawn.width * scale), round(drawn.height * scale))
            drawn = drawn.resize(size, Image.Resampling.LANCZOS)
        drawn.save(image, quality=70)
        page = preprocess(load_page(next(iter(discover([image])))), PreprocessOptions())
        stored[case["id"]] = [line.to_json() for line in ocr_page(engine, page).lines or []]
        path.write_text(json.dumps(stored))
        print(f"{name}/{case['id']}: {len(stored[case['id']])} lines", file=sys.stderr)
    return stored


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="g,h,i,j,k", help="comma-separated sets")
    parser.add_argument("--tree", type=Path, help="score the rules of this checkout")
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/asyncpipe-rendered"))
    parser.add_argument("--misses", action="store_true", help="print the fields missed")
    parser.add_argument("--font", choices=FONTS, default="aileron", help="the print's font")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="shrink (or grow) each drawn slip by this"
    )
    args = parser.parse_args(argv)
    tree = (args.tree or HERE.parent).resolve()
    sys.path.insert(0, str(tree))
    from stages._page import Line
    from stages.offline import exact_match, extract_fields

    print(f"rules of {tree}")
    print("| set | clean receipts | read | company | date | address | total | all four |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.sets.split(","):
        cases = json.loads((HERE / "written" / f"{name}.json").read_text(encoding="utf-8"))
        clean = [case for case in cases if not case["noisy"]]
        ocr = ocr_set(name, clean, args.cache_dir, args.font, args.scale)
        for how in ("typed rows", "rendered + OCR"):
            right = dict.fromkeys(FIELDS, 0)
            every = 0
            for case in clean:
                if how == "typed rows":
                    text, lines = layout(case["rows"], Line)
                else:
                    lines = [Line.from_json(item) for item in ocr[case["id"]]]
                    text = "\n".join(line.text for line in lines)
                got = extract_fields(text, lines)
                ok = {field: exact_match(case[field], got.get(field)) for field in FIELDS}
                every += all(ok.values())
                for field in FIELDS:
                    right[field] += ok[field]
                    if args.misses and how != "typed rows" and not ok[field]:
                        print(
                            f"  {name}/{case['id']} {field}: {case[field]!r} got {got.get(field)!r}"
                        )
            counts = " | ".join(f"{right[field]}" for field in FIELDS)
            print(f"| {name} | {len(clean)} | {how} | {counts} | {every} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
