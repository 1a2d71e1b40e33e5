"""
Red ink on the SROIE scans: how much each holds, which ones ``lighten_red`` changes, and
what the step costs against the OCR of the same page.

For every receipt: the pixels whose red exceeds green and blue by more than
``RED_MARGIN`` (``stages/_stamp.py``), whether that reaches ``MIN_RED_PIXELS`` (the page
is then changed), and the process CPU time of :func:`~stages._stamp.lighten_red` (best of
5). With ``--ocr``, each page is also read once by a ``RapidOcrEngine`` (one thread) as
the pipeline reads it (``preprocess`` with the defaults, then ``ocr_page``), and the step's
CPU time is printed as a share of the OCR's, both measured in this run.

Usage (from the project root)::

    flock /work/wt/bench.lock .venv/bin/python benchmarks/red_ink.py [--ocr] [--data DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import _root  # noqa: F401  (the project on sys.path)
import cv2
import numpy as np
from fields_ocr import DEFAULT_DATA

from stages._stamp import MIN_RED_PIXELS, RED_MARGIN, lighten_red
from stages.inputs import discover, load_page
from stages.ocr import RapidOcrEngine, ocr_page
from stages.preprocess import PreprocessOptions, preprocess

__all__ = ["main"]


def _cpu(call: object, *args: object, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        call(*args)  # type: ignore[operator]
        best = min(best, time.process_time() - started)
    return best


def main(argv: list[str] | None = None) -> int:
    """
    Command-line entry point.

    Args:
        argv: the arguments (``sys.argv[1:]`` when ``None``).

    Returns:
        0.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--ocr", action="store_true", help="also time the OCR of each page")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    engine = RapidOcrEngine() if args.ocr else None
    step, ocr, changed, quiet = 0.0, 0.0, [], []
    images = sorted((args.data / "img").glob("*.jpg"))
    print("| receipt | red pixels | changed | lighten_red ms CPU | OCR s CPU |")
    print("|---|---|---|---|---|")
    for path in images:
        pixels = cv2.imread(str(path), cv2.IMREAD_COLOR)
        red = cv2.subtract(pixels[:, :, 2], cv2.max(pixels[:, :, 0], pixels[:, :, 1]))
        count = int(np.count_nonzero(red > RED_MARGIN))
        (changed if count >= MIN_RED_PIXELS else quiet).append(count)
        cost = _cpu(lighten_red, pixels)
        step += cost
        seconds = float("nan")
        if engine is not None:
            started = time.process_time()
            page = preprocess(load_page(next(iter(discover([path])))), PreprocessOptions())
            ocr_page(engine, page)
            seconds = time.process_time() - started
            ocr += seconds
        flag = count >= MIN_RED_PIXELS
        print(f"| {path.stem} | {count} | {flag} | {cost * 1000:.1f} | {seconds:.2f} |")
    if engine is not None:
        engine.close()
    print(
        f"\n{len(changed)} of {len(images)} pages changed (red pixels {min(changed, default=0)}"
        f"-{max(changed, default=0)}); the others had at most {max(quiet, default=0)}; "
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
