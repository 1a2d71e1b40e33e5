"""
E-receipts: the SROIE receipts as born-digital PDF pages, read from their own text and by
OCR of their rendering.

Each receipt's ground-truth lines (``box/``) are drawn in Helvetica where the scan has
them (the page sized so the scan would be 200 dpi, and a tenth wider so that no line runs
off it; each line's size fitted to its box), as
a program that writes e-receipts would. Each page is then loaded as the pipeline loads
it, once with ``pdf_text`` (the default: the lines are read from the PDF) and once
without (the rendering is preprocessed and OCR-ed by one ``RapidOcrEngine``), and scored
as ``accuracy_offline.py`` scores: character accuracy against ``box/``, and the four
fields exact after the offline correct -> fix -> structure stages.

With ``--logo N``, each receipt's top N transcript lines are not drawn as text: the scan's
pixels of them are placed on the page as a picture, as an e-receipt's logo carries the
shop's name. The shipped load reads the rest from the PDF and OCR reads the picture; a
third row, "text layer alone", drops the picture as round 9's load did. With
``--letterhead``, all of the page is drawn over a page-sized picture, as an invoice over
its letterhead: the text shows, and is read from the PDF; round 9's load OCR-ed such a
page whole (the picture covered a tenth of it), the third row's way.

The text-layer row also says what the offline field rules make of a receipt whose text
is exact: where they miss there, OCR is not the cause. The last line counts the receipts
whose key address the transcript can spell at all: some of ``box/``'s lines, in order,
each joined by a space, by nothing or by ", ", equal to it under SROIE's exact match
(``accuracy_offline.spelt``). Where none does,
the annotators keyed the address otherwise than they transcribed the print (a space, a
comma, a letter), and no reading of the print matches it.

Usage (from the project root)::

    .venv/bin/python benchmarks/pdf_text.py [--half held|dev|all] [--logo N] [--letterhead]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import _root  # noqa: F401  (the project on sys.path)
import numpy as np
from accuracy_offline import spelt, split, summary
from fields_ocr import DEFAULT_DATA
from PIL import Image

from stages._page import Line
from stages.inputs import discover
from stages.ocr import RapidOcrEngine, ocr_page
from stages.offline import (
    DEFAULT_FIELDS,
    comparable_text,
    read_box_file,
    read_key_file,
    score_receipt,
)
from stages.pipeline import DocumentSettings, page_loader
from stages.preprocess import PreprocessOptions, preprocess
from stages.testing.pdf import text_pdf

__all__ = ["e_receipt", "main"]

#: Points per pixel of the scan: the page is laid out as if the scan were 200 dpi.
PT = 72 / 200
#: Helvetica's mean advance over these texts, as a share of the font size (a line is
#: drawn no wider than its box).
ADVANCE = 0.55


def e_receipt(data: Path, name: str, target: Path, logo: int = 0, letterhead: bool = False) -> Path:
    """The receipt's ground-truth lines drawn as text on a PDF page like its scan; the
    scan's pixels of the top ``logo`` lines placed as a picture instead of their text
    (grown until no line is cut by its edge, as a logo holds whole lines); with
    ``letterhead``, all of it drawn over a page-sized picture (off-white, a grey band at
    the top and the bottom)."""
    with Image.open(data / "img" / f"{name}.jpg") as opened:
        scan = np.asarray(opened.convert("L"))
    height, width = scan.shape
    truth = read_box_file(data / "box" / f"{name}.csv")
    pictured: list[Line] = sorted(truth, key=lambda line: line.box[1])[:logo]
    while pictured:
        x0, y0 = (min(line.box[i] for line in pictured) for i in (0, 1))
        x1, y1 = (max(line.box[i] for line in pictured) for i in (2, 3))
        cut = [
            line
            for line in truth
            if line.box[0] < x1 and line.box[2] > x0 and line.box[1] < y1 and line.box[3] > y0
        ]
        if len(cut) == len(pictured):
            break
        pictured = cut
    pictures = []
    # A tenth wider than the scan: Helvetica at a line's height can run past its box, and
    # text off the page does not show (nor is it read).
    page_width = round(1.1 * width)
    if letterhead:
        paper = np.full((height, page_width), 250, dtype=np.uint8)
        band = max(1, height // 25)
        paper[:band] = paper[-band:] = 190
        pictures.append((paper, 0.0, 0.0, page_width * PT))
    if pictured:
        x0, y0 = max(0, int(x0) - 4), max(0, int(y0) - 4)
        x1, y1 = min(width, int(x1) + 4), min(height, int(y1) + 4)
        pictures.append((scan[y0:y1, x0:x1].copy(), x0 * PT, y0 * PT, (x1 - x0) * PT))
    lines = []
    for line in truth:
        if line in pictured:
            continue
        left, top, right, bottom = (value * PT for value in line.box)
        size = min(0.9 * (bottom - top), (right - left) / (ADVANCE * max(1, len(line.text))))
        lines.append((line.text, left, top, max(size, 1.0)))
    return text_pdf(target, lines, page_width * PT, height * PT, pictures=pictures)


def _chars(lines: Sequence[Line]) -> list[str]:
    return sorted("".join(comparable_text(line.text) for line in lines).replace(" ", ""))


def _same_lines(lines: Sequence[Line], truth: Sequence[Line]) -> int:
    """How many of the transcript's lines come out as a line with the same text."""
    got = Counter(comparable_text(line.text) for line in lines)
    return sum((got & Counter(comparable_text(line.text) for line in truth)).values())


