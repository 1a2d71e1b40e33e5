"""
Red ink on the SROIE scans: how much each holds, which ones ``lighten_red`` changes, and
what the step costs against the OCR of the same page.

Default: for every receipt, the pixels whose red exceeds green and blue by more than
``RED_MARGIN`` (``stages/_stamp.py``), whether the step changes the page (at least
``MIN_RED_PIXELS`` of them, shaped as a stamp's), and the process CPU time of
:func:`~stages._stamp.lighten_red` (best of 5). With ``--ocr``, each page is also read
once by a ``RapidOcrEngine`` (one thread) as the pipeline reads it (``preprocess`` with
the defaults, then ``ocr_page``), and the step's CPU time is printed as a share of the
OCR's, both measured in this run.

``--red-rows``: red *print*, which must be kept. On each development receipt (even
positions), the transcript rows holding the total, then the rows of the company name, are
re-inked in a two-colour thermal printer's red (the darker the pixel, the more of the
red); each page is read by the engine with ``lighten_red`` and without, and the table
counts the pages where the value (spaces ignored) is in the text, and the pages the step
changed. ``--any-red`` lightens every red page, whatever the shapes of its ink.

Usage (from the project root)::

    flock /tmp/asyncpipe-bench.lock .venv/bin/python benchmarks/red_ink.py [--ocr] [--data DIR]
    .venv/bin/python benchmarks/red_ink.py --red-rows [--any-red]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import _root  # noqa: F401  (the project on sys.path)
import cv2
import numpy as np
from accuracy_offline import split
from fields_ocr import receipts_parser

from stages import _stamp as stamp
from stages._stamp import MIN_RED_PIXELS, RED_MARGIN, lighten_red
from stages.inputs import discover, load_page
from stages.ocr import RapidOcrEngine, ocr_page
from stages.offline import read_box_file, read_key_file
from stages.preprocess import PreprocessOptions, preprocess

__all__ = ["main"]


def _cpu(call: object, *args: object, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        call(*args)  # type: ignore[operator]
        best = min(best, time.process_time() - started)
    return best


#: A two-colour thermal printer's red (BGR).
THERMAL_RED = np.array((45, 40, 205), np.float32)


def _reink(image: np.ndarray, boxes: list[list[float]]) -> np.ndarray:
    """``image`` with the print inside ``boxes`` turned red, darker pixels more so."""
    out = image.astype(np.float32)
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    for x0, y0, x1, y1 in ((round(v) for v in box) for box in boxes):
        cut = gray[y0 : y1 + 1, x0 : x1 + 1]
        paper = float(np.percentile(cut, 90))
        weight = np.clip((paper - cut) / max(paper - 30, 1), 0, 1)[..., np.newaxis]
        out[y0 : y1 + 1, x0 : x1 + 1] = out[y0 : y1 + 1, x0 : x1 + 1] * (1 - weight) + (
            THERMAL_RED * weight
        )
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _squeeze(text: str) -> str:
    return "".join(text.upper().split())


def red_rows(data: Path) -> None:
    """Print how often the total and the company are read when printed in red."""
    engine = RapidOcrEngine()
    read = {(field, way): 0 for field in ("total", "company") for way in ("kept", "lightened")}
    tried = {"total": 0, "company": 0}
    changed = {"total": 0, "company": 0}
    lost: dict[str, list[str]] = {"total": [], "company": []}
    gained: dict[str, list[str]] = {"total": [], "company": []}
    for stem in split(sorted(path.stem for path in (data / "img").glob("*.jpg")))["dev"]:
        key = read_key_file(data / "key" / f"{stem}.json")
        rows = read_box_file(data / "box" / f"{stem}.csv")
        image = cv2.imread(str(data / "img" / f"{stem}.jpg"), cv2.IMREAD_COLOR)
        for field in ("total", "company"):
            want = _squeeze(key.get(field, ""))
            hits = [row for row in rows if want and _squeeze(row.text) in want]
            if field == "total":
                # The total's row: every box level with one that holds the amount.
                hits = [
                    row
                    for row in rows
                    for hit in (r for r in rows if want and want in _squeeze(r.text))
                    if abs((row.box[1] + row.box[3]) - (hit.box[1] + hit.box[3])) / 2
                    < (hit.box[3] - hit.box[1]) / 2
                ]
            hits = [row for row in hits if _squeeze(row.text)][: 2 if field == "company" else None]
            if not hits:
                continue
            red = _reink(image, [row.box for row in hits])
            light, share = lighten_red(red)
            tried[field] += 1
            changed[field] += bool(share)
            found = {}
            for way, pixels in (("kept", red), ("lightened", light)):
                text = _squeeze(" ".join(line.text for line in engine.recognize(pixels)))
                found[way] = want in text
                read[field, way] += found[way]
            if found["kept"] != found["lightened"]:
                (lost if found["kept"] else gained)[field].append(stem)
    engine.close()
    print(
        "| red rows (development) | pages | read, kept | read, lightened | pages changed "
        "| lost by lightening | read only lightened |"
    )
    print("|---|---|---|---|---|---|---|")
    for field in ("total", "company"):
        print(
            f"| {field} | {tried[field]} | {read[field, 'kept']} | {read[field, 'lightened']} "
            f"| {changed[field]} | {', '.join(lost[field]) or '-'} "
            f"| {', '.join(gained[field]) or '-'} |"
        )


def main(argv: list[str] | None = None) -> int:
    """Run from the command line (``argv``: ``sys.argv[1:]`` when ``None``); returns 0."""
    parser = receipts_parser(__doc__)
    parser.add_argument("--ocr", action="store_true", help="also time the OCR of each page")
    parser.add_argument("--red-rows", action="store_true", help="red print: kept or lost")
    parser.add_argument(
        "--any-red",
        action="store_true",
        help="lighten any red ink, stamp-shaped or not (round 11's first version)",
    )
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    if args.any_red:
        stamp.STAMP_SHARE = 0.0
    if args.red_rows:
        red_rows(args.data)
        return 0
    engine = RapidOcrEngine() if args.ocr else None
    step, ocr, changed, quiet = 0.0, 0.0, [], []
    images = sorted((args.data / "img").glob("*.jpg"))
    print("| receipt | red pixels | changed | lighten_red ms CPU | OCR s CPU |")
    print("|---|---|---|---|---|")
    for path in images:
        pixels = cv2.imread(str(path), cv2.IMREAD_COLOR)
        red = cv2.subtract(pixels[:, :, 2], cv2.max(pixels[:, :, 0], pixels[:, :, 1]))
        count = int(np.count_nonzero(red > RED_MARGIN))
        flag = lighten_red(pixels)[1] > 0
        (changed if flag else quiet).append(count)
        cost = _cpu(lighten_red, pixels)
        step += cost
        seconds = float("nan")
        if engine is not None:
            started = time.process_time()
            page = preprocess(load_page(next(iter(discover([path])))), PreprocessOptions())
            ocr_page(engine, page)
            seconds = time.process_time() - started
            ocr += seconds
        print(f"| {path.stem} | {count} | {flag} | {cost * 1000:.1f} | {seconds:.2f} |")
    if engine is not None:
        engine.close()
    print(
        f"\n{len(changed)} of {len(images)} pages changed (red pixels {min(changed, default=0)}"
        f"-{max(changed, default=0)}); the others had at most {max(quiet, default=0)} "
        f"(a page needs {MIN_RED_PIXELS}, and its red shaped as a stamp's); "
        f"lighten_red {step * 1000 / len(images):.1f} ms CPU/page"
    )
    if ocr:
        print(
            f"preprocess + OCR {ocr / len(images):.2f} s CPU/page; lighten_red is "
            f"{step / ocr:.2%} of it"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