def main(argv: list[str] | None = None) -> int:
    """
    Command-line entry point.

    Returns:
        0.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--half", choices=("dev", "held", "all"), default="held")
    parser.add_argument(
        "--logo", type=int, default=0, help="draw the top N lines as a picture (default 0)"
    )
    parser.add_argument(
        "--letterhead", action="store_true", help="draw the text over a page-sized picture"
    )
    args = parser.parse_args(argv)
    names = sorted(path.stem for path in (args.data / "img").glob("*.jpg"))
    names = names if args.half == "all" else split(names)[args.half]
    engine = RapidOcrEngine()
    ways = {"text layer": True, "OCR of the rendering": False}
    if args.logo or args.letterhead:
        ways = {
            "text layer + OCR of the pictures": True,
            "text layer alone": True,
            "OCR of the rendering": False,
        }
    loaders = {
        way: page_loader(DocumentSettings(malloc_tuning=False, pdf_text=pdf_text))
        for way, pdf_text in ways.items()
    }
    scores: dict[str, list] = {way: [] for way in ways}
    cpu = dict.fromkeys(ways, 0.0)
    same_lines = same_chars = truth_lines = reachable = 0
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            made = e_receipt(
                args.data, name, Path(folder) / f"{name}.pdf", args.logo, args.letterhead
            )
            ref = next(iter(discover([made])))
            truth = read_box_file(args.data / "box" / f"{name}.csv")
            key = read_key_file(args.data / "key" / f"{name}.json")
            reachable += spelt([line.text.strip() for line in truth], key.get("address", ""))
            for way, load in loaders.items():
                started = time.process_time()
                page = load(ref)
                if way == "text layer alone":
                    page.notes.get("load", {}).pop("pictures", None)
                page = ocr_page(engine, preprocess(page, PreprocessOptions()))
                cpu[way] += time.process_time() - started
                scores[way].append(score_receipt(page.lines, truth, key))
                if way == next(iter(ways)):
                    same_lines += _same_lines(page.lines, truth)
                    same_chars += _chars(page.lines) == _chars(truth)
                    truth_lines += len(truth)
    engine.close()
    print(
        f"| {len(names)} e-receipts ({args.half}) | "
        + " | ".join(DEFAULT_FIELDS)
        + " | characters | CPU s/page |"
    )
    print("|---" * (len(DEFAULT_FIELDS) + 3) + "|")
    for way, rows in scores.items():
        figures = summary(rows)
        cells = [
            f"{round(figures[field] * figures[f'{field}_n'])}/{int(figures[f'{field}_n'])}"
            for field in DEFAULT_FIELDS
        ]
        print(
            f"| {way} | "
            + " | ".join(cells)
            + f" | {figures['ocr']:.3f} | {cpu[way] / len(names):.2f} |"
        )
    print(
        f"\nread from the PDF: {same_chars} of {len(names)} receipts with the transcript's "
        f"characters exactly, {same_lines} of its {truth_lines} lines as the same lines"
    )
    print(
        f"key addresses the transcript (box/) can spell: {reachable} of {len(names)} "
        "(some of its lines in order, each joined by a space, nothing or ', ')"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
